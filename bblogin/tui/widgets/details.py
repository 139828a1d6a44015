"""The details pane: who, where, until when, where the identity is used — and the ID token's
claims, never the raw token unless asked, and then masked until revealed.

Everything the IdP supplied goes in as literal ``Text`` (see ``bblogin.tui.text``), never markup.
"""

from __future__ import annotations

import json
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import Static

from bblogin.tui.text import clean, local_time, plain

TIME_CLAIMS = ("exp", "iat", "auth_time", "nbf")
LABEL = 11
CLAIM_LABEL = 24  # "https://example.com/roles"-style claim names up to this width keep the values aligned


def mask(token: str) -> str:
    return f"{token[:8]}…{'•' * 12} ({len(token)} characters)"


def claim_value(key: str, value: Any, now: int) -> str:
    if key in TIME_CLAIMS and isinstance(value, int) and not isinstance(value, bool):
        return f"{value}  {local_time(value, now)}"
    if isinstance(value, list):
        return ", ".join(clean(v) for v in value) or "[]"
    if isinstance(value, str):
        return clean(value)
    return clean(json.dumps(value, sort_keys=True))


def expiry(ts: Any, now: int) -> str:
    """``expires 2027-01-15 10:00 CET · in 60 min`` / ``expired … · 3 h ago``: local, like the claims."""
    if not isinstance(ts, int):
        return "expiry unknown"
    return f"{'expires' if ts > now else 'expired'} {local_time(ts, now)}"


def listing(names: list[str]) -> str:
    return ", ".join(clean(n) for n in names) or "-"


class Lines:
    """A ``Text`` built line by line: a dim label column, then a literal value."""

    def __init__(self) -> None:
        self.text = Text(end="")

    def line(self, label: str, value: str | Text = "", *extra: str | tuple[str, str], width: int = LABEL) -> None:
        self.text.append(label + " " * (width - cell_len(label)), style="dim")  # cells: a wide character counts 2
        self.text.append(value if isinstance(value, Text) else plain(value))
        if extra:
            self.text.append_text(Text.assemble(*extra))
        self.text.append("\n")

    def heading(self, title: str) -> None:
        self.text.append(f"\n{title}\n", style="bold underline")

    def done(self) -> Text:
        self.text.rstrip()
        return self.text


def who(out: Lines, view: dict[str, Any], now: int) -> None:
    """The account: who, from where, stored how, valid until when."""
    out.text.append(plain(view["email"] or view["username"] or view["sub"], "bold"))
    if view["name"] and view["name"].casefold() not in ((view["email"] or "").casefold(), (view["username"] or "").casefold()):
        out.text.append_text(Text.assemble("  (", plain(view["name"]), ")"))
    out.text.append("\n")
    out.line("profile", view["profile"], ("  (active)", "italic") if view["active"] else "")
    if view.get("shared_with"):  # profiles asking for exactly the same: one login, one set of tokens
        out.line("shared", ", ".join(view["shared_with"]) + " (the same tokens)")
    out.line("state", view["state"])
    out.line("issuer", view["issuer"])
    out.line("client", view["client_id"])
    if view["username"]:
        out.line("user", view["username"])
    out.line("groups", listing(view["groups"]))
    out.line("stored in", view["storage_description"], ("  PLAINTEXT ", "bold reverse") if view["plaintext"] else "")
    clock = view.get("clock") or {}
    if clock.get("note"):
        out.line("clock", clock["note"])
    if (view.get("outage") or {}).get("note"):
        out.line("outage", view["outage"]["note"])
    offset = clock.get("offset") or 0  # expiries are on the IdP's clock: shown on this machine's
    for kind, info in view["tokens"].items():
        label = {"id_token": "ID token", "access_token": "access", "refresh_token": "refresh"}.get(kind, kind)
        expires_at = info["expires_at"] - offset if isinstance(info.get("expires_at"), int) else info.get("expires_at")
        out.line(label, info["expiry"] if kind == "refresh_token" else expiry(expires_at, now))


class Details(Static):
    """The selected account in full; in the wide layout (``split``) the account part is shown by
    ``Identity`` under the table and this pane keeps the token and the claims."""

    split = False

    def show(self, view: dict[str, Any] | None, claims: dict[str, Any], now: int, token: str | None = None, revealed: bool = False) -> None:
        if view is None:
            self.update(Text.assemble("No accounts yet. Press ", ("l", "bold"), " to log in."))
            return
        out = Lines()
        if not self.split:
            who(out, view, now)
            out.text.append("\n")
        if token is not None:
            out.line("ID token", token if revealed else mask(token))
            out.text.append("\n")
        if claims:
            out.text.append("ID token claims\n", style="bold underline")
            # the widest name sets the value column, up to CLAIM_LABEL; a longer name (an IdP may
            # choose any) goes on its own line, so it cannot push every value off the pane
            width = min(CLAIM_LABEL, max(LABEL, *(cell_len(clean(k)) + 1 for k in claims)))
            for key in sorted(claims):
                name = clean(key)
                if cell_len(name) >= width:
                    out.text.append_text(plain(name + "\n", "dim"))
                    name = ""
                out.line(name, claim_value(key, claims[key], now), width=width)
        else:
            out.text.append("No ID token claims for this account.", style="dim")
        self.update(out.done())


class Identity(Static):
    """The account part of the details, under the table in the wide layout."""

    def show(self, view: dict[str, Any] | None, now: int) -> None:
        out = Lines()
        if view is not None:
            who(out, view, now)
        self.update(out.done())


class Usage(Static):
    """Where the selected account's identity goes: kubeconfig contexts and git hosts — and what
    making it active would move."""

    def show(self, view: dict[str, Any] | None) -> None:
        if view is None:
            self.update("")
            return
        out = Lines()
        if view.get("unused"):
            out.text.append_text(Text.assemble(("not used: ", "bold"), clean(view["unused"]), "\n"))
        out.line("kubectl", listing(view.get("kube_contexts") or []))
        out.line("git", listing(view.get("git_hosts") or []))
        follows = view.get("follows_active") or {}
        moves = [*(f"context {c}" for c in follows.get("kube_contexts", [])), *follows.get("git_hosts", [])]
        if not view["active"] and moves:
            out.text.append_text(Text.assemble(("u", "bold"), " makes it active: then it serves ", clean(", ".join(moves)), "\n"))
        for problem in view.get("kube_problems") or []:
            out.text.append_text(Text.assemble(("! ", "bold"), clean(problem), "\n"))
        self.update(out.done())
