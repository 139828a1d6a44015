"""The RFC 8252 loopback redirect listener, in the careful manner of msal's oauth2cli/authcode.py.

Binds 127.0.0.1 only (never a name that could resolve elsewhere, never all interfaces). Only the
callback with the expected state completes the login; everything else gets a clear page and the
listener keeps waiting: a wrong path (404), the favicon (404), a wrong or missing state (400: a
stale tab or a forged link), and any callback after the login finished ("already finished": a
second code is never redeemed). The IdP's error (e.g. access_denied) with the right state ends the
login with that error. Timeout and Ctrl-C end it too; the port is always released.
"""

from __future__ import annotations

import hmac
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from bblogin._errors import Cancelled, LoginFailed, LoginTimeout, UsageError
from bblogin._oidc import _pages


class _Server(HTTPServer):
    allow_reuse_address = False  # never share the port with another process


class LoopbackListener:
    """``with LoopbackListener() as l: url = ...(l.redirect_uri); code = l.wait(state, 180)``"""

    def __init__(self, port: int = 0, *, path: str = "/callback") -> None:
        self.path = path
        self._expected_state: str | None = None
        self._result: tuple[str, str] | None = None  # ("code", value) or ("error", message)
        self._done = threading.Event()
        self._lock = threading.Lock()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass  # the request line carries the code: never log it

            def do_GET(self) -> None:
                status, body = listener._handle(self.path)
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.send_header("Referrer-Policy", "no-referrer")
                self.end_headers()
                self.wfile.write(body)

            def _refuse(self) -> None:
                body = _pages.error("This address only accepts the browser's return from the sign-in page.")
                self.send_response(405)
                self.send_header("Allow", "GET")
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _refuse

        try:
            self._server = _Server(("127.0.0.1", port), Handler)
        except OSError as exc:
            raise UsageError(f"cannot listen on 127.0.0.1:{port} for the browser's redirect: {exc.strerror}", hint="choose another --listen port, or omit it for a random one") from None
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="bblogin-loopback", daemon=True)
        self._thread.start()

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def _handle(self, raw_path: str) -> tuple[int, bytes]:
        url = urllib.parse.urlsplit(raw_path)
        if url.path != self.path:
            return 404, _pages.error("Nothing here. Return to your terminal.")
        params = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
        with self._lock:
            if self._done.is_set():
                return 200, _pages.already_finished()
            expected = self._expected_state
            if expected is None or not hmac.compare_digest(params.get("state", ""), expected):
                return 400, _pages.error("This sign-in link does not belong to the login in progress. Start the login again from your terminal.")
            if "error" in params:
                description = params.get("error_description", "")
                self._result = ("error", f"{params['error']}" + (f": {description}" if description else ""))
                self._done.set()
                return 200, _pages.error(f"Sign-in did not complete ({params['error']}). Return to your terminal for what to do next.")
            if not params.get("code"):
                return 400, _pages.error("The identity provider sent no authorization code. Start the login again from your terminal.")
            self._result = ("code", params["code"])
            self._done.set()
            return 200, _pages.success()

    def wait(self, expected_state: str, timeout: float) -> str:
        """The authorization code from the matching callback; errors as LoginFailed/LoginTimeout/Cancelled."""
        with self._lock:
            self._expected_state = expected_state
        try:
            if not self._done.wait(timeout):
                raise LoginTimeout(f"the browser did not come back within {timeout:g} s")
        except KeyboardInterrupt:
            raise Cancelled("login cancelled") from None
        assert self._result is not None
        kind, value = self._result
        if kind == "error":
            raise LoginFailed(f"the identity provider ended the sign-in: {value}", hint="run the login again; if access was denied, check that your account may use this client")
        return value

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(2)

    def __enter__(self) -> LoopbackListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
