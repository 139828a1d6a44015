"""`bblogin token`: print a valid token for scripts (refreshing, or logging in on a terminal)."""

from __future__ import annotations

import argparse
import json
import sys

from bblogin._commands._common import (
    account_from_args,
    load_config,
    profile_from_args,
)
from bblogin._interactive import Gate
from bblogin._session import get_credential
from bblogin._timefmt import rfc3339


def run(args: argparse.Namespace) -> int:
    profile = profile_from_args(args, load_config())
    kind = args.kind or ("access_token" if profile.use_access_token else "id_token")
    if args.refresh:
        from bblogin._commands.refresh import refresh_now

        cred, line, _view = refresh_now(profile, account_from_args(args, profile), kind)
        print(line, file=sys.stderr)
    else:
        cred = get_credential(profile, kind=kind, account=account_from_args(args, profile), interactive=Gate("cli", no_login=args.no_login))
    if args.json:
        out = {"token": cred.token, "kind": kind, "expires_at": cred.expires_at, "expiration": rfc3339(cred.expires_at), "account": cred.account.identity, "profile": profile.name}
        sys.stdout.write(json.dumps(out) + "\n")
    else:
        sys.stdout.write(cred.token + "\n")
    return 0
