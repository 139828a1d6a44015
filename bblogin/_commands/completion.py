"""`bblogin completion bash|zsh|fish`: print the shell completion script (the gh/kubectl convention).

    source <(bblogin completion bash)                   # bash: in ~/.bashrc
    eval "$(bblogin completion zsh)"                    # zsh: in ~/.zshrc, after compinit (or a file _bblogin on $fpath)
    bblogin completion fish > ~/.config/fish/completions/bblogin.fish
"""

from __future__ import annotations

import argparse
import sys

from bblogin._completion import script


def run(args: argparse.Namespace) -> int:
    sys.stdout.write(script(args.shell))
    return 0
