"""The refresh margin: capped for short-lived tokens, and `status` says what `token` will do."""

from __future__ import annotations

import json
import re

import pytest

from bblogin import _index
from tests.test_session import bblogin, login, make_expiring

pytestmark = pytest.mark.usefixtures("keyring_secret_service")


def test_tokens_shorter_lived_than_the_margin_are_not_refreshed_on_every_call(devidp_factory) -> None:
    idp = devidp_factory(id_token_ttl=40)  # shorter than the default 60 s margin
    login(idp)
    for _ in range(3):
        done = bblogin("token", "--profile", "dev", "--no-login")
        assert done.returncode == 0, done.stderr
    assert idp.count("/token", "refresh_token") == 0  # margin capped at 40 / 4 = 10 s
    account = next(iter(_index.load().accounts.values()))
    lifetime = account.tokens["id_token"]["expires_at"] - account.tokens["id_token"]["issued_at"]
    assert 30 <= lifetime <= 40  # as seen from here: recorded when the token arrived
    view = json.loads(bblogin("status", "--json").stdout)["accounts"][0]
    margin = view["tokens"]["id_token"]["refresh_margin"]
    assert margin == lifetime // 4 and view["state"] == "valid"
    assert f"refresh margin {margin} s (capped from 60 s" in bblogin("status").stdout


def test_status_says_what_token_will_do_inside_the_margin(devidp_factory) -> None:
    idp = devidp_factory(id_token_ttl=3600)
    login(idp)
    make_expiring("dev", seconds_left=44)  # still valid, but inside the 60 s margin
    status = json.loads(bblogin("status", "--json").stdout)["accounts"][0]
    assert status["state"].startswith("expiring (the next use refreshes it)")
    assert "inside its refresh margin 60 s" in status["tokens"]["id_token"]["expiry"]
    idp.revoke_refresh_tokens()
    token = bblogin("token", "--profile", "dev", "--no-login")
    assert token.returncode == 4 and "refused the refresh token" in token.stderr
    token = bblogin("token", "--profile", "dev", "--no-login")  # the refusal is remembered
    assert token.returncode == 4 and "no valid id token" in token.stderr
    status = json.loads(bblogin("status", "--json").stdout)["accounts"][0]
    assert status["state"].startswith("login needed")
    left = re.fullmatch(r"valid (\d+) s more \(until .*\); inside its refresh margin 60 s", status["tokens"]["id_token"]["expiry"])
    assert left and 10 < int(left[1]) <= 44, status  # what is left of the 44 s, however slowly the calls between ran
    assert "login needed" in bblogin("status").stdout
