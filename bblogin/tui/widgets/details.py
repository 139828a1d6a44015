"""The details pane: who, where, until when — and the ID token's claims, never the raw token
unless asked, and then masked until revealed."""

from __future__ import annotations

import json
from typing import Any

from textual.widgets import Static

from bblogin._timefmt import describe_expiry


def mask(token: str) -> str:
    return f"{token[:8]}…{'•' * 12} ({len(token)} characters)"


class Details(Static):
    def show(self, view: dict[str, Any] | None, claims: dict[str, Any], now: int, token: str | None = None, revealed: bool = False) -> None:
        if view is None:
            self.update("No accounts yet. Press [b]l[/b] to log in.")
            return
        lines = [
            f"[b]{view['email'] or view['username'] or view['sub']}[/b]" + (f"  ({view['name']})" if view["name"] else ""),
            f"profile   {view['profile']}" + ("  [i](active)[/i]" if view["active"] else ""),
            f"issuer    {view['issuer']}",
            f"client    {view['client_id']}",
            f"groups    {', '.join(view['groups']) or '-'}",
            f"git hosts {', '.join(view.get('git_hosts') or []) or '-'}",
            f"stored in {view['storage_description']}" + ("  [b reverse] PLAINTEXT [/]" if view["plaintext"] else ""),
        ]
        if (view.get("clock") or {}).get("note"):
            lines.append(f"clock     {view['clock']['note']}")
        idp_now = now + ((view.get("clock") or {}).get("offset") or 0)  # expiries are on the IdP's clock
        for kind, info in view["tokens"].items():
            if kind == "refresh_token":
                lines.append(f"{kind.replace('_', ' '):13} {info['expiry']}")
            else:
                lines.append(f"{kind.replace('_', ' '):13} {describe_expiry(info['expires_at'], idp_now)}")
        if token is not None:
            lines.append("")
            lines.append("ID token: " + (token if revealed else mask(token)))
        if claims:
            lines.append("")
            lines.append("[b]ID token claims[/b]")
            lines.append(json.dumps(claims, indent=2, sort_keys=True).replace("[", "\\["))
        self.update("\n".join(lines))
