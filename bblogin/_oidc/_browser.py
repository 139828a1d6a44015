"""Opening the browser: once, and only where the person at the keyboard can see it.

``can_open_browser()`` is what ``flow = auto`` asks: $BROWSER (honoured by :mod:`webbrowser`)
always counts; otherwise not over SSH without a forwarded display, and not on Linux/BSD without
DISPLAY or WAYLAND_DISPLAY (a text browser would take over the terminal we are waiting in).

``open_browser(url)`` launches the first browser :mod:`webbrowser` would pick, exactly once:
``webbrowser.open`` itself moves on to the next candidate whenever a launcher exits quickly
(xdg-open does), which can open two browsers. The caller prints the URL in any case.
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger("bblogin.oidc")


def can_open_browser() -> bool:
    """Whether a browser launched now would appear in front of this user."""
    if os.environ.get("BROWSER"):
        return True
    display = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_TTY"):
        return display  # X11 forwarding shows the browser on the user's screen
    if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd", "dragonfly", "sunos")):
        return display
    return True  # macOS, Windows: a local desktop session


def open_browser(url: str) -> bool:
    """One launch attempt; True when a browser was started (it may still fail to show the page)."""
    if not can_open_browser():
        return False
    import webbrowser

    try:
        controller = webbrowser.get()
    except webbrowser.Error:
        log.debug("no browser found to open")
        return False
    try:
        return bool(controller.open(url, new=1, autoraise=True))
    except (webbrowser.Error, OSError) as exc:
        log.debug("opening the browser failed: %s", type(exc).__name__)
        return False
