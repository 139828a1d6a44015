"""`bblogin exchange`: trade the CI step's identity token for IdP tokens, store them, print one."""

from __future__ import annotations

import argparse
import json
import sys

from bblogin._commands._common import load_config
from bblogin._exchange import exchange, subject_token
from bblogin._session import save_login
from bblogin._timefmt import rfc3339


def run(args: argparse.Namespace) -> int:
    profile = load_config().profile(args.profile)
    subject = subject_token(args.from_env)
    tokens, identity = exchange(profile, subject)
    account = save_login(profile, tokens, identity, subject=subject)
    token = tokens.access_token
    # the IdP's exp, handed out on this machine's clock (the step's script compares it with this clock), as `token --json`
    expires_at = tokens.id_expires_at - account.idp_clock.offset if tokens.id_expires_at else 0
    if args.json:
        sys.stdout.write(json.dumps({"token": token, "expires_at": expires_at, "expiration": rfc3339(expires_at), "account": account.id, "sub": identity.sub}) + "\n")
    else:
        sys.stdout.write(token + "\n")
    return 0
