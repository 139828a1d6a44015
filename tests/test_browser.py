"""The loopback and device logins through a real browser (headless Chromium) and the dev IdP's pages."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time
import urllib.parse
from typing import Any

import pytest

from tests.test_session import bblogin

HANDOFF = pathlib.Path(__file__).parent / "tools" / "browser_handoff.py"


@pytest.fixture
def handoff(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    path = tmp_path / "urls"
    path.touch()
    monkeypatch.setenv("BROWSER", f"{sys.executable} {HANDOFF} %s")
    monkeypatch.setenv("BBLOGIN_TEST_BROWSER_HANDOFF", str(path))
    return path


def start_login(idp: Any, flow: str, *extra: str) -> subprocess.Popen[str]:
    args = ["login", "--profile", "web", "--issuer", idp.issuer, "--client-id", "bblogin", "--connector-id", "bitbucket-cloud", "--flow", flow, "--timeout", "60", *extra]
    return subprocess.Popen([sys.executable, "-m", "bblogin", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())


def wait_for_url(handoff: pathlib.Path) -> str:
    for _ in range(200):
        lines = handoff.read_text().splitlines()
        if lines:
            return lines[0]
        time.sleep(0.05)
    raise AssertionError("bblogin never launched the browser")


def sign_in_at_bitbucket(page: Any) -> None:
    page.get_by_role("button", name="Alice Example").click()
    page.get_by_role("button", name="Grant access").click()


def visible_text(page: Any) -> str:
    return page.inner_text("body")


def test_loopback_login_in_chromium(keyring_secret_service, devidp_factory, handoff, page, screenshot) -> None:
    idp = devidp_factory(auto_approve=False)
    proc = start_login(idp, "loopback")
    url = wait_for_url(handoff)
    page.goto(url)
    assert "Log in to Bitbucket" in visible_text(page)
    screenshot("bitbucket-login")
    sign_in_at_bitbucket(page)
    page.wait_for_load_state()
    text = visible_text(page)
    assert "close this tab" in text and "127.0.0.1" in page.url
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)["code"][0]
    assert code not in text and "eyJ" not in text
    screenshot("success")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Logged in as alice@example.com" in err
    assert handoff.read_text().count("\n") == 1  # exactly one browser launch
    assert idp.count("/token", "authorization_code") == 1


def test_device_login_in_chromium(keyring_secret_service, devidp_factory, page, screenshot) -> None:
    idp = devidp_factory(auto_approve=False, device_interval=1)
    proc = start_login(idp, "device", "--no-browser")
    assert proc.stderr is not None
    complete = None
    for _ in range(40):
        line = proc.stderr.readline()
        if "user_code=" in line:
            complete = line.split()[-1]
            break
    assert complete, "bblogin printed no verification_uri_complete"
    page.goto(complete)
    page.get_by_role("button", name="Submit").click()
    sign_in_at_bitbucket(page)
    page.wait_for_load_state()
    assert "Login successful" in visible_text(page)
    screenshot("device-success")
    proc.wait(timeout=60)
    assert proc.returncode == 0, proc.stderr.read()
    assert json.loads(bblogin("status", "--json").stdout)["accounts"][0]["email"] == "alice@example.com"


def test_denied_consent_stores_nothing(devidp_factory, handoff, page, screenshot) -> None:
    idp = devidp_factory(auto_approve=False)
    proc = start_login(idp, "loopback", "--insecure-storage")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(wait_for_url(handoff)).query)
    redirect, state = query["redirect_uri"][0], query["state"][0]
    # what an IdP that honours a denial sends the browser back with (dex shows its own error page instead)
    page.goto(f"{redirect}?error=access_denied&error_description=The+user+denied+access&state={state}")
    text = visible_text(page)
    assert "did not complete" in text and "access_denied" in text
    screenshot("denied")
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 8 and "access_denied" in err
    assert json.loads(bblogin("accounts", "--json").stdout)["accounts"] == []


def test_stale_tab_never_completes_a_login(keyring_secret_service, devidp_factory, handoff, page, screenshot) -> None:
    idp = devidp_factory(auto_approve=False)
    proc = start_login(idp, "loopback")
    url = wait_for_url(handoff)
    redirect = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["redirect_uri"][0]
    page.goto(f"{redirect}?code=from-an-old-attempt&state=stale")
    assert "does not belong" in visible_text(page)
    screenshot("stale")
    page.goto(url)
    sign_in_at_bitbucket(page)
    page.wait_for_load_state()
    proc.communicate(timeout=60)
    assert proc.returncode == 0
    with pytest.raises(Exception):  # the listener is gone: a reload reaches nothing, starts nothing
        page.goto(f"{redirect}?code=again&state=stale", timeout=5000)
    assert idp.count("/token", "authorization_code") == 1
