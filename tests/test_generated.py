"""The completions and the man page are generated from the one parser, checked in, and work."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from bblogin import _config, _errors

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
        _config.save_profile(_config.Profile(name=name, issuer="https://dex.example.com/dex", client_id="bblogin"))
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
        pytest.fail("groff is not installed: .ci/run installs groff-base")
    done = subprocess.run([groff, "-ww", "-z", "-man", str(page)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    rendered = subprocess.run([groff, "-man", "-Tutf8", "-P-bcou", str(page)], capture_output=True, text=True, timeout=30).stdout
    for section in ("SYNOPSIS", "FILES", "ENVIRONMENT", "EXIT STATUS", "EXAMPLES"):
        assert section in rendered
    codes = {getattr(_errors, n) for n in dir(_errors) if n.startswith("EXIT_")}
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
