"""`bblogin login`: run a login now and make the account active for its profile."""

from __future__ import annotations

import argparse

from bblogin._commands._common import load_config, profile_from_args, save_profile_from_args, say
from bblogin._login import LoginOptions
from bblogin._session import login_now
from bblogin._store import SecretStore


def run(args: argparse.Namespace) -> int:
    profile = profile_from_args(args, load_config(), saving=True)
    options = LoginOptions(flow=args.flow, open_browser=not args.no_browser, listen_port=args.listen, timeout=args.timeout)
    store = SecretStore(profile.storage)
    store.check()  # before the browser: a sign-in whose tokens cannot be stored is wasted
    account = login_now(profile, options)
    save_profile_from_args(args, profile)
    say(f"Logged in as {account.label} (profile {profile.name}); tokens stored in {store.backend_description()}.")
    if store.is_plaintext:
        say("warning: the tokens are in a PLAINTEXT file, readable by anything running as you.")
    return 0
