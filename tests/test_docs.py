"""Every `bblogin …` command shown in README.md and docs/ parses with the real parser, and the
side-effect-free ones run for real in an isolated home."""

from __future__ import annotations

import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

from bblogin import _cli, _config, _configedit

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_FENCES = ("```sh", "```bash", "```console", "```yaml")  # yaml: Pipelines `script:` steps


def shell_blocks(text: str) -> list[str]:
    """The contents of fenced shell blocks (```sh / ```bash / ```console)."""
    blocks, current = [], None
    for line in text.splitlines():
        if current is None:
            if line.strip() in SHELL_FENCES:
                current = []
        elif line.strip() == "```":
            blocks.append("\n".join(current))
            current = None
        else:
            current.append(line)
    return blocks


def commands() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        for block in shell_blocks(doc.read_text()):
            text = block.replace("\\\n", " ")
            for line in text.splitlines():
                line = line.split(" #")[0].strip()
                for part in re.split(r"\s*(?:&&|\|\||;|\|)\s*", line):
                    part = part.split(">")[0].strip()
                    if part.startswith("- "):
                        part = part[2:]
                    if part.startswith("bblogin ") or part == "bblogin":
                        found.append((doc.name, part))
    return found


ALL = commands()


def test_docs_show_commands() -> None:
    assert len(ALL) > 20


@pytest.mark.parametrize(("doc", "command"), ALL, ids=[f"{d}:{c[:60]}" for d, c in ALL])
def test_command_parses(doc: str, command: str) -> None:
    parser = _cli.build_parser()
    try:
        parser.parse_args(shlex.split(command)[1:])
    except SystemExit as exc:
        pytest.fail(f"{doc}: `{command}` does not parse (exit {exc.code})")


SAFE = ("status", "accounts", "--help", "--print")


@pytest.mark.parametrize(("doc", "command"), [(d, c) for d, c in ALL if any(s in c.split() for s in SAFE)])
def test_safe_commands_run(doc: str, command: str, tmp_path: pathlib.Path) -> None:
    for name in ("work", "cloud", "dc", "ci"):
        _configedit.save_profile(_config.Profile(name=name, issuer="https://dex.example.com/dex", client_id="bblogin"))
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "kubeconfig"), "HOME": str(tmp_path), "GIT_CONFIG_GLOBAL": str(tmp_path / "gitconfig")}
    done = subprocess.run([sys.executable, "-m", "bblogin", *shlex.split(command)[1:]], capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"{doc}: `{command}`: {done.stderr}"
