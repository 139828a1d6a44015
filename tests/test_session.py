"""The token lifecycle end to end: real bblogin processes, the dev IdP, the real Secret Service."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from bblogin import _config, _configedit, _index, _paths
from bblogin._hot import _mirror as _hotcache

pytestmark = pytest.mark.usefixtures("keyring_secret_service")


def bblogin(*args: str, stdin: str = "", timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bblogin", *args], input=stdin, capture_output=True, text=True, timeout=timeout, env=os.environ.copy())


def login(idp, profile: str = "dev", *extra: str) -> subprocess.CompletedProcess[str]:
    done = bblogin("login", "--profile", profile, "--issuer", idp.issuer, "--client-id", "bblogin", "--connector-id", "bitbucket-cloud", "--flow", "device", "--no-browser", *extra)
    assert done.returncode == 0, done.stderr
    return done


def stored_secrets() -> list[str]:
    """Every token value bblogin holds (ID, access and refresh tokens of every account): what a
    leak scan must look for — the refresh token above all, the one secret that lasts."""
    from bblogin._store import SecretStore

    values = []
    for account in _index.load().accounts.values():
        store = SecretStore(account.storage)
        values += [v for kind in account.tokens if (v := store.get(account.id, kind))]
    assert any(account.has("refresh_token") for account in _index.load().accounts.values()), "no refresh token to look for"
    return values


def assert_no_secret_in(*texts: str) -> None:
    for secret in stored_secrets():
        for text in texts:
            assert secret not in text, "a token leaked"


def set_margin(profile: str, margin: int) -> None:
    from bblogin import _record

    config = _config.load()
    _configedit.save_profile(_record.replace(config.profiles[profile], refresh_margin=margin))


def make_expiring(profile: str, seconds_left: int = 30, lifetime: int = 3600) -> None:
    """Make the profile's cached ID and access tokens look ``seconds_left`` from the end of a
    ``lifetime``-long life (inside the 60 s margin): the next use refreshes them. The token values
    and digests stay: only what the index says about their time changes."""
    at = int(time.time())
    with _index.transaction() as index:
        for account in index.for_profile(profile):
            for kind in ("id_token", "access_token"):
                if kind in account.tokens:
                    account.tokens[kind].update(expires_at=at + seconds_left, issued_at=at + seconds_left - lifetime)


def test_device_login_then_token_status_accounts(devidp) -> None:
    done = login(devidp)
    assert "Logged in as alice@" in done.stderr
    token = bblogin("token", "--profile", "dev", "--no-login")
    assert token.returncode == 0
    claims = json.loads(bblogin("token", "--profile", "dev", "--no-login", "--json").stdout)
    assert claims["token"] == token.stdout.strip() and claims["kind"] == "id_token" and claims["expires_at"] > time.time()
    status = json.loads(bblogin("status", "--json").stdout)["accounts"][0]
    assert status["email"].startswith("alice@") and status["groups"] and status["state"] == "valid" and not status["plaintext"]
    assert_no_secret_in(json.dumps(status), done.stderr, token.stderr, *(open(p, "rb").read().decode("latin-1") for p in (_paths.accounts_file(), _hotcache.accounts_path(), _hotcache.config_path())))
    assert devidp.count("/token", "refresh_token") == 0


def test_expiring_token_is_refreshed_and_rotation_is_followed(devidp_factory) -> None:
    idp = devidp_factory(id_token_ttl=90)
    login(idp)
    for _ in range(3):
        make_expiring("dev")  # the cached token is about to expire: this call refreshes
        done = bblogin("token", "--profile", "dev", "--no-login")
        assert done.returncode == 0, done.stderr
    # three refreshes, each with the token the previous one rotated in: dex refuses a reused one
    assert idp.count("/token", "refresh_token") == 3


@pytest.mark.slow
def test_sixteen_concurrent_callers_cause_exactly_one_refresh(devidp_factory) -> None:
    idp = devidp_factory(id_token_ttl=2)
    login(idp)
    set_margin("dev", 0)
    time.sleep(2.5)  # the ID token has expired
    idp.id_token_ttl = 3600
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: bblogin("token", "--profile", "dev", "--no-login"), range(16)))
    assert [r.returncode for r in results] == [0] * 16, [r.stderr for r in results if r.returncode]
    assert len({r.stdout for r in results}) == 1
    assert idp.count("/token", "refresh_token") == 1


def test_dead_refresh_token_asks_for_login_without_a_browser(devidp_factory) -> None:
    idp = devidp_factory(id_token_ttl=90)
    login(idp)
    make_expiring("dev")
    idp.revoke_refresh_tokens()
    done = bblogin("token", "--profile", "dev", "--no-login")
    assert done.returncode == 4
    assert "bblogin login --profile dev" in done.stderr and done.stdout == ""
    assert idp.count("/device/code") == 1 and idp.count("/auth") == 0  # only the first login
    account = next(iter(_index.load().accounts.values()))
    assert account.refresh_dead


def test_network_failure_is_reported_never_a_login_and_cache_survives(devidp_factory) -> None:
    idp = devidp_factory(id_token_ttl=90)
    login(idp)
    make_expiring("dev", seconds_left=5)  # below the outage floor: nothing to fall back on
    idp.fail_next("/token", 503, "<html><body>upstream down</body></html>", content_type="text/html", count=10)
    done = bblogin("token", "--profile", "dev", "--no-login")
    assert done.returncode == 5, done.stderr
    assert "<html>" not in done.stderr and done.stdout == "" and "tries again after" in done.stderr
    assert idp.count("/device/code") == 1
    attempts = idp.count("/token", "refresh_token")
    done = bblogin("token", "--profile", "dev", "--no-login")  # inside the backoff window: not sent
    assert done.returncode == 5 and "the identity provider is failing since" in done.stderr and "refresh --profile dev" in done.stderr
    assert idp.count("/token", "refresh_token") == attempts
    idp.fail_next("/token", 200, '{"access_token": "x", "id_tok', count=1)  # truncated JSON
    done = bblogin("refresh", "--profile", "dev")  # bypasses the window
    assert done.returncode == 5
    idp.fail_next("/token", 200, "", count=0)
    done = bblogin("refresh", "--profile", "dev")
    assert done.returncode == 0, done.stderr  # the refresh token survived every failure
    assert done.stdout.startswith("Refreshed alice@") and "groups unchanged" in done.stdout
    assert _index.load().active_account("dev").outage is None  # the IdP answered: the outage is over


def test_two_accounts_on_one_idp_and_use(devidp) -> None:
    login(devidp)
    devidp.default_user = "bob"
    login(devidp)
    listing = json.loads(bblogin("accounts", "--json").stdout)["accounts"]
    assert sorted(a["email"].split("@")[0] for a in listing) == ["alice", "bob"]
    active = [a for a in listing if a["active"]]
    assert len(active) == 1 and active[0]["email"].startswith("bob@")
    assert bblogin("use", "alice@" + active[0]["email"].split("@")[1]).returncode == 0
    claims = json.loads(bblogin("token", "--profile", "dev", "--no-login", "--json").stdout)
    assert _index.load().find(claims["account"], "dev").email.startswith("alice@")
    assert bblogin("logout", "--all").returncode == 0
    assert _index.load().accounts == {}
