"""The completions and the man page are generated from the one parser, checked in, and work."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from bblogin import _config, _configedit, _errors

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_generated_files_are_current() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "generate.py"), "--check"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def complete(words: list[str], env: dict[str, str]) -> list[str]:
    """Run the bash completion for `words` (the last one being completed) in a real bash."""
    script = f"""
source {ROOT / 'completions' / 'bblogin.bash'}
COMP_WORDS=({' '.join(repr(w) for w in words)})
COMP_CWORD={len(words) - 1}
COMP_LINE="{' '.join(words)}"
COMP_POINT=${{#COMP_LINE}}
_shtab_bblogin bblogin "{words[-1]}" "{words[-2]}"
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30, env=env)
    assert done.returncode == 0, done.stderr
    return sorted(line.strip() for line in done.stdout.splitlines() if line.strip())


def test_bash_completes_subcommands_and_profile_names(tmp_path: pathlib.Path) -> None:
    for name in ("work", "weekend", "cloud"):
        _configedit.save_profile(_config.Profile(name=name, issuer="https://dex.example.com/dex", client_id="bblogin"))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "bblogin").write_text(f"#!/bin/sh\nexec {sys.executable} -m bblogin \"$@\"\n")
    (bindir / "bblogin").chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    assert {"login", "logout"} <= set(complete(["bblogin", "lo"], env))
    assert complete(["bblogin", "token", "--profile", "w"], env) == ["weekend", "work"]
    assert "--use-access-token" in complete(["bblogin", "kubectl", "--use"], env)


def test_man_page_renders_without_warnings_and_documents_every_exit_code() -> None:
    page = ROOT / "man" / "bblogin.1"
    groff = shutil.which("groff")
    if groff is None:
        pytest.fail("groff is not installed: scripts/test installs groff-base (scripts/apt-packages)")
    done = subprocess.run([groff, "-ww", "-z", "-man", str(page)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    rendered = subprocess.run([groff, "-man", "-Tutf8", "-P-bcou", str(page)], capture_output=True, text=True, timeout=30).stdout
    for section in ("SYNOPSIS", "FILES", "ENVIRONMENT", "EXIT STATUS", "EXAMPLES"):
        assert section in rendered
    codes = {v for n, v in vars(_errors).items() if n.startswith("EXIT_") and isinstance(v, int)}
    assert codes == {row[0] for row in _errors.EXIT_CODES}  # the one table documents every code
    text = page.read_text()
    exit_docs = (ROOT / "docs" / "exit-codes.md").read_text()
    for code in codes:
        assert f".B {code}\n" in text and f"| {code} |" in exit_docs


@pytest.mark.parametrize(("shell", "name"), [("bash", "bblogin.bash"), ("zsh", "_bblogin"), ("fish", "bblogin.fish")])
def test_completion_command_prints_the_generated_script(shell: str, name: str) -> None:
    done = subprocess.run([sys.executable, "-m", "bblogin", "completion", shell], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (ROOT / "completions" / name).read_text()


def test_bash_completes_from_the_completion_command(tmp_path: pathlib.Path) -> None:
    """`source <(bblogin completion bash)`, as a user's ~/.bashrc would, completes commands."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "bblogin").write_text(f"#!/bin/sh\nexec {sys.executable} -m bblogin \"$@\"\n")
    (bindir / "bblogin").chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    script = 'source <(bblogin completion bash)\nCOMP_WORDS=(bblogin completion "")\nCOMP_CWORD=2\n_shtab_bblogin bblogin "" completion\nprintf "%s\\n" "${COMPREPLY[@]}"\n'
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30, env=env)
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.split()) == ["bash", "fish", "zsh"]


def rendered_page(columns: int) -> list[str]:
    groff = shutil.which("groff")
    assert groff, "groff is not installed: scripts/test installs groff-base"
    done = subprocess.run([groff, "-man", "-Tutf8", f"-rLL={columns}n", "-P-bcou", str(ROOT / "man" / "bblogin.1")], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return [line.expandtabs() for line in done.stdout.splitlines()]


def test_man_page_usage_lines_keep_their_breaks_at_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each command's usage reads as argparse wrote it (whole options per line), and no line of the
    page is wider than 80 columns."""
    import argparse

    from bblogin._cli import build_parser

    page = rendered_page(80)
    assert max(len(line) for line in page) <= 80, [line for line in page if len(line) > 80]
    monkeypatch.setenv("COLUMNS", "72")  # what tools/generate.py wraps at
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    parsers = [(name, p) for name, p in sub.choices.items()]
    parsers += [(f"setup {n}", p) for a in sub.choices["setup"]._actions if isinstance(a, argparse._SubParsersAction) for n, p in a.choices.items()]
    for name, parser in parsers:
        expected = [line.strip() for line in parser.format_usage().strip().splitlines()]
        start = next(i for i, line in enumerate(page) if line.strip().startswith(f"usage: bblogin {name} "))
        assert [line.strip() for line in page[start : start + len(expected)]] == expected, name
        assert page[start + len(expected)].strip() == ""


def test_man_page_does_not_send_you_to_itself() -> None:
    text = "\n".join(rendered_page(80))
    assert "COMMENTS" not in text and "man bblogin" not in text


def bblogin_on_path(tmp_path: pathlib.Path) -> dict[str, str]:
    """An environment whose `bblogin` is this checkout's, as the completions call it."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    (bindir / "bblogin").write_text(f"#!/bin/sh\nexec {sys.executable} -m bblogin \"$@\"\n")
    (bindir / "bblogin").chmod(0o755)
    return {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp_path)}


def test_fish_completes_commands_choices_and_profile_names(tmp_path: pathlib.Path) -> None:
    fish = shutil.which("fish")
    assert fish, "fish is not installed: scripts/test installs it (scripts/apt-packages)"
    for name in ("work", "weekend"):
        _configedit.save_profile(_config.Profile(name=name, issuer="https://dex.example.com/dex", client_id="bblogin"))

    def complete(line: str) -> list[str]:
        script = f"source (bblogin completion fish | psub); complete -C {line!r}"
        done = subprocess.run([fish, "--no-config", "-c", script], capture_output=True, text=True, timeout=60, env=bblogin_on_path(tmp_path))
        assert done.returncode == 0, done.stderr
        return sorted(line.split("\t")[0] for line in done.stdout.splitlines())

    assert {"login", "logout"} <= set(complete("bblogin lo"))
    assert complete("bblogin completion ") == ["bash", "fish", "zsh"]
    assert complete("bblogin token --profile ") == ["weekend", "work"]
    assert "--use-access-token" in complete("bblogin kubectl --use")


def test_zsh_parses_and_registers_the_completion(tmp_path: pathlib.Path) -> None:
    zsh = shutil.which("zsh")
    assert zsh, "zsh is not installed: scripts/test installs it (scripts/apt-packages)"
    assert subprocess.run([zsh, "-n", str(ROOT / "completions" / "_bblogin")], capture_output=True, timeout=30).returncode == 0
    env = bblogin_on_path(tmp_path)
    functions = tmp_path / "zfunc"
    functions.mkdir()
    (functions / "_bblogin").write_text(subprocess.run(["bblogin", "completion", "zsh"], capture_output=True, text=True, timeout=60, env=env, check=True).stdout)
    ways = {  # as docs/getting-started.md says: a file on $fpath; or eval in ~/.zshrc
        f"fpath=({functions} $fpath); autoload -Uz compinit && compinit -u -d {tmp_path}/dump1": "_bblogin",
        f"autoload -Uz compinit && compinit -u -d {tmp_path}/dump2 && eval \"$(bblogin completion zsh)\"": "_shtab_bblogin",
    }
    for setup, function in ways.items():
        done = subprocess.run([zsh, "-f", "-c", setup + " && print -r -- $_comps[bblogin]"], capture_output=True, text=True, timeout=60, env=env)
        assert done.returncode == 0 and done.stdout.strip() == function, (setup, done.stdout, done.stderr)
