"""`bblogin gcp config`: write the external_account configuration that runs `bblogin gcp`, as
`gcloud iam workload-identity-pools create-cred-config --executable-command` would, with bblogin's
absolute path (the library runs it without a shell, often without the user's PATH)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from bblogin import _gcp
from bblogin._claims import unverified_claims
from bblogin._commandline import bblogin_command, command_line
from bblogin._drift import drift_warning, shorter, step_token_expiry
from bblogin._errors import UsageError
from bblogin._exchange import PIPELINES_ENV
from bblogin._files import atomic_write_bytes
from bblogin._timefmt import rfc3339
from bblogin._tokens import now


def _command(args: argparse.Namespace) -> str:
    words = [*bblogin_command(), "gcp"]
    if args.profile:
        words += ["--profile", args.profile]
    if getattr(args, "account", None):
        words += ["--account", args.account]
    return command_line(words)


def _advice(remaining: int, args: argparse.Namespace) -> str:
    if not args.service_account:
        return f"STS's federated token always lasts an hour (a longer or shorter one needs --service-account with --token-lifetime): let the step end before {rfc3339(now() + remaining)}"
    return shorter("--token-lifetime", 600, remaining)


def _warn_about_the_step(args: argparse.Namespace) -> None:
    """Run in a step: google-auth hides `bblogin gcp`'s stderr, so the drift warning is said here."""
    at = now()
    try:
        exp = step_token_expiry(unverified_claims(os.environ.get(PIPELINES_ENV, "")) or {}, at, f"${PIPELINES_ENV}")
    except UsageError as exc:
        print(f"bblogin: warning: {exc.message}; `bblogin gcp` will refuse it", file=sys.stderr)
        return
    lifetime = args.token_lifetime or _gcp.GOOGLE_TOKEN_LIFETIME
    what = "service account tokens this step's token buys" if args.service_account else "federated tokens this step's token buys"
    warning = drift_warning(f"Google {what} ({lifetime} s)", at + lifetime, exp, renews_before=_gcp.REFRESH_THRESHOLD, now=at, hint=_advice(exp - at, args))
    if warning:
        print(warning, file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    config = _gcp.credential_config(
        args.audience,
        _command(args),
        service_account=args.service_account,
        output_file=args.executable_output_file,
        timeout_millis=args.timeout_millis,
        token_lifetime=args.token_lifetime,
    )
    text = json.dumps(config, indent=2) + "\n"
    if args.output:
        atomic_write_bytes(os.path.abspath(args.output), text.encode(), own_dir=False)
        print(f"bblogin: wrote {args.output}; use it with GOOGLE_APPLICATION_CREDENTIALS={os.path.abspath(args.output)} and GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1", file=sys.stderr)
    else:
        sys.stdout.write(text)
    if os.environ.get(PIPELINES_ENV):
        _warn_about_the_step(args)
    return 0
