"""`bblogin setup --from`: a team bundle served over https from 127.0.0.1 (a CA made here) wires a
new member's machine — two profiles at two dev IdPs, two clusters (the Kubernetes API double,
real kubectl) and two git hosts (real git over smart HTTP) — and then kubectl and git just work.
Reruns change nothing, --dry-run writes nothing, existing entries that differ are reported and
kept, --undo removes exactly what was added, and hostile bundles are refused with nothing written."""

from __future__ import annotations

import base64
import json
import os
import pathlib
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bblogin import _team
from bblogin._errors import BbloginError
from tests.fixtures.kube_apiserver import _certificates
from tests.test_git import dex_token_validator


class BundleServer:
    """An https server on 127.0.0.1 that serves one file at /bblogin.toml, with its own CA."""

    def __init__(self, directory: pathlib.Path) -> None:
        cert, key, self.ca_pem = _certificates(directory)
        self.ca_file = directory / "bundle-ca.pem"
        self.ca_file.write_bytes(self.ca_pem)
        self.body = b""
        self.requests = 0
        self.sent = 0  # bytes of /huge and /endless written before the client hung up
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server.requests += 1
                if self.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", "https://127.0.0.1:9/elsewhere.toml")
                    self.end_headers()
                    return
                if self.path == "/slow":  # a small body, trickled out a byte at a time
                    self.send_response(200)
                    self.send_header("Content-Length", "100")
                    self.end_headers()
                    try:
                        for _ in range(100):
                            self.wfile.write(b"#")
                            self.wfile.flush()
                            time.sleep(0.2)
                    except OSError:
                        pass
                    return
                if self.path in ("/huge", "/endless"):  # 300 MiB, announced or not
                    self.send_response(200)
                    if self.path == "/huge":
                        self.send_header("Content-Length", str(300 << 20))
                    self.end_headers()
                    try:
                        for _ in range(300):
                            self.wfile.write(b"#" * (1 << 20))
                            server.sent += 1 << 20
                    except OSError:
                        pass  # the client stopped reading
                    return
                self.send_response(200 if self.path.split("?")[0] == "/bblogin.toml" else 404)
                self.send_header("Content-Type", "application/toml")
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}/bblogin.toml"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def bundle_server(tmp_path: pathlib.Path) -> Iterator[BundleServer]:
    server = BundleServer(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def member(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """A new team member's HOME: no kubeconfig, an empty global git config, no browser."""
    home = tmp_path / "member"
    home.mkdir()
    (home / ".gitconfig").write_text("[user]\n\tname = New\n\temail = new@example.com\n[init]\n\tdefaultBranch = main\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KUBECONFIG", str(home / ".kube" / "config"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "0")
    monkeypatch.setenv("PATH", f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER"):
        monkeypatch.delenv(name, raising=False)
    return home


def bblogin(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bblogin", *args], capture_output=True, text=True, timeout=180, env={**os.environ, **env}, stdin=subprocess.DEVNULL)


def bblogin_on_terminal(*args: str, **env: str) -> tuple[int, str]:
    """bblogin run as a person runs it: on a terminal of its own (logins need one). Its exit code
    and everything it wrote (stdout and stderr together, as the terminal shows them)."""
    from tests.test_interactive import Terminal

    return Terminal([sys.executable, "-m", "bblogin", *args], {**os.environ, **env}).wait(180)


def bundle_text(idp_a: Any, idp_b: Any, prod: Any, staging: Any, git_a: Any, git_b: Any) -> str:
    def ca(server: Any) -> str:
        return base64.b64encode(server.ca_pem).decode()

    return f'''# Acme platform team: everything a new engineer needs
bundle = 1
name = "acme"
min_bblogin = "0.1"
default_profile = "work"

[profiles.work]
issuer = "{idp_a.issuer}"
client_id = "bblogin"
connector_id = "bitbucket-cloud"
scopes = ["openid", "email", "groups", "profile", "offline_access"]
flow = "device"

[profiles.ops]
issuer = "{idp_b.issuer}"
client_id = "bblogin"
connector_id = "bitbucket-cloud"
flow = "device"

[clusters.prod]
server = "{prod.url}"
certificate_authority_data = "{ca(prod)}"
profile = "work"
contexts = [{{ name = "prod" }}, {{ name = "prod-payments", namespace = "payments" }}]

[clusters.staging]
server = "{staging.url}"
certificate_authority_data = "{ca(staging)}"
profile = "ops"

[git."{git_a.url}"]
profile = "work"

[git."{git_b.url}"]
profile = "ops"
'''


@pytest.fixture
def team(keyring_secret_service, devidp_factory, kube_apiserver, git_server, bundle_server, member):  # type: ignore[no-untyped-def]
    idp_a, idp_b = devidp_factory(device_interval=1), devidp_factory(device_interval=1)
    prod, staging = kube_apiserver(idp_a.issuer, "bblogin"), kube_apiserver(idp_b.issuer, "bblogin")
    git_a, git_b = git_server(dex_token_validator(idp_a, set())), git_server(dex_token_validator(idp_b, set()))
    bundle_server.body = bundle_text(idp_a, idp_b, prod, staging, git_a, git_b).encode()
    return {"idp_a": idp_a, "idp_b": idp_b, "prod": prod, "staging": staging, "git_a": git_a, "git_b": git_b, "bundle": bundle_server}


def kubectl(kubectl_bin: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(kubectl_bin), *args], capture_output=True, text=True, timeout=120, env=os.environ.copy(), stdin=subprocess.DEVNULL)


def files(home: pathlib.Path) -> dict[str, str | None]:
    """What setup may touch: config.toml, the kubeconfig, git's global config."""
    config = pathlib.Path(os.environ["BBLOGIN_CONFIG_DIR"]) / "config.toml"
    paths = {"config": config, "kubeconfig": home / ".kube" / "config", "git": home / ".gitconfig"}
    return {k: (p.read_text() if p.exists() else None) for k, p in paths.items()}


def test_one_command_wires_kubectl_and_git_and_a_rerun_changes_nothing(team, member: pathlib.Path, kubectl_bin: pathlib.Path, tmp_path: pathlib.Path) -> None:
    bundle = team["bundle"]
    code, plan = bblogin_on_terminal("setup", "--from", bundle.url, "--yes", SSL_CERT_FILE=str(bundle.ca_file))
    assert code == 0, plan
    # the plan says which host receives which token, before anything is written
    assert f"ID token of profile work (from {team['idp_a'].issuer}) → Kubernetes API {team['prod'].url} (contexts prod, prod-payments)" in plan
    assert f"ID token of profile ops (from {team['idp_b'].issuer}) → Kubernetes API {team['staging'].url} (contexts staging)" in plan
    assert f"access token of profile work (from {team['idp_a'].issuer}) → git {team['git_a'].url}" in plan
    assert f"access token of profile ops (from {team['idp_b'].issuer}) → git {team['git_b'].url}" in plan
    assert "Logging in for profile work" in plan and "Logging in for profile ops" in plan  # one login per IdP
    assert "[ok  ] config" in plan  # and it finished with doctor's checks

    view = json.loads(kubectl(kubectl_bin, "config", "view", "-o", "json").stdout)
    contexts = {c["name"]: c["context"] for c in view["contexts"]}
    assert contexts["prod-payments"] == {"cluster": "prod", "user": "bblogin-work", "namespace": "payments"}
    assert contexts["staging"] == {"cluster": "staging", "user": "bblogin-ops"}
    for context in ("prod", "prod-payments", "staging"):
        whoami = kubectl(kubectl_bin, "--context", context, "auth", "whoami", "-o", "json")
        assert whoami.returncode == 0, whoami.stderr
        assert json.loads(whoami.stdout)["status"]["userInfo"]["username"] == "alice@example.com"
    for server, name in ((team["git_a"], "a"), (team["git_b"], "b")):
        clone = subprocess.run(["git", "clone", "-q", f"{server.url}/repo.git", str(tmp_path / name)], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert clone.returncode == 0, clone.stderr
    assert team["prod"].attempts and team["staging"].attempts

    before, logins = files(member), (team["idp_a"].count("/device/code"), team["idp_b"].count("/device/code"))
    again = bblogin("setup", "--from", bundle.url, "--yes", SSL_CERT_FILE=str(bundle.ca_file))
    assert again.returncode == 0, again.stderr
    assert "Nothing to change" in again.stderr and "Logging in" not in again.stderr
    assert files(member) == before  # byte for byte
    assert (team["idp_a"].count("/device/code"), team["idp_b"].count("/device/code")) == logins

    exported = bblogin("setup", "--export")
    assert exported.returncode == 0, exported.stderr
    mine = _team.parse("exported.toml", exported.stdout)
    theirs = _team.parse(bundle.url, bundle.body.decode())
    assert mine.profiles == theirs.profiles and set(mine.git_hosts) == set(theirs.git_hosts)
    assert {c.name: (c.server, c.ca_data, c.profile, c.contexts) for c in mine.clusters} == {c.name: (c.server, c.ca_data, c.profile, c.contexts) for c in theirs.clusters}
    assert "client_secret" not in exported.stdout and "storage" not in exported.stdout


def test_dry_run_writes_nothing_and_needs_no_login(team, member: pathlib.Path) -> None:
    bundle = team["bundle"]
    before = files(member)
    done = bblogin("setup", "--from", bundle.url, "--dry-run", SSL_CERT_FILE=str(bundle.ca_file))
    assert done.returncode == 0, done.stderr
    assert "+ profile work: add" in done.stderr and "+ context prod-payments: add" in done.stderr
    assert "then it logs in once per identity provider (tokens into the keyring, the account into accounts.json)" in done.stderr
    assert "nothing written" in done.stderr
    assert files(member) == before and before["config"] is None
    assert team["idp_a"].count("/device/code") == 0


def test_without_a_terminal_it_asks_for_yes(team, member: pathlib.Path) -> None:
    done = bblogin("setup", "--from", team["bundle"].url, SSL_CERT_FILE=str(team["bundle"].ca_file))
    assert done.returncode == 2 and "pass --yes" in done.stderr
    assert files(member)["config"] is None and files(member)["kubeconfig"] is None


def test_existing_entries_that_differ_are_reported_and_kept_and_undo_removes_only_what_was_added(team, member: pathlib.Path) -> None:
    bundle = team["bundle"]
    kubeconfig = member / ".kube" / "config"
    kubeconfig.parent.mkdir()
    mine = {
        "apiVersion": "v1", "kind": "Config", "current-context": "prod",
        "clusters": [{"name": "home", "cluster": {"server": "https://127.0.0.1:9"}}],
        "users": [{"name": "me", "user": {"token": "my-own-static-token"}}],
        "contexts": [{"name": "prod", "context": {"cluster": "home", "user": "me"}}],  # the bundle names a context prod too
    }
    kubeconfig.write_text(json.dumps(mine))
    done = bblogin("setup", "--from", bundle.url, "--yes", "--no-login", SSL_CERT_FILE=str(bundle.ca_file))
    assert done.returncode in (0, 10), done.stderr  # doctor may fail: no login yet
    assert "! context prod: conflict — exists and differs" in done.stderr and "kept or left out" in done.stderr
    from ruamel.yaml import YAML

    view = YAML(typ="safe").load(kubeconfig.read_text())
    contexts = {c["name"]: c["context"] for c in view["contexts"]}
    kube = member / ".kube" / "config"
    assert f"{kube} (keeping the previous file as {kube}.bblogin-backup and the file before bblogin first changed it as {kube}.bblogin-original)" in done.stderr
    assert contexts["prod"] == {"cluster": "home", "user": "me"}  # kept
    assert contexts["prod-payments"]["user"] == "bblogin-work"  # added
    assert {"name": "me", "user": {"token": "my-own-static-token"}} in view["users"]

    # the team changes its bundle: the plan shows the difference, and only that changes
    bundle.body = bundle.body.replace(b'namespace = "payments"', b'namespace = "billing"')
    changed = bblogin("setup", "--from", bundle.url, "--yes", "--no-login", SSL_CERT_FILE=str(bundle.ca_file))
    assert "~ context prod-payments: update — namespace: 'payments' → 'billing'" in changed.stderr, changed.stderr

    undo = bblogin("setup", "--from", bundle.url, "--undo")
    assert undo.returncode == 0, undo.stderr
    after = YAML(typ="safe").load(kubeconfig.read_text())
    assert after["contexts"] == mine["contexts"] and after["users"] == mine["users"] and after["clusters"] == mine["clusters"]
    assert "credential" not in (member / ".gitconfig").read_text()
    assert "[profiles." not in (files(member)["config"] or "")
    assert "Nothing to undo" in bblogin("setup", "--from", bundle.url, "--undo").stderr


HOSTILE = {
    "a Bitbucket token for another host": ('[profiles.bb]\nprovider = "bitbucket-cloud"\nclient_id = "k"\n[git."https://git.evil.example/acme"]\nprofile = "bb"\n', "goes only to that host"),
    "a client secret": ('[profiles.p]\nissuer = "https://dex.example.com/dex"\nclient_id = "c"\nclient_secret = "s3cr3t"\n', "not allowed in a bundle"),
    "plaintext storage": ('[profiles.p]\nissuer = "https://dex.example.com/dex"\nclient_id = "c"\nstorage = "plaintext"\n', "not allowed in a bundle"),
    "an http issuer that is not loopback": ('[profiles.p]\nissuer = "http://dex.example.com/dex"\nclient_id = "c"\n', "must be an https:// URL"),
    "a context named twice": ('[profiles.p]\nissuer = "https://dex.example.com/dex"\nclient_id = "c"\n[clusters.a]\nserver = "https://a.example.com"\nprofile = "p"\ncontexts = [{name = "x"}]\n[clusters.b]\nserver = "https://b.example.com"\nprofile = "p"\ncontexts = [{name = "x"}]\n', "named twice"),
    "a git host named twice": ('[profiles.p]\nissuer = "https://dex.example.com/dex"\nclient_id = "c"\n[git."https://git.example.com/team"]\nprofile = "p"\n[git."HTTPS://Git.Example.com:443/team/"]\nprofile = "p"\n', "the same git host"),
    "malformed TOML": ("[profiles.p\nissuer = 1\n", "not valid TOML"),
    "an unknown key": ('[profiles.p]\nissuer = "https://dex.example.com/dex"\nclient_id = "c"\nexec = "rm -rf ~"\n', "unknown key"),
    "a newer bblogin": ('min_bblogin = "99.0"\n', "needs bblogin 99.0 or later"),
    "a cluster CA that is not one": ('[profiles.p]\nissuer = "https://dex.example.com/dex"\nclient_id = "c"\n[clusters.a]\nserver = "https://a.example.com"\nprofile = "p"\ncertificate_authority_data = "aGVsbG8="\n', "holds no PEM certificate"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_bundles_are_refused_with_nothing_written(case: str, member: pathlib.Path, tmp_path: pathlib.Path) -> None:
    text, message = HOSTILE[case]
    path = tmp_path / "bundle.toml"
    path.write_text("bundle = 1\n" + text)
    before = files(member)
    done = bblogin("setup", "--from", str(path), "--yes")
    assert done.returncode in (2, 3), done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert "\x1b" not in done.stderr and "\r" not in done.stderr and "Tokens will go" not in done.stderr
    assert files(member) == before


def test_huge_bundles_and_plain_http_urls_are_refused(member: pathlib.Path, tmp_path: pathlib.Path) -> None:
    huge = tmp_path / "huge.toml"
    huge.write_text("bundle = 1\n" + "# padding\n" * 40_000)
    done = bblogin("setup", "--from", str(huge), "--yes")
    assert done.returncode == 3 and "not a bundle" in done.stderr
    done = bblogin("setup", "--from", "http://127.0.0.1:9/bblogin.toml", "--yes")
    assert done.returncode == 2 and "must be https://" in done.stderr
    assert files(member)["config"] is None


def test_an_untrusted_certificate_is_refused(team, member: pathlib.Path) -> None:
    done = bblogin("setup", "--from", team["bundle"].url, "--yes")  # the test CA is in no trust store
    assert done.returncode == 5 and "TLS" in done.stderr
    assert files(member)["config"] is None and team["bundle"].requests == 0


def test_the_schema_example_in_docs_team_md_is_a_valid_bundle(tmp_path: pathlib.Path) -> None:
    text = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "team.md").read_text()
    [example] = [b for b in text.split("```toml\n")[1:]]
    example = example.split("```")[0]
    _cert, _key, ca_pem = _certificates(tmp_path)
    example = example.replace('"LS0tLS1CRUdJTi…"', '"' + base64.b64encode(ca_pem).decode() + '"')
    bundle = _team.parse("docs/team.md", example)
    assert set(bundle.profiles) == {"work", "cloud"} and [c.name for c in bundle.clusters] == ["prod"]
    assert [h.url for h in bundle.git_hosts] == ["https://bitbucket.org/acme", "https://git.example.com"]


# -- the review's findings (#27), each from its reproduction -------------------------------------
BASE = '''bundle = 1
name = "acme"
default_profile = "work"
[profiles.work]
issuer = "https://dex.example.com/dex"
client_id = "bblogin"
connector_id = "bitbucket-cloud"
[clusters.prod]
server = "https://k8s.example.com:6443"
certificate_authority_data = "CA"
profile = "work"
contexts = [{ name = "prod" }, { name = "prod-payments", namespace = "payments" }]
[git."https://git.example.com/team"]
profile = "work"
'''


@pytest.fixture
def base(tmp_path: pathlib.Path) -> pathlib.Path:
    """The review's base.toml: one profile, one cluster with two contexts, one git host."""
    _cert, _key, ca_pem = _certificates(tmp_path)
    path = tmp_path / "base.toml"
    path.write_text(BASE.replace('"CA"', '"' + base64.b64encode(ca_pem).decode() + '"'))
    return path


def apply(bundle: pathlib.Path, *more: str) -> subprocess.CompletedProcess[str]:
    done = bblogin("setup", "--from", str(bundle), "--yes", "--no-login", *more)
    assert done.returncode in (0, 10), done.stderr  # 10: doctor's checks fail without a login
    return done


def kube_view(kubectl_bin: pathlib.Path) -> dict[str, Any]:
    done = kubectl(kubectl_bin, "config", "view", "-o", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def contexts_of(view: dict[str, Any]) -> dict[str, Any]:
    return {c["name"]: c["context"] for c in view.get("contexts") or []}


def write_kubeconfig(path: pathlib.Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def config_toml() -> pathlib.Path:
    return pathlib.Path(os.environ["BBLOGIN_CONFIG_DIR"]) / "config.toml"


def routes(stderr: str) -> list[str]:
    lines = stderr.split("Tokens will go only here:\n", 1)
    return [line.strip() for line in lines[1].splitlines() if line.startswith("    ")] if len(lines) == 2 else []


def test_a_kept_profile_gets_nothing_of_the_bundle_pointed_at_it(base: pathlib.Path, member: pathlib.Path, kubectl_bin: pathlib.Path) -> None:
    config_toml().parent.mkdir(parents=True, exist_ok=True)
    config_toml().write_text('[profiles.work]\nissuer = "https://login.mycorp.example/"\nclient_id = "mine"\n')
    done = apply(base)
    assert "! profile work: conflict" in done.stderr
    assert "! git host https://git.example.com/team: left out — it would use profile work" in done.stderr
    assert "! user bblogin-work: left out" in done.stderr and "! context prod: left out" in done.stderr
    assert routes(done.stderr) == [] and "No token goes anywhere" in done.stderr
    text = config_toml().read_text()
    assert "git.example.com" not in text and "default_profile" not in text and "login.mycorp.example" in text
    view = kube_view(kubectl_bin)
    assert contexts_of(view) == {} and not view.get("users")
    assert "credential" not in (member / ".gitconfig").read_text()


def test_a_kept_cluster_or_user_gets_no_context_of_the_bundle(base: pathlib.Path, member: pathlib.Path, kubectl_bin: pathlib.Path) -> None:
    write_kubeconfig(member / ".kube" / "config", """apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster: {server: "https://my-own-cluster.example.org"}
users:
- name: bblogin-work
  user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: bblogin, args: [kubectl, --profile, personal]}}
contexts: []
""")
    done = apply(base)
    assert "! cluster prod: conflict" in done.stderr and "! user bblogin-work: conflict" in done.stderr
    assert "(CA none → sha256:" in done.stderr and base.read_text().split('certificate_authority_data = "')[1][:40] not in done.stderr  # a fingerprint, not the CA
    assert "exec: 'bblogin kubectl --profile personal' → " in done.stderr
    assert "! context prod: left out — it would use cluster prod" in done.stderr
    assert not [r for r in routes(done.stderr) if "Kubernetes" in r]
    assert [r for r in routes(done.stderr) if r.startswith("access token of profile work (from https://dex.example.com/dex) → git https://git.example.com/team")]
    assert contexts_of(kube_view(kubectl_bin)) == {}


def test_a_kept_git_host_of_another_profile_gets_no_helper(base: pathlib.Path, member: pathlib.Path) -> None:
    config_toml().parent.mkdir(parents=True, exist_ok=True)
    config_toml().write_text('[profiles.mine]\nissuer = "https://login.mycorp.example/"\nclient_id = "mine"\n[git."https://git.example.com/team"]\nprofile = "mine"\n')
    done = apply(base)
    assert "! git host https://git.example.com/team: conflict" in done.stderr
    assert "! credential helper https://git.example.com/team: left out" in done.stderr
    assert not [r for r in routes(done.stderr) if "→ git" in r]
    assert "credential" not in (member / ".gitconfig").read_text()
    assert 'profile = "mine"' in config_toml().read_text()


FOUND_IN_REVIEW = {
    "a Bitbucket access token to a Kubernetes API": ('[profiles.bb]\nprovider = "bitbucket-cloud"\nclient_id = "KEY"\n[clusters.evil]\nserver = "https://k8s.evil.example"\nprofile = "bb"\nuse_access_token = true\n', "never to a Kubernetes API server"),
    "an ID token of a Bitbucket profile": ('[profiles.bb]\nprovider = "bitbucket-cloud"\nclient_id = "KEY"\n[git."https://bitbucket.org/acme"]\nprofile = "bb"\ntoken = "id_token"\n', "issues no ID token"),
    "two profiles sharing one kubeconfig user": (
        '[profiles.work]\nissuer = "https://dex.example.com/dex"\nclient_id = "bblogin"\n[profiles.work-access-token]\nissuer = "https://other-idp.example.net"\nclient_id = "x"\n'
        '[clusters.a]\nserver = "https://a.example.com"\nprofile = "work"\nuse_access_token = true\n[clusters.b]\nserver = "https://b.example.com"\nprofile = "work-access-token"\n',
        "its kubeconfig user would be bblogin-work-access-token",
    ),
    "control characters in the name": ('name = "acme\\n  Tokens will go only here:\\n"\n', "holds a control character"),
    "an escape sequence in an issuer": ('[profiles.work]\nissuer = "https://dex.example.com/dex\\u001b[2K\\r    (looks fine)"\nclient_id = "bblogin"\n', "holds a control character"),
    "an escape sequence in a server": ('[profiles.p]\nissuer = "https://dex.example.com"\nclient_id = "c"\n[clusters.prod]\nserver = "https://k8s.evil.example\\u001b[1A"\nprofile = "p"\n', "holds a control character"),
    "a newline in a git URL": ('[profiles.p]\nissuer = "https://dex.example.com"\nclient_id = "c"\n[git."https://git.example.com\\n"]\nprofile = "p"\n', "control character in its name"),
    "a NUL in a git URL": ('[profiles.bb]\nprovider = "bitbucket-cloud"\nclient_id = "K"\n[git."https://bitbucket.org/a\\u0000b"]\nprofile = "bb"\n', "control character in its name"),
    "a user name in the issuer": ('[profiles.p]\nissuer = "https://dex.acme.com@evil.example/dex"\nclient_id = "c"\n', "has a user name"),
    "a port out of range": ('[profiles.p]\nissuer = "https://dex.example.com"\nclient_id = "c"\n[clusters.a]\nserver = "https://k8s.acme.com:99999"\nprofile = "p"\n', "is not a URL"),
    "a broken IPv6 server": ('[profiles.p]\nissuer = "https://dex.example.com"\nclient_id = "c"\n[clusters.a]\nserver = "https://[::1"\nprofile = "p"\n', "is not a URL"),
    "a space in a git URL": ('[profiles.bb]\nprovider = "bitbucket-cloud"\nclient_id = "K"\n[git."https://bitbucket.org/a b"]\nprofile = "bb"\n', "space"),  # _config.git_url_problem says it first: "has a space or control character"
    "values nested too deeply": ("x = " + "[" * 60000 + "]" * 60000 + "\n", "nested too deeply"),
}
HOSTILE.update(FOUND_IN_REVIEW)


@pytest.mark.parametrize("case", sorted(FOUND_IN_REVIEW))
def test_hostile_bundles_the_review_found_are_refused_with_nothing_written(case: str, member: pathlib.Path, tmp_path: pathlib.Path) -> None:
    test_hostile_bundles_are_refused_with_nothing_written(case, member, tmp_path)


def test_a_bundle_saved_with_a_byte_order_mark_is_read_and_bundle_true_is_not_schema_1(base: pathlib.Path, member: pathlib.Path, tmp_path: pathlib.Path) -> None:
    bom = tmp_path / "bom.toml"
    bom.write_bytes(b"\xef\xbb\xbf" + base.read_bytes())
    done = bblogin("setup", "--from", str(bom), "--dry-run")
    assert done.returncode == 0 and "+ profile work: add" in done.stderr, done.stderr
    true = tmp_path / "true.toml"
    true.write_text(base.read_text().replace("bundle = 1", "bundle = true"))
    done = bblogin("setup", "--from", str(true), "--dry-run")
    assert done.returncode == 3 and "bundle: must be 1" in done.stderr, done.stderr


def test_a_context_in_another_kubeconfig_file_is_a_conflict_not_shadowed(base: pathlib.Path, member: pathlib.Path, kubectl_bin: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = member / ".kube" / "work.yaml"
    write_kubeconfig(work, """apiVersion: v1
kind: Config
current-context: prod
clusters: [{name: mine, cluster: {server: "https://my-own-cluster.example.org"}}]
users: [{name: me, user: {token: my-static-token}}]
contexts: [{name: prod, context: {cluster: mine, user: me}}]
""")
    monkeypatch.setenv("KUBECONFIG", f"{member / '.kube' / 'config'}{os.pathsep}{work}")
    done = apply(base)
    assert f"! context prod: conflict — {work} has it" in done.stderr
    contexts = contexts_of(kube_view(kubectl_bin))
    assert contexts["prod"] == {"cluster": "mine", "user": "me"} and contexts["prod-payments"]["user"] == "bblogin-work"


def test_kubectl_rewriting_the_file_is_no_change_and_undo_still_removes_everything(base: pathlib.Path, member: pathlib.Path, kubectl_bin: pathlib.Path) -> None:
    apply(base)
    assert kubectl(kubectl_bin, "config", "use-context", "prod").returncode == 0
    assert "env: null" in (member / ".kube" / "config").read_text()  # kubectl re-serialised our entries
    again = apply(base)
    assert "Nothing to change" in again.stderr and "!" not in again.stderr.split("Tokens will go")[0]
    undo = bblogin("setup", "--from", str(base), "--undo")
    assert undo.returncode == 0 and "kept" not in undo.stderr, undo.stderr
    view = kube_view(kubectl_bin)
    assert not view.get("users") and not view.get("contexts") and not view.get("clusters")


def test_a_failing_git_write_rolls_back_and_writes_nothing(base: pathlib.Path, member: pathlib.Path) -> None:
    lock = member / ".gitconfig.lock"
    lock.write_text("")
    before = files(member)
    done = bblogin("setup", "--from", str(base), "--yes", "--no-login")
    assert done.returncode == 3 and "could not lock" in done.stderr, done.stderr
    assert files(member) == before
    lock.unlink()
    assert "+ profile work: add" in apply(base).stderr  # nothing counts as there already
    undo = bblogin("setup", "--from", str(base), "--undo")
    assert undo.returncode == 0, undo.stderr
    assert "[profiles" not in config_toml().read_text() and "default_profile" not in config_toml().read_text()


def test_undo_keeps_a_profile_the_user_pointed_a_git_host_at_and_removes_the_rest(base: pathlib.Path, member: pathlib.Path, kubectl_bin: pathlib.Path) -> None:
    apply(base)
    with config_toml().open("a") as fh:
        fh.write('\n[git."https://other.example.com"]\nprofile = "work"\n')
    undo = bblogin("setup", "--from", str(base), "--undo")
    assert undo.returncode == 0, undo.stderr
    assert "! config.toml: profile work" not in undo.stderr and "profile work: in use — " in undo.stderr and "git host https://other.example.com still uses it" in undo.stderr
    text = config_toml().read_text()
    assert "[profiles.work]" in text and "git.example.com/team" not in text and "other.example.com" in text
    assert "credential" not in (member / ".gitconfig").read_text()
    assert contexts_of(kube_view(kubectl_bin)) == {}
    again = bblogin("setup", "--from", str(base), "--undo")  # still recorded: undo runs again, the same way
    assert again.returncode == 0 and "profile work: in use" in again.stderr, again.stderr


def test_undo_keeps_what_an_edited_context_uses_and_leaves_no_dangling_context(base: pathlib.Path, member: pathlib.Path, kubectl_bin: pathlib.Path) -> None:
    apply(base)
    assert kubectl(kubectl_bin, "config", "set-context", "prod-payments", "--namespace=billing").returncode == 0
    undo = bblogin("setup", "--from", str(base), "--undo")
    assert undo.returncode == 0, undo.stderr
    assert "context prod-payments: kept" in undo.stderr and "cluster prod: in use" in undo.stderr and "user bblogin-work: in use" in undo.stderr
    view = kube_view(kubectl_bin)
    assert set(contexts_of(view)) == {"prod-payments"} and [c["name"] for c in view["clusters"]] == ["prod"]
    assert [u["name"] for u in view["users"]] == ["bblogin-work"] and "[profiles.work]" in config_toml().read_text()
    assert kubectl(kubectl_bin, "config", "delete-context", "prod-payments").returncode == 0
    last = bblogin("setup", "--from", str(base), "--undo")  # what was kept for it is still recorded
    assert last.returncode == 0, last.stderr
    view = kube_view(kubectl_bin)
    assert not view.get("clusters") and not view.get("users") and "[profiles" not in config_toml().read_text()


def test_racing_setups_lose_no_kubeconfig_write(member: pathlib.Path, tmp_path: pathlib.Path, kubectl_bin: pathlib.Path) -> None:
    bundles = []
    for n in "abc":
        path = tmp_path / f"race-{n}.toml"
        path.write_text(f'bundle = 1\n[profiles.p{n}]\nissuer = "https://dex-{n}.example.com"\nclient_id = "c"\n[clusters.c{n}]\nserver = "https://k8s-{n}.example.com"\nprofile = "p{n}"\n')
        bundles.append(path)
    runs = [subprocess.Popen([sys.executable, "-m", "bblogin", "setup", "--from", str(p), "--yes", "--no-login"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL) for p in bundles]
    for proc in runs:
        _out, err = proc.communicate(timeout=180)
        assert proc.returncode in (0, 10), err
    assert set(contexts_of(kube_view(kubectl_bin))) == {"ca", "cb", "cc"}
    assert all(f"[profiles.p{n}]" in config_toml().read_text() for n in "abc")


def test_a_kubectl_holding_its_lock_is_waited_for(base: pathlib.Path, member: pathlib.Path, kubectl_bin: pathlib.Path) -> None:
    kubeconfig = member / ".kube" / "config"
    write_kubeconfig(kubeconfig, "apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\n")
    lock = pathlib.Path(str(kubeconfig) + ".lock")
    lock.write_text("")  # what client-go creates while a kubectl modifies the file
    threading.Timer(1.5, lock.unlink).start()
    apply(base)
    assert "prod" in contexts_of(kube_view(kubectl_bin)) and not lock.exists()


RECORD_DAMAGE = {
    "an entry key that names nothing": lambda d: d["entries"].__setitem__("bogus", 1),
    "an unknown kind": lambda d: d["entries"].__setitem__("kubeconfig|secret|x", {}),
    "a kubeconfig path that is a number": lambda d: d.__setitem__("kubeconfig", 5),
    "not JSON": None,
}


@pytest.mark.parametrize("damage", sorted(RECORD_DAMAGE))
def test_a_damaged_record_is_a_clear_error(damage: str, base: pathlib.Path, member: pathlib.Path) -> None:
    apply(base)
    [record] = (pathlib.Path(os.environ["BBLOGIN_STATE_DIR"]) / "team").glob("*.json")
    if RECORD_DAMAGE[damage] is None:
        record.write_text("garbage")
    else:
        data = json.loads(record.read_text())
        RECORD_DAMAGE[damage](data)  # type: ignore[misc]
        record.write_text(json.dumps(data))
    before = files(member)
    for args in (("--undo",), ("--yes", "--no-login")):
        done = bblogin("setup", "--from", str(base), *args)
        assert done.returncode == 3 and f"{record} (what setup --from" in done.stderr and "internal error" not in done.stderr, done.stderr
    assert files(member) == before


@pytest.mark.parametrize("path", ["/huge", "/endless"])
def test_a_huge_body_over_https_is_refused_without_reading_it(path: str, bundle_server: BundleServer, member: pathlib.Path) -> None:
    url = bundle_server.url.replace("/bblogin.toml", path)
    done = bblogin("setup", "--from", url, "--dry-run", SSL_CERT_FILE=str(bundle_server.ca_file))
    assert done.returncode == 3 and "larger than 256 KiB, so not a bundle" in done.stderr, done.stderr
    assert bundle_server.sent < 32 << 20  # it stopped reading (socket buffers hold a few MiB), not after 300 MiB


def test_a_redirect_is_refused_with_a_message_about_the_bundle_url(bundle_server: BundleServer, member: pathlib.Path) -> None:
    done = bblogin("setup", "--from", bundle_server.url.replace("/bblogin.toml", "/redirect"), "--dry-run", SSL_CERT_FILE=str(bundle_server.ca_file))
    assert done.returncode == 5 and "a redirect to 127.0.0.1; bblogin does not follow redirects" in done.stderr, done.stderr
    assert "identity provider" not in done.stderr and "issuer" not in done.stderr


def test_an_https_url_in_capitals_is_fetched(team, member: pathlib.Path) -> None:
    bundle = team["bundle"]
    done = bblogin("setup", "--from", bundle.url.replace("https://", "HTTPS://"), "--dry-run", SSL_CERT_FILE=str(bundle.ca_file))
    assert done.returncode == 0 and "+ profile work: add" in done.stderr, done.stderr


def test_the_bundle_is_fetched_through_the_environments_proxy(member: pathlib.Path) -> None:
    done = bblogin("setup", "--from", "https://platform.example.invalid/bblogin.toml", "--dry-run", HTTPS_PROXY="http://127.0.0.1:9", NO_PROXY="")
    assert done.returncode == 5 and "127.0.0.1:9" in done.stderr and "proxy" in done.stderr, done.stderr


def test_an_entry_the_user_changed_since_is_not_updated_by_a_changed_bundle(base: pathlib.Path, member: pathlib.Path, kubectl_bin: pathlib.Path) -> None:
    apply(base)
    assert kubectl(kubectl_bin, "config", "set-context", "prod-payments", "--namespace=mine").returncode == 0
    base.write_text(base.read_text().replace('namespace = "payments"', 'namespace = "billing"'))
    done = apply(base)
    assert "! context prod-payments: conflict — exists and differs (namespace: 'mine' → 'billing')" in done.stderr
    assert contexts_of(kube_view(kubectl_bin))["prod-payments"]["namespace"] == "mine"


def test_what_a_bundle_no_longer_names_is_removed_once_and_a_deleted_one_is_forgotten(base: pathlib.Path, member: pathlib.Path, kubectl_bin: pathlib.Path) -> None:
    full = base.read_text()
    base.write_text(full + '[clusters.staging]\nserver = "https://staging.example.com"\nprofile = "work"\n[clusters.qa]\nserver = "https://qa.example.com"\nprofile = "work"\n')
    apply(base)
    assert kubectl(kubectl_bin, "config", "delete-context", "qa").returncode == 0
    base.write_text(full)
    done = apply(base)
    assert "- context staging: remove — no longer in the bundle" in done.stderr and "- cluster staging: remove" in done.stderr
    assert "= context qa: gone — no longer in the bundle; already removed" in done.stderr and "- cluster qa: remove" in done.stderr
    assert set(contexts_of(kube_view(kubectl_bin))) == {"prod", "prod-payments"}
    again = apply(base)
    assert "staging" not in again.stderr and " qa" not in again.stderr and "kept" not in again.stderr and "Nothing to change" in again.stderr


def test_the_default_profile_the_user_chose_is_kept(base: pathlib.Path, member: pathlib.Path) -> None:
    config_toml().parent.mkdir(parents=True, exist_ok=True)
    config_toml().write_text('default_profile = "mine"\n[profiles.mine]\nissuer = "https://login.mycorp.example/"\nclient_id = "mine"\n')
    done = apply(base)
    assert "! default_profile: conflict — is 'mine'; kept (bblogin's default profile is yours to choose)" in done.stderr
    assert 'default_profile = "mine"' in config_toml().read_text() and "[profiles.work]" in config_toml().read_text()


def test_a_ca_file_beside_a_bundle_file_is_inlined(member: pathlib.Path, tmp_path: pathlib.Path, kubectl_bin: pathlib.Path) -> None:
    _cert, _key, ca_pem = _certificates(tmp_path)
    (tmp_path / "prod-ca.pem").write_bytes(ca_pem)
    bundle = tmp_path / "b.toml"
    bundle.write_text('bundle = 1\n[profiles.p]\nissuer = "https://dex.example.com"\nclient_id = "c"\n[clusters.prod]\nserver = "https://k8s.example.com"\ncertificate_authority = "prod-ca.pem"\nprofile = "p"\n')
    apply(bundle)
    [cluster] = kube_view(kubectl_bin)["clusters"]
    assert cluster["cluster"]["certificate-authority-data"] in ("DATA+OMITTED", base64.b64encode(ca_pem).decode())
    raw = (member / ".kube" / "config").read_text()
    assert base64.b64encode(ca_pem).decode() in raw


def test_export_leaves_out_secrets_and_user_names_says_so_and_reads_a_relative_ca_as_kubectl_does(member: pathlib.Path, tmp_path: pathlib.Path) -> None:
    _cert, _key, ca_pem = _certificates(tmp_path)
    config_toml().parent.mkdir(parents=True, exist_ok=True)
    config_toml().write_text(
        'default_profile = "work"\n[profiles.work]\nissuer = "https://dex.example.com/dex"\nclient_id = "bblogin"\nclient_secret = "TOPSECRET"\nstorage = "plaintext"\n'
        'proxy = "http://corp:PROXYSECRET@proxy.corp.example:3128"\n'
        '[git."https://git.example.com/team"]\nprofile = "work"\nusername = "alice.personal"\n'
    )
    (member / ".kube").mkdir()
    (member / ".kube" / "prod-ca.pem").write_bytes(ca_pem)
    write_kubeconfig(member / ".kube" / "config", """apiVersion: v1
kind: Config
clusters: [{name: prod, cluster: {server: "https://k8s.example.com", certificate-authority: prod-ca.pem}}]
users: [{name: bblogin-work, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: bblogin, args: [kubectl, --profile, work]}}}]
contexts: [{name: prod, context: {cluster: prod, user: bblogin-work}}]
""")
    done = subprocess.run([sys.executable, "-m", "bblogin", "setup", "--export"], capture_output=True, text=True, timeout=60, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert "TOPSECRET" not in done.stdout and "plaintext" not in done.stdout and "alice.personal" not in done.stdout and "PROXYSECRET" not in done.stdout + done.stderr
    assert "left out: profile work: proxy (a proxy URL may carry its password" in done.stderr
    assert "left out: profile work: client_secret" in done.stderr and "left out: profile work: storage" in done.stderr and "username 'alice.personal'" in done.stderr
    exported = _team.parse("exported.toml", done.stdout)
    assert [c.ca_data for c in exported.clusters] == [base64.b64encode(ca_pem).decode()]
    assert bblogin("setup", "--export", "--dry-run").returncode == 2


def test_team_flags_before_setup_kubectl_are_refused_not_ignored(base: pathlib.Path, member: pathlib.Path) -> None:
    done = bblogin("setup", "--from", str(base), "--yes", "kubectl", "--profile", "p")
    assert done.returncode == 2 and "--from belongs to `bblogin setup --from`, not to `bblogin setup kubectl`" in done.stderr, done.stderr


def test_a_secret_in_the_bundle_url_is_neither_recorded_nor_printed(bundle_server: BundleServer, base: pathlib.Path, member: pathlib.Path) -> None:
    bundle_server.body = base.read_bytes()
    done = bblogin("setup", "--from", bundle_server.url + "?sig=SECRET-SIGNATURE", "--yes", "--no-login", SSL_CERT_FILE=str(bundle_server.ca_file))
    assert done.returncode in (0, 10), done.stderr
    assert "SECRET-SIGNATURE" not in done.stderr and f"Undo with: bblogin setup --from {bundle_server.url} --undo" in done.stderr
    [record] = (pathlib.Path(os.environ["BBLOGIN_STATE_DIR"]) / "team").glob("*.json")
    assert "SECRET-SIGNATURE" not in record.read_text()
    assert f"Writes: config.toml, git's global config, {member / '.kube' / 'config'}; and the record of what it added, {record}." in done.stderr
    undo = bblogin("setup", "--from", bundle_server.url, "--undo")
    assert undo.returncode == 0 and "Logins stay" in undo.stderr and "[profiles" not in config_toml().read_text(), undo.stderr


def test_a_kubeconfig_changed_while_the_question_waits_is_not_overwritten(base: pathlib.Path, member: pathlib.Path, kubectl_bin: pathlib.Path) -> None:
    import pty
    import select

    kubeconfig = member / ".kube" / "config"
    write_kubeconfig(kubeconfig, "apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\n")
    main, child = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "bblogin", "setup", "--from", str(base), "--no-login"], stdin=child, stdout=child, stderr=child, close_fds=True)
    os.close(child)
    seen = b""
    while b"[y/N]" not in seen:
        assert select.select([main], [], [], 60)[0], seen.decode(errors="replace")
        seen += os.read(main, 65536)
    assert kubectl(kubectl_bin, "config", "set-context", "prod", "--cluster=mine", "--user=me").returncode == 0  # while it waits
    os.write(main, b"y\n")
    while proc.poll() is None or select.select([main], [], [], 0.2)[0]:
        try:
            seen += os.read(main, 65536) if select.select([main], [], [], 1)[0] else b""
        except OSError:
            break
    proc.wait(timeout=60)
    os.close(main)
    assert proc.returncode == 3 and b"the files changed while the plan was shown" in seen, seen.decode(errors="replace")
    assert contexts_of(kube_view(kubectl_bin)) == {"prod": {"cluster": "mine", "user": "me"}}
    assert not config_toml().exists()


def test_a_record_of_another_kubeconfig_is_not_applied_to_this_one(base: pathlib.Path, member: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    apply(base)
    monkeypatch.setenv("KUBECONFIG", str(member / ".kube" / "other"))
    for args in (("--undo",), ("--yes", "--no-login")):
        done = bblogin("setup", "--from", str(base), *args)
        assert done.returncode == 2 and "were written to" in done.stderr and f"KUBECONFIG={member / '.kube' / 'config'}" in done.stderr, done.stderr
    assert not (member / ".kube" / "other").exists()


def test_what_a_run_cut_short_wrote_is_known_to_a_rerun_and_to_undo(base: pathlib.Path, member: pathlib.Path, kubectl_bin: pathlib.Path) -> None:
    apply(base)
    [record] = (pathlib.Path(os.environ["BBLOGIN_STATE_DIR"]) / "team").glob("*.json")
    data = json.loads(record.read_text())
    record.write_text(json.dumps({**data, "entries": {}, "pending": data["entries"]}))  # as a run killed after its writes leaves it
    again = apply(base)
    assert "Nothing to change" in again.stderr, again.stderr
    assert json.loads(record.read_text())["entries"] == data["entries"] and not json.loads(record.read_text())["pending"]
    record.write_text(json.dumps({**data, "entries": {}, "pending": data["entries"]}))
    undo = bblogin("setup", "--from", str(base), "--undo")
    assert undo.returncode == 0, undo.stderr
    assert not kube_view(kubectl_bin).get("contexts") and "[profiles" not in config_toml().read_text()


def test_two_profiles_asking_one_idp_for_the_same_tokens_share_one_login(keyring_secret_service, devidp_factory, member: pathlib.Path, tmp_path: pathlib.Path) -> None:  # type: ignore[no-untyped-def]
    idp = devidp_factory(device_interval=1)
    bundle = tmp_path / "shared.toml"
    profile = f'issuer = "{idp.issuer}"\nclient_id = "bblogin"\nconnector_id = "bitbucket-cloud"\nflow = "device"\n'
    bundle.write_text(f"bundle = 1\n[profiles.dev]\n{profile}[profiles.ops]\n{profile}")
    code, text = bblogin_on_terminal("setup", "--from", str(bundle), "--yes")
    assert code == 0, text
    assert idp.count("/device/code") == 1 and text.count("Logging in for profile") == 1, text
    rerun = bblogin("setup", "--from", str(bundle), "--yes")
    assert rerun.returncode == 0 and idp.count("/device/code") == 1 and "Logging in" not in rerun.stderr, rerun.stderr  # the second profile joined the first's login


def test_a_failing_config_write_takes_back_the_git_and_kubeconfig_writes_before_it(base: pathlib.Path, member: pathlib.Path) -> None:
    from bblogin import _lock, _mirrors

    write_kubeconfig(member / ".kube" / "config", "apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\n")
    before = files(member)
    with _lock.account_lock(_mirrors.CONFIG_LOCK, 5):  # config.toml's editor times out after git and the kubeconfig were written
        done = bblogin("setup", "--from", str(base), "--yes", "--no-login")
    assert done.returncode != 0 and "lock" in done.stderr, done.stderr
    assert files(member) == before
    assert "+ profile work: add" in apply(base).stderr and "credential" in (member / ".gitconfig").read_text()


def test_a_body_trickled_out_slowly_meets_the_fetchs_deadline(bundle_server: BundleServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle_server.ca_file))
    monkeypatch.setattr(_team, "FETCH_DEADLINE", 1.0)  # 30 s in use; each byte comes well within the read timeout
    started = time.monotonic()
    with pytest.raises(BbloginError, match="did not send its answer within 1 s"):
        _team.fetch(bundle_server.url.replace("/bblogin.toml", "/slow"))
    assert time.monotonic() - started < 5


def test_a_record_written_before_entries_were_compared_as_kubectl_means_them_still_counts(base: pathlib.Path, member: pathlib.Path, kubectl_bin: pathlib.Path) -> None:
    apply(base)
    [record] = (pathlib.Path(os.environ["BBLOGIN_STATE_DIR"]) / "team").glob("*.json")
    data = json.loads(record.read_text())
    for key, value in data["entries"].items():  # as the first version recorded them: with kubectl's defaults
        if key.startswith("kubeconfig|user|"):
            value["exec"]["provideClusterInfo"] = False
            value["exec"]["env"] = None
    record.write_text(json.dumps(data))
    undo = bblogin("setup", "--from", str(base), "--undo")
    assert undo.returncode == 0 and "kept" not in undo.stderr, undo.stderr
    assert not kube_view(kubectl_bin).get("users")


def test_yes_without_a_terminal_starts_no_login_and_says_what_to_run(keyring_secret_service, devidp_factory, member: pathlib.Path, tmp_path: pathlib.Path) -> None:  # type: ignore[no-untyped-def]
    """`--yes` in a script (a devcontainer's postCreateCommand, cron): the set-up is written, but
    no device code goes into a log and no browser opens: the one rule of bblogin._interactive."""
    idp = devidp_factory(device_interval=1)
    bundle = tmp_path / "solo.toml"
    bundle.write_text(f'bundle = 1\n[profiles.dev]\nissuer = "{idp.issuer}"\nclient_id = "bblogin"\nconnector_id = "bitbucket-cloud"\nflow = "device"\n')
    done = bblogin("setup", "--from", str(bundle), "--yes")
    assert idp.count("/device/code") == 0, done.stderr
    assert "Profile dev: not logged in; no login started: standard error is not a terminal" in done.stderr
    assert "later: bblogin login --profile dev" in done.stderr
    assert "[profiles.dev]" in config_toml().read_text()
