"""Opening the browser — once, and only where a person can see it."""

from __future__ import annotations

import os
import sys


def can_open_browser() -> bool:
    """False over SSH or on a Linux/BSD box without a display, unless $BROWSER says how."""
    if os.environ.get("BROWSER"):
        return True
    if os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_TTY"):
        return False
    if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def open_browser(url: str) -> bool:
    """One launch attempt via `webbrowser` (which honours $BROWSER); True when one started."""
    if not can_open_browser():
        return False
    import webbrowser

    try:
        return webbrowser.open(url, new=1, autoraise=True)
    except webbrowser.Error:
        return False
