"""`bblogin gcp config`: write the external_account configuration that runs `bblogin gcp`, as
`gcloud iam workload-identity-pools create-cred-config --executable-command` would, with bblogin's
absolute path (the library runs it without a shell, often without the user's PATH)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

from bblogin import _gcp
from bblogin._claims import unverified_claims
from bblogin._drift import drift_warning
from bblogin._errors import UsageError
from bblogin._exchange import PIPELINES_ENV
from bblogin._files import atomic_write_bytes
from bblogin._tokens import now


def bblogin_command() -> list[str]:
    """The absolute command that starts this bblogin: the `bblogin` script beside this
    interpreter (same installation), else the one on PATH, else this interpreter with -m."""
    beside = os.path.join(os.path.dirname(os.path.abspath(sys.executable)), "bblogin")
    if os.access(beside, os.X_OK):
        return [beside]
    found = shutil.which("bblogin")
    return [os.path.abspath(found)] if found else [os.path.abspath(sys.executable), "-m", "bblogin"]


def _command(args: argparse.Namespace) -> str:
    words = [*bblogin_command(), "gcp"]
    if args.profile:
        words += ["--profile", args.profile]
    if args.token_lifetime:
        words += ["--lifetime", str(args.token_lifetime)]
    if any(not w or any(c.isspace() for c in w) for w in words):
        raise UsageError(
            f"the command {' '.join(words)!r} has a space in a word: the client libraries split it on whitespace, without a shell",
            hint="install bblogin where its path has no spaces (pipx, a venv under /opt), or use a profile name without spaces",
        )
    return " ".join(words)


def _warn_about_the_step(lifetime: int) -> None:
    """Run in a step: google-auth hides `bblogin gcp`'s stderr, so the drift warning is said here."""
    exp = (unverified_claims(os.environ.get(PIPELINES_ENV, "")) or {}).get("exp")
    if isinstance(exp, int) and not isinstance(exp, bool):
        at = now()
        warning = drift_warning("Google credentials this step's token buys", at + lifetime, exp, renews_before=_gcp.REFRESH_THRESHOLD, now=at)
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
        _warn_about_the_step(args.token_lifetime or _gcp.GOOGLE_TOKEN_LIFETIME)
    return 0
