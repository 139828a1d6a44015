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
from rich.cells import cell_len

from bblogin._errors import RefreshTokenDead
from bblogin.tui.app import AccountsApp
from bblogin.tui.screens.confirm import Confirm
from bblogin.tui.screens.help import HelpScreen
from bblogin.tui.source import CoreSource, usage_view
from bblogin.tui.usage import Use, exec_target, kube_uses
from bblogin.tui.widgets.accounts import AccountTable, fit
from bblogin.tui.widgets.details import Details, Identity, Usage

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
    """Wait for the background work: Textual workers and the login thread."""
    for _ in range(300):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        if not pilot.app.login_running:
            return
        await pilot.pause(0.05)
    raise AssertionError("the login did not finish")


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


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (120, 36)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_snapshot_main(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(AccountsApp(FakeSource()), terminal_size=size)


def test_snapshot_inactive_account_hostile_names_80x24(snap_compare: Any) -> None:
    assert snap_compare(AccountsApp(FakeSource(hostile=True)), press=["down"], terminal_size=(80, 24))


def test_snapshot_light_terminal(snap_compare: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLORFGBG", "0;15")  # black on white, as xterm and rxvt say it
    assert snap_compare(AccountsApp(FakeSource()), terminal_size=(100, 30))


def test_snapshot_no_color(snap_compare: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(AccountsApp(FakeSource()), press=["down"], terminal_size=(80, 24))


def test_snapshot_help(snap_compare: Any) -> None:
    assert snap_compare(AccountsApp(FakeSource()), press=["question_mark"], terminal_size=(80, 24))


@pytest.mark.asyncio
async def test_real_core_device_login_refresh_logout(keyring_secret_service, devidp) -> None:
    from bblogin import _config, _configedit

    _configedit.save_profile(_config.Profile(name="dev", issuer=devidp.issuer, client_id="bblogin", connector_id="bitbucket-cloud", flow="device"))
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


# -- fitting 80x24, hostile names, the new views -------------------------------------------------


def screen_lines(app: AccountsApp) -> list[str]:
    """What the terminal shows, line by line."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def assert_fits(app: AccountsApp) -> None:
    """No widget is wider than the screen or can scroll sideways; no horizontal scrollbar anywhere."""
    width = app.size.width
    for widget in app.screen.walk_children(with_self=True):
        if not widget.display or widget.region.area == 0:
            continue
        assert widget.region.right <= width, f"{widget!r} reaches column {widget.region.right}"
        assert not widget.show_horizontal_scrollbar, f"{widget!r} shows a horizontal scrollbar"
        if widget.is_scrollable:  # the table and the details: their content is never wider than they are
            assert widget.max_scroll_x == 0, f"{widget!r} scrolls sideways by {widget.max_scroll_x}"
            assert widget.virtual_size.width <= widget.scrollable_content_region.width, f"{widget!r}: content {widget.virtual_size.width} wide"


def assert_states_whole(app: AccountsApp, source: FakeSource) -> None:
    text = "\n".join(screen_lines(app))
    for v in source.views:
        assert v["state"] + (" · plaintext" if v["plaintext"] else "") in text


@pytest.mark.parametrize("hostile", [False, True])
@pytest.mark.asyncio
async def test_nothing_is_wider_than_80x24(hostile: bool) -> None:
    source = FakeSource(hostile=hostile)
    app = AccountsApp(source)
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(len(source.views)):  # every account's details
            await pilot.pause()
            assert_fits(app)
            assert_states_whole(app, source)
            await pilot.press("down")
        await pilot.press("t", "t")  # a revealed token wraps, it does not widen anything
        await pilot.pause()
        assert_fits(app)
        footer = screen_lines(app)[-1]
        assert "? Help" in footer and "q Quit" in footer, footer
        for keys in (["question_mark"], ["escape", "x"], ["n", "c"]):
            await pilot.press(*keys)
            await pilot.pause()
            assert_fits(app)


def test_columns_give_way_in_the_stated_order() -> None:
    from bblogin.tui.widgets.accounts import cells

    rows = [cells(v) for v in FakeSource().accounts()]
    assert "Name" not in fit(rows, 200)  # every Name repeats its User: dropped even with room
    no_email = [cells({**v, "email": None}) for v in FakeSource().accounts()]
    assert list(fit(no_email, 200)) == ["", "Profile", "Account", "Groups", "State"]  # Account shows the user name already
    rows[0]["Name"] = "Alice Liddell"
    steps = [list(fit(rows, budget)) for budget in (200, 90, 70, 60)]
    assert steps[0] == ["", "Profile", "Account", "Name", "User", "Groups", "State"]
    assert steps[1] == ["", "Profile", "Account", "Name", "User", "State"]  # Groups first
    assert steps[2] == ["", "Profile", "Account", "User", "State"]  # then Name
    assert steps[3] == ["", "Profile", "Account", "State"]  # then User
    assert fit(rows, 52)["Account"] == 14  # then Account gives way, "…" at its end
    narrow = fit(rows, 30)  # narrower than possible: State still whole, the others at their floors
    assert narrow == {"": 1, "Profile": 7, "Account": 12, "State": len("expired (will refresh)")}


@pytest.mark.asyncio
async def test_idp_strings_are_shown_literally_never_as_markup() -> None:
    source = FakeSource(hostile=True)
    app = AccountsApp(source)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("down")
        await pilot.pause()
        details = str(app.query_one(Identity).render()) + str(app.query_one(Details).render())  # wide: two panes
        assert details.count(HOSTILE) == 2 and "[red]team[/red]" in details  # name and claim
        assert "\x1b" not in details and "ops\ufffd[2J" in details  # a control character is shown, never sent
        await pilot.press("u")
        await pilot.pause()
        assert any("bob.with.a.really.long.address@subdomain.example.com" in n.message for n in app._notifications)
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, Confirm)
        await pilot.press("n")


@pytest.mark.asyncio
async def test_device_prompt_from_a_hostile_idp_is_literal() -> None:
    from bblogin.tui.screens.login import LoginProgress

    app = AccountsApp(FakeSource())
    async with app.run_test(size=(80, 24)) as pilot:
        progress = LoginProgress("work [/]")
        await app.push_screen(progress)
        prompt = type("Prompt", (), {"user_code": "[/]AB-CD", "verification_uri": "https://idp.example/device?[b]", "verification_uri_complete": None, "expires_at": time.time() + 300})
        progress.show_device(prompt)
        await pilot.pause()
        text = "\n".join(screen_lines(app))
        assert "[/]AB-CD" in text and "https://idp.example/device?[b]" in text and "work [/]" not in text  # replaced by the code
        assert_fits(app)


@pytest.mark.asyncio
async def test_claims_show_local_time_and_distance(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "IST-5:30")  # a POSIX TZ string: needs no tzdata
    time.tzset()
    app = AccountsApp(FakeSource())
    async with app.run_test(size=(120, 36)):
        details = str(app.query_one(Details).render())
    assert "1800003600  2027-01-15 14:30 IST · in 60 min" in details
    assert "1799999700  2027-01-15 13:25 IST · 5 min ago" in details
    assert "1799913600  2027-01-14 13:30 IST · 24 h ago" in details  # auth_time


@pytest.mark.asyncio
async def test_where_each_account_is_used_and_what_switching_moves() -> None:
    source = FakeSource()
    app = AccountsApp(source)
    async with app.run_test(size=(100, 30)) as pilot:
        usage = str(app.query_one(Usage).render())
        assert "prod, staging" in usage and "https://bitbucket.org" in usage and "sandbox" not in usage  # alice: active in work
        await pilot.press("down")  # bob: pinned by sandbox only; u would move prod, staging and the git host
        usage = str(app.query_one(Usage).render())
        assert "sandbox" in usage and "context prod, context staging, https://bitbucket.org" in usage
        await pilot.press("u")
        await pilot.pause()
        said = [n.message for n in app._notifications]
        assert said[-1] == "bob@example.com is now active for work: kubectl contexts prod, staging and git for https://bitbucket.org now use this identity."
        usage = str(app.query_one(Usage).render())
        assert "prod, staging, sandbox" in usage
        await pilot.press("up")
        assert "kubectl    -" in str(app.query_one(Usage).render())  # alice serves nothing now


KUBECONFIG_A = """
apiVersion: v1
kind: Config
contexts:
- {name: prod, context: {cluster: c1, user: bblogin-work}}
- {name: pinned, context: {cluster: c1, user: bob}}
- {name: other, context: {cluster: c1, user: static}}
users:
- name: bblogin-work
  user:
    exec: {apiVersion: client.authentication.k8s.io/v1, command: /usr/bin/python3, args: [-S, /opt/venv/lib/python3.12/site-packages/bblogin/_launcher.py, kubectl, --profile, work]}
- name: bob
  user:
    exec: {command: bblogin, args: [kubectl, "--profile=work", -a, bob@example.com, --use-access-token]}
- name: static
  user: {token: abc}
"""
KUBECONFIG_B = """
contexts:
- {name: prod, context: {cluster: c2, user: shadowed}}
- {name: default-profile, context: {cluster: c2, user: plain}}
- {name: by-module, context: {cluster: c2, user: module}}
- {name: abbreviated, context: {cluster: c2, user: abbrev}}
- {name: refused, context: {cluster: c2, user: unknown-flag}}
users:
- {name: plain, user: {exec: {command: /home/me/.local/bin/bblogin, args: [kubectl]}}}
- {name: module, user: {exec: {command: python3, args: [-m, bblogin, kubectl, -phome]}}}
- {name: shadowed, user: {exec: {command: bblogin, args: [kubectl, -p, nope]}}}
- {name: abbrev, user: {exec: {command: bblogin, args: [-v, kubectl, --prof, home, --acc, carol]}}}
- {name: unknown-flag, user: {exec: {command: bblogin, args: [kubectl, --profile, work, --no-such-flag]}}}
- {name: kubelogin, user: {exec: {command: kubectl, args: [oidc-login, get-token, --profile, work]}}}
"""


def test_kubeconfig_contexts_are_found_as_kubectl_merges_them(tmp_path: pathlib.Path) -> None:
    a, b, broken = tmp_path / "a", tmp_path / "b", tmp_path / "broken"
    a.write_text(KUBECONFIG_A)
    b.write_text(KUBECONFIG_B)
    broken.write_text("contexts: [unclosed")
    found = kube_uses([str(a), str(tmp_path / "missing"), str(b), str(broken)])
    assert found.contexts == [
        Use("prod", "work", None),  # the first file's prod wins, as in kubectl
        Use("pinned", "work", "bob@example.com"),
        Use("default-profile", None, None),
        Use("by-module", "home", None),
        Use("abbreviated", "home", "carol"),  # argparse's abbreviations, as `bblogin kubectl` accepts them
    ]  # "refused": bblogin would reject its arguments, so it serves nobody
    assert len(found.problems) == 1 and str(broken) in found.problems[0]
    huge = tmp_path / "huge"
    huge.write_bytes(b"# " + b"x" * (4 * 1024 * 1024) + b"\n")
    assert kube_uses([str(huge)]).problems == [f"{huge} cannot be read (ValueError: larger than 4 MiB)"]
    assert exec_target({"user": {"exec": {"command": "kubectl", "args": ["oidc-login", "--profile", "work"]}}}) is None


@pytest.mark.asyncio
async def test_real_core_shows_kubeconfig_contexts_and_git_hosts(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, keyring_secret_service: Any) -> None:
    from bblogin import _config, _configedit, _index
    from bblogin._index import Account

    _configedit.save_profile(_config.Profile(name="work", issuer="https://dex.example.com/dex", client_id="bblogin"))
    _configedit.save_git_host(_config.GitHost(url="https://bitbucket.org", profile="work"))
    (tmp_path / "kubeconfig").write_text(KUBECONFIG_A)
    (tmp_path / "broken").write_text("users: [")
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(tmp_path / "kubeconfig"), str(tmp_path / "broken")]))
    with _index.transaction() as index:
        for sub, email in (("alice", "alice@example.com"), ("bob", "bob@example.com")):
            index.accounts[sub] = Account(id=sub, profiles=["work"], provider="oidc", issuer="https://dex.example.com/dex", client_id="bblogin", sub=sub, email=email, username=sub)
        index.active["work"] = "alice"
    app = AccountsApp()
    async with app.run_test(size=(100, 30)) as pilot:
        usage = str(app.query_one(Usage).render())
        assert "prod" in usage and "pinned" not in usage and "https://bitbucket.org" in usage
        assert f"{tmp_path / 'broken'} cannot be read" in usage  # said, never raised
        await pilot.press("down", "u")
        await pilot.pause()
        assert _index.load().active["work"] == "bob"
        assert any("kubectl context prod and git for https://bitbucket.org now use this identity" in n.message for n in app._notifications)
        assert "prod, pinned" in str(app.query_one(Usage).render())

    with _index.transaction() as index:  # a login whose profile was deleted from config.toml serves nobody
        index.accounts["dora"] = Account(id="dora", profiles=["gone"], provider="oidc", issuer="https://dex.example.com/dex", client_id="bblogin", sub="dora", email="dora@example.com")
        index.active["gone"] = "dora"
    dora = next(v for v in CoreSource().accounts() if v["token_set"] == "dora")
    assert dora["unused"].startswith("its profile gone is not in ") and dora["kube_contexts"] == dora["git_hosts"] == []
    assert dora["follows_active"] == {"kube_contexts": [], "git_hosts": []}


def test_no_terminal_no_tui_even_with_stdin_closed() -> None:
    done = subprocess.run([sys.executable, "-m", "bblogin", "tui"], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, close_fds=True, preexec_fn=lambda: os.close(0))
    assert done.returncode == 2 and "needs a terminal" in done.stderr, done


@pytest.mark.parametrize("argv", [["tui"], []])
def test_no_terminal_no_tui(argv: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", "bblogin", *argv], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, env={**os.environ, "TERM": "xterm"})
    assert done.returncode == 2, done
    assert "needs a terminal" in done.stderr, done.stderr
    if not argv:  # plain `bblogin`: says why it did not open the TUI and what to run instead, not a page of --help
        assert "usage:" in done.stderr and "bblogin status" in done.stderr and "positional arguments" not in done.stderr


@pytest.mark.asyncio
async def test_escape_hides_a_login_in_progress_and_its_result_still_arrives() -> None:
    import threading

    from bblogin.tui.screens.login import LoginProgress

    release = threading.Event()

    class SlowLogin(FakeSource):
        def login(self, profile: str, on_prompt: Callable[[Any], None], on_url: Callable[[str], None]) -> str:
            on_url("https://idp.example/auth?x=[/]")
            release.wait(30)
            return super().login(profile, on_prompt, on_url)

    source = SlowLogin()
    app = AccountsApp(source)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("l")
        await pilot.pause()
        await pilot.press("enter")  # profile home
        for _ in range(50):
            await pilot.pause(0.05)
            if "idp.example" in "\n".join(screen_lines(app)):
                break
        assert isinstance(app.screen, LoginProgress) and "https://idp.example/auth?x=[/]" in "\n".join(screen_lines(app))
        await pilot.press("escape")
        assert not isinstance(app.screen, LoginProgress)
        release.set()
        await settle(pilot)
        assert any(n.message == "Logged in as dave@example.com" for n in app._notifications)
        assert app.query_one(AccountTable).row_count == 4


@pytest.mark.asyncio
async def test_resizing_refits_the_table_and_switches_layout() -> None:
    source = FakeSource()
    source.views[0]["name"] = "Alice Liddell"  # a Name that says something: kept while there is room
    app = AccountsApp(source)
    async with app.run_test(size=(170, 30)) as pilot:
        table = app.query_one(AccountTable)
        await pilot.pause()
        assert app.screen.has_class("-wide") and table.visible_columns == ["", "Profile", "Account", "Name", "User", "Groups", "State"]
        assert app.query_one(Details).region.x >= table.region.right  # beside the table
        for size, columns in (((100, 30), ["", "Profile", "Account", "Name", "User", "Groups", "State"]), ((80, 24), ["", "Profile", "Account", "Name", "User", "State"]), ((60, 20), ["", "Profile", "Account", "State"])):
            await pilot.resize_terminal(*size)
            await pilot.pause()
            assert not app.screen.has_class("-wide") and table.visible_columns == columns, size
            assert app.query_one(Details).region.y >= table.region.bottom  # below it
            assert_states_whole(app, source)
            if size[0] >= 80:
                assert_fits(app)
            else:  # narrower than the key bar: the table still fits, help and quit stay, nothing shows a scrollbar
                assert table.max_scroll_x == 0 and "? Help q Quit" in screen_lines(app)[-1]
                assert not any(w.show_horizontal_scrollbar for w in app.screen.walk_children())


def test_quitting_does_not_wait_for_a_login_in_progress() -> None:
    import asyncio
    import threading

    release = threading.Event()

    class EndlessLogin(FakeSource):
        def login(self, profile: str, on_prompt: Callable[[Any], None], on_url: Callable[[str], None]) -> str:
            on_url("https://idp.example/auth")
            release.wait(60)  # a person who never approves
            return super().login(profile, on_prompt, on_url)

    async def run() -> None:
        app = AccountsApp(EndlessLogin())
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("l")
            await pilot.pause()
            await pilot.press("enter", "escape")
            await pilot.press("l")
            await pilot.pause()
            await pilot.press("enter")
            await pilot.pause()
            assert any("already in progress" in n.message for n in app._notifications)  # one login at a time
            await pilot.press("q")

    started = time.monotonic()
    try:
        asyncio.run(run())
        assert time.monotonic() - started < 10  # not the 60 s the login would hold it
    finally:
        release.set()


@pytest.mark.asyncio
async def test_details_are_reachable_and_scrollable_by_keys() -> None:
    app = AccountsApp(FakeSource())
    async with app.run_test(size=(80, 24)) as pilot:
        scroll = app.query_one("#details-scroll")
        assert scroll.max_scroll_y > 0  # the claims go below the fold at 80x24
        await pilot.press("tab")
        assert app.focused is scroll
        await pilot.press("pagedown")
        await pilot.pause()
        assert scroll.scroll_y > 0
        await pilot.press("shift+tab")
        assert isinstance(app.focused, AccountTable)


@pytest.mark.asyncio
async def test_a_long_state_is_short_in_the_table_and_whole_in_the_details() -> None:
    source = FakeSource()
    long_state = "not used: profile work now names https://other-idp.example.com/dex (client another-client)"
    source.views[1]["state"] = long_state
    app = AccountsApp(source)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("down")
        await pilot.pause()
        assert_fits(app)
        table = app.query_one(AccountTable)
        assert str(table.get_cell("b2", "State")) == "not used"
        assert long_state in str(app.query_one(Details).render()).replace("\n", " ")


@pytest.mark.asyncio
async def test_an_outage_is_in_the_state_and_the_details() -> None:
    """#24: the same words as `bblogin status` (both come from _views.describe)."""
    source = FakeSource()
    note = "the identity provider is failing since 12:01:02 (1 failed attempt: cannot connect to dex.example.com: Connection refused); next try at 12:01:17 (in 15 s)"
    source.views[1]["state"] = "served from the cache while the identity provider is failing (next try at 12:01:17)"
    source.views[1]["outage"] = {"note": note}
    app = AccountsApp(source)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("down")
        await pilot.pause()
        shown = (str(app.query_one(Identity).render()) + str(app.query_one(Details).render())).replace("\n", " ")
        assert "outage" in shown and "Connection refused" in " ".join(shown.split())  # the note: only the outage line has the cause


@pytest.mark.asyncio
async def test_an_account_its_profile_no_longer_names_serves_no_context_or_host(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, keyring_secret_service: Any) -> None:
    """`bblogin kubectl`/git refuse an account whose profile now names another issuer or client
    (_session.issued_for): the TUI must not say it serves their contexts and hosts — nor that
    switching to it would move them. The same for an exec entry whose flags point elsewhere."""
    from bblogin import _config, _configedit, _index
    from bblogin._index import Account

    _configedit.save_profile(_config.Profile(name="work", issuer="https://other-idp.example.com", client_id="bblogin"))
    _configedit.save_git_host(_config.GitHost(url="https://bitbucket.org", profile="work"))
    (tmp_path / "kubeconfig").write_text(KUBECONFIG_A)
    with _index.transaction() as index:
        for sub in ("alice", "bob"):
            index.accounts[sub] = Account(
                id=sub, profiles=["work"], shape=_config.Profile(name="work", issuer="https://dex.example.com/dex", client_id="bblogin").shape,
                provider="oidc", issuer="https://dex.example.com/dex", client_id="bblogin", sub=sub, email=f"{sub}@example.com",
            )
        index.active["work"] = "alice"
    for account in CoreSource().accounts():
        assert account["state"].startswith("not used")
        assert account["kube_contexts"] == account["git_hosts"] == [], account["id"]
        assert account["follows_active"] == {"kube_contexts": [], "git_hosts": []}
        assert account["unused"]

    # the profile names the account's issuer again, but an exec entry overrides it with flags
    _configedit.save_profile(_config.Profile(name="work", issuer="https://dex.example.com/dex", client_id="bblogin"))
    (tmp_path / "kubeconfig").write_text(KUBECONFIG_A.replace("--profile, work]}", "--profile, work, --issuer, 'https://other-idp.example.com']}"))
    alice = next(v for v in CoreSource().accounts() if v["token_set"] == "alice")
    assert alice["kube_contexts"] == [] and alice["git_hosts"] == ["https://bitbucket.org"]
    bob = next(v for v in CoreSource().accounts() if v["token_set"] == "bob")
    assert bob["kube_contexts"] == ["pinned"] and bob["follows_active"]["kube_contexts"] == []


def test_a_kubeconfig_with_odd_types_or_alias_bombs_is_no_use_and_no_hang(tmp_path: pathlib.Path) -> None:
    """kubectl wants strings for exec command and args; YAML aliases must not be expanded by str()."""
    bomb = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    bomb += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 7)]
    doc = "\n".join(bomb) + """
contexts:
- {name: bomb, context: {cluster: c, user: bomb}}
- {name: cmd, context: {cluster: c, user: cmd}}
- {name: ints, context: {cluster: c, user: ints}}
users:
- {name: bomb, user: {exec: {command: bblogin, args: [kubectl, *a6]}}}
- {name: cmd, user: {exec: {command: *a6, args: [kubectl]}}}
- {name: ints, user: {exec: {command: bblogin, args: [kubectl, --profile, 7]}}}
"""
    path = tmp_path / "kubeconfig"
    path.write_text(doc)
    started = time.monotonic()
    assert kube_uses([str(path)]).contexts == []
    assert time.monotonic() - started < 5


def test_a_kubeconfig_that_is_a_fifo_does_not_hang(tmp_path: pathlib.Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    import concurrent.futures

    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:  # a thread: were the FIFO opened for a blocking read, this test would say so, not hang
        found = pool.submit(kube_uses, [str(fifo), str(loop), str(tmp_path)]).result(timeout=10)
    finally:
        try:  # a reader stuck on the FIFO gets its end of file, so the thread ends too
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:  # no reader: nothing is stuck
            pass
        pool.shutdown(wait=False)
    assert found.contexts == [] and len(found.problems) == 3
    assert ["not a regular file" in p for p in found.problems] == [True, False, True] and "Too many levels" in found.problems[1], found.problems


@pytest.mark.parametrize("size", [(80, 24), (130, 30)])
@pytest.mark.asyncio
async def test_a_long_used_by_panel_is_reachable_by_keys(size: tuple[int, int], monkeypatch: pytest.MonkeyPatch) -> None:
    """Sixty contexts and a list of unreadable kubeconfig files do not fit under the table: the
    panel scrolls, and tab reaches it, so its last line (the problems) can be read without a mouse."""
    source = FakeSource()
    for v in source.views:
        v["kube_problems"] = [f"/home/me/.kube/file{i} cannot be read" for i in range(15)]
    monkeypatch.setattr(sys.modules[__name__], "CONTEXTS", [Use(f"cluster-{i:02d}-eu-west", "work", None) for i in range(60)])
    app = AccountsApp(source)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        assert_fits(app)
        assert "file14 cannot be read" not in "\n".join(screen_lines(app))
        for _ in range(3):
            await pilot.press("tab")
            if app.focused is app.query_one("#used"):
                break
        assert app.focused is app.query_one("#used"), app.focused
        await pilot.press("end")
        await pilot.pause()
        assert "file14 cannot be read" in "\n".join(screen_lines(app))
        assert_fits(app)


@pytest.mark.asyncio
async def test_claims_with_times_beyond_the_calendar_do_not_crash_the_tui() -> None:
    """A signed ID token may carry any integer: auth_time and nbf are not checked at login, exp
    only against now. time.localtime/gmtime refuse such values (OverflowError, OSError)."""
    from bblogin._timefmt import describe_expiry, rfc3339

    source = FakeSource()
    odd = {"auth_time": 10**20, "exp": 2**63, "nbf": -(10**17), "iat": 253_402_300_800}
    source.claims = lambda account_id: odd  # type: ignore[method-assign]
    source.views[0]["tokens"]["id_token"]["expires_at"] = 10**20
    app = AccountsApp(source)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        text = "\n".join(screen_lines(app))
        assert "100000000000000000000" in text and "beyond the calendar" in text
        assert "expires beyond the calendar" in text
    assert describe_expiry(10**20, NOW).startswith("valid ")
    assert rfc3339(10**20) == "9999-12-31T23:59:59Z" and rfc3339(-(10**17)) == "1970-01-01T00:00:00Z"


@pytest.mark.asyncio
async def test_a_long_or_wide_claim_name_does_not_push_the_values_away() -> None:
    source = FakeSource()
    source.claims = lambda account_id: {"x" * 300: "v", "exp": NOW + 3600, "グループ": "acme"}  # type: ignore[method-assign]
    app = AccountsApp(source)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        lines = str(app.query_one(Details).render()).splitlines()
        exp = next(line for line in lines if line.startswith("exp"))
        assert exp.index(str(NOW + 3600)) <= 24, exp  # aligned with the other claims, not after 300 columns
        wide = next(line for line in lines if line.startswith("グループ"))
        assert cell_len(wide[: wide.index("acme")]) == exp.index(str(NOW + 3600))  # same column in cells
        assert_fits(app)


def test_the_kubectl_bblogin_plugin_script_is_a_use() -> None:
    """`kubectl-bblogin [options]` is `bblogin kubectl [options]` (_cli.kubectl_main)."""
    assert exec_target({"user": {"exec": {"command": "/home/me/.local/bin/kubectl-bblogin", "args": ["--profile", "work", "-a", "bob"]}}}) == ("work", "bob", ())
    assert exec_target({"user": {"exec": {"command": "kubectl-bblogin"}}}) == (None, None, ())
    assert exec_target({"user": {"exec": {"command": "kubectl-bblogin", "args": ["status"]}}}) is None  # another command


def test_an_unchanged_kubeconfig_is_not_parsed_again(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The TUI rereads the kubeconfigs on every action (u, r, x, login); parsing a big one takes
    seconds of pure Python in the UI thread, so an unchanged file is parsed once."""
    from ruamel.yaml import YAML

    parses = []
    real = YAML.load
    monkeypatch.setattr(YAML, "load", lambda self, data: parses.append(1) or real(self, data))
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG_A)
    first = kube_uses([str(path)])
    assert kube_uses([str(path)]) == first and len(parses) == 1
    path.write_text(KUBECONFIG_A.replace("name: prod", "name: production"))
    assert Use("production", "work", None) in kube_uses([str(path)]).contexts and len(parses) == 2


def test_switching_to_an_account_kubectl_refuses_says_so() -> None:
    from bblogin.tui.app import switch_message

    refused = {**view("b2", "work", "bob@example.com", active=True), "unused": "its profile work now names https://other (client x); kubectl and git do not use this login"}
    refused.update(usage_view("b2", "work", True, "work", CONTEXTS, HOSTS, lambda q, p: None, usable=False))
    said = switch_message(refused)
    assert "kubectl and git do not use it" in said and "now names https://other" in said and "follows" not in said


def test_an_exec_entry_running_another_bblogin_command_is_no_use() -> None:
    """`bblogin token --profile kubectl` prints a token, not an ExecCredential: not a use of the
    default profile just because the word kubectl is among its arguments."""
    assert exec_target({"user": {"exec": {"command": "bblogin", "args": ["token", "--profile", "kubectl"]}}}) is None
    assert exec_target({"user": {"exec": {"command": "python3", "args": ["-m", "bblogin", "status", "kubectl"]}}}) is None
    assert exec_target({"user": {"exec": {"command": "bblogin", "args": ["kubectl", "-p", "kubectl"]}}}) == ("kubectl", None, ())
