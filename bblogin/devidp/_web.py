"""HTTP plumbing for the dev IdP: requests parsed as Go's net/http parses them, the three ways
dex answers an error (an HTML page, a redirect to the client, an OAuth JSON body), request
accounting and injected faults for tests, and the threaded stdlib server."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import sys
import threading
import time
import traceback
import urllib.parse
from collections.abc import Callable
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bblogin._record import field, record
from bblogin.devidp import _gojson, _pages

_HEX = "0123456789abcdefABCDEF"


def go_unescape(text: str) -> str:
    """url.QueryUnescape: '+' is a space and every '%' must start a valid escape."""
    for i, char in enumerate(text):
        if char == "%" and (i + 2 >= len(text) or text[i + 1] not in _HEX or text[i + 2] not in _HEX):
            raise ValueError("invalid URL escape")
    return urllib.parse.unquote_plus(text, errors="replace")


def parse_go_query(text: str) -> list[tuple[str, str]]:
    """url.ParseQuery; ValueError where Go reports an error (bad escapes, ';' separators)."""
    pairs = []
    for part in text.split("&"):
        if not part:
            continue
        if ";" in part:
            raise ValueError("invalid semicolon separator in query")
        key, _, value = part.partition("=")
        pairs.append((go_unescape(key), go_unescape(value)))
    return pairs


def go_encode(pairs: list[tuple[str, str]]) -> str:
    """url.Values.Encode: sorted by key (values of one key keep their order)."""
    return urllib.parse.urlencode(sorted(pairs, key=lambda kv: kv[0]))


def with_params(uri: str, params: list[tuple[str, str]], *, replace: bool) -> str:
    """Add (replace=False: url.Values.Add) or set (replace=True: Set) query parameters, then
    re-encode the whole query the way Go does."""
    parts = urllib.parse.urlsplit(uri)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if replace:
        names = {k for k, _ in params}
        query = [(k, v) for k, v in query if k not in names]
    return urllib.parse.urlunsplit(parts._replace(query=go_encode(query + params)))


@record
class Request:
    method: str
    path: str  # the URL path as sent (still percent-encoded)
    query: list[tuple[str, str]]
    body: list[tuple[str, str]]
    headers: Message
    bad_form: bool = False  # the query or the form body did not parse (Go's ParseForm error)

    def form(self, name: str) -> str:
        """r.FormValue: the body's value first, then the query's."""
        return next((v for k, v in (*self.body, *self.query) if k == name), "")

    def post(self, name: str) -> str:
        """r.PostFormValue: the body only."""
        return next((v for k, v in self.body if k == name), "")

    def arg(self, name: str) -> str:
        """r.URL.Query().Get: the query only."""
        return next((v for k, v in self.query if k == name), "")

    def has_post(self, name: str) -> bool:
        return any(k == name for k, _ in self.body)

    def form_pairs(self) -> list[tuple[str, str]]:
        """r.Form: for each key, the body's values, then the query's."""
        return [*self.body, *self.query]


def internal_request(method: str, target: str, body: list[tuple[str, str]] | None = None) -> Request:
    """A request made inside the process (an absolute URL or a path, with its query)."""
    url = urllib.parse.urlsplit(target)
    return Request(method, url.path, parse_go_query(url.query), body or [], Message())


@record
class Reply:
    status: int
    body: bytes = b""
    content_type: str | None = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


class HTMLError(Exception):
    """dex's renderError: an HTML page with this status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class TokenError(Exception):
    """dex's tokenErr: {"error": …, "error_description": …} (description left out when empty)."""

    def __init__(self, error: str, description: str = "", status: int = 400) -> None:
        super().__init__(error)
        self.error, self.description, self.status = error, description, status


class RedirectedError(Exception):
    """dex's redirectedAuthErr: 303 back to the client with state, error and error_description."""

    def __init__(self, redirect_uri: str, state: str, error: str, description: str) -> None:
        super().__init__(description)
        self.redirect_uri, self.state, self.error, self.description = redirect_uri, state, error, description


def html(status: int, body: bytes) -> Reply:
    return Reply(status, body)


def json_reply(status: int, value: Any, *, headers: dict[str, str] | None = None, indent: int | None = None, newline: bool = False, escape_html: bool = True) -> Reply:
    return Reply(status, _gojson.dumps(value, indent=indent, newline=newline, escape_html=escape_html), "application/json", headers or {})


def redirect(location: str, status: int = 302) -> Reply:
    return Reply(status, b"", None, {"Location": location})


def token_error_reply(exc: TokenError, headers: dict[str, str] | None = None) -> Reply:
    body = {"error": exc.error, **({"error_description": exc.description} if exc.description else {})}
    return json_reply(exc.status, body, headers=headers)


def error_reply(exc: Exception) -> Reply:
    if isinstance(exc, HTMLError):
        return html(exc.status, _pages.error_page(exc.status, exc.message))
    if isinstance(exc, TokenError):
        return token_error_reply(exc)
    if isinstance(exc, RedirectedError):
        params = [("state", exc.state), ("error", exc.error)] + ([("error_description", exc.description)] if exc.description else [])
        return redirect(with_params(exc.redirect_uri, params, replace=False), 303)
    raise exc


@record
class _Fault:
    reply: Reply | None  # None: answer normally, after the delay
    remaining: int
    delay: float


PRESENTED_FIELDS = ("refresh_token", "token", "subject_token", "actor_token")  # form fields that carry a token
ISSUED_FIELDS = ("access_token", "id_token", "refresh_token")  # token-response fields


class Traffic:
    """Every request as (method, path, grant_type); the tokens presented to this server and the
    tokens it issued (provenance checks in tests); faults and delays injected by tests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.log: list[tuple[str, str, str | None]] = []
        self.presented: list[tuple[str, str, str]] = []  # (path, where, token)
        self.issued: set[str] = set()
        self._faults: dict[str, _Fault] = {}

    def note_presented(self, path: str, request: Request) -> None:
        """The tokens a request carries: a bearer Authorization header and the token form fields."""
        found = [(name, value) for name, value in request.body if name in PRESENTED_FIELDS and value]
        auth = request.headers.get("Authorization") or ""
        if auth[:7].lower() == "bearer ":
            found.append(("Authorization", auth[7:].strip()))
        with self._lock:
            self.presented.extend((path, where, token) for where, token in found)

    def note_issued(self, reply: Reply) -> None:
        """The tokens in a JSON token response (whatever its status: a token is a token)."""
        if not (reply.content_type or "").startswith("application/json"):
            return
        try:
            body = json.loads(reply.body)
        except ValueError:
            return
        if isinstance(body, dict):
            self.add_issued(*(v for k, v in body.items() if k in ISSUED_FIELDS and isinstance(v, str) and v))

    def add_issued(self, *tokens: str) -> None:
        with self._lock:
            self.issued.update(tokens)

    def inject(self, path: str, reply: Reply | None, count: int, delay: float) -> None:
        """Replaces whatever was set for this path; count <= 0 clears it."""
        with self._lock:
            if count <= 0:
                self._faults.pop(path, None)
            else:
                self._faults[path] = _Fault(reply, count, delay)

    def record(self, method: str, path: str, grant_type: str | None) -> _Fault | None:
        with self._lock:
            self.log.append((method, path, grant_type))
            fault = self._faults.get(path)
            if fault is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    del self._faults[path]
            return fault

    def entries(self) -> list[tuple[str, str, str | None]]:
        with self._lock:
            return list(self.log)


def _parse(handler: BaseHTTPRequestHandler) -> Request:
    url = urllib.parse.urlsplit(handler.path)
    length = int(handler.headers.get("Content-Length") or 0)
    raw = handler.rfile.read(length) if length else b""
    bad = False
    try:
        query = parse_go_query(url.query)
    except ValueError:
        query, bad = [], True
    body: list[tuple[str, str]] = []
    content_type = (handler.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if handler.command in ("POST", "PUT", "PATCH") and content_type == "application/x-www-form-urlencoded":
        try:
            body = parse_go_query(raw.decode("utf-8", "replace"))
        except ValueError:
            bad = True
    return Request(handler.command, url.path, query, body, handler.headers, bad)


class Server(ThreadingHTTPServer):
    """Handler threads are daemons; ``close_connections`` also ends kept-alive connections, so
    a stopped IdP is gone for clients with a connection pool too."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None) -> None:
        super().__init__(address, handler)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self._tls = tls

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self._tls is None:
            super().finish_request(request, client_address)
            return
        try:  # the handshake runs on the handler's thread: a slow client stalls no other
            wrapped = self._tls.wrap_socket(request, server_side=True)
        except OSError:
            return  # e.g. a client that refused the certificate, as it must when it does not trust the CA
        with self._open_lock:
            self._open.discard(request)
            self._open.add(wrapped)
        try:
            super().finish_request(wrapped, client_address)
        finally:
            with self._open_lock:
                self._open.discard(wrapped)
            wrapped.close()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


def serve(port: int, issuer_path: str, dispatch: Callable[[Request], Reply], traffic: Traffic, *, tls: ssl.SSLContext | None = None) -> Server:
    """A server on 127.0.0.1 (not yet serving: run serve_forever on a thread); https with ``tls``."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "bblogin-devidp"

        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read their own output
            pass

        def handle_one(self) -> None:
            request = _parse(self)
            inside = request.path.startswith(issuer_path + "/") or request.path == issuer_path
            logged_path = request.path[len(issuer_path) :] if inside else request.path
            fault = traffic.record(request.method, logged_path or "/", request.post("grant_type") or None)
            traffic.note_presented(logged_path or "/", request)
            if fault is not None:
                time.sleep(fault.delay)
            try:
                reply = fault.reply if fault is not None and fault.reply is not None else dispatch(request)
            except (HTMLError, TokenError, RedirectedError) as exc:
                reply = error_reply(exc)
            except Exception:  # noqa: BLE001 -- a bug in the double: say so on stderr, answer like a crashed server
                traceback.print_exc(file=sys.stderr)
                reply = html(500, _pages.error_page(500, "Internal server error."))
            traffic.note_issued(reply)
            self.send(reply)

        def send(self, reply: Reply) -> None:
            try:
                self.send_response(reply.status)
                if reply.content_type:
                    self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_one

    return Server(("127.0.0.1", port), Handler, tls)
