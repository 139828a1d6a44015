"""The accounts table: grouped by profile, the active account marked, token state in words."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable

COLUMNS = ("", "Profile", "Account", "Name", "User", "Groups", "State")


class AccountTable(DataTable[str]):
    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.add_columns(*COLUMNS)

    def show(self, accounts: list[dict[str, Any]], needle: str = "") -> None:
        keep = self.cursor_row
        self.clear()
        for view in accounts:
            haystack = " ".join(str(view.get(k) or "") for k in ("profile", "email", "name", "username", "issuer")) + " " + " ".join(view["groups"])
            if needle and needle.lower() not in haystack.lower():
                continue
            state = view["state"] + (" · plaintext" if view["plaintext"] else "")
            marker = "●" if view["active"] else " "
            self.add_row(marker, view["profile"], view["email"] or view["sub"][:24], view["name"] or "", view["username"] or "", ", ".join(view["groups"]) or "-", state, key=view["id"])
        if self.row_count:
            self.move_cursor(row=min(keep, self.row_count - 1))

    @property
    def selected_id(self) -> str | None:
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
