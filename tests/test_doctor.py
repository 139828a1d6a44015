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
