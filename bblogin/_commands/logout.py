"""`bblogin logout [ACCOUNT|--all]`: a profile stops using an account; tokens no profile uses any
more are deleted, revoked where the IdP can.

``logout`` (or ``--profile P``) logs the profile's active account out of that profile only;
``logout ACCOUNT --profile P`` likewise; ``logout ACCOUNT`` logs the account out of every
profile; ``--all`` logs everything out. Profiles that share a token set with the one logging out
(they ask for exactly the same) keep it, and keep working (docs/security.md)."""

from __future__ import annotations

import argparse

from bblogin import _gitconfig, _index
from bblogin._commands._common import load_config, say
from bblogin._config import Config
from bblogin._errors import AccountNotFound, UsageError
from bblogin._index import Account
from bblogin._session import logout, profile_for


def run(args: argparse.Namespace) -> int:
    config = load_config()
    index = _index.load()
    targets: list[tuple[Account, list[str] | None]]  # a token set, and the profiles leaving it (None: all)
    if args.all:
        if args.account:
            raise UsageError("give an ACCOUNT or --all, not both")
        targets = [(a, None) for a in index.accounts.values()]
    elif args.account:
        targets = [(a, [args.profile] if args.profile else None) for a in index.find_all(args.account, args.profile)]
    else:
        name = config.profile(args.profile).name
        active = index.active_account(name)
        if active is None:
            raise AccountNotFound(f"no active account in profile {name!r} to log out", hint="name one: `bblogin accounts` lists them")
        targets = [(active, [name])]
    for account, members in targets:
        leaving = account.profiles if members is None else members
        before = dict(_index.load().active)
        revoked, kept_by = logout(profile_for(account, config, members[0] if members else None), account, members)
        where = f" ({', '.join(leaving)})" if leaving else ""
        if kept_by:
            verbs = ("uses", "stays") if len(kept_by) == 1 else ("use", "stay")
            say(f"Logged out {account.label}{where}; {', '.join(kept_by)} {verbs[0]} the same tokens and {verbs[1]} logged in.")
        else:
            say(f"Logged out {account.label}{where}" + ("; revoked at the identity provider." if revoked else "."))
        told = _gitconfig.reject_account(config, account, leaving)
        if told:
            say(f"Told git to forget {account.label}'s credentials for {', '.join(told)} (git credential reject: store, cache and keychain helpers drop them).")
        _say_who_is_active_now(before, account.id, leaving)
        _forget_adhoc(config, leaving)
    cleaned = _forget_unreadable() if args.all else 0
    if not targets and not cleaned:
        say("No accounts to log out.")
    return 0


def _forget_adhoc(config: Config, profiles: list[str]) -> None:
    """An ad-hoc profile (``_adhoc``) whose last login left is forgotten: `bblogin profiles` and
    completion stop offering it; its kubeconfig entry's next call records it again."""
    from bblogin import _adhoc

    index = _index.load()
    for name in profiles:
        if name in config.adhoc and name not in config.profiles and not index.for_profile(name) and _adhoc.forget(name):
            say(f"Forgot ad-hoc profile {name} (no login left; its kubeconfig entry records it again when it runs).")


def _forget_unreadable() -> int:
    """Records accounts.json keeps but bblogin cannot read (``_index.Index.unreadable``): their
    secrets and the records go, under each one's lock. Only ids bblogin could have written (hex
    digits): any other key names no secret of ours. How many were deleted."""
    from bblogin._lock import account_lock
    from bblogin._store import SecretStore

    done = 0
    for key, raw in _index.load().unreadable.items():
        if not (key.isascii() and key.isalnum()):
            continue
        done += 1
        storage = raw.get("storage") if isinstance(raw, dict) else None
        with account_lock(key, 10.0):
            SecretStore(storage if storage in ("keyring", "plaintext") else "keyring").delete_account(key)
            with _index.transaction() as index:
                index.unreadable.pop(key, None)
        say(f"Deleted the tokens of {key}, a record in accounts.json bblogin could not read.")
    return done


def _say_who_is_active_now(before: dict[str, str], gone: str, profiles: list[str]) -> None:
    """kubectl and git switch to the account that became active where ``gone`` was: say so."""
    after = _index.load()
    for profile, account_id in sorted(before.items()):
        successor = after.active_account(profile) if account_id == gone and profile in profiles else None
        if successor is not None and successor.id != gone:
            say(f"{successor.label} is now the active account of {profile}.")
