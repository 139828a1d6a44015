"""The account switcher: a table of accounts, the selected one's details, and keys for every
action. Slow work (refresh, login, logout) runs in worker threads; errors become notifications.

Layout: below WIDE columns the table (sized to its rows) sits above the details; from WIDE on,
the details sit beside it. Nothing scrolls sideways: the table drops or shortens columns to fit
(see ``widgets.accounts``), text wraps. Strings from the IdP are never markup (``tui.text``)."""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any, ClassVar

from textual import events, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, Header, Input

from bblogin._errors import BbloginError
from bblogin.tui.screens.confirm import Confirm
from bblogin.tui.screens.help import HelpScreen
from bblogin.tui.screens.login import ChooseProfile, LoginProgress
from bblogin.tui.source import AccountSource, CoreSource
from bblogin.tui.text import clean
from bblogin.tui.widgets.accounts import AccountTable
from bblogin.tui.widgets.details import Details, Identity, Usage


WIDE = 120  # columns from which the details sit beside the table
DETAILS_WIDE = 62  # what the details keep beside it: a claim with its local time on one line
SCROLLBAR = 1  # the table's vertical scrollbar (app.tcss), kept free so no row is ever cut


def light_terminal() -> bool:
    """``BBLOGIN_THEME=light|dark`` decides; else the terminal's ``COLORFGBG`` (``15;0``: light on
    dark) when it says the background is white or light grey."""
    chosen = os.environ.get("BBLOGIN_THEME", "").lower()
    if chosen in ("light", "dark"):
        return chosen == "light"
    return os.environ.get("COLORFGBG", "").rpartition(";")[2] in ("7", "15")


def label(view: dict[str, Any]) -> str:
    return clean(view["email"] or view["username"] or view["sub"])


def switch_message(view: dict[str, Any]) -> str:
    """What making ``view`` active changes: the contexts and hosts that follow its profile's active account."""
    if view.get("unused"):  # active now, yet kubectl and git refuse it: never say "nothing follows"
        return f"{label(view)} is now active for {clean(view['profile'])}, but kubectl and git do not use it: {clean(view['unused'])}."
    follows = view.get("follows_active") or {}
    parts = []
    if follows.get("kube_contexts"):
        parts.append("kubectl context" + ("s " if len(follows["kube_contexts"]) > 1 else " ") + ", ".join(clean(c) for c in follows["kube_contexts"]))
    if follows.get("git_hosts"):
        parts.append("git for " + ", ".join(clean(h) for h in follows["git_hosts"]))
    where = " and ".join(parts) + " now use this identity" if parts else f"no kubeconfig context or git host follows {clean(view['profile'])}'s active account"
    return f"{label(view)} is now active for {clean(view['profile'])}: {where}."


class Overflow(VerticalScroll):
    """A region that scrolls when its content is taller than it, and only then is a tab stop."""

    def allow_focus(self) -> bool:
        return self.max_scroll_y > 0


class AccountsApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "bblogin"
    SUB_TITLE = "accounts"
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (WIDE, "-wide")]
    # Help and Quit first (as nano does): on a terminal narrower than the key bar they are the ones kept
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
        Binding("u", "use", "Use"),
        Binding("l", "login", "Log in"),
        Binding("r", "refresh", "Refresh"),
        Binding("x", "logout", "Log out"),
        Binding("t", "token", "Token"),
        Binding("c", "copy", "Copy"),
        Binding("slash", "filter", "Filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self, source: AccountSource | None = None) -> None:
        super().__init__()
        self.source: AccountSource = source or CoreSource()
        self.views: list[dict[str, Any]] = []
        self.needle = ""
        self.shown_token: tuple[str, bool] | None = None  # (account id, revealed)
        self.login_running = False

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Input(placeholder="filter: name, email, group, profile", id="filter")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield AccountTable(id="accounts")
                # scrolls (and tab reaches it) when Used by lists more than fits under the table
                with Overflow(id="used"):
                    usage = Usage(id="usage")
                    usage.border_title = "Used by"
                    yield usage
                    yield Identity(id="identity")  # shown in the wide layout only
            with VerticalScroll(id="details-scroll"):
                yield Details(id="details")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        if light_terminal():
            self.theme = "textual-light"
        self.reload()
        self.query_one(AccountTable).focus()

    # -- data ------------------------------------------------------------------------------------
    def reload(self) -> None:
        try:
            self.views = self.source.accounts()
        except BbloginError as exc:
            self.views = []
            self.notify(exc.message, title="Cannot read accounts", severity="error", markup=False)
        self.show_table()
        self.show_details()

    def show_table(self, width: int | None = None) -> None:
        width = width or self.size.width
        wide = width >= WIDE
        budget = (width - DETAILS_WIDE if wide else width) - SCROLLBAR
        used = self.query_one(AccountTable).show(self.views, self.needle, budget)
        # wide: the left column is exactly as wide as the table; narrow: the whole width (app.tcss)
        self.query_one("#left").styles.width = used + SCROLLBAR if wide else None
        if self.query_one(Details).split != wide:
            self.query_one(Details).split = wide
            self.show_details()

    def on_resize(self, event: events.Resize) -> None:
        self.show_table(event.size.width)  # self.size still has the old size here

    def selected(self) -> dict[str, Any] | None:
        account_id = self.query_one(AccountTable).selected_id
        return next((v for v in self.views if v["id"] == account_id), None)

    def show_details(self) -> None:
        view = self.selected()
        claims: dict[str, Any] = {}
        token = None
        revealed = False
        if view is not None:
            try:
                claims = self.source.claims(view["id"])
                if self.shown_token and self.shown_token[0] == view["id"]:
                    token = self.source.token(view["id"], "id_token")
                    revealed = self.shown_token[1]
            except BbloginError as exc:
                self.notify(exc.message, title="Cannot read the token", severity="error", markup=False)
        self.query_one(Details).show(view, claims, self.source.now(), token, revealed)
        self.query_one(Identity).show(view, self.source.now())
        self.query_one(Usage).show(view)

    def on_data_table_row_selected(self, _event: AccountTable.RowSelected) -> None:
        self.action_use()  # enter on a row

    def on_data_table_row_highlighted(self, _event: AccountTable.RowHighlighted) -> None:
        self.shown_token = None
        self.show_details()

    # -- actions -----------------------------------------------------------------------------------
    def action_use(self) -> None:
        view = self.selected()
        if view is None:
            return
        try:
            self.source.use(view["id"])
        except BbloginError as exc:
            self.notify(exc.message, severity="error", markup=False)
            return
        self.reload()
        now = next((v for v in self.views if v["id"] == view["id"]), view)
        self.notify(switch_message(now), timeout=8, markup=False)

    def action_refresh(self) -> None:
        view = self.selected()
        if view is not None:
            self.notify(f"Refreshing {label(view)}…", markup=False)
            self._background(lambda: self.source.refresh(view["id"]), "Refreshed", "Refresh failed")

    def action_logout(self) -> None:
        view = self.selected()
        if view is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._background(lambda: self.source.logout(view["id"]), "Logged out", "Logout failed")

        self.push_screen(Confirm(f"Log out {label(view)} ({clean(view['profile'])})?\nIts tokens are deleted from this machine."), answered)

    def action_token(self) -> None:
        view = self.selected()
        if view is None:
            return
        revealed = bool(self.shown_token and self.shown_token[0] == view["id"])  # second press reveals
        self.shown_token = (view["id"], revealed)
        self.show_details()

    def action_copy(self) -> None:
        view = self.selected()
        if view is None:
            return

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            try:
                token = self.source.token(view["id"], "id_token") or self.source.token(view["id"], "access_token")
            except BbloginError as exc:
                self.notify(exc.message, severity="error", markup=False)
                return
            if token is None:
                self.notify("This account has no token to copy; refresh or log in first", severity="warning")
                return
            self.copy_to_clipboard(token)
            self.notify("Token copied. It is a secret: paste it only where it belongs, then clear your clipboard.", severity="warning")

        self.push_screen(Confirm("Copy the ID token to the clipboard?\nAnyone who reads your clipboard can use it until it expires."), answered)

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("visible")
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.remove_class("visible")
        self.needle = ""
        self.reload()
        self.query_one(AccountTable).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.needle = event.value
        self.show_table()
        self.show_details()

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self.query_one(AccountTable).focus()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_login(self) -> None:
        profiles = self.source.profiles()
        if not profiles:
            self.notify("No profiles yet: create one with `bblogin login --profile NAME --issuer URL --client-id ID`", severity="warning")
            return
        if len(profiles) == 1:
            self._login(profiles[0])
        else:
            self.push_screen(ChooseProfile(profiles), lambda chosen: self._login(chosen) if chosen else None)

    def _login(self, profile: str) -> None:
        if self.login_running:
            self.notify("A login is already in progress; approve it or wait for its code to expire.", severity="warning")
            return
        progress = LoginProgress(profile)
        self.push_screen(progress)
        self.login_running = True
        # A daemon thread, not a Textual worker: a login waits for a person (minutes) and cannot be
        # interrupted, and quitting must not wait for it (the executor behind thread workers would).
        threading.Thread(target=self._login_thread, args=(profile, progress), name="bblogin-login", daemon=True).start()

    def _login_thread(self, profile: str, progress: LoginProgress) -> None:
        def tell(callback: Any, *args: Any) -> None:
            if self.is_running:  # else the app has quit meanwhile: nobody to tell
                with contextlib.suppress(RuntimeError):  # it quit just now
                    self.call_from_thread(callback, *args)

        try:
            name = self.source.login(profile, on_prompt=lambda prompt: tell(progress.show_device, prompt), on_url=lambda url: tell(progress.show_url, url))
        except BbloginError as exc:
            tell(self._finish, progress, None, exc.render().removeprefix("bblogin: "))
        except Exception as exc:  # a bug: said in the TUI, never a traceback drawn over it
            tell(self._finish, progress, None, f"internal error ({type(exc).__name__}): this is a bug in bblogin")
        else:
            tell(self._finish, progress, f"Logged in as {clean(name)}", None)

    def _finish(self, progress: LoginProgress, ok: str | None, error: str | None) -> None:
        self.login_running = False
        if progress in self.screen_stack:  # escape may have hidden it already
            progress.dismiss(None)
        if error:
            self.notify(error, title="Login failed", severity="error", timeout=10, markup=False)
        else:
            self.notify(ok or "", markup=False)
        self.reload()

    @work(thread=True, group="actions")
    def _background(self, job: Any, ok: str, failed: str) -> None:
        try:
            job()
        except BbloginError as exc:
            self.call_from_thread(self.notify, exc.render().removeprefix("bblogin: "), title=failed, severity="error", timeout=10, markup=False)
        else:
            self.call_from_thread(self.notify, ok, markup=False)
        self.call_from_thread(self.reload)
