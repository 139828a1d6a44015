"""`bblogin login` as a person runs it: the loopback flow through a (stub) browser, storage choices."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from tests.test_session import assert_no_secret_in, bblogin

BROWSER_STUB = pathlib.Path(__file__).parent / "tools" / "browser_stub.py"


@pytest.fixture
def browser(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    log = tmp_path / "browser.log"
    monkeypatch.setenv("BROWSER", f"{sys.executable} {BROWSER_STUB} %s")
    monkeypatch.setenv("BBLOGIN_TEST_BROWSER_LOG", str(log))
    return log


def login_loopback(idp, *extra: str) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    return bblogin("login", "--profile", "web", "--issuer", idp.issuer, "--client-id", "bblogin", "--connector-id", "bitbucket-cloud", "--flow", "loopback", "--timeout", "30", *extra)


def test_loopback_login_through_the_browser(keyring_secret_service, devidp, browser: pathlib.Path) -> None:
    done = login_loopback(devidp)
    assert done.returncode == 0, done.stderr
    assert "Logged in as alice@example.com" in done.stderr
    page = browser.read_text()
    assert "You can close this tab and return to your terminal" in page
    assert "code=" not in page and "eyJ" not in page  # the page shows neither the code nor a token
    assert devidp.count("/auth") == 1 and devidp.count("/token", "authorization_code") == 1
    assert json.loads(bblogin("status", "--json").stdout)["accounts"][0]["email"] == "alice@example.com"


def test_insecure_storage_is_explicit_and_shown(devidp, browser: pathlib.Path) -> None:
    done = login_loopback(devidp, "--insecure-storage")
    assert done.returncode == 0, done.stderr
    assert "PLAINTEXT" in done.stderr
    status = bblogin("status")
    assert "plaintext file" in status.stdout and "PLAINTEXT FILE" in status.stdout
    plaintext = next((pathlib.Path(os.environ["BBLOGIN_STATE_DIR"]) / "plaintext").iterdir())
    assert oct(plaintext.stat().st_mode & 0o777) == "0o600"


def test_no_keyring_is_a_clear_error_and_stores_nothing(devidp, browser: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    done = login_loopback(devidp)
    assert done.returncode == 6
    assert "--insecure-storage" in done.stderr and "Traceback" not in done.stderr
    assert json.loads(bblogin("accounts", "--json").stdout)["accounts"] == []


def test_locked_keyring_gives_the_remedy_and_keeps_the_cache(keyring_secret_service, devidp, browser: pathlib.Path) -> None:
    assert login_loopback(devidp).returncode == 0
    keyring_secret_service.lock()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bblogin", "token", "--profile", "web", "--no-login"],
            capture_output=True, text=True, timeout=60, env={**os.environ, "BBLOGIN_KEYRING_TIMEOUT": "3"}, stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 6 and done.stdout == ""
        assert "unlock" in done.stderr
    finally:
        keyring_secret_service.unlock()
    assert bblogin("token", "--profile", "web", "--no-login").returncode == 0


def test_verbose_never_prints_a_token(keyring_secret_service, devidp, browser: pathlib.Path) -> None:
    done = bblogin("-vv", "login", "--profile", "web", "--issuer", devidp.issuer, "--client-id", "bblogin", "--flow", "loopback", "--timeout", "30")
    assert done.returncode == 0, done.stderr
    token = bblogin("token", "--profile", "web", "--no-login").stdout.strip()
    verbose = bblogin("-vv", "token", "--profile", "web", "--no-login")
    assert token and token not in done.stderr and token not in verbose.stderr
    assert_no_secret_in(done.stderr, verbose.stderr)  # the refresh token too: opaque, no "eyJ" to spot
    assert "eyJ" not in done.stderr + verbose.stderr
