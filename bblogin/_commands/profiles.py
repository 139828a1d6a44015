"""`bblogin profiles`: profile names, one per line (shell completion reads this).

config.toml's profiles, then the ad-hoc ones kubeconfig flags described (``_adhoc``) that
config.toml does not override, each followed by a tab and what it is: ``adhoc-…<TAB>ad hoc:
ISSUER, client ID``. The name is everything before the tab (``cut -f1``); fish and zsh show the
rest as the completion's description.
"""

from __future__ import annotations

import argparse

from bblogin._commands._common import load_config


def run(args: argparse.Namespace) -> int:
    config = load_config(compile=False)
    for name in sorted(config.profiles):
        print(name)
    for name, profile in sorted(config.adhoc.items()):
        if name not in config.profiles:
            print(f"{name}\tad hoc: {profile.issuer}, client {profile.client_id}")
    return 0
