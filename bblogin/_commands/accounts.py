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
    if args.json:
        sys.stdout.write(json.dumps({"accounts": views}, indent=2) + "\n")
        return 0
    if not views:
        print("No accounts yet. Run `bblogin login --profile NAME`.")
    for profile, members in groupby(views, key=lambda v: v["profile"]):
        print(f"{profile}:")
        for v in members:
            mark = "*" if v["active"] else " "
            plain = "  [plaintext]" if v["plaintext"] else ""
            shared = f"  (same tokens as {', '.join(v['shared_with'])})" if v["shared_with"] else ""
            print(f"  {mark} {v['id']}  {v['email'] or v['username'] or v['sub']:32}  {v['state']}{plain}{shared}")
    return 0
