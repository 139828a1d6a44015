"""Which token git gets: `setup git --token`, and `doctor` noticing a host that refuses the kind sent."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

from bblogin import _config, _configedit, _index
from bblogin._store import SecretStore
from tests.test_git import git, git_env  # noqa: F401  (git_env: a fixture)
from tests.test_session import bblogin, login


def doctor() -> dict[str, dict]:
    done = subprocess.run([sys.executable, "-m", "bblogin", "doctor", "--json"], capture_output=True, text=True, timeout=60, env=os.environ.copy())
    return {c["name"]: c for c in json.loads(done.stdout)["checks"]}


def current_id_token(user: str, token: str) -> bool:
    """A server that takes ID tokens only: the token must be an ID token bblogin holds right now."""
    return any(token == SecretStore("keyring").get(a.id, "id_token") for a in _index.load().accounts.values())


def test_doctor_notices_a_host_that_takes_only_id_tokens_and_setup_git_token_fixes_it(keyring_secret_service, devidp_factory, git_server, git_env, tmp_path: pathlib.Path) -> None:
    idp = devidp_factory(id_token_ttl=3600)
    login(idp)
    server = git_server(current_id_token)  # a proxy that accepts dex ID tokens only
    bystander = git_server(lambda user, token: True)  # not configured: must never see a token
    assert bblogin("setup", "git", "--host", server.url, "--profile", "dev").returncode == 0
    assert git("ls-remote", f"{server.url}/repo.git").returncode != 0  # the access token is refused

    check = doctor()[f"git-auth:{server.url}"]
    assert check["status"] == "fail" and "refuses the access token" in check["detail"] and "HTTP 401" in check["detail"]
    assert check["fix"].startswith(f"bblogin setup git --host {server.url} --profile dev --token id_token")
    assert not any(current_id_token(user, token) for user, token, _ok in server.attempts)  # doctor sent no ID token

    done = bblogin("setup", "git", "--host", server.url, "--profile", "dev", "--token", "id_token")
    assert done.returncode == 0 and "id token" in done.stderr, done.stderr
    assert _config.load().git_hosts[0].token == "id_token"
    assert git("ls-remote", f"{server.url}/repo.git").returncode == 0
    assert bblogin("setup", "git", "--host", server.url, "--profile", "dev").returncode == 0  # a rerun keeps the kind
    assert _config.load().git_hosts[0].token == "id_token"
    check = doctor()[f"git-auth:{server.url}"]
    assert check["status"] == "ok" and "id token" in check["detail"]
    assert bystander.attempts == []
    assert all(user == "alice" for user, _token, _ok in server.attempts)


def test_doctor_sends_nothing_without_a_login(git_server, git_env) -> None:
    server = git_server(lambda user, token: True)
    _configedit.save_profile(_config.Profile(name="dev", issuer="http://127.0.0.1:9/dex", client_id="bblogin"))
    _configedit.save_git_host(_config.GitHost(url=server.url, profile="dev"))
    check = doctor()[f"git-auth:{server.url}"]
    assert check["status"] == "warn" and "bblogin login --profile dev" in check["fix"]
    assert server.attempts == []
