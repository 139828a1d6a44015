"""`bblogin use ACCOUNT`: make an account the active one for a profile (with --profile), or for
every profile that has a login of it.

The account, not one of its token sets, is the choice: kubectl and git are then served that
account's set of the profile's current request shape, or told to log that account in again —
never another account's tokens (``_session.visible_account``)."""

from __future__ import annotations

import argparse

from bblogin import _gcpfiles, _index
from bblogin._commands._common import load_config, say
from bblogin._session import login_command, serves


def run(args: argparse.Namespace) -> int:
    config = load_config()
    stale: list[str] = []
    with _index.transaction() as index:
        sets = index.find_all(args.account, args.profile)
        names = [args.profile] if args.profile else sorted({p for a in sets for p in a.profiles})
        for name in names:
            profile = config.profiles.get(name) or config.adhoc.get(name)
            mine = [a for a in sets if name in a.profiles]
            serving = [a for a in mine if profile is not None and serves(a, profile)]
            if mine:
                index.active[name] = (serving or mine)[0].id
            if not serving and profile is not None:
                stale.append(name)
    _gcpfiles.reconcile()  # the previous account's Google output files go
    label = sets[0].label
    say(f"{label} is now the active account of {'profile' if len(names) == 1 else 'profiles'} {', '.join(names)}.")
    profiles = {n: config.profiles.get(n) or config.adhoc.get(n) for n in stale}
    for name, profile in profiles.items():
        if profile is not None:
            say(f"note: {label}'s login in profile {name} was made for other scopes or parameters than {name} asks for now; run `{login_command(profile)}` to log {label} in again.")
    return 0
