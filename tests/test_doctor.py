from __future__ import annotations

import json
import os
import subprocess
import sys

from bblogin import _config, _configedit, _errors


def doctor(env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bblogin", "doctor", "--json"], capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})})


def checks(done: subprocess.CompletedProcess[str]) -> dict[str, dict]:
    return {c["name"]: c for c in json.loads(done.stdout)["checks"]}


def test_healthy_setup(keyring_secret_service, devidp, tmp_path) -> None:
    _configedit.save_profile(_config.Profile(name="dev", issuer=devidp.issuer, client_id="bblogin"))
    env = {"KUBECONFIG": str(tmp_path / "kubeconfig"), "HOME": str(tmp_path), "GIT_CONFIG_GLOBAL": str(tmp_path / "gitconfig")}
    assert subprocess.run([sys.executable, "-m", "bblogin", "setup", "kubectl", "--profile", "dev"], env={**os.environ, **env}, capture_output=True).returncode == 0
    done = doctor(env)
    assert done.returncode == 0, done.stdout
    result = checks(done)
    assert result["keyring"]["status"] == "ok" and "SecretService" in result["keyring"]["detail"]
    assert result["idp:dev"]["status"] == "ok" and result["clock:dev"]["status"] == "ok"
    assert result["kubectl"]["status"] == "ok" and "dev" in result["kubectl"]["detail"]
    assert keyring_secret_service.bblogin_items() == []  # the probe cleaned up


def test_problems_are_named_with_fixes(devidp, tmp_path) -> None:
    _configedit.save_profile(_config.Profile(name="down", issuer="http://127.0.0.1:9/dex", client_id="bblogin"))
    _configedit.save_git_host(_config.GitHost(url="https://git.example.com", profile="down"))
    env = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring", "KUBECONFIG": str(tmp_path / "none"), "GIT_CONFIG_GLOBAL": str(tmp_path / "gitconfig")}
    done = doctor(env)
    assert done.returncode == _errors.EXIT_CHECK_FAILED == 10
    result = checks(done)
    assert result["keyring"]["status"] == "fail" and "--insecure-storage" in result["keyring"]["fix"]
    assert result["idp:down"]["status"] == "fail" and "127.0.0.1" in result["idp:down"]["detail"]
    git = result["git:https://git.example.com"]
    assert git["status"] == "fail" and "no helper entry that runs bblogin" in git["detail"] and "bblogin setup git --host https://git.example.com" in git["fix"]
    text = subprocess.run([sys.executable, "-m", "bblogin", "doctor"], capture_output=True, text=True, timeout=60, env={**os.environ, **env})
    assert "[FAIL]" in text.stdout and "fix:" in text.stdout


def test_a_cached_token_the_restarted_idp_no_longer_verifies_is_named(keyring_secret_service, devidp_factory, tmp_path) -> None:
    """An IdP restarted without its keys (dex with memory storage, `bblogin dev-idp --ephemeral`):
    kubectl gets 401 while `status` counts the cached token valid. doctor sees the JWKS no longer
    has the token's kid and says to log in again."""
    first = devidp_factory()
    login = [sys.executable, "-m", "bblogin", "login", "--profile", "dev", "--issuer", first.issuer, "--client-id", "bblogin", "--flow", "device", "--no-browser"]
    assert subprocess.run(login, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL).returncode == 0
    env = {"KUBECONFIG": str(tmp_path / "none"), "GIT_CONFIG_GLOBAL": str(tmp_path / "gitconfig")}
    assert checks(doctor(env))["signing-key:dev"]["status"] == "ok"
    port = int(first.issuer.split(":")[2].split("/")[0])
    first.stop()
    devidp_factory(port=port)  # the same issuer, new keys
    done = doctor(env)
    result = checks(done)["signing-key:dev"]
    assert done.returncode == 10 and result["status"] == "fail", result
    assert "no longer publishes the key" in result["detail"] and "alice@example.com" in result["detail"]
    assert "bblogin login --profile dev" in result["fix"]
