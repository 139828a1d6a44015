"""`bblogin refresh`: refresh an account's tokens now and say what changed.

For new groups after a workspace change, or to end the wait after an outage (``_outage``): it
bypasses both the refresh margin and the backoff window, with the full timeout and retries, and
never falls back to the cached token. kubelogin's ``--force-refresh``, ``gh auth refresh``.
"""

from __future__ import annotations

import argparse
import json
import sys

from bblogin import _index
from bblogin._commands._common import account_from_args, load_config, profile_from_args
from bblogin._config import Profile
from bblogin._errors import LoginRequired
from bblogin._index import Account
from bblogin._session import Credential, get_credential, login_command, visible_account
from bblogin._timefmt import describe_expiry


def refresh_now(profile: Profile, account: Account | None, kind: str) -> tuple[Credential, str, dict[str, object]]:
    """Refresh ``account`` (default: the profile's active one): its ``kind`` token, one line
    saying what changed, and the same as JSON."""
    account = account or visible_account(_index.load(), profile)
    if account is None:
        raise LoginRequired(f"no login in profile {profile.name!r} to refresh", hint=f"run `{login_command(profile)}`")
    cred = get_credential(profile, kind=kind, account=account, interactive=False, force_refresh=True)
    after = _index.load().accounts.get(account.id, cred.account)
    return cred, changes(account, after, kind, profile.name), _json(account, after, kind, profile.name)


def changes(before: Account, after: Account, kind: str, profile: str) -> str:
    """``Refreshed alice@… (dev): ID token valid 60 min more (until …), was 3 min; groups +ops −dev``."""
    now = after.idp_now()
    label = kind.replace("_", " ").replace("id ", "ID ")
    expiry = describe_expiry(after.expires_at(kind), now)
    old = before.expires_at(kind)
    was = f" (was {describe_expiry(old, now)})" if old != after.expires_at(kind) else " (unchanged)"
    added = [g for g in after.groups if g not in before.groups]
    removed = [g for g in before.groups if g not in after.groups]
    groups = " ".join([*(f"+{g}" for g in added), *(f"-{g}" for g in removed)]) or "unchanged"
    return f"Refreshed {after.label} ({profile}): {label} {expiry}{was}; groups {groups}"


def _json(before: Account, after: Account, kind: str, profile: str) -> dict[str, object]:
    return {
        "account": after.identity, "profile": profile, "kind": kind,
        "expires_at": after.expires_at(kind), "previous_expires_at": before.expires_at(kind),
        "groups": after.groups, "groups_added": [g for g in after.groups if g not in before.groups],
        "groups_removed": [g for g in before.groups if g not in after.groups],
    }


def run(args: argparse.Namespace) -> int:
    profile = profile_from_args(args, load_config())
    kind = "access_token" if profile.use_access_token else "id_token"
    _cred, line, view = refresh_now(profile, account_from_args(args, profile), kind)
    if args.json:
        sys.stdout.write(json.dumps(view) + "\n")
    else:
        print(line)
    return 0
