"""The person's side of the device flow (RFC 8628 §3.3): show the code, then poll politely.

The user code comes first (it is what people must type), then the URL and the complete URL, a
QR code when stderr is a terminal, a countdown on a terminal. slow_down adds 5 s to the interval;
expired_token and access_denied end the login; Ctrl-C cancels.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from bblogin._errors import Cancelled, LoginFailed, LoginTimeout, OAuthError
from bblogin._oidc._grants import DeviceAuthorization
from bblogin._tokens import TokenSet


def show_prompt(auth: DeviceAuthorization, out: TextIO) -> None:
    out.write(f"\nYour code: {auth.user_code}\n\nEnter it at {auth.verification_uri}\n")
    if auth.verification_uri_complete:
        out.write(f"or open   {auth.verification_uri_complete}\n")
        if out.isatty():
            import segno

            out.write("\n")
            segno.make(auth.verification_uri_complete, error="l").terminal(out=out, compact=True)
    out.write("\n")
    out.flush()


def wait_for_tokens(
    auth: DeviceAuthorization,
    poll: Callable[[], TokenSet | str],
    *,
    out: TextIO = sys.stderr,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    timeout: float | None = None,
) -> TokenSet:
    """Poll until the person approves, the code expires, or they cancel."""
    interval = max(auth.interval, 1)
    deadline = clock() + min(auth.expires_in, timeout or auth.expires_in)
    tty = out.isatty()
    try:
        while True:
            remaining = deadline - clock()
            if remaining <= 0:
                raise LoginTimeout("the device code expired before the login was approved", hint="run the login again and enter the new code")
            if tty:
                out.write(f"\rWaiting for approval… {int(remaining) // 60}:{int(remaining) % 60:02d} left (Ctrl-C to cancel) ")
                out.flush()
            sleep(min(interval, remaining))
            try:
                result = poll()
            except OAuthError as exc:
                if exc.error == "expired_token":
                    raise LoginFailed("the device code expired", hint="run the login again and enter the new code") from None
                if exc.error == "access_denied":
                    raise LoginFailed("the login was denied in the browser") from None
                raise
            if result == "slow_down":
                interval += 5
            elif isinstance(result, TokenSet):
                return result
    except KeyboardInterrupt:
        raise Cancelled("login cancelled") from None
    finally:
        if tty:
            out.write("\r" + " " * 60 + "\r")
            out.flush()
