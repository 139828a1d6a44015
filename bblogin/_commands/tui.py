"""`bblogin tui` (and `bblogin` alone on a terminal): the Textual account switcher."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from bblogin.tui.app import AccountsApp

    AccountsApp().run()
    return 0
