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
from bblogin._drift import drift_warning, step_token_expiry
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


def _step_token() -> tuple[str, int]:
    token = subject_token(PIPELINES_ENV)
    at = now()
    expires_at = step_token_expiry(unverified_claims(token) or {}, at, f"${PIPELINES_ENV}")
    if expires_at <= at:
        raise LoginRequired(f"${PIPELINES_ENV} expired at {rfc3339(expires_at)}", hint="a step gets one token for its whole run: keep the step shorter, or split the work into steps")
    if not stderr_is_stdout_pipe():  # not where google-auth parses the JSON
        hint = "`bblogin gcp config` in the step's script checks the configuration's own token lifetime"
        warning = drift_warning("Google credentials this token buys (an hour, Google's default)", at + _gcp.GOOGLE_TOKEN_LIFETIME, expires_at, renews_before=_gcp.REFRESH_THRESHOLD, now=at, hint=hint)
        if warning:
            print(warning, file=sys.stderr)
    return token, expires_at


def _profile_token(args: argparse.Namespace, request: _gcp.LibraryRequest) -> tuple[str, int, tuple[str, str]]:
    from bblogin._session import get_credential

    profile = load_config().profile(args.profile)
    # a login only for a person the library hands the terminal to (interactive mode), or at a
    # terminal when no library runs us; never when the library says non-interactive (request.said_no)
    interactive = Gate("gcp", no_login=args.no_login, said_no=request.said_no)
    cred = get_credential(profile, kind="id_token", account=account_from_args(args, profile), interactive=interactive)
    # on this machine's clock (the IdP's offset taken out), and offered for reuse only briefly
    return cred.token, min(int(cred.expires_at), now() + _gcp.PROFILE_ANSWER_LIFETIME), (profile.name, cred.account.id)


def run(args: argparse.Namespace) -> int:
    request = _gcp.LibraryRequest.from_env()
    error: BbloginError | None = None
    owner: tuple[str, str] | None = None  # (profile, token set) of a profile's token
    try:
        if request.token_type not in _gcp.TOKEN_TYPES:
            raise UsageError(f"GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE {request.token_type} is not an OIDC token type", hint=f"set subject_token_type to {_gcp.ID_TOKEN} in the credential configuration")
        if request.interactive and not request.output_file:
            raise UsageError("interactive mode needs an output_file in the credential configuration (the library reads the answer there)")
        if os.environ.get(PIPELINES_ENV):
            token, expires_at = _step_token()
        else:
            token, expires_at, owner = _profile_token(args, request)
        response = _gcp.success(token, request.token_type, expires_at)
        if request.output_file:
            _write_output_file(request.output_file, response, owner)
    except BbloginError as exc:
        error = exc
        response = _gcp.failure(type(exc).__name__, exc.message + (f" ({exc.hint})" if exc.hint else ""))
        if request.output_file:  # replaces an answer that is no longer true; interactive: the only place read
            try:
                _gcp.write_output_file(request.output_file, response)
            except BbloginError:
                pass  # the output file is the problem: stdout, the exit code and stderr say so
    if not request.interactive:  # interactive: stdout is the person's terminal, no place for a token
        sys.stdout.write(json.dumps(response) + "\n")
    if error is None:
        return 0
    if not stderr_is_stdout_pipe():
        print(error.render(), file=sys.stderr)
    return error.exit_code


def _write_output_file(path: str, response: dict, owner: tuple[str, str] | None) -> None:
    """Write the answer and keep a record of it: bblogin removes it when its token is no longer
    the one it would hand out (bblogin/_gcpfiles.py)."""
    from bblogin import _gcpfiles

    profile, account = owner or (None, None)
    _gcpfiles.write(os.path.abspath(path), lambda: _gcp.write_output_file(path, response), profile=profile, account=account, expires_at=response["expiration_time"])
