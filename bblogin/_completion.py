"""Shell completion scripts, generated from the one argparse parser (``_cli.build_parser``).

`bblogin completion bash|zsh|fish` prints them; tools/generate.py writes the same text to
completions/ (checked in, and installed with the wheel under share/). bash and zsh come from
shtab; fish from the parser's actions here (shtab has no fish). Profile names complete through
`bblogin profiles`.
"""

from __future__ import annotations

import argparse

from bblogin._cli import PROFILE_COMPLETION, PROG, build_parser

SHELLS = ("bash", "zsh", "fish")

PREAMBLE = {
    "bash": """
_bblogin_profiles() {
  compgen -W "$(bblogin profiles 2>/dev/null | cut -f1)" -- "$1"
}
""",
    "zsh": """
_bblogin_profiles() {
  local -a profiles
  profiles=(${(f)"$(bblogin profiles 2>/dev/null | tr '\t' :)"})
  _describe 'profile' profiles
}
""",
}


def _fish(parser: argparse.ArgumentParser) -> str:
    out = [f"# fish completion for {PROG} (generated from its parser: `bblogin completion fish`)", f"complete -c {PROG} -f"]
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))

    def options(condition: str, p: argparse.ArgumentParser) -> None:
        for action in p._actions:
            longs = [o[2:] for o in action.option_strings if o.startswith("--")]
            if not longs or action.help == argparse.SUPPRESS:
                continue
            line = f"complete -c {PROG} -n '{condition}' -l {longs[0]}"
            shorts = [o[1:] for o in action.option_strings if len(o) == 2]
            if shorts:
                line += f" -s {shorts[0]}"
            if getattr(action, "complete", None) == PROFILE_COMPLETION:
                line += f" -x -a '({PROG} profiles 2>/dev/null)'"
            elif action.choices:
                line += " -x -a '" + " ".join(map(str, action.choices)) + "'"
            elif action.nargs != 0 and action.metavar:
                line += " -r"
            out.append(line + " -d " + repr((action.help or "").replace("%(prog)s", PROG)))

    options("__fish_use_subcommand", parser)
    for name, p in sub.choices.items():
        out.append(f"complete -c {PROG} -n '__fish_use_subcommand' -a {name} -d {repr(p.description or '')}")
        positional = [a for a in p._actions if not a.option_strings and a.choices and not isinstance(a, argparse._SubParsersAction)]
        for action in positional:
            out.append(f"complete -c {PROG} -n '__fish_seen_subcommand_from {name}' -x -a '" + " ".join(map(str, action.choices)) + "'")
        nested = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        for action in nested:
            for target, tp in action.choices.items():
                out.append(f"complete -c {PROG} -n '__fish_seen_subcommand_from {name}' -a {target} -d {repr(tp.description or '')}")
                options(f"__fish_seen_subcommand_from {target}", tp)
        options(f"__fish_seen_subcommand_from {name}", p)
    return "\n".join(out) + "\n"


def script(shell: str) -> str:
    """The completion script for ``shell`` (one of SHELLS)."""
    parser = build_parser()
    if shell == "fish":
        return _fish(parser)
    import shtab

    return shtab.complete(parser, shell=shell, preamble=PREAMBLE[shell])
