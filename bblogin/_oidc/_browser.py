"""Opening the browser: once, and only where the person at the keyboard can see it.

``can_open_browser()`` is what ``flow = auto`` asks: $BROWSER (honoured by :mod:`webbrowser`)
always counts; otherwise not over SSH without a forwarded display, and not on Linux/BSD without
DISPLAY or WAYLAND_DISPLAY (a text browser would take over the terminal we are waiting in).

``open_browser(url)`` launches the first browser :mod:`webbrowser` would pick, exactly once:
``webbrowser.open`` itself moves on to the next candidate whenever a launcher exits quickly
(xdg-open does), which can open two browsers. A $BROWSER command runs in the foreground until it
exits (a wrapper script, a text browser): the launch happens on a thread, and a launcher still
running after :data:`LAUNCH_GRACE` seconds counts as a browser that is up, so the login goes on
to wait for the redirect instead of waiting for the browser to quit. The caller prints the URL
in any case.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

log = logging.getLogger("bblogin.oidc")

LAUNCH_GRACE = 2.0


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
    outcome: list[bool] = []

    def launch() -> None:
        try:
            outcome.append(bool(controller.open(url, new=1, autoraise=True)))
        except (webbrowser.Error, OSError) as exc:
            log.debug("opening the browser failed: %s", type(exc).__name__)
            outcome.append(False)

    launcher = threading.Thread(target=launch, name="bblogin-browser", daemon=True)
    launcher.start()
    launcher.join(LAUNCH_GRACE)
    return outcome[0] if outcome else True  # still running: a browser in the foreground
