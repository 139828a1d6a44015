"""bblogin as kubectl's exec credential plugin, with the real kubectl binary."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time

import pytest

from bblogin import _kubectl
from bblogin._commands.setup_kubectl import exec_entry
from bblogin._errors import UsageError
from tests.test_session import bblogin, login, set_margin


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, (_kubectl.V1BETA1, False)),
        ('{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":true}}', (_kubectl.V1, True)),
        ('{"apiVersion":"client.authentication.k8s.io/v1beta1","spec":{"interactive":false}}', (_kubectl.V1BETA1, False)),
        ('{"apiVersion":"client.authentication.k8s.io/v1","spec":{}}', (_kubectl.V1, False)),
    ],
)
def test_exec_info(value: str | None, expected: tuple[str, bool]) -> None:
    assert _kubectl.parse_exec_info(value) == expected


@pytest.mark.parametrize("value", ["{not json", "[]", '{"apiVersion":"client.authentication.k8s.io/v2"}'])
def test_bad_exec_info_is_a_clear_error(value: str) -> None:
    with pytest.raises(UsageError):
        _kubectl.parse_exec_info(value)


def test_format_exec_credential() -> None:
    out = json.loads(_kubectl.format_exec_credential(_kubectl.V1, "tok", 0))
    assert out == {"apiVersion": _kubectl.V1, "kind": "ExecCredential", "spec": {}, "status": {"token": "tok", "expirationTimestamp": "1970-01-01T00:00:00Z"}}


def exec_user(mode: str = "IfAvailable") -> dict:
    """The entry `bblogin setup kubectl` writes (the lean launcher), with kubectl's interactive mode."""
    entry = exec_entry("dev", use_access_token=False)
    entry["exec"]["interactiveMode"] = mode
    return entry


def kubectl(binary: pathlib.Path, kubeconfig: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binary), "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True, timeout=60, env=os.environ.copy(), stdin=subprocess.DEVNULL)


@pytest.fixture
def cluster(keyring_secret_service, devidp_factory, kube_apiserver, kubectl_bin):  # type: ignore[no-untyped-def]
    def make(ttl: int = 3600, mode: str = "Never"):  # type: ignore[no-untyped-def]
        idp = devidp_factory(id_token_ttl=ttl)
        login(idp)
        server = kube_apiserver(issuer=idp.issuer, client_id="bblogin")
        return idp, server, server.kubeconfig(exec_user(mode))

    return make


def test_get_version_and_whoami_through_the_plugin(cluster, kubectl_bin) -> None:
    idp, server, config = cluster()
    done = kubectl(kubectl_bin, config, "get", "--raw", "/version")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["gitVersion"] == "v1.35.0-bblogin-test"
    who = kubectl(kubectl_bin, config, "auth", "whoami", "-o", "json")
    assert who.returncode == 0, who.stderr
    info = json.loads(who.stdout)["status"]["userInfo"]
    assert info["username"] == "alice@example.com" and "acme" in info["groups"]
    assert all(ok for _path, ok in server.attempts)
    assert idp.count("/token", "refresh_token") == 0


def test_expired_token_is_refreshed_for_kubectl(cluster, kubectl_bin) -> None:
    idp, server, config = cluster(ttl=2)
    set_margin("dev", 0)
    time.sleep(2.5)
    idp.id_token_ttl = 3600
    done = kubectl(kubectl_bin, config, "get", "--raw", "/version")
    assert done.returncode == 0, done.stderr
    assert idp.count("/token", "refresh_token") == 1


def test_dead_login_fails_cleanly_when_not_interactive(cluster, kubectl_bin) -> None:
    idp, server, config = cluster(ttl=2)
    set_margin("dev", 0)
    time.sleep(2.5)
    idp.revoke_refresh_tokens()
    done = kubectl(kubectl_bin, config, "get", "--raw", "/version")
    assert done.returncode != 0
    assert "bblogin login --profile dev" in done.stderr
    assert "Traceback" not in done.stderr
    assert idp.count("/device/code") == 1  # no new login was attempted


def test_unauthorized_token_fails_cleanly_and_keeps_the_cache(cluster, kubectl_bin) -> None:
    idp, server, config = cluster()
    token = json.loads(bblogin("token", "--profile", "dev", "--json").stdout)["token"]
    server.rejected_tokens.add(token)
    done = kubectl(kubectl_bin, config, "get", "--raw", "/version")
    assert done.returncode != 0 and ("Unauthorized" in done.stderr or "must be logged in" in done.stderr)
    assert server.attempts == [("/version", False)]
    server.rejected_tokens.clear()  # the cluster trusts the token again: nothing was lost
    assert kubectl(kubectl_bin, config, "get", "--raw", "/version").returncode == 0


def test_static_token_baseline(kube_apiserver, kubectl_bin) -> None:
    server = kube_apiserver(static_token="static-test-token")
    config = server.kubeconfig({"token": "static-test-token"})
    assert kubectl(kubectl_bin, config, "get", "--raw", "/version").returncode == 0


def test_kubectl_bblogin_plugin_entry_point(kubectl_bin, tmp_path) -> None:
    """`kubectl bblogin …` finds the kubectl-bblogin script on PATH and runs bblogin."""
    bindir = pathlib.Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "KUBECONFIG": str(tmp_path / "none")}
    listed = subprocess.run([str(kubectl_bin), "plugin", "list"], capture_output=True, text=True, env=env, timeout=60)
    assert "kubectl-bblogin" in listed.stdout
    done = subprocess.run([str(kubectl_bin), "bblogin", "status", "--json"], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0 and json.loads(done.stdout) == {"accounts": [], "gcp_output_files": []}


def test_kubectls_own_exec_info_is_read_without_json_and_as_json_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for text, (version, interactive) in _kubectl.KUBECTL_EXEC_INFO.items():
        info = json.loads(text)
        assert (info["kind"], info["apiVersion"], info["spec"]) == ("ExecCredential", version, {"interactive": interactive})
    monkeypatch.setitem(sys.modules, "json", None)  # an `import json` now fails
    for text, expected in _kubectl.KUBECTL_EXEC_INFO.items():
        assert _kubectl.parse_exec_info(text) == expected
