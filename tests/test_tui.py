"""The TUI, driven by Textual's Pilot: every action, against a fixed fake and against the real core."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from bblogin._errors import RefreshTokenDead
from bblogin.tui.app import AccountsApp
from bblogin.tui.screens.confirm import Confirm
from bblogin.tui.screens.help import HelpScreen
from bblogin.tui.source import usage_view
from bblogin.tui.usage import Use, exec_target, kube_uses
from bblogin.tui.widgets.accounts import AccountTable, fit
from bblogin.tui.widgets.details import Details, Usage

NOW = 1_800_000_000  # 2027-01-15 08:00:00 UTC
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXRoYXQtaXMtbG9uZw"
HOSTILE = "Bob [/] [b]x[/b] [link=https://evil.example]y"


@pytest.fixture(autouse=True)
def fixed_world(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Snapshots and times in UTC; no kubeconfig of this machine; dark theme unless a test says."""
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    for var in ("NO_COLOR", "BBLOGIN_THEME", "COLORFGBG"):
        monkeypatch.delenv(var, raising=False)
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def view(account_id: str, profile: str, email: str, *, active: bool, state: str = "valid", plaintext: bool = False, groups: tuple[str, ...] = ("acme",), name: str | None = None) -> dict[str, Any]:
    return {
        "id": account_id, "profile": profile, "active": active, "provider": "oidc", "issuer": "https://dex.example.com/dex",
        "client_id": "bblogin", "sub": "Ci" + account_id, "email": email, "name": name or email.split("@")[0], "username": email.split("@")[0],
        "groups": list(groups), "state": state, "storage": "plaintext" if plaintext else "keyring",
        "storage_description": "plaintext file" if plaintext else "OS keyring (SecretService Keyring)", "plaintext": plaintext,
        "tokens": {"id_token": {"expires_at": NOW + 3600, "expiry": ""}, "refresh_token": {"expires_at": None, "expiry": "held"}},
        "profile_configured": True, "kube_problems": [],
    }


# kubeconfig contexts and git hosts as source.CoreSource finds them; "staging" names no profile (the default: work)
CONTEXTS = [Use("prod", "work", None), Use("staging", None, None), Use("sandbox", "work", "bob@example.com"), Use("lab", "home", None)]
HOSTS = [Use("https://bitbucket.org", "work", None)]


class FakeSource:
    def __init__(self, *, hostile: bool = False) -> None:
        self.views = [
            view("a1", "work", "alice@example.com", active=True, groups=("acme", "platform-team")),
            view("b2", "work", "bob@example.com", active=False, state="expired (will refresh)"),
            view("c3", "home", "carol@example.org", active=True, plaintext=True, groups=()),
        ]
        if hostile:  # names anyone can choose at Bitbucket, and a very long one
            self.views[1].update(name=HOSTILE, groups=["[red]team[/red]", "ops\x1b[2J"], email="bob.with.a.really.long.address@subdomain.example.com")
        self.calls: list[tuple[str, str]] = []
        self.fail_refresh = False
        self.hostile = hostile

    def now(self) -> int:
        return NOW

    def profiles(self) -> list[str]:
        return ["home", "work"]

    def _find(self, query: str, profile: str) -> Any:
        from bblogin._errors import AccountNotFound

        hit = next((v for v in self.views if v["profile"] == profile and query in (v["id"], v["email"], v["username"])), None)
        if hit is None:
            raise AccountNotFound(query)
        return type("Hit", (), {"id": hit["id"]})

    def accounts(self) -> list[dict[str, Any]]:
        return [{**v, **usage_view(v["id"], v["profile"], v["active"], "work", CONTEXTS, HOSTS, self._find)} for v in self.views]

    def claims(self, account_id: str) -> dict[str, Any]:
        claims = {"iss": "https://dex.example.com/dex", "sub": "Ci" + account_id, "groups": ["acme"], "exp": NOW + 3600, "iat": NOW - 300, "auth_time": NOW - 86_400}
        if self.hostile:
            claims["name"] = HOSTILE
        return claims
    def token(self, account_id: str, kind: str) -> str | None:
        return TOKEN

    def use(self, account_id: str) -> None:
        self.calls.append(("use", account_id))
        target = next(v for v in self.views if v["id"] == account_id)
        for v in self.views:
            if v["profile"] == target["profile"]:
                v["active"] = v["id"] == account_id

    def refresh(self, account_id: str) -> None:
        self.calls.append(("refresh", account_id))
        if self.fail_refresh:
            raise RefreshTokenDead("the identity provider refused the refresh token", hint="run `bblogin login --profile work`")

    def logout(self, account_id: str) -> None:
        self.calls.append(("logout", account_id))
        self.views = [v for v in self.views if v["id"] != account_id]

    def login(self, profile: str, on_prompt: Callable[[Any], None], on_url: Callable[[str], None]) -> str:
        self.calls.append(("login", profile))
        self.views.append(view("d4", profile, "dave@example.com", active=False))
        return "dave@example.com"


async def settle(pilot: Any) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


@pytest.mark.asyncio
async def test_table_details_and_switch() -> None:
    source = FakeSource()
    app = AccountsApp(source)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one(AccountTable)
        assert table.row_count == 3
        details = str(app.query_one(Details).render())
        assert "alice@example.com" in details and "acme, platform-team" in details and TOKEN not in details
        await pilot.press("down")
        await pilot.press("enter")
        assert ("use", "b2") in source.calls
        assert next(v for v in source.views if v["id"] == "b2")["active"]


@pytest.mark.asyncio
async def test_token_masked_then_revealed_and_copy_asks_first() -> None:
    app = AccountsApp(FakeSource())
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("t")
        text = str(app.query_one(Details).render())
        assert TOKEN not in text and "characters" in text
        await pilot.press("t")
        assert TOKEN in str(app.query_one(Details).render())
        await pilot.press("c")
        assert isinstance(app.screen, Confirm)
        await pilot.press("n")
        assert app.clipboard == ""
        await pilot.press("c", "y")
        assert app.clipboard == TOKEN


@pytest.mark.asyncio
async def test_refresh_logout_and_errors_as_notifications() -> None:
    source = FakeSource()
    app = AccountsApp(source)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("r")
        await settle(pilot)
        assert ("refresh", "a1") in source.calls
        source.fail_refresh = True
        await pilot.press("r")
        await settle(pilot)
        assert any("refused the refresh token" in n.message for n in app._notifications)
        await pilot.press("x")
        assert isinstance(app.screen, Confirm)
        await pilot.press("y")
        await settle(pilot)
        assert ("logout", "a1") in source.calls and app.query_one(AccountTable).row_count == 2


@pytest.mark.asyncio
async def test_filter_help_and_login() -> None:
    source = FakeSource()
    app = AccountsApp(source)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("slash", *"carol")
        assert app.query_one(AccountTable).row_count == 1
        await pilot.press("escape")
        assert app.query_one(AccountTable).row_count == 3
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.press("l")
        await pilot.pause()
        await pilot.press("down", "enter")  # the second profile: work
        await settle(pilot)
        assert ("login", "work") in source.calls
        assert app.query_one(AccountTable).row_count == 4


def test_snapshot_main_80x24(snap_compare: Any) -> None:
    assert snap_compare(AccountsApp(FakeSource()), terminal_size=(80, 24))


def test_snapshot_main_wide(snap_compare: Any) -> None:
    assert snap_compare(AccountsApp(FakeSource()), terminal_size=(120, 36))


def test_snapshot_help(snap_compare: Any) -> None:
    assert snap_compare(AccountsApp(FakeSource()), press=["question_mark"], terminal_size=(80, 24))


@pytest.mark.asyncio
async def test_real_core_device_login_refresh_logout(keyring_secret_service, devidp) -> None:
    from bblogin import _config

    _config.save_profile(_config.Profile(name="dev", issuer=devidp.issuer, client_id="bblogin", connector_id="bitbucket-cloud", flow="device"))
    app = AccountsApp()
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("l")
        for _ in range(100):  # the device flow polls once a second
            await pilot.pause(0.1)
            if app.query_one(AccountTable).row_count:
                break
        await settle(pilot)
        assert "alice@example.com" in str(app.query_one(Details).render())
        await pilot.press("r")
        await settle(pilot)
        assert devidp.count("/token", "refresh_token") == 1
        await pilot.press("x", "y")
        await settle(pilot)
        assert app.query_one(AccountTable).row_count == 0
    assert keyring_secret_service.bblogin_items() == []
