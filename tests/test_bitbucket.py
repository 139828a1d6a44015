"""Bitbucket Cloud and Data Center OAuth 2.0 directly (fakes on 127.0.0.1), end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bblogin import _config
from bblogin._errors import LoginFailed
from bblogin._providers._paste import parse_pasted_redirect
from tests.test_login import BROWSER_STUB
from tests.test_session import bblogin, make_expiring

HELPER = [sys.executable, "-m", "bblogin", "git-credential", "get"]


@pytest.fixture(autouse=True)
def browser(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROWSER", f"{sys.executable} {BROWSER_STUB} %s")


def git_get(host: str) -> dict[str, str]:
    done = subprocess.run(HELPER, input=f"protocol=http\nhost={host}\n\n", capture_output=True, text=True, timeout=60, env=os.environ.copy())
    assert done.returncode == 0 and done.stdout, done.stderr
    return dict(line.split("=", 1) for line in done.stdout.splitlines())


def test_cloud_login_identity_refresh_rotation_and_git(keyring_secret_service, bitbucket_cloud) -> None:
    fake = bitbucket_cloud
    _config.save_profile(_config.Profile(name="cloud", provider="bitbucket-cloud", issuer=fake.base, client_id=fake.client_id, client_secret=fake.client_secret, flow="loopback"))
    done = bblogin("login", "--profile", "cloud", "--timeout", "30")
    assert done.returncode == 0, done.stderr
    status = json.loads(bblogin("status", "--json").stdout)["accounts"][0]
    assert (status["email"], status["username"], status["groups"]) == ("alice@example.com", "alice", ["acme", "platform"])
    assert status["sub"] == "{c0ffee00-0000-4000-8000-000000000001}"
    assert "code_verifier" in fake.token_requests[0] and "scope" not in fake.token_requests[0]
    items = keyring_secret_service.bblogin_items()
    assert any(i.endswith("/refresh_token/3") for i in items)  # the 3 KB refresh token is chunked
    for _ in range(2):
        make_expiring("cloud", lifetime=7200)  # the access token is about to expire: this call refreshes
        assert bblogin("token", "--profile", "cloud", "--access-token", "--no-login").returncode == 0
    refreshes = [r for r in fake.token_requests if r.get("grant_type") == "refresh_token"]
    assert len(refreshes) == 2 and refreshes[0]["refresh_token"] != refreshes[1]["refresh_token"]  # rotation followed
    host = fake.base.split("//")[1]
    _config.save_git_host(_config.GitHost(url=fake.base, profile="cloud"))
    answer = git_get(host)
    assert answer["username"] == "x-token-auth" and answer["password"] in fake.access_tokens


def test_cloud_dead_refresh_token(keyring_secret_service, bitbucket_cloud) -> None:
    fake = bitbucket_cloud
    _config.save_profile(_config.Profile(name="cloud", provider="bitbucket-cloud", issuer=fake.base, client_id=fake.client_id, client_secret=fake.client_secret, flow="loopback"))
    assert bblogin("login", "--profile", "cloud", "--timeout", "30").returncode == 0
    fake.refresh_tokens.clear()
    make_expiring("cloud", lifetime=7200)
    done = bblogin("token", "--profile", "cloud", "--access-token", "--no-login")
    assert done.returncode == 4 and "bblogin login --profile cloud" in done.stderr


def test_cloud_needs_a_secret(bitbucket_cloud) -> None:
    _config.save_profile(_config.Profile(name="cloud", provider="bitbucket-cloud", issuer=bitbucket_cloud.base, client_id="k", flow="loopback"))
    done = bblogin("login", "--profile", "cloud", "--timeout", "5")
    assert done.returncode == 3 and "client_secret" in done.stderr


def test_data_center_with_context_path_public_client(keyring_secret_service, bitbucket_dc) -> None:
    fake = bitbucket_dc
    _config.save_profile(_config.Profile(name="dc", provider="bitbucket-dc", issuer=fake.base, client_id=fake.client_id, scopes=("REPO_READ", "REPO_WRITE"), flow="loopback"))
    done = bblogin("login", "--profile", "dc", "--timeout", "30")
    assert done.returncode == 0, done.stderr
    status = json.loads(bblogin("status", "--json").stdout)["accounts"][0]
    assert (status["sub"], status["username"], status["email"]) == ("101", "alice", "alice@example.com")
    first = fake.token_requests[0]
    assert first["client_id"] == fake.client_id and "code_verifier" in first
    _config.save_git_host(_config.GitHost(url=fake.base, profile="dc"))
    answer = git_get(fake.base.split("//")[1].split("/")[0] + "\npath=bitbucket/scm/proj/repo.git")
    assert answer["username"] == "alice" and answer["password"] in fake.access_tokens


def test_pasted_redirect() -> None:
    redirect = "http://127.0.0.1:8400/callback"
    assert parse_pasted_redirect(f" {redirect}?code=abc&state=s1 \n", "s1", redirect) == "abc"
    for pasted in (f"{redirect}?code=abc&state=other", "http://evil.example/callback?code=abc&state=s1", f"{redirect}?state=s1", f"{redirect}?error=access_denied&state=s1", "garbage"):
        with pytest.raises(LoginFailed) as info:
            parse_pasted_redirect(pasted, "s1", redirect)
        assert "abc" not in str(info.value)
