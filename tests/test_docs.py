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
from tests.fixtures.bitbucket_fakes import free_port

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
    for name in ("work", "cloud", "dc", "ci", "dev"):
        _configedit.save_profile(_config.Profile(name=name, issuer="https://dex.example.com/dex", client_id="bblogin"))
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "kubeconfig"), "HOME": str(tmp_path), "GIT_CONFIG_GLOBAL": str(tmp_path / "gitconfig")}
    done = subprocess.run([sys.executable, "-m", "bblogin", *shlex.split(command)[1:]], capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"{doc}: `{command}`: {done.stderr}"


def runnable_blocks(doc: pathlib.Path, kind: str = "") -> list[str]:
    """The shell blocks marked `<!-- runnable -->` (or `<!-- runnable: KIND -->`, run by another
    test) on the line before the fence: a newcomer types them as they are, so the tests run them
    as they are."""
    lines, blocks = doc.read_text().splitlines(), []
    marker = f"<!-- runnable: {kind} -->" if kind else "<!-- runnable -->"
    for i, line in enumerate(lines):
        if line.strip() == marker:
            assert lines[i + 1].strip() in ("```sh", "```bash"), f"{doc.name}:{i + 2}: a runnable marker must stand right before a shell block"
            end = lines.index("```", i + 2)
            blocks.append("\n".join(lines[i + 2 : end]))
    return blocks


DOC_PORT = "5599"  # the dev IdP's port in getting-started.md; the test swaps in a free one


def _bblogin(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bblogin", *args], capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL, cwd=env["HOME"])


@pytest.mark.slow
@pytest.mark.timeout(300)  # two logins and two dev IdP start-ups in subprocesses (about 20 s here)
def test_getting_started_runs_as_written_and_leaves_a_real_setup_alone(keyring_secret_service, devidp_factory, tmp_path: pathlib.Path) -> None:
    """The runnable blocks of getting-started.md, in order, in one shell, with nothing but bblogin
    (and /usr/bin's curl) on PATH and a Secret Service: what a newcomer meets, literally. The home
    already has a `work` login, made as "Log in" shows (a second dev IdP stands in for dex): the
    blocks must leave it, the default profile and config.toml as they were. And alice's token,
    cached before the dev IdP's restart, must verify against the restarted IdP's keys."""
    import jwt

    blocks = runnable_blocks(ROOT / "docs" / "getting-started.md")
    assert len(blocks) >= 3 and all(DOC_PORT in b for b in blocks[:2])
    port = str(free_port())  # 5599 may be taken here: tests run side by side
    blocks = [b.replace(DOC_PORT, port) for b in blocks]
    home = tmp_path / "newcomer"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BBLOGIN_", "XDG_", "KUBECONFIG", "GIT_"))}
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env.update(HOME=str(home), PATH=f"{pathlib.Path(sys.executable).parent}:/usr/bin:/bin", BROWSER="false", TMPDIR=str(scratch))

    work = devidp_factory(default_user="carol")
    login = _bblogin(env, "login", "--profile", "work", "--issuer", work.issuer, "--client-id", "bblogin", "--connector-id", "bitbucket-cloud", "--default", "--flow", "device")
    assert login.returncode == 0, login.stderr
    config = home / ".config" / "bblogin" / "config.toml"
    config_before, keyring_before = config.read_text(), keyring_secret_service.bblogin_items()

    # between the blocks (the test's line, not the page's): the restarted dev IdP's keys, while it runs
    keys = home / "keys-after-restart.json"
    script = "\n".join(["set -euo pipefail", "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT", *blocks[:2], f"curl -sf http://127.0.0.1:{port}/dex/keys > {shlex.quote(str(keys))}", *blocks[2:]])
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=240, env=env, stdin=subprocess.DEVNULL, cwd=home)
    assert done.returncode == 0, f"a getting-started.md block failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
    out = done.stdout
    assert "alice@example.com" in out and "bob@example.com" in out  # `accounts` lists both
    [token] = [json.loads(line)["token"] for line in out.splitlines() if line.startswith('{"token"')]  # `token --json`, after `use alice`
    jwks = jwt.PyJWKSet.from_dict(json.loads(keys.read_text()))
    kid = jwt.get_unverified_header(token)["kid"]
    assert kid in {k.key_id for k in jwks.keys}, "the restarted dev IdP no longer has the key that signed alice's token: its keys did not persist"
    claims = jwt.decode(token, key=jwks[kid], algorithms=["RS256", "ES256"], audience="bblogin", issuer=f"http://127.0.0.1:{port}/dex")
    assert claims["email"] == "alice@example.com"

    # the real set-up is untouched
    assert config.read_text() == config_before and "dev" not in config_before
    assert keyring_secret_service.bblogin_items() == keyring_before  # dev's tokens logged out, work's still there
    served = _bblogin(env, "token", "--json")  # the default profile, still `work`
    assert served.returncode == 0, served.stderr
    assert jwt.decode(json.loads(served.stdout)["token"], options={"verify_signature": False})["email"] == "carol@example.com"
    assert list(scratch.iterdir()) == []  # the throwaway configuration (mktemp -d) is gone


QUOTED_IN = tuple(doc.name for doc in DOCS if doc.name != "conventions.md")  # conventions.md shows the form: `bblogin: WHAT`
# Double-quoted text in troubleshooting.md that is another program's (or not an error message):
# everything else double-quoted there must be a message bblogin prints.
NOT_BBLOGINS = {
    "Invalid redirect_uri": "Bitbucket's authorization page",
    "this integration is misconfigured": "Bitbucket's authorization page",
    "Authentication failed": "git",
    "could not read Username": "git (its prompt when no helper answered and it may not ask)",
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
    docs = {doc.name: doc for doc in DOCS}
    return [(name, quote, code) for name in QUOTED_IN for quote, code in quotes_in(docs[name].read_text(), double_quoted=name == "troubleshooting.md")]


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
    shown = f"`bblogin: {message}`" if f"`bblogin: {message}`" in next(d for d in DOCS if d.name == doc).read_text() else f'"{message}" (if that is not bblogin\'s, list it in NOT_BBLOGINS)'
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
        "the ID token failed verification: A token from the IdP failed verification: signature, iss, aud, exp, nonce, at_hash, alg.",  # a docstring
        "the proxy … requires authentication (HTTP 407) for the connection to …",  # skips " (from …)" without a …
    ],
)
def test_a_made_up_quote_is_refused_at_once(quote: str) -> None:
    """The matcher never glues pieces of unrelated strings, and says no quickly (the first
    version accepted all of these, and took minutes to refuse some typos)."""
    import time

    from tests.tools import code_messages

    code_messages.catalogue()  # read once per run (about 0.4 s), not part of one quote's match
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


# The keys dex v2.45 reads (cmd/dex/config.go, storage.Client, the connectors' Config structs):
# dex ignores any other key, so a typo (`skipAprovalScreen`) silently does nothing.
DEX_KEYS = {
    "": {"issuer", "storage", "web", "telemetry", "oauth2", "grpc", "expiry", "logger", "frontend", "signer", "connectors", "staticClients", "enablePasswordDB", "staticPasswords"},
    "storage": {"type", "config"},
    "web": {"http", "https", "headers", "tlsCert", "tlsKey", "tlsMinVersion", "tlsMaxVersion", "allowedOrigins", "allowedHeaders", "clientRemoteIP"},
    "oauth2": {"grantTypes", "responseTypes", "skipApprovalScreen", "alwaysShowLoginScreen", "passwordConnector"},
    "staticClients[]": {"id", "idEnv", "secret", "secretEnv", "redirectURIs", "trustedPeers", "public", "name", "logoURL"},
    "connectors[]": {"type", "id", "name", "config"},
    "bitbucket-cloud": {"clientID", "clientSecret", "redirectURI", "teams", "includeTeamGroups"},
    "oidc": {
        "issuer", "issuerAlias", "clientID", "clientSecret", "redirectURI", "providerDiscoveryOverrides", "basicAuthUnsupported", "scopes",
        "hostedDomains", "rootCAs", "insecureSkipEmailVerified", "insecureEnableGroups", "allowedGroups", "acrValues", "insecureSkipVerify",
        "getUserInfo", "userIDKey", "userNameKey", "promptType", "pkceChallenge", "overrideClaimMapping", "claimMapping", "claimModifications",
    },
}
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def dex_problems(config: dict) -> list[str]:
    """What dex would refuse or get wrong in ``config`` (checked against dexidp/dex v2.45.1):
    cmd/dex/config.go Validate (a whole config, one with `issuer`, needs `storage` and `web`),
    serve.go's checks of static clients and connectors, and keys dex does not have."""
    problems = []

    def unknown(where: str, table: object, kind: str) -> None:
        extra = sorted(set(table) - DEX_KEYS[kind]) if isinstance(table, dict) else []
        problems.extend(f"{where}: dex has no key {key!r}" for key in extra)

    unknown("top level", config, "")
    if "issuer" in config:  # a whole config file, not a part to add to one
        if not (config.get("storage") or {}).get("type"):
            problems.append("no storage supplied in config file (dex refuses to start; use a persistent one such as sqlite3)")
        if not ({"http", "https"} & set(config.get("web") or {})):
            problems.append("must supply a HTTP/HTTPS address to listen on (web.http or web.https)")
    for section in ("storage", "web", "oauth2"):
        unknown(section, config.get(section), section)
    for client in config.get("staticClients") or []:
        where = f"staticClients[{client.get('id') or client.get('idEnv')}]"
        unknown(where, client, "staticClients[]")
        if not client.get("name"):
            problems.append(f"{where}: Name field is required for a client")
        if bool(client.get("id")) == bool(client.get("idEnv")):
            problems.append(f"{where}: exactly one of id and idEnv")
        if "secret" in client and "secretEnv" in client:
            problems.append(f"{where}: secret and secretEnv are exclusive")
        if not (client.get("public") or client.get("secret") or client.get("secretEnv")):
            problems.append(f"{where}: a non-public client needs secret or secretEnv")
        for key in ("id", "secret"):  # serve.go reads these as they are; only connector configs are expanded
            value = client.get(key)
            if isinstance(value, str) and value.startswith("$"):
                problems.append(f"{where}: {key}: {value} is not expanded by dex; use {key}Env: {value[1:].strip('{}')}")
        for key in ("idEnv", "secretEnv"):  # os.Getenv(value): a variable's name, not `$NAME`
            value = client.get(key)
            if value is not None and not (isinstance(value, str) and ENV_NAME.fullmatch(value)):
                problems.append(f"{where}: {key}: {value!r} must be a bare variable name (dex calls os.Getenv with it)")
    for connector in config.get("connectors") or []:
        where = f"connectors[{connector.get('id')}]"
        unknown(where, connector, "connectors[]")
        if not {"type", "id", "name", "config"} <= set(connector):
            problems.append(f"{where}: ID, Type, Name and config are required for a connector")
        if connector.get("type") in DEX_KEYS:
            unknown(f"{where}.config", connector.get("config"), connector["type"])
    return problems


def test_dex_snippets_are_configs_dex_takes() -> None:
    """Every dex snippet in the docs is one dex would start with and read as meant. pipelines.md
    had `secret: $BBLOGIN_CI_SECRET` (dex expands `$VAR` in connector `config:` values, never in a
    static client's `secret` or `id`: those take `secretEnv`/`idEnv`), and dex.md's config had no
    storage and no web section."""
    configs = dex_configs()
    assert len(configs) >= 3  # README.md, dex.md, pipelines.md
    assert any("issuer" in config for _, config in configs)  # dex.md shows a whole one
    for doc, config in configs:
        assert dex_problems(config) == [], f"{doc}: a dex snippet dex would refuse or misread"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda c: c["staticClients"][0].pop("name"), "Name field is required"),
        (lambda c: c["staticClients"][0].update(secretEnv="$BBLOGIN_CI_SECRET"), "must be a bare variable name"),
        (lambda c: c["staticClients"][0].update(secret="$BBLOGIN_CI_SECRET"), "secret and secretEnv are exclusive"),
        (lambda c: c["staticClients"][0].update(idEnv="CLIENT_ID"), "exactly one of id and idEnv"),
        (lambda c: c["oauth2"].update(skipAprovalScreen=True), "no key 'skipAprovalScreen'"),
        (lambda c: c.pop("storage"), "no storage supplied"),
        (lambda c: c.pop("web"), "HTTP/HTTPS address"),
        (lambda c: c["connectors"][0]["config"].update(teamz=["x"]), "no key 'teamz'"),
    ],
)
def test_the_dex_snippet_check_catches(change, problem: str) -> None:
    [config] = [c for doc, c in dex_configs() if doc == "dex.md"]
    config = json.loads(json.dumps(config))
    config["staticClients"].append({"id": "bblogin-ci", "name": "CI", "secretEnv": "BBLOGIN_CI_SECRET"})
    config["staticClients"].reverse()  # the CI client first: the changes edit it
    assert dex_problems(config) == []
    change(config)
    assert any(problem in p for p in dex_problems(config)), dex_problems(config)


def test_the_pipelines_step_writes_the_ci_profile_with_its_secret(tmp_path: pathlib.Path) -> None:
    """pipelines.md's step writes the profile it shows, with the secret from the secured variable
    (config.toml has no indirection for it), readable only by the step's user; bblogin takes it."""
    import stat
    import tomllib

    from ruamel.yaml import YAML

    text = (ROOT / "docs" / "pipelines.md").read_text()
    [steps] = [YAML(typ="safe").load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if b.startswith("pipelines:")]
    [write] = [line for line in steps["pipelines"]["default"][0]["step"]["script"] if "config.toml" in line]
    [shown] = [tomllib.loads(b) for b in re.findall(r"```toml\n(.*?)```", text, re.S) if "[profiles.ci]" in b]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "BBLOGIN_CI_SECRET": "s3cr3t-Value_1.x"}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", write], capture_output=True, text=True, timeout=30, env=env)
    assert done.returncode == 0, done.stderr
    config = tmp_path / ".config" / "bblogin" / "config.toml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    written = tomllib.loads(config.read_text())
    assert written["profiles"]["ci"].pop("client_secret") == "s3cr3t-Value_1.x"
    shown["profiles"]["ci"].pop("client_secret")
    assert written == shown  # the profile the page shows, and only it
    loaded = subprocess.run([sys.executable, "-m", "bblogin", "profiles"], capture_output=True, text=True, timeout=60, env={**env, "PATH": os.environ["PATH"]})
    assert (loaded.returncode, loaded.stdout.split()) == (0, ["ci"]), loaded.stderr


def test_the_cache_key_is_spelled_out_once() -> None:
    """Which cached tokens a profile may use is said in security.md (architecture.md shows how
    the ids are computed); every other page links there instead of keeping its own version."""
    spelled = re.compile(r"\((?:provider, )?issuer, client(?: id)?(?:, subject)?\)")
    elsewhere = [doc.name for doc in DOCS if doc.name not in ("security.md", "architecture.md") and spelled.search(doc.read_text())]
    assert elsewhere == [], f"{elsewhere} state the cache key themselves: link to security.md"
    assert spelled.search((ROOT / "docs" / "security.md").read_text())


def test_troubleshooting_quotes_kubectl_as_the_real_kubectl_words_it(kubectl_bin: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """The "install moved" paragraph quotes kubectl (and Python) for a kubeconfig entry whose
    interpreter is gone, whose script is gone, and whose bare command is not on PATH: the real
    kubectl the tests use must print each quote (with the paragraph's /path/to/ filled in)."""
    text = (ROOT / "docs" / "troubleshooting.md").read_text()
    paragraph = text[text.index("**kubectl fails after bblogin's install moved") :].split("\n\n")[0]
    quotes = [" ".join(q.split()) for q in re.findall(r"`([^`]+)`", paragraph) if "exec:" in q or "Errno" in q]
    assert len(quotes) == 4
    python = pathlib.Path(sys.executable).resolve()
    gone = tmp_path / "gone"
    entries = {"interpreter": (str(gone / "bin" / "python3"), []), "script": (str(python), ["-S", str(gone / "bblogin" / "_hot" / "_launcher.py")]), "path": ("kubectl-bblogin", [])}
    kubeconfig = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],  # never reached: the credentials fail first
        "users": [{"name": n, "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": c, "args": a, "interactiveMode": "Never"}}} for n, (c, a) in entries.items()],
        "contexts": [{"name": n, "context": {"cluster": "c", "user": n}} for n in entries],
    }
    (tmp_path / "kubeconfig").write_text(json.dumps(kubeconfig))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "KUBECONFIG": str(tmp_path / "kubeconfig")}
    said = {n: " ".join(subprocess.run([str(kubectl_bin), "--context", n, "auth", "whoami"], capture_output=True, text=True, timeout=60, env=env).stderr.split()) for n in entries}
    filled = {"interpreter": str(gone / "bin" / "python3"), "script": str(python)}
    for quote in quotes:
        where = "interpreter" if "fork/exec" in quote else "path" if "kubectl-bblogin" in quote else "script"
        expected = quote.replace("/path/to/python3", filled.get(where, "")).replace("/path/to/bblogin", str(gone / "bblogin"))
        assert expected in said[where], f"troubleshooting.md quotes kubectl as `{quote}`, but it says:\n{said[where]}"


@pytest.mark.slow
@pytest.mark.timeout(900)  # pip builds bblogin and installs its dependencies from the index (about 40 s here)
def test_the_install_without_pipx_works_as_written_in_a_fresh_home(tmp_path: pathlib.Path) -> None:
    """getting-started.md's "Without pipx" block, in a copy of the checkout, in an empty HOME:
    then the page's next lines work in the same shell (bblogin on PATH, its completion, its man
    page). Before #29 the links failed (no ~/.local/bin) and man found nothing."""
    [block] = runnable_blocks(ROOT / "docs" / "getting-started.md", "install")
    checkout = tmp_path / "checkout"
    for name in subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], capture_output=True, text=True, check=True, cwd=ROOT).stdout.splitlines():
        source = ROOT / name
        if source.is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            (checkout / name).write_bytes(source.read_bytes())
    home = tmp_path / "newcomer"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BBLOGIN_", "XDG_", "VIRTUAL_ENV", "PYTHON"))}
    env.update(HOME=str(home), PATH=f"{pathlib.Path(sys.base_prefix) / 'bin'}:/usr/bin:/bin")  # a python3, and no bblogin
    after = "command -v bblogin\nbblogin --version\nsource <(bblogin completion bash)\ncomplete -p bblogin\nman -w bblogin"
    done = subprocess.run(["bash", "-c", f"set -euo pipefail\n{block}\n{after}"], capture_output=True, text=True, timeout=900, env=env, cwd=checkout, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"the install block failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    lines = done.stdout.splitlines()
    assert str(home / ".local" / "bin" / "bblogin") in lines, lines[-5:]  # `command -v bblogin`: the link, not another install
    assert any(re.fullmatch(r"bblogin \d\S*", line) for line in lines), lines[-5:]  # `bblogin --version`
    assert any(line.startswith("complete ") and line.endswith(" bblogin") for line in lines)
    assert pathlib.Path(lines[-1]).resolve() == (home / ".local" / "share" / "bblogin" / "share" / "man" / "man1" / "bblogin.1").resolve()  # man -w (through the link; man-db names the target)
    assert (home / ".local" / "bin" / "git-credential-bblogin").resolve().is_file()
