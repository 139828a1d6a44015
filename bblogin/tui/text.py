"""Showing strings we do not control (names, emails, groups, claims and user codes from the IdP or
Bitbucket, where anyone can choose a display name like ``Bob [/]``): never as Textual markup,
always as rich ``Text``, and with control characters made visible so a name cannot move the
cursor, break a table row or reorder text (bidi overrides)."""

from __future__ import annotations

import time
import unicodedata

from rich.text import Text

from bblogin._timefmt import relative

ZERO_WIDTH_JOINER = "\u200d"  # emoji sequences need it; every other format character is shown


def clean(value: object) -> str:
    """``value`` as one line of visible characters: controls and format characters become U+FFFD."""
    return "".join(
        "\ufffd" if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") and ch != ZERO_WIDTH_JOINER else ch for ch in str(value)
    )


def plain(value: object, style: str = "") -> Text:
    """A literal ``Text`` of ``value``: brackets are shown, never interpreted."""
    return Text(clean(value), style=style, end="")


def local_time(ts: int, now: int) -> str:
    """``2027-01-15 09:00 CET · in 23 h`` — the local wall clock and how far away it is; ``beyond
    the calendar`` for a time the platform cannot show (a claim may hold any integer)."""
    try:
        wall = time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(ts))
    except (OverflowError, OSError, ValueError):
        return "beyond the calendar"
    return f"{wall} · {relative(ts, now)}"
