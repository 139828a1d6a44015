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
    say("bblogin dev IdP — a development double of dex with the bitbucket-cloud connector, NOT a real identity provider")
    say(f"issuer:  {idp.issuer}")
    say("clients: bblogin (public), bblogin-ci (secret bblogin-ci-secret)")
    say(f"users:   {', '.join(USERS)}" + (f" (auto-approving {args.user})" if args.auto_approve else ""))
    say(f"\ntry:     bblogin login --profile dev --issuer {idp.issuer} --client-id bblogin --connector-id bitbucket-cloud\n")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        idp.stop()
    return 0
