"""Every `bblogin …` command shown in README.md and docs/ parses with the real parser, and the
side-effect-free ones run for real in an isolated home."""

from __future__ import annotations

import json
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
                    part = part.split(">")[0].strip().removesuffix("&").strip()  # `cmd &`: in the background
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


def runnable_blocks(doc: pathlib.Path) -> list[str]:
    """The shell blocks marked `<!-- runnable -->` (on the line before the fence): a newcomer
    types them as they are, so the tests run them as they are."""
    lines, blocks = doc.read_text().splitlines(), []
    for i, line in enumerate(lines):
        if line.strip() == "<!-- runnable -->":
            assert lines[i + 1].strip() in ("```sh", "```bash"), f"{doc.name}:{i + 2}: a runnable marker must stand right before a shell block"
            end = lines.index("```", i + 2)
            blocks.append("\n".join(lines[i + 2 : end]))
    return blocks


def test_getting_started_runs_as_written_in_a_fresh_home(keyring_secret_service, tmp_path: pathlib.Path) -> None:
    """The runnable blocks of getting-started.md, in order, in one shell, in an empty HOME with
    nothing but bblogin on PATH and a Secret Service: what a newcomer meets, literally."""
    blocks = runnable_blocks(ROOT / "docs" / "getting-started.md")
    assert len(blocks) >= 2
    home = tmp_path / "newcomer"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BBLOGIN_", "XDG_", "KUBECONFIG", "GIT_"))}
    env.update(HOME=str(home), PATH=f"{pathlib.Path(sys.executable).parent}:/usr/bin:/bin", BROWSER="false")
    script = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + "\n".join(blocks)
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=240, env=env, stdin=subprocess.DEVNULL, cwd=home)
    assert done.returncode == 0, f"a getting-started.md block failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
    out = done.stdout
    assert "alice@example.com" in out and "bob@example.com" in out  # `accounts` lists both
    [token] = [json.loads(line) for line in out.splitlines() if line.startswith('{"token"')]  # `token --json`, after `use alice`
    from bblogin._claims import unverified_claims

    assert (unverified_claims(token["token"]) or {})["email"] == "alice@example.com"
    assert keyring_secret_service.bblogin_items() == []  # `logout --all` left nothing behind
    assert (home / ".config" / "bblogin" / "config.toml").is_file()  # the XDG defaults of a fresh home, not the test's dirs


def code_messages() -> list[str]:
    """Every string bblogin's code holds, as it would print it: an f-string's replacement fields
    become NUL (a quoted message writes … there), implicit and `+` concatenations joined."""
    import ast

    def text(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.JoinedStr):
            # {x!r} of a string prints it in quotes: what the docs quote as '…'
            return "".join(v.value if isinstance(v, ast.Constant) else "'\0'" if getattr(v, "conversion", -1) == ord("r") else "\0" for v in node.values)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = text(node.left), text(node.right)
            return None if left is None or right is None else left + right
        return None

    found = []
    for path in (ROOT / "bblogin").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            value = text(node)
            if value:
                found.append(value)
    return found


QUOTED_IN = ("troubleshooting.md", "exit-codes.md", "git.md", "kubectl.md", "pipelines.md")


def quoted_messages() -> list[tuple[str, str]]:
    """bblogin's messages as the docs quote them: code spans that start with `bblogin: ` (what
    bblogin prints first on stderr), … standing for what varies."""
    return [(name, m) for name in QUOTED_IN for m in re.findall(r"`(bblogin: [^`]+)`", (ROOT / "docs" / name).read_text())]


QUOTED = quoted_messages()


def test_the_docs_quote_messages() -> None:
    assert len([1 for name, _ in QUOTED if name == "troubleshooting.md"]) >= 6


@pytest.mark.parametrize(("doc", "message"), QUOTED, ids=[f"{d}:{m[9:60]}" for d, m in QUOTED])
def test_a_quoted_message_is_one_the_code_prints(doc: str, message: str) -> None:
    """Searching troubleshooting.md for the error you got must find it: every literal piece of a
    quoted message (between the …s) stands in one of the code's strings, never across a value."""
    body = message.removeprefix("bblogin: ")
    for piece in filter(None, (p.strip() for p in body.split("…"))):
        assert printable(piece), f"{doc} quotes `{message}`, but no string in bblogin/ holds {piece!r}"


CODE_MESSAGES = code_messages()


def printable(piece: str, *, at_start: bool = False) -> bool:
    """Whether the code can print ``piece``: inside one string, or a string's end (or the text
    before one of its values) followed by what another string starts with — a message built in
    two places (`the ID token failed verification: {check}` with the check's own text)."""
    for m in CODE_MESSAGES:
        if (m.startswith(piece) if at_start else piece in m):
            return True
    for k in range(1, len(piece)):
        head, tail = piece[:k], piece[k:]
        if any((m.startswith(head + "\0") or m == head) if at_start else (head + "\0" in m or m.endswith(head)) for m in CODE_MESSAGES):
            if printable(tail, at_start=True):
                return True
    return False


def dex_configs() -> list[tuple[str, dict]]:
    from ruamel.yaml import YAML

    found = []
    for doc in DOCS:
        text = doc.read_text()
        for block in re.findall(r"```yaml\n(.*?)```", text, re.S):
            data = YAML(typ="safe").load(block)
            if isinstance(data, dict) and ("staticClients" in data or "connectors" in data):
                found.append((doc.name, data))
    return found


def test_dex_snippets_use_env_variables_where_dex_expands_them() -> None:
    """dex (cmd/dex serve) expands `$VAR` in connector `config:` values, never in a static
    client's `secret` or `id`: those take `secretEnv`/`idEnv` (shared/dex-facts.md). pipelines.md
    had `secret: $BBLOGIN_CI_SECRET`, which makes the literal string the secret."""
    configs = dex_configs()
    assert len(configs) >= 3  # README.md, dex.md, pipelines.md
    for doc, config in configs:
        for client in config.get("staticClients") or []:
            for key in ("id", "secret"):
                value = client.get(key)
                assert not (isinstance(value, str) and value.startswith("$")), f"{doc}: staticClients[].{key}: {value} is not expanded by dex; use {key}Env"
            assert not ("secret" in client and "secretEnv" in client), f"{doc}: secret and secretEnv are exclusive"
            assert client.get("public") or "secret" in client or "secretEnv" in client, f"{doc}: a non-public client needs secret or secretEnv"
        for connector in config.get("connectors") or []:
            assert {"type", "id", "name", "config"} <= set(connector), f"{doc}: connector {connector.get('id')} lacks type/id/name/config"
