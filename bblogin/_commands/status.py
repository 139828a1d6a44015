"""`bblogin status`: who is logged in, where, with which groups, until when, stored where."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from bblogin import _gcpfiles, _index
from bblogin._commands._common import load_config
from bblogin._commands._views import describe
from bblogin._timefmt import describe_expiry


def run(args: argparse.Namespace) -> int:
    config = load_config(compile=False)
    index = _index.load()
    names = [config.profile(args.profile).name] if args.profile else sorted(set(config.profiles) | set(index.active))
    active = [(n, index.active_account(n)) for n in names]
    views = [describe(a, config, index, n) for n, a in active if a is not None]
    files = [_gcp_file_view(f, index) for f in _gcpfiles.listing() if not args.profile or f.profile in (None, names[0])]
    if args.json:
        sys.stdout.write(json.dumps({"accounts": views, "gcp_output_files": files}, indent=2) + "\n")
        return 0
    if not views:
        print("Not logged in. Run `bblogin login --profile NAME` (or `bblogin demo` to try it out).")
    for v in views:
        print(f"{v['profile']}: {v['email'] or v['username'] or v['sub']}" + (f" ({v['name']})" if v["name"] else ""))
        print(f"  identity provider  {v['issuer']} (client {v['client_id']})")
        if v["username"]:
            print(f"  user name          {v['username']}")
        print(f"  groups             {', '.join(v['groups']) or '-'}")
        for kind, info in v["tokens"].items():
            print(f"  {kind.replace('_', ' '):18} {info['expiry']}")
        print(f"  stored in          {v['storage_description']}" + ("  <- PLAINTEXT FILE" if v["plaintext"] else ""))
        if v["shared_with"]:
            print(f"  same tokens as     {', '.join(v['shared_with'])} (they ask for exactly the same)")
        print(f"  state              {v['state']}")
        if v["outage"]:
            print(f"  outage             {v['outage']['note']}")
        if v["clock"]["note"]:
            print(f"  clock              {v['clock']['note']}")
    if files:
        print("Google output files (copies of an identity token that a client library reuses; bblogin removes them on use/logout):")
        for f in files:
            print(f"  {f['path']}  <- PLAINTEXT token copy, {f['token']}, {f['expiry']}")
    return 0


def _gcp_file_view(entry: _gcpfiles.OutputFile, index: _index.Index) -> dict[str, Any]:
    account = index.accounts.get(entry.account or "")
    token = "a Pipelines step token" if entry.account is None else f"profile {entry.profile}'s ID token of {account.label if account else entry.account}"
    return {"path": entry.path, "profile": entry.profile, "account": entry.account, "expires_at": entry.expires_at, "token": token, "expiry": describe_expiry(entry.expires_at, int(time.time())), "plaintext": True}
