"""The RFC 8252 §7.3 loopback redirect listener, in the careful manner of msal's oauth2cli/authcode.py.

    with LoopbackListener() as listener:
        url = provider.authorization_url(redirect_uri=listener.redirect_uri, state=state, ...)
        code = listener.wait(state, timeout=180)

- Binds the IP literal 127.0.0.1 only: never ``localhost`` (which may resolve elsewhere, or to
  ::1 while the browser tries 127.0.0.1) and never all interfaces.
- Only the callback carrying the expected state completes the login. Everything else gets a
  clear page and the listener keeps waiting: another path (404), ``/favicon.ico`` (404, quietly),
  a wrong or missing state (400: a stale tab, another login's link, a forged link). If the
  login then times out, it fails as a state mismatch (:class:`LoginFailed`, exit 8) that says
  such a callback was refused, not as a browser that never came back.
- The expected state with ``error=...`` (access_denied, ...) ends the login with
  :class:`LoginFailed` carrying the IdP's error and description.
- After the login completed, any callback gets a harmless "already finished" page: a second code
  is never redeemed.
- A callback that arrives before :meth:`wait` was called (a fast IdP, a browser launcher that
  has not returned yet) is held until it is, or until the listener closes.
- Each connection is served on its own thread with a socket timeout, so a browser's idle
  pre-connection cannot stall the real callback.
- Timeout: :class:`LoginTimeout`; Ctrl-C: :class:`Cancelled`; leaving the ``with`` block (or
  :meth:`close`) closes the socket and releases the port in every case.
- Nothing is logged: the request line carries the code.
"""

from __future__ import annotations

import hmac
import os
import socket
import socketserver
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from bblogin._errors import Cancelled, LoginFailed, LoginTimeout, UsageError
from bblogin._oidc import _pages
from bblogin._record import record

DEFAULT_TIMEOUT = 180.0
CONNECTION_TIMEOUT = 10.0


@record(frozen=True)
class _Reply:
    status: int
    body: bytes


@record(frozen=True)
class _Outcome:
    code: str | None = None
    error: str | None = None  # the IdP's error code (with its description), or a protocol problem


def _clean(text: str, limit: int) -> str:
    """IdP-supplied text for a terminal or a page: printable, one line, bounded."""
    return "".join(ch if ch.isprintable() else " " for ch in " ".join(text.split()))[:limit]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # POSIX SO_REUSEADDR lets a fixed port be bound again while old connections sit in TIME_WAIT;
    # it does not let two listeners share it. On Windows it would, so there: exclusive use.
    allow_reuse_address = os.name != "nt"
    allow_reuse_port = False

    def server_bind(self) -> None:
        if os.name == "nt":
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)  # type: ignore[attr-defined]
        # HTTPServer.server_bind would also resolve 127.0.0.1's name (socket.getfqdn): a reverse
        # DNS lookup that can hang for seconds on a broken resolver. Nothing here needs the name.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a broken browser connection is not the user's problem; never print the request


class LoopbackListener:
    """Receives the browser's redirect on ``http://127.0.0.1:PORT/callback``."""

    def __init__(self, port: int = 0, *, path: str = "/callback") -> None:
        self.path = path
        self._lock = threading.Lock()
        self._armed = threading.Event()
        self._done = threading.Event()
        self._expected_state: str | None = None
        self._outcome: _Outcome | None = None
        self._foreign_callbacks = 0  # callbacks refused for a wrong or missing state
        self._closed = False
        listener = self

        class Handler(BaseHTTPRequestHandler):
            timeout = CONNECTION_TIMEOUT
            server_version = "bblogin"
            sys_version = ""

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the request line carries the code: never log it

            def _send(self, reply: _Reply, extra: dict[str, str] | None = None) -> None:
                self.send_response(reply.status)
                headers = {
                    "Content-Type": "text/html; charset=utf-8",
                    "Content-Length": str(len(reply.body)),
                    "Cache-Control": "no-store",
                    "Referrer-Policy": "no-referrer",
                    "X-Content-Type-Options": "nosniff",
                    "X-Frame-Options": "DENY",
                    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
                    **(extra or {}),
                }
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(reply.body)

            def do_GET(self) -> None:
                self._send(listener._handle(self.path))

            def _not_allowed(self) -> None:
                self._send(_Reply(405, _pages.method_not_allowed()), {"Allow": "GET"})

            do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed

        try:
            self._server = _Server(("127.0.0.1", port), Handler)
        except OSError as exc:
            raise UsageError(
                f"cannot listen on 127.0.0.1:{port} for the browser's return: {exc.strerror}",
                hint="another program (or another bblogin login) uses that port: finish it, choose another --listen port, or omit it for a random one",
            ) from None
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="bblogin-loopback", daemon=True)
        self._thread.start()

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    # -- the browser's side (handler threads) ------------------------------------------------
    def _handle(self, raw_path: str) -> _Reply:
        path, _, query = raw_path.split("#", 1)[0].partition("?")  # not urlsplit: "//[" is no IPv6 host here
        if path == "/favicon.ico":
            return _Reply(404, b"")
        if path != self.path:
            return _Reply(404, _pages.not_found())
        if self._done.is_set():
            return _Reply(200, _pages.already_finished())
        self._armed.wait()  # set by wait() or close()
        params = urllib.parse.parse_qs(query, keep_blank_values=True)
        with self._lock:
            if self._done.is_set():
                return _Reply(200, _pages.already_finished())
            state = params.get("state", [])
            expected = self._expected_state
            if expected is None or len(state) != 1 or not hmac.compare_digest(state[0].encode(), expected.encode()):
                self._foreign_callbacks += 1
                return _Reply(400, _pages.wrong_state())
            if any(len(params.get(k, [])) > 1 for k in ("code", "error", "error_description")):
                return _Reply(400, _pages.wrong_state())
            if "error" in params:
                error = _clean(params["error"][0], 64) or "error"
                description = _clean(params.get("error_description", [""])[0], 300)
                self._finish(_Outcome(error=f"{error}: {description}" if description else error))
                return _Reply(200, _pages.idp_error(error, description))
            code = params.get("code", [""])[0]
            if not code:
                self._finish(_Outcome(error="it redirected back without a code or an error"))
                return _Reply(400, _pages.missing_code())
            self._finish(_Outcome(code=code))
            return _Reply(200, _pages.success())

    def _finish(self, outcome: _Outcome) -> None:
        self._outcome = outcome
        self._done.set()

    # -- the terminal's side -----------------------------------------------------------------
    def wait(self, expected_state: str, timeout: float = DEFAULT_TIMEOUT) -> str:
        """The authorization code of the callback carrying ``expected_state``.

        Raises LoginFailed (the IdP's error), LoginTimeout, or Cancelled (Ctrl-C)."""
        with self._lock:
            self._expected_state = expected_state
        self._armed.set()
        try:
            finished = self._done.wait(timeout)
        except KeyboardInterrupt:
            raise Cancelled("login cancelled") from None
        if not finished and self._foreign_callbacks:
            raise LoginFailed(
                f"no callback with this login's state came back within {timeout:g} s; "
                f"{self._foreign_callbacks} callback(s) with a foreign or missing state were refused",
                hint="a stale browser tab, another login's link or a forged link reached the listener; "
                "close old sign-in tabs and run the login again, finishing it in the tab it opens",
            )
        if not finished:
            raise LoginTimeout(
                f"the browser did not come back within {timeout:g} s",
                hint="if the browser showed an error page, the sign-in failed at the identity provider (dex shows a denied "
                "Bitbucket login that way); otherwise run the login again and finish it within the time limit (--timeout)",
            )
        assert self._outcome is not None
        if self._outcome.error is not None:
            raise LoginFailed(
                f"the identity provider ended the sign-in: {self._outcome.error}",
                hint="run the login again; if access was denied, check that your account may use this application",
            )
        assert self._outcome.code is not None
        return self._outcome.code

    def close(self) -> None:
        """Stop serving and release the port (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._armed.set()  # release callbacks held for wait()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
