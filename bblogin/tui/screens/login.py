"""Logging in from the TUI: pick a profile; the device code (user code, URL, QR, countdown) or
the loopback URL is shown here while a worker waits for the IdP."""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static

from bblogin.tui.text import plain


class ChooseProfile(ModalScreen[str | None]):
    BINDINGS = [("escape", "dismiss_none", "Cancel")]

    def __init__(self, profiles: list[str]) -> None:
        super().__init__()
        self.profiles = profiles

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static("Log in with which profile?")
            yield OptionList(*(plain(p) for p in self.profiles), id="profiles")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.profiles[event.option_index])

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class LoginProgress(ModalScreen[None]):
    """Shows what the person must do; the app dismisses it when the worker finishes. Escape hides
    it: the login cannot be stopped midway (the IdP holds the code), so it carries on in the
    background until approved or expired, and its result still arrives as a notification."""

    BINDINGS = [("escape", "hide", "Hide")]

    def __init__(self, profile: str) -> None:
        super().__init__()
        self.profile = profile
        self.deadline: float | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog"):  # a QR code is taller than 24 lines: scroll, never cut
            yield Static(Text.assemble("Logging in with profile ", plain(self.profile, "bold"), "…"), id="login-text")
            yield Static("", id="countdown")
            yield Static("escape: hide (the login goes on in the background)", classes="hint")

    def on_mount(self) -> None:
        self.set_interval(1, self._tick)

    def action_hide(self) -> None:
        self.app.notify("The login goes on in the background until you approve it or its code expires.", markup=False)
        self.dismiss(None)

    def show_device(self, prompt: Any) -> None:
        import segno

        qr = segno.make(prompt.verification_uri_complete or prompt.verification_uri, error="l")
        import io

        buffer = io.StringIO()
        qr.terminal(out=buffer, compact=True)
        complete = Text.assemble("\nor open   ", plain(prompt.verification_uri_complete)) if prompt.verification_uri_complete else ""
        self.query_one("#login-text", Static).update(  # every part comes from the IdP: literal text, never markup
            Text.assemble("Your code: ", plain(f" {prompt.user_code} ", "bold reverse"), "\n\nEnter it at ", plain(prompt.verification_uri), complete, "\n\n", buffer.getvalue())
        )
        self.deadline = float(prompt.expires_at)

    def show_url(self, url: str) -> None:
        self.query_one("#login-text", Static).update(Text.assemble("Sign in in your browser. If it did not open, visit:\n\n", plain(url)))

    def _tick(self) -> None:
        if self.deadline is not None:
            left = max(0, int(self.deadline - time.time()))
            self.query_one("#countdown", Static).update(f"Waiting for approval… {left // 60}:{left % 60:02d} left")
