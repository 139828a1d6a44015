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


QUOTED_IN = ("troubleshooting.md", "exit-codes.md", "git.md", "kubectl.md", "pipelines.md")
# Double-quoted text in troubleshooting.md that is another program's (or not an error message):
# everything else double-quoted there must be a message bblogin prints.
NOT_BBLOGINS = {
    "Invalid redirect_uri": "Bitbucket's authorization page",
    "this integration is misconfigured": "Bitbucket's authorization page",
    "Authentication failed": "git",
    "a bug in bblogin": "the exit-code table's words for exit 1",
    "this machine's clock is 3 min 12 s behind the IdP's; bblogin compensates": "an example of `bblogin status`'s clock line, with values",
}


def _prose(text: str) -> str:
    """``text`` with fenced blocks and code spans blanked out (same length: offsets stay)."""
    text = re.sub(r"```.*?```", lambda m: " " * len(m[0]), text, flags=re.S)
    return re.sub(r"`[^`\n]*`", lambda m: " " * len(m[0]), text)


def quotes_in(text: str, *, double_quoted: bool) -> list[tuple[str, int | None]]:
    """The messages ``text`` quotes, each with the exit code it states: code spans that start with
    `bblogin: ` (what bblogin prints first on stderr; … standing for what varies) and, with
    ``double_quoted``, "…" in the prose. The exit code is the nearest "(exit N)" after the quote in
    its paragraph, else the nearest one before it (a heading's "(exit 5)" over a list of messages)."""
    found = [(m.start(), m[1]) for m in re.finditer(r"`bblogin: ([^`]+)`", text)]
    if double_quoted:
        found += [(m.start(), m[1]) for m in re.finditer(r'"([^"\n]+)"', _prose(text)) if " " in m[1] and m[1] not in NOT_BBLOGINS]
    out = []
    for at, quote in sorted(found):
        start = text.rfind("\n\n", 0, at) + 1
        end = text.find("\n\n", at) % (len(text) + 1)
        after = re.search(r"\(exit (\d+)\)", text[at:end])
        before = re.findall(r"\(exit (\d+)\)", text[start:at])
        stated = after[1] if after else before[-1] if before else None
        out.append((quote, None if stated is None else int(stated)))
    return out


def quoted_messages() -> list[tuple[str, str, int | None]]:
    return [(name, quote, code) for name in QUOTED_IN for quote, code in quotes_in((ROOT / "docs" / name).read_text(), double_quoted=name == "troubleshooting.md")]


QUOTED = quoted_messages()


def test_the_docs_quote_messages() -> None:
    assert len([1 for name, _, _ in QUOTED if name == "troubleshooting.md"]) >= 10


def quote_problem(quote: str, stated: int | None) -> str | None:
    """Why the docs may not quote ``quote`` with the exit code ``stated``; None when they may."""
    from tests.tools import code_messages

    found = code_messages.match(quote)
    if not found:
        return "no message of bblogin reads so (one string of the code: its constant text as it is, … for what the quote leaves out)"
    codes = {m.exit_code for m in found if m.exit_code is not None}
    if stated is not None and codes and stated not in codes:
        return f"it says exit {stated}, but bblogin exits {' or '.join(map(str, sorted(codes)))} with it ({', '.join(sorted({f'{m.error} at {m.where}' for m in found if m.error}))})"
    return None


@pytest.mark.parametrize(("doc", "message", "stated"), QUOTED, ids=[f"{d}:{m[:50]}" for d, m, _ in QUOTED])
def test_a_quoted_message_is_one_the_code_prints(doc: str, message: str, stated: int | None) -> None:
    """Searching troubleshooting.md for the error you got must find it: every quoted message is
    one message string of bblogin (tests/tools/code_messages.py), and the exit code the docs give
    with it is the one its exception carries."""
    problem = quote_problem(message, stated)
    shown = f"`bblogin: {message}`" if f"`bblogin: {message}`" in (ROOT / "docs" / doc).read_text() else f'"{message}" (if that is not bblogin\'s, list it in NOT_BBLOGINS)'
    assert problem is None, f"{doc} quotes {shown}" + (f" (exit {stated})" if stated is not None else "") + f": {problem}"


@pytest.mark.parametrize(
    "quote",
    [
        "TLS verification failed",  # the stale quote issue #29 found in troubleshooting.md
        "the ID token's issuer is not …",  # troubleshooting.md's text before #29
        "bananas are blue",
        "the keyring exploded",
        "the login for … (…) has endd: the identity provider refused the refresh token",  # one typo
        "the keyring is locked: the identity provider refused the refresh token",  # two real messages glued
        "the ID token failed verification: bananas are blue",  # a real message, a made-up check
        "the proxy … requires authentication (HTTP 407) for the connection to …",  # skips " (from …)" without a …
    ],
)
def test_a_made_up_quote_is_refused_at_once(quote: str) -> None:
    """The matcher never glues pieces of unrelated strings, and says no quickly (the first
    version accepted all of these, and took minutes to refuse some typos)."""
    import time

    started = time.perf_counter()
    assert quote_problem(quote, None) is not None
    assert time.perf_counter() - started < 0.5


def test_a_wrong_exit_code_next_to_a_quote_is_refused() -> None:
    text = "**`bblogin: the keyring is locked (…)` (exit 5).**\nUnlock it.\n\n**Corporate network (exit 6).**\n- `bblogin: cannot connect to the proxy … (from …): … (on the way to …)`: fix it.\n"
    [(locked, five), (proxy, six)] = quotes_in(text, double_quoted=True)
    assert (five, six) == (5, 6)
    assert "bblogin exits 6" in (quote_problem(locked, five) or "")
    assert "bblogin exits 5" in (quote_problem(proxy, six) or "")
    assert quote_problem(locked, 6) is None and quote_problem(proxy, 5) is None


def test_double_quoted_messages_are_checked_too() -> None:
    text = 'Corporate network (exit 5).\n- "the TLS check went wrong": install the CA.\n- "Invalid redirect_uri" is Bitbucket\'s.\n'
    assert quotes_in(text, double_quoted=True) == [("the TLS check went wrong", 5)]


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
