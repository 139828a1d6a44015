"""`bblogin login`: run a login now and make the account active for its profile."""

from __future__ import annotations

import argparse

from bblogin import _loginresult
from bblogin._commands._common import load_config, profile_from_args, save_profile_from_args, say
from bblogin._lock import account_lock
from bblogin._login import LoginOptions, interactive_login
from bblogin._session import lock_wait, note_waiting, save_login
from bblogin._store import SecretStore


def run(args: argparse.Namespace) -> int:
    profile = profile_from_args(args, load_config())
    options = LoginOptions(flow=args.flow, open_browser=not args.no_browser, listen_port=args.listen, timeout=args.timeout)
    store = SecretStore(profile.storage)
    store.check()  # before the browser: a sign-in whose tokens cannot be stored is wasted
    key = f"profile-{profile.name}"  # one login per profile at a time
    seen = _loginresult.generation(key)
    timeout = lock_wait(profile, True)
    with account_lock(key, timeout, on_wait=note_waiting(profile, timeout)):
        ended = _loginresult.ended_since(key, seen)
        if ended is not None and not ended.ok:
            raise ended.error()  # started while another login for this profile ran, and that one failed: its failure
        with _loginresult.publishing(key):
            tokens, identity = interactive_login(profile, options)
            account = save_login(profile, tokens, identity)
    save_profile_from_args(args, profile)
    say(f"Logged in as {account.label} (profile {profile.name}); tokens stored in {store.backend_description()}.")
    if store.is_plaintext:
        say("warning: the tokens are in a PLAINTEXT file, readable by anything running as you.")
    return 0
