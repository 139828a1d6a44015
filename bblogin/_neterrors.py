"""Errors that name what failed on the way: the proxy, or the certificate and the trust store.

``_http`` attaches a :class:`Route` (the proxy chosen, the trust store used) to every request it
sends, and the route records the steps httpcore reports through its ``trace`` extension. When the
request fails, :func:`explain` words the error from the step that failed, never from the
exception's class alone (httpcore raises ConnectError for a refused TCP connection to the proxy
and for a TLS handshake inside a tunnel the proxy already opened):

- the TCP connection to the proxy (or the TLS handshake with an https:// proxy, or a SOCKS
  negotiation): the proxy's fault — refused, not accepted in time, its certificate not trusted;
- the proxy's answer to CONNECT: the proxy's — an error status (407 asks for credentials), or no
  answer at all;
- the TLS handshake with the server through the tunnel the proxy opened (200 to CONNECT): the
  server's, or something on the way that blocks or inspects the connection (a web filter
  answering with its own page) — the message says the tunnel was opened and what happened next;
- the request itself, once TLS is up: the server's.

The proxy is named by ``host:port`` (never its password); a certificate that failed verification
by its subject, its issuer, the trust store that was used and how to fix it. Text a peer supplied
(a reason phrase, a certificate's names) is shown through :func:`bblogin._errors.printable`.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import ssl
import urllib.parse
from typing import Any

import httpx

from bblogin._errors import BbloginError, IdPResponseError, IdPUnreachable, TLSError, printable
from bblogin._http import _causes
from bblogin._proxy import PROFILE, ProxyChoice
from bblogin._record import field, record
from bblogin._trust import Certificate, Trust, describe, unverified_context

ROUTE = "bblogin_route"  # the request extension that carries the Route
PEEK_TIMEOUT = 5.0
PEER_TEXT = 120  # characters of a peer's text (a reason phrase, a certificate name) in a message
_NO_PROXY_HINT = "or, if {host} is reachable without it, add {host} to NO_PROXY (or set proxy = \"direct\" in the profile)"

# The steps of a request through a proxy, in order (httpcore's trace event names, without
# ".started"/".complete"/".failed"; the prefix is httpcore's module: connection, proxy, socks, http11).
PROXY_TCP, PROXY_TLS, PROXY_ANSWER, TUNNEL_TLS, SERVER = "proxy-tcp", "proxy-tls", "proxy-answer", "tunnel-tls", "server"


class ProxyFailed(IdPUnreachable):
    """The proxy refused the connection, wants credentials, or could not reach the server.
    ``party``: who failed ("the proxy HOST:PORT"), for the line that serves a cached token instead."""

    def __init__(self, message: str, hint: str | None = None, *, party: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.party = party


@record(frozen=True)
class Route:
    proxy: ProxyChoice | None
    trust: Trust
    events: list[str] = field(default_factory=list, compare=False)

    def trace(self, name: str, info: dict[str, Any]) -> None:
        """httpcore's ``trace`` request extension: note each step."""
        self.events.append(name)

    def step(self, origin_scheme: str) -> str | None:
        """Which step of the way through the proxy failed (None: no proxy, or nothing recorded)."""
        if self.proxy is None:
            return None
        events = self.events
        started = [e for e in events if e.endswith(".connect_tcp.started")]
        if not started:
            return SERVER if events else None  # a pooled connection, opened before: the request itself failed
        done = set(events)
        scheme = self.proxy.parts.scheme
        if scheme.startswith("socks"):
            if "socks.connect_tcp.complete" not in done:
                return PROXY_TCP
            if "socks.setup_socks5_connection.complete" not in done:
                return PROXY_ANSWER
            if origin_scheme == "https" and "socks.start_tls.complete" not in done:
                return TUNNEL_TLS
            return SERVER
        if "connection.connect_tcp.complete" not in done:
            return PROXY_TCP
        if scheme == "https" and "connection.start_tls.complete" not in done:
            return PROXY_TLS
        if origin_scheme != "https":
            return SERVER  # a plain-http request is forwarded, not tunnelled: the proxy answers for the server
        if "proxy.start_tls.started" not in done:
            return PROXY_ANSWER  # the CONNECT is not answered with 2xx (yet)
        if "proxy.start_tls.complete" not in done:
            return TUNNEL_TLS
        return SERVER


def route_of(exc: httpx.TransportError) -> Route | None:
    try:
        route = exc.request.extensions.get(ROUTE)
    except RuntimeError:  # an exception raised before httpx knew its request
        return None
    return route if isinstance(route, Route) else None


def _reason(exc: BaseException, timeout: float) -> str:
    """What went wrong, in a few words: the OS's or OpenSSL's reason, or the timeout."""
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {timeout:g} s"
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLError) and not isinstance(cause, ssl.SSLCertVerificationError):
            return printable(str(cause.reason or cause.strerror or "TLS failed").replace("_", " ").lower(), PEER_TEXT)
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
    return printable(str(exc) or type(exc).__name__, PEER_TEXT)


def explain(exc: httpx.TransportError, url: str, timeout: float) -> BbloginError | None:
    """The error for a failed request when the route tells more than the plain mapping; else None."""
    error = _explain(exc, url, timeout)
    route = route_of(exc)
    if isinstance(error, ProxyFailed) and error.party is None and route is not None and route.proxy is not None:
        error.party = f"the proxy {route.proxy.address}"
    return error


def _explain(exc: httpx.TransportError, url: str, timeout: float) -> BbloginError | None:
    route = route_of(exc)
    if route is None:
        return None
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or url
    target = f"{host}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    step = route.step(parts.scheme)
    tls = next((c for c in _causes(exc) if isinstance(c, ssl.SSLCertVerificationError)), None)
    proxy = route.proxy
    if proxy is None or step is None:
        return _certificate_error(tls, url, route) if tls is not None else None
    via = f"the proxy {proxy.address} (from {proxy.source})"
    fix_source = f"fix {proxy.source}" if proxy.source != PROFILE else "fix proxy in the profile"
    reason = _reason(exc, timeout)
    if step == PROXY_TCP:
        if isinstance(exc, httpx.TimeoutException):
            return ProxyFailed(f"{via} did not accept a connection within {timeout:g} s (on the way to {host})", hint=f"check that the proxy is up, or {fix_source}")
        return ProxyFailed(f"cannot connect to {via}: {reason} (on the way to {host})", hint=f"start the proxy or {fix_source}; " + _NO_PROXY_HINT.format(host=host))
    if step == PROXY_TLS:
        if tls is not None:
            return _certificate_error(tls, f"https://{proxy.address}", route, proxy_itself=True)
        return ProxyFailed(f"the TLS handshake with {via} failed: {reason} (on the way to {host})", hint=f"check that the proxy speaks TLS at that address (else use http://), or {fix_source}")
    if step == PROXY_ANSWER:
        if isinstance(exc, httpx.ProxyError):
            return _proxy_refused(exc, via, proxy, host, target)
        if isinstance(exc, httpx.TimeoutException):
            return ProxyFailed(
                f"{via} accepted the connection but did not answer the CONNECT to {target} within {timeout:g} s",
                hint=f"the proxy is overloaded or is not a proxy of that kind; check that it is up, or {fix_source}",
            )
        return ProxyFailed(f"{via} closed the connection without answering the CONNECT to {target} ({reason})", hint=f"check that the proxy at that address is a proxy of that kind, or {fix_source}")
    if step == TUNNEL_TLS:
        if tls is not None:
            return _certificate_error(tls, url, route)
        opened = f"{via} opened a tunnel to {target}, but the TLS handshake with {host} through it"
        hint = f"{host} is not answering TLS there, or the proxy blocks or inspects the connection (a web filter answering with its own page); check the issuer URL, ask the proxy's operators, " + _NO_PROXY_HINT.format(host=host)
        party = f"the way to {host} through the proxy {proxy.address}"
        if isinstance(exc, httpx.TimeoutException):
            return ProxyFailed(f"{opened} did not finish within {timeout:g} s", hint=hint, party=party)
        return ProxyFailed(f"{opened} failed: {reason}", hint=hint, party=party)
    if tls is not None:
        return _certificate_error(tls, url, route)
    if isinstance(exc, httpx.TimeoutException):
        return IdPUnreachable(f"{host} did not answer through {via}: timed out after {timeout:g} s", hint="check the network and the issuer URL; the cached tokens are untouched")
    if isinstance(exc, httpx.RemoteProtocolError):
        return IdPResponseError(f"the connection to {host} through {via} closed before the answer was complete", hint="the identity provider (or the proxy) is failing; try again later. The cached tokens are untouched")
    return IdPUnreachable(f"the connection to {host} through {via} failed: {reason}")


def _proxy_refused(exc: httpx.ProxyError, via: str, proxy: ProxyChoice, host: str, target: str) -> ProxyFailed:
    """The proxy answered the CONNECT (or the SOCKS request) with a refusal."""
    status = str(exc).split(" ", 1)
    socks_refused = proxy.parts.scheme.startswith("socks") and "username/password" in str(exc).lower()
    if status[0] in ("407", "401") or socks_refused:  # 407 as RFC 9110 says (squid); tinyproxy answers a CONNECT with 401
        if proxy.has_credentials:
            hint = f"the proxy refused the user name and password in {proxy.source}: correct them (%-encode special characters)"
        else:
            hint = f"put the proxy credentials into {proxy.source}: http://USER:PASSWORD@{proxy.address} (%-encode special characters)"
        kind = "the SOCKS user name and password" if socks_refused else f"HTTP {status[0]}"
        return ProxyFailed(f"{via} requires authentication ({kind}) for the connection to {host}", hint=hint)
    reason = printable(str(exc) or "refused the tunnel", PEER_TEXT)
    reason = f"HTTP {reason}" if status[0].isdigit() else reason
    return ProxyFailed(f"{via} could not reach {target} ({reason})", hint=f"check that the proxy may connect to {host}; " + _NO_PROXY_HINT.format(host=host))


def _certificate_error(tls: ssl.SSLCertVerificationError, url: str, route: Route, *, proxy_itself: bool = False) -> IdPUnreachable:
    """The certificate of ``url``'s host (with ``proxy_itself``: of the https:// proxy) was not trusted."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or url
    port = parts.port or 443
    reason = printable(str(getattr(tls, "verify_message", None) or getattr(tls, "reason", None) or "verification failed").replace("_", " ").lower(), PEER_TEXT)
    cert = peer_certificate(host, port, None if proxy_itself else route.proxy)
    shown = ""
    hint = (
        "install the issuing CA in the OS trust store (Debian/Ubuntu: copy it to /usr/local/share/ca-certificates/NAME.crt and run "
        "`sudo update-ca-certificates`; macOS: Keychain Access; Windows: certmgr), or pass --ca-file PEM (ca_file in the profile)"
    )
    if not proxy_itself:
        hint += "; behind a TLS-inspecting proxy (Zscaler, Netskope …) that CA is the proxy's"
    if cert is not None:
        subject, issuer = printable(cert.subject, PEER_TEXT), printable(cert.issuer, PEER_TEXT)
        shown = f" (subject {subject}, issued by {issuer}{', self-signed' if cert.self_signed else ''})"
        if "hostname mismatch" in reason or "ip address mismatch" in reason:
            names = printable(", ".join(cert.names) or cert.subject, PEER_TEXT)
            hint = f"the certificate is for {names}, not {host}: " + ("use the host name it names in the proxy URL" if proxy_itself else "use the host name the certificate names in the issuer URL")
        elif not cert.self_signed:
            hint = f"the issuer {issuer} is not trusted: " + hint
    trusted = f"checked against {route.trust.described()}"
    if proxy_itself and route.proxy is not None:
        return ProxyFailed(f"the TLS certificate of the proxy {route.proxy.address} (from {route.proxy.source}){shown} is not trusted: {reason}; {trusted}", hint=hint)
    via = f" through the proxy {route.proxy.address}" if route.proxy else ""
    return TLSError(f"the TLS certificate of {host}{shown}{via} is not trusted: {reason}; {trusted}", hint=hint)


def peer_certificate(host: str, port: int, proxy: ProxyChoice | None) -> Certificate | None:
    """The certificate ``host`` presents, read without verifying it and without sending any
    request (direct, or through an http:// proxy's CONNECT tunnel); None when it cannot be read."""
    if proxy is not None and proxy.parts.scheme != "http":
        return None
    with contextlib.suppress(OSError, ValueError):
        target = (proxy.parts.hostname or "", proxy.parts.port or 80) if proxy else (host, port)
        with socket.create_connection(target, timeout=PEEK_TIMEOUT) as sock:
            if proxy is not None and not _tunnel(sock, host, port, proxy):
                return None
            with unverified_context().wrap_socket(sock, server_hostname=host) as tls:
                der = tls.getpeercert(binary_form=True)
                return describe(der) if der else None
    return None


def _tunnel(sock: socket.socket, host: str, port: int, proxy: ProxyChoice) -> bool:
    lines = [f"CONNECT {host}:{port} HTTP/1.1", f"Host: {host}:{port}"]
    if proxy.has_credentials:
        user = urllib.parse.unquote(proxy.parts.username or "")
        password = urllib.parse.unquote(proxy.parts.password or "")
        lines.append("Proxy-Authorization: Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    answer = b""
    while b"\r\n\r\n" not in answer and len(answer) < 16384:
        chunk = sock.recv(4096)
        if not chunk:
            return False
        answer += chunk
    status = answer.split(b"\r\n", 1)[0].split()
    return len(status) >= 2 and status[1] == b"200"
