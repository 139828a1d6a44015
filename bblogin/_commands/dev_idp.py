"""`bblogin dev-idp`: run the dex double in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import threading

from bblogin._commands._common import say
from bblogin._errors import UsageError


def run(args: argparse.Namespace) -> int:
    from bblogin.devidp import USERS, DevIdP

    if args.user not in USERS:
        raise UsageError(f"unknown dev user {args.user!r} (have: {', '.join(USERS)})")
    try:
        idp = DevIdP(port=args.port, auto_approve=args.auto_approve, default_user=args.user, id_token_ttl=args.token_ttl).start()
    except OSError as exc:
        raise UsageError(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror}", hint="pick another --port, or 0 for a random one") from None
    try:
        say(_banner(idp.issuer, idp.pipelines.issuer(), args.user if args.auto_approve else None))
        threading.Event().wait()
    except KeyboardInterrupt:
        say("\nbblogin dev IdP stopped.")
    finally:
        idp.stop()
    return 0


def _banner(issuer: str, pipelines_issuer: str, auto_user: str | None) -> str:
    from bblogin.devidp import USERS

    users = ", ".join(f"{u.username} ({u.email or 'no confirmed email'})" for u in USERS.values())
    login = "auto-approved as " + auto_user if auto_user else "you pick a fake Bitbucket user in the browser, then grant access"
    return f"""bblogin dev IdP — a development double of dex with the bitbucket-cloud connector, NOT a real identity provider

  issuer      {issuer}
  clients     bblogin (public), bblogin-ci (secret bblogin-ci-secret, token exchange)
  users       {users}
  logins      {login}
  pipelines   {pipelines_issuer} (connector bitbucket-pipelines)

Log in against it:

  bblogin login --profile dev --issuer {issuer} --client-id bblogin --connector-id bitbucket-cloud

or add this to config.toml:

  [profiles.dev]
  issuer = "{issuer}"
  client_id = "bblogin"
  connector_id = "bitbucket-cloud"

Ctrl-C stops it."""
