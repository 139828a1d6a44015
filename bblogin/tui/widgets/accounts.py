"""The accounts table: grouped by profile, the active account marked, token state in words.

It never scrolls sideways. Given the width it may use, it keeps the columns in this order of
importance and gives up the rest (each one is also in the details pane):

1. Name, when every shown row's name is empty or repeats its user name (Bitbucket accounts), and
   User, when every user name is empty or is what Account shows (accounts without an email);
2. Groups, then Name, then User, when the row is still wider than the space;
3. then Account (the email) is shortened with "…" down to 12 characters, then Profile down to 8.

The marker (● active) and State are never dropped or cut. State is the phrase before any ":" of
the account's state ("not used: profile work now names …" shows "not used"); the details say all.
"""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable

from bblogin.tui.text import clean, plain

COLUMNS = ("", "Profile", "Account", "Name", "User", "Groups", "State")
REPEATS = (("Name", "User"), ("User", "Account"))  # (column, the column it may only repeat)
DROP_ORDER = ("Groups", "Name", "User")
SHRINK = (("Account", 12), ("Profile", 8))
CELL_PADDING = 1  # DataTable's default, on each side of every cell


def cells(view: dict[str, Any]) -> dict[str, str]:
    return {
        "": "●" if view["active"] else " ",
        "Profile": clean(view["profile"]),
        "Account": clean(view["email"] or view["username"] or view["sub"]),
        "Name": clean(view["name"] or ""),
        "User": clean(view["username"] or ""),
        "Groups": clean(", ".join(view["groups"]) or "-"),
        "State": view["state"].partition(":")[0] + (" · plaintext" if view["plaintext"] else ""),
    }


def fit(rows: list[dict[str, str]], budget: int) -> dict[str, int]:
    """Column -> width for ``rows`` within ``budget`` cells (padding included); see the module docstring."""
    widths = {c: max([cell_len(c), *(cell_len(r[c]) for r in rows)]) for c in COLUMNS}
    for column, other in REPEATS:
        if all(not r[column] or r[column].casefold() == r[other].casefold() for r in rows):
            del widths[column]

    def total() -> int:
        return sum(w + 2 * CELL_PADDING for w in widths.values())

    for column in DROP_ORDER:
        if total() > budget:
            widths.pop(column, None)
    for column, floor in SHRINK:
        excess = total() - budget
        if excess > 0:
            widths[column] = min(widths[column], max(floor, widths[column] - excess))
    return widths


class AccountTable(DataTable[Text]):
    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True

    def show(self, accounts: list[dict[str, Any]], needle: str = "", budget: int = 80) -> int:
        """Show the accounts matching ``needle`` in at most ``budget`` cells; returns the width used."""
        keep = self.cursor_row
        shown = []
        for view in accounts:
            haystack = " ".join(str(view.get(k) or "") for k in ("profile", "email", "name", "username", "issuer")) + " " + " ".join(view["groups"])
            if not needle or needle.lower() in haystack.lower():
                shown.append((view["id"], cells(view)))
        widths = fit([c for _, c in shown], budget)
        self.clear(columns=True)
        for column, width in widths.items():
            self.add_column(column, width=width, key=column)
        for account_id, row in shown:
            self.add_row(*(self._cell(row[c], w) for c, w in widths.items()), key=account_id)
        if self.row_count:
            self.move_cursor(row=min(keep, self.row_count - 1))
        return sum(w + 2 * CELL_PADDING for w in widths.values())

    @staticmethod
    def _cell(value: str, width: int) -> Text:
        text = plain(value)
        text.truncate(width, overflow="ellipsis")
        return text

    @property
    def visible_columns(self) -> list[str]:
        return [str(c.key.value) for c in self.columns.values()]

    @property
    def selected_id(self) -> str | None:
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
