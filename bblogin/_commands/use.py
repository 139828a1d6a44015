"""`bblogin use ACCOUNT`: make an account the active one for a profile (with --profile), or for
every profile that has a login of it."""

from __future__ import annotations

import argparse

from bblogin import _gcpfiles, _index
from bblogin._commands._common import say


def run(args: argparse.Namespace) -> int:
    with _index.transaction() as index:
        sets = index.find_all(args.account, args.profile)
        names = [args.profile] if args.profile else sorted({p for a in sets for p in a.profiles})
        for account in sets:
            for name in names:
                if name in account.profiles:
                    index.active[name] = account.id
    _gcpfiles.reconcile()  # the previous account's Google output files go
    label = sets[0].label
    say(f"{label} is now the active account of {'profile' if len(names) == 1 else 'profiles'} {', '.join(names)}.")
    return 0
