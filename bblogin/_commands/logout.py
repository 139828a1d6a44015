"""`bblogin logout [ACCOUNT|--all]`: delete an account's tokens, revoking them where the IdP can."""

from __future__ import annotations

import argparse

from bblogin import _gitconfig, _index
from bblogin._commands._common import load_config, say
from bblogin._errors import AccountNotFound, UsageError
from bblogin._session import logout, profile_for


def run(args: argparse.Namespace) -> int:
    config = load_config()
    index = _index.load()
    if args.all:
        if args.account:
            raise UsageError("give an ACCOUNT or --all, not both")
        targets = list(index.accounts.values())
    elif args.account:
        targets = [index.find(args.account, args.profile)]
    else:
        active = index.active_account(config.profile(args.profile).name)
        if active is None:
            raise AccountNotFound("no active account to log out", hint="name one: `bblogin accounts` lists them")
        targets = [active]
    for account in targets:
        before = dict(_index.load().active)
        revoked = logout(profile_for(account, config), account)
        say(f"Logged out {account.label} ({account.profile})" + ("; revoked at the identity provider." if revoked else "."))
        told = _gitconfig.reject_account(config, account)
        if told:
            say(f"Told git to forget {account.label}'s credentials for {', '.join(told)} (git credential reject: store, cache and keychain helpers drop them).")
        _say_who_is_active_now(before, account.id)
    if not targets:
        say("No accounts to log out.")
    return 0


def _say_who_is_active_now(before: dict[str, str], gone: str) -> None:
    """kubectl and git switch to the account that became active where ``gone`` was: say so."""
    after = _index.load()
    for profile, account_id in sorted(before.items()):
        successor = after.active_account(profile) if account_id == gone else None
        if successor is not None:
            say(f"{successor.label} is now the active account of {profile}.")
