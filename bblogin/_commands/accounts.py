"""`bblogin accounts`: every account, grouped by the profiles that use it, the active one marked."""

from __future__ import annotations

import argparse
import json
import sys
from itertools import groupby

from bblogin import _index
from bblogin._commands._common import load_config
from bblogin._commands._views import describe, memberships


def run(args: argparse.Namespace) -> int:
    config = load_config(compile=False)
    index = _index.load()
    views = [describe(a, config, index, name) for name, a in memberships(index)]
    orphans = [a for a in index.accounts.values() if not a.profiles]  # e.g. a version 1 record that named no profile
    if args.json:
        unused = [{"id": a.identity, "token_set": a.id, "email": a.email, "issuer": a.issuer} for a in orphans]
        sys.stdout.write(json.dumps({"accounts": views, "used_by_no_profile": unused}, indent=2) + "\n")
        return 0
    if not views and not orphans:
        print("No accounts yet. Run `bblogin login --profile NAME`.")
    for profile, members in groupby(views, key=lambda v: v["profile"]):
        print(f"{profile}:")
        for v in members:
            mark = "*" if v["active"] else " "
            plain = "  [plaintext]" if v["plaintext"] else ""
            shared = f"  (same tokens as {', '.join(v['shared_with'])})" if v["shared_with"] else ""
            print(f"  {mark} {v['id']}  {v['email'] or v['username'] or v['sub']:32}  {v['state']}{plain}{shared}")
    if orphans:
        print("used by no profile (served to nobody):")
        for a in orphans:
            print(f"    {a.identity}  {a.label:32}  `bblogin logout {a.id}` deletes it")
    return 0
