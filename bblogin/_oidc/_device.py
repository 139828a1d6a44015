"""The device authorization grant (RFC 8628) from the person's side: show the code, poll politely.

The user code comes first (it is what people type), then verification_uri and
verification_uri_complete, and — when the output is a terminal — a QR code of the complete URI
for a phone. The browser is opened on the complete URI where one can be shown. Polling waits
``interval`` seconds between requests; ``slow_down`` adds 5 s (§3.5); ``authorization_pending``
keeps waiting; ``expired_token`` and ``access_denied`` end the login (:class:`LoginFailed`), as
does the code's own expiry; the login's time limit is :class:`LoginTimeout`; Ctrl-C is
:class:`Cancelled`. On a terminal one line counts down the time left.

A UI that renders the prompt itself (the Textual TUI) passes ``on_prompt``: it receives a
:class:`DevicePrompt` and nothing is written to the terminal.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

import httpx

from bblogin._errors import Cancelled, LoginFailed, LoginTimeout, OAuthError
from bblogin._oidc import _grants
from bblogin._oidc._discovery import ProviderMetadata
from bblogin._record import record
from bblogin._tokens import TokenSet

SLOW_DOWN_STEP = 5


@record(frozen=True)
class DevicePrompt:
    """What the person needs: the code to type, where to type it, and until when (Unix time)."""

    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_at: float


def render_prompt(prompt: DevicePrompt, out: TextIO) -> None:
    """The prompt as text, with a QR code of the complete URI when ``out`` is a terminal."""
    out.write(f"\nTo sign in, enter this code:\n\n    {prompt.user_code}\n\nat {prompt.verification_uri}\n")
    if prompt.verification_uri_complete:
        out.write(f"or open {prompt.verification_uri_complete}\n")
        if out.isatty():
            import segno

            out.write("\n")
            segno.make(prompt.verification_uri_complete, error="l").terminal(out=out, compact=True)
    out.write("\n")
    out.flush()


def _countdown(out: TextIO, seconds_left: float) -> None:
    left = max(0, int(seconds_left))
    out.write(f"\rWaiting for you to approve the sign-in… {left // 60}:{left % 60:02d} left (Ctrl-C to cancel) ")
    out.flush()


def run_device_flow(
    http: httpx.Client,
    metadata: ProviderMetadata,
    client: _grants.ClientAuth,
    *,
    scope: str,
    timeout: float | None = None,
    open_browser: bool = True,
    on_prompt: Callable[[DevicePrompt], None] | None = None,
    out: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> TokenSet:
    """Run one device login to its end and return the (unverified) tokens."""
    if metadata.device_authorization_endpoint is None:
        raise LoginFailed(f"{metadata.issuer} offers no device-code login", hint="use --flow loopback")
    auth = _grants.device_authorize(http, metadata.device_authorization_endpoint, client, scope=scope)
    expires_at = clock() + auth.expires_in
    prompt = DevicePrompt(auth.user_code, auth.verification_uri, auth.verification_uri_complete, expires_at)
    stream = sys.stderr if out is None else out
    if on_prompt is not None:
        on_prompt(prompt)
    else:
        render_prompt(prompt, stream)
    if open_browser:
        from bblogin._oidc._browser import open_browser as launch

        launch(auth.verification_uri_complete or auth.verification_uri)
    ticking = on_prompt is None and stream.isatty()
    limit = expires_at if timeout is None else min(expires_at, clock() + timeout)
    interval = float(auth.interval)
    try:
        while True:
            next_poll = clock() + interval
            while (now := clock()) < next_poll:
                if now >= limit:
                    if limit < expires_at:
                        raise LoginTimeout(f"the sign-in was not approved within {timeout:g} s")
                    raise LoginFailed("the code expired before the sign-in was approved", hint="run the login again and enter the new code")
                if ticking:
                    _countdown(stream, limit - now)
                sleep(min(1.0 if ticking else interval, next_poll - now, max(limit - now, 0.01)))
            try:
                return _grants.poll_device_token(http, metadata.token_endpoint, client, auth.device_code)
            except OAuthError as exc:
                if exc.error == "authorization_pending":
                    continue
                if exc.error == "slow_down":
                    interval += SLOW_DOWN_STEP
                    continue
                if exc.error == "expired_token":
                    raise LoginFailed("the code expired before the sign-in was approved", hint="run the login again and enter the new code") from None
                if exc.error == "access_denied":
                    raise LoginFailed("the sign-in was denied in the browser", hint="run the login again if that was a mistake") from None
                raise
    except KeyboardInterrupt:
        raise Cancelled("login cancelled") from None
    finally:
        if ticking:
            stream.write("\r\033[K")
            stream.flush()
