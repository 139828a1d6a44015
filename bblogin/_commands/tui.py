"""`bblogin tui` (and `bblogin` alone on a terminal): the Textual account switcher."""

from __future__ import annotations

import argparse
import sys

from bblogin._errors import UsageError


def run(args: argparse.Namespace) -> int:
    # Without a terminal Textual would start, draw into a pipe and wait for keys that never come.
    # a closed stdin or stdout (`<&-`) is None in Python: no terminal either
    if not all(stream is not None and stream.isatty() for stream in (sys.stdin, sys.stdout)):
        raise UsageError(
            "the account switcher needs a terminal (stdin and stdout are not one)",
            hint="run it in a terminal; in scripts use `bblogin status`, `bblogin accounts` or `bblogin use ACCOUNT`",
        )
    from bblogin.tui.app import AccountsApp

    AccountsApp().run()
    return 0
