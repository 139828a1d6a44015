"""Generate the shell completions and the man page from the one argparse parser.

    python tools/generate.py          # write completions/ and man/
    python tools/generate.py --check  # exit 1 if a checked-in file is stale (the tests run this)

The completions are what `bblogin completion SHELL` prints (bblogin/_completion.py). The man page
comes from argparse-manpage plus the hand-written sections below. The exit-code tables of
README.md and docs/exit-codes.md and the man page's EXIT STATUS all come from EXIT_CODES in
bblogin/_errors.py, so none can drift.
"""

from __future__ import annotations

import os
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bblogin import __version__, _completion, _errors  # noqa: E402
from bblogin._cli import QUICK_COMMANDS, _helper_parser, _parser_for, build_parser  # noqa: E402

SECTIONS = r"""
.SH FILES
.TP
.I $XDG_CONFIG_HOME/bblogin/config.toml
Profiles ([profiles.NAME]) and git hosts ([git."URL"]). Written 0600.
.TP
.I $XDG_STATE_HOME/bblogin/accounts.json
The account index: who, which IdP, groups, token expiries. No secrets.
.TP
.I $XDG_STATE_HOME/bblogin/plaintext/
Token files, only with \-\-insecure\-storage or storage = "plaintext" (0600).
.TP
.I $XDG_STATE_HOME/bblogin/locks/
Per\-account locks (released by the kernel when their holder dies).
.TP
.I $XDG_CACHE_HOME/bblogin/
Discovery and JWKS caches, and the hot path's mirrors of the config and the index.
.PP
Tokens themselves live in the OS keyring, service \fBbblogin\fR.
.SH ENVIRONMENT
.TP
.B BBLOGIN_CONFIG_DIR, BBLOGIN_STATE_DIR, BBLOGIN_CACHE_DIR, BBLOGIN_CONFIG
Move the configuration, state and cache directories, or the config file.
.TP
.B BBLOGIN_KEYRING_TIMEOUT
Seconds any keyring call may take (default 5).
.TP
.B BBLOGIN_NO_FAST_PATH
Skip the cached\-token fast path (debugging).
.TP
.B KUBERNETES_EXEC_INFO
Set by kubectl: the ExecCredential apiVersion to answer in and whether the session is interactive.
.TP
.B BITBUCKET_STEP_OIDC_TOKEN
Set by Bitbucket Pipelines (oidc: true): the token bblogin exchange and bblogin aws use.
.TP
.B BROWSER
The browser to open for the loopback login.
.TP
.B PYTHON_KEYRING_BACKEND
Choose the keyring backend (see the keyring library).
.TP
.B NO_COLOR
No colours in the TUI.
.SH EXAMPLES
.nf
bblogin login \-\-profile work \-\-issuer https://dex.example.com/dex \e
    \-\-client\-id bblogin \-\-connector\-id bitbucket\-cloud \-\-default
bblogin setup kubectl \-\-profile work \-\-context prod \-\-cluster prod
bblogin setup git \-\-host https://bitbucket.org \-\-profile cloud
bblogin status
bblogin tui
.fi
.SH SEE ALSO
kubectl(1), git\-credential(1), gitcredentials(7)
"""


def _man_layout(lines: list[str]) -> list[str]:
    """Keep argparse's line breaks in usage blocks (.nf: groff would refill them and break
    options apart), call the subcommands COMMANDS, and drop COMMENTS: it is the --help epilog,
    which sends you to this page."""
    out: list[str] = []
    skipping = in_usage = False
    for line in lines:
        if line == "POSITIONAL ARGUMENTS" and out[-1:] == [".SH"]:
            out[-1] = ".SH COMMANDS"
            continue
        if line.startswith(".SH "):
            skipping = line == ".SH COMMENTS"
        if skipping:
            continue
        if line.startswith("usage: "):
            out.append(".nf")
            in_usage = True
        elif in_usage and not line.startswith(" "):
            out.append(".fi")
            in_usage = False
        out.append(line)
    return out


# argparse wraps usage lines at COLUMNS - 2: with the man page's 7-column indent they fit 80.
MAN_USAGE_COLUMNS = 72


def man_page() -> str:
    from argparse_manpage.manpage import Manpage

    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(MAN_USAGE_COLUMNS)  # also: the same page whatever terminal runs this
    try:
        body = str(Manpage(build_parser(), _data={"prog": "bblogin", "description": "log in with your Bitbucket identity and serve the tokens to kubectl, git and people"}))
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    lines = _man_layout(body.splitlines())
    lines[0] = f'.TH BBLOGIN "1" "" "bblogin {__version__}" "User Commands"'  # no date: stable output
    exits = [".SH EXIT STATUS"]
    for code, _name, meaning, action in _errors.EXIT_CODES:
        exits += [".TP", f".B {code}", _troff(meaning + (f": {action}" if action else ""))]
    return "\n".join(lines) + "\n" + SECTIONS.lstrip("\n") + "\n".join(exits) + "\n"


def _troff(text: str) -> str:
    """Markdown-ish table text as man page text: no backticks, ASCII hyphens and quotes escaped."""
    text = text.replace("`", "").replace("…", "...").replace("\\", "\\e").replace("-", "\\-")
    return re.sub(r'"([^"]*)"', r"\\(lq\1\\(rq", text)


def exit_code_table(*, with_actions: bool) -> str:
    """The Markdown table of EXIT_CODES: code and meaning (README.md), plus name and what to do
    (docs/exit-codes.md)."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    if with_actions:
        rows = ["| code | name | meaning | what to do |", "| --- | --- | --- | --- |"]
        rows += [f"| {code} | {name} | {cell(meaning)} | {cell(action)} |" for code, name, meaning, action in _errors.EXIT_CODES]
    else:
        rows = ["| code | meaning |", "| --- | --- |"]
        rows += [f"| {code} | {cell(meaning)} |" for code, _name, meaning, _action in _errors.EXIT_CODES]
    return "\n".join(rows) + "\n"


def _with_block(path: pathlib.Path, name: str, block: str) -> str:
    """``path``'s text with what stands between <!-- name --> and <!-- /name --> replaced."""
    text = path.read_text()
    begin, end = f"<!-- {name} -->\n", f"<!-- /{name} -->"
    head, found, rest = text.partition(begin)
    if not found or end not in rest:
        raise SystemExit(f"{path.relative_to(ROOT)}: no {begin.strip()} … {end} block to fill")
    return head + begin + block + end + rest.split(end, 1)[1]


def helper_args() -> str:
    """bblogin/_helperargs.py: argparse's namespace for the commands kubectl and git run on every
    call, with no option given (as `bblogin CMD` and as the helper program), and each option's
    dest — what ``_cli._quick_args`` needs to build the same namespace without argparse."""
    import argparse
    import pprint

    namespaces, options = {}, {}
    for command, (helper, given) in QUICK_COMMANDS.items():
        for prog in (None, helper):
            parser = _parser_for([command, *given]) if prog is None else _helper_parser(command, prog)
            args, _ = parser.parse_known_args([command, *given] if prog is None else given)
            namespaces[f"{command} {prog or ''}".strip()] = {k: v for k, v in sorted(vars(args).items()) if k != "_parser"}
        sub = _helper_parser(command, helper)
        options[command] = {o: a.dest for a in sub._actions if not isinstance(a, (argparse._HelpAction, argparse._VersionAction)) for o in a.option_strings if o.startswith("--")}
    return (
        '"""Generated by tools/generate.py from the parser (``_cli.build_parser``); do not edit.\n\n'
        "argparse's namespace for the commands kubectl and git run on every call, as `bblogin COMMAND`\n"
        'and as the helper program, and the dest of each long option: ``_cli._quick_args`` builds\n'
        'the same namespace from these without importing argparse."""\n\n'
        f"NAMESPACES = {pprint.pformat(namespaces, width=100, sort_dicts=False)}\n\n"
        f"OPTIONS = {pprint.pformat(options, width=100, sort_dicts=False)}\n"
    )


def outputs() -> dict[pathlib.Path, str]:
    return {
        ROOT / "bblogin" / "_helperargs.py": helper_args(),
        ROOT / "README.md": _with_block(ROOT / "README.md", "exit-codes", exit_code_table(with_actions=False)),
        ROOT / "docs" / "exit-codes.md": _with_block(ROOT / "docs" / "exit-codes.md", "exit-codes", exit_code_table(with_actions=True)),
        ROOT / "completions" / "bblogin.bash": _completion.script("bash"),
        ROOT / "completions" / "_bblogin": _completion.script("zsh"),
        ROOT / "completions" / "bblogin.fish": _completion.script("fish"),
        ROOT / "man" / "bblogin.1": man_page(),
    }


def main() -> int:
    check = "--check" in sys.argv[1:]
    stale = []
    for path, text in outputs().items():
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path.relative_to(ROOT))
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if check and stale:
        print("stale (run python tools/generate.py): " + ", ".join(map(str, stale)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
