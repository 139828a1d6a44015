"""`bblogin use ACCOUNT`: make an account the active one for its profile."""

from __future__ import annotations

import argparse

from bblogin import _gcpfiles, _index
from bblogin._commands._common import say


def run(args: argparse.Namespace) -> int:
    with _index.transaction() as index:
        account = index.find(args.account, args.profile)
        index.active[account.profile] = account.id
    _gcpfiles.reconcile()  # the previous account's Google output files go
    say(f"{account.label} is now the active account of profile {account.profile}.")
    return 0
