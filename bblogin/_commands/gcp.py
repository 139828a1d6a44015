"""`bblogin gcp`: the executable of a Google executable-sourced credential (bblogin/_gcp.py).

In a Pipelines step (BITBUCKET_STEP_OIDC_TOKEN set) it hands over the step token as it is: the
workload identity provider trusts the Pipelines issuer itself, no dex in between (as `bblogin
aws`). On a laptop it hands over the profile's ID token, refreshed as needed; it logs in only
when the library says interactive and a person is at the terminal, never otherwise. Every
answer, success or failure, is the library's JSON (also in the output file, when one is named);
a failure also exits non-zero with bblogin's exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from bblogin import _gcp
from bblogin._claims import unverified_claims
from bblogin._commands._common import account_from_args, load_config
from bblogin._drift import drift_warning
from bblogin._errors import BbloginError, LoginRequired, UsageError
from bblogin._exchange import PIPELINES_ENV, subject_token
from bblogin._interactive import Gate
from bblogin._timefmt import rfc3339
from bblogin._tokens import now


def stderr_is_stdout_pipe() -> bool:
    """Whether stderr is the very pipe stdout is (google-auth runs executables with
    ``stderr=STDOUT`` and parses all of it as JSON): then a successful call writes nothing else."""
    try:
        return not os.isatty(1) and os.path.samestat(os.fstat(1), os.fstat(2))
    except OSError:
        return False


def _step_token(lifetime: int) -> tuple[str, int]:
    token = subject_token(PIPELINES_ENV)
    exp = (unverified_claims(token) or {}).get("exp")
    if not isinstance(exp, int) or isinstance(exp, bool):
        raise UsageError(f"${PIPELINES_ENV} is not a JWT with an exp claim", hint="it should be the step's own token: set `oidc: true` on the step and leave the variable alone")
    at = now()
    if exp <= at:
        raise LoginRequired(f"${PIPELINES_ENV} expired at {rfc3339(exp)}", hint="a step gets one token for its whole run: keep the step shorter, or split the work into steps")
    warning = drift_warning("Google credentials this token buys", at + lifetime, exp, renews_before=_gcp.REFRESH_THRESHOLD, now=at)
    if warning and not stderr_is_stdout_pipe():
        print(warning, file=sys.stderr)
    return token, exp  # the issuer's clock: Pipelines runners keep NTP time, and there is no answer to measure it by


def _profile_token(args: argparse.Namespace, request: _gcp.LibraryRequest) -> tuple[str, int]:
    from bblogin._session import get_credential

    profile = load_config().profile(args.profile)
    # a login only for a person the library hands the terminal to (interactive mode), or at a
    # terminal when no library runs us; never when the library says non-interactive
    said_no = "" if request.interactive or not request.run_by_library else "google-auth runs bblogin non-interactively (GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE is not 1)"
    interactive = Gate("gcp", no_login=args.no_login, said_no=said_no)
    cred = get_credential(profile, kind="id_token", account=account_from_args(args, profile), interactive=interactive)
    return cred.token, cred.expires_at  # already on this machine's clock (the IdP's offset taken out)


def run(args: argparse.Namespace) -> int:
    request = _gcp.LibraryRequest.from_env()
    error: BbloginError | None = None
    try:
        if request.token_type not in _gcp.TOKEN_TYPES:
            raise UsageError(f"GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE {request.token_type} is not an OIDC token type", hint=f"set subject_token_type to {_gcp.ID_TOKEN} in the credential configuration")
        if request.interactive and not request.output_file:
            raise UsageError("interactive mode needs an output_file in the credential configuration (the library reads the answer there)")
        if not 600 <= args.lifetime <= 43200:
            raise UsageError("--lifetime must be between 600 and 43200 seconds")
        token, expires_at = _step_token(args.lifetime) if os.environ.get(PIPELINES_ENV) else _profile_token(args, request)
        response = _gcp.success(token, request.token_type, expires_at)
    except BbloginError as exc:
        error = exc
        response = _gcp.failure(type(exc).__name__, exc.message + (f" ({exc.hint})" if exc.hint else ""))
    if request.output_file:
        _gcp.write_output_file(request.output_file, response)
    if not request.interactive:  # interactive: stdout is the person's terminal, no place for a token
        sys.stdout.write(json.dumps(response) + "\n")
    if error is None:
        return 0
    if not stderr_is_stdout_pipe():
        print(error.render(), file=sys.stderr)
    return error.exit_code
