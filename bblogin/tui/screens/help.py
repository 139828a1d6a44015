"""The help screen: every key, in one place."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

HELP = """[b]bblogin — accounts[/b]

  ↑ ↓        choose an account
  enter / u  make it the active account of its profile
  l          log in (a new account, or again)
  r          refresh its tokens now
  x          log it out (deletes its tokens)
  t          show its ID token (masked); t again reveals it
  c          copy its ID token to the clipboard (asks first)
  /          filter by name, email, group, profile
  tab        panes: table, Used by, details (↑ ↓ PgUp PgDn)
  ?          this help        q  quit
  ctrl+p     commands (theme, keys, screenshot)

"Used by": the kubectl contexts and git hosts that get the
selected account's identity, and what u would switch to it.

Tokens stay in your keyring; none is shown unless you ask."""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog"):  # scrolls rather than cut on a short terminal
            yield Static(HELP)

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
