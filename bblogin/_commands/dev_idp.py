"""`bblogin dev-idp`: run the dex double in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import threading

from bblogin import _files, _paths
from bblogin._commands._common import say
from bblogin._errors import UsageError


def run(args: argparse.Namespace) -> int:
    from bblogin.devidp import USERS, DevIdP

    if args.user not in USERS:
        raise UsageError(f"unknown dev user {args.user!r} (have: {', '.join(USERS)})")
    key_file = None if args.ephemeral else _paths.join(_files.ensure_private_dir(_paths.join(_paths.state_dir(), "dev-idp")), "signing-keys.json")
    try:
        idp = DevIdP(port=args.port, auto_approve=args.auto_approve, default_user=args.user, id_token_ttl=args.token_ttl, key_file=key_file).start()
    except OSError as exc:
        raise UsageError(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror}", hint="pick another --port, or 0 for a random one") from None
    try:
        signal.signal(signal.SIGTERM, _stop)  # `kill %1` stops it as Ctrl-C does: exit 0, so `wait %1` succeeds
        say(_banner(idp.issuer, idp.pipelines.issuer(), args.user if args.auto_approve else None, key_file))
        threading.Event().wait()
    except KeyboardInterrupt:
        say("\nbblogin dev IdP stopped.")
    finally:
        idp.stop()
    return 0


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _banner(issuer: str, pipelines_issuer: str, auto_user: str | None, key_file: str | None) -> str:
    from bblogin.devidp import USERS

    users = ", ".join(f"{u.username} ({u.email or 'no confirmed email'})" for u in USERS.values())
    login = "auto-approved as " + auto_user if auto_user else "you pick a fake Bitbucket user in the browser, then grant access"
    return f"""bblogin dev IdP — a development double of dex with the bitbucket-cloud connector, NOT a real identity provider

  issuer      {issuer}
  clients     bblogin (public), bblogin-ci (secret bblogin-ci-secret, token exchange)
  users       {users}
  logins      {login}
  pipelines   {pipelines_issuer} (connector bitbucket-pipelines)
  keys        {key_file or "in memory (--ephemeral): tokens stop verifying when it stops"}
              (refresh tokens live in memory, as with dex's memory storage: after a restart a refresh is refused and bblogin asks for a new login)

Log in against it:

  bblogin login --profile dev --issuer {issuer} --client-id bblogin --connector-id bitbucket-cloud

or add this to config.toml:

  [profiles.dev]
  issuer = "{issuer}"
  client_id = "bblogin"
  connector_id = "bitbucket-cloud"

Ctrl-C (or SIGTERM) stops it."""
