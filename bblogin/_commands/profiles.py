"""`bblogin profiles`: profile names, one per line (shell completion reads this)."""

from __future__ import annotations

import argparse

from bblogin._commands._common import load_config


def run(args: argparse.Namespace) -> int:
    for name in sorted(load_config(compile=False).profiles):
        print(name)
    return 0
