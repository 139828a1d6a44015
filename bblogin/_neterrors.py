"""Errors that name what failed on the way: the proxy, or the certificate and the trust store.

``_http`` attaches a :class:`Route` (the proxy chosen, the trust store used) to every request it
sends; when the request fails, :func:`explain` turns the failure into a message that names the
proxy by ``host:port`` (never its password) when the proxy refused the connection, asked for
authentication (HTTP 407) or could not reach the IdP, and for a certificate that failed
verification its subject, its issuer, the trust store that was used and how to fix it.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import ssl
import urllib.parse
from dataclasses import dataclass

import httpx

from bblogin._errors import BbloginError, IdPResponseError, IdPUnreachable, TLSError
from bblogin._http import _causes
from bblogin._proxy import ProxyChoice
from bblogin._trust import Certificate, Trust, describe, unverified_context

ROUTE = "bblogin_route"  # the request extension that carries the Route
PEEK_TIMEOUT = 5.0
_NO_PROXY_HINT = "or, if {host} is reachable without it, add {host} to NO_PROXY (or set proxy = \"direct\" in the profile)"


class ProxyFailed(IdPUnreachable):
    """The proxy refused the connection, wants credentials, or could not reach the server."""


@dataclass(frozen=True)
class Route:
    proxy: ProxyChoice | None
    trust: Trust


def route_of(exc: httpx.TransportError) -> Route | None:
    try:
        route = exc.request.extensions.get(ROUTE)
    except RuntimeError:  # an exception raised before httpx knew its request
        return None
    return route if isinstance(route, Route) else None


def _strerror(exc: BaseException) -> str | None:
    return next((c.strerror for c in _causes(exc) if isinstance(c, OSError) and c.strerror), None)


def explain(exc: httpx.TransportError, url: str, timeout: float) -> BbloginError | None:
    """The error for a failed request when the route tells more than the plain mapping; else None."""
    route = route_of(exc)
    if route is None:
        return None
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or url
    tls = next((c for c in _causes(exc) if isinstance(c, ssl.SSLCertVerificationError)), None)
    if tls is not None:
        return _certificate_error(tls, url, route)
    proxy = route.proxy
    if proxy is None:
        return None
    via = f"the proxy {proxy.address} (from {proxy.source})"
    fix_source = f"fix {proxy.source}" if proxy.source != "the profile's proxy" else "fix proxy in the profile"
    if isinstance(exc, httpx.ProxyError):
        status = str(exc).split(" ", 1)
        if status[0] in ("407", "401"):  # 407 as RFC 9110 says (squid); tinyproxy answers a CONNECT with 401
            if proxy.has_credentials:
                hint = f"the proxy refused the user name and password in {proxy.source}: correct them (%-encode special characters)"
            else:
                hint = f"put the proxy credentials into {proxy.source}: http://USER:PASSWORD@{proxy.address} (%-encode special characters)"
            return ProxyFailed(f"{via} requires authentication (HTTP {status[0]}) for the connection to {host}", hint=hint)
        reason = str(exc) or "refused the tunnel"
        reason = f"HTTP {reason}" if status[0].isdigit() else reason
        return ProxyFailed(
            f"{via} could not reach {host}:{parts.port or (443 if parts.scheme == 'https' else 80)} ({reason})",
            hint=f"check that the proxy may connect to {host}; " + _NO_PROXY_HINT.format(host=host),
        )
    if isinstance(exc, httpx.ConnectTimeout):
        return ProxyFailed(f"{via} did not accept a connection within {timeout:g} s (on the way to {host})", hint=f"check that the proxy is up, or {fix_source}")
    if isinstance(exc, httpx.TimeoutException):
        return ProxyFailed(f"{host} did not answer through {via}: timed out after {timeout:g} s", hint="check the network and the issuer URL; the cached tokens are untouched")
    if isinstance(exc, httpx.ConnectError):
        reason = _strerror(exc) or str(exc) or "connection failed"
        return ProxyFailed(f"cannot connect to {via}: {reason} (on the way to {host})", hint=f"start the proxy or {fix_source}; " + _NO_PROXY_HINT.format(host=host))
    if isinstance(exc, httpx.RemoteProtocolError):
        return IdPResponseError(f"the connection to {host} through {via} closed before the answer was complete", hint="the proxy or the identity provider is failing; try again later. The cached tokens are untouched")
    return None


def _certificate_error(tls: ssl.SSLCertVerificationError, url: str, route: Route) -> TLSError:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or url
    port = parts.port or 443
    reason = str(getattr(tls, "verify_message", None) or getattr(tls, "reason", None) or "verification failed").replace("_", " ").lower()
    cert = peer_certificate(host, port, route.proxy)
    shown = ""
    hint = (
        "install the issuing CA in the OS trust store (Debian/Ubuntu: copy it to /usr/local/share/ca-certificates/NAME.crt and run "
        "`sudo update-ca-certificates`; macOS: Keychain Access; Windows: certmgr), or pass --ca-file PEM (ca_file in the profile); "
        "behind a TLS-inspecting proxy (Zscaler, Netskope …) that CA is the proxy's"
    )
    if cert is not None:
        shown = f" (subject {cert.subject}, issued by {cert.issuer}{', self-signed' if cert.self_signed else ''})"
        if "hostname mismatch" in reason or "ip address mismatch" in reason:
            names = ", ".join(cert.names) or cert.subject
            hint = f"the certificate is for {names}, not {host}: use the host name the certificate names in the issuer URL"
        elif not cert.self_signed:
            hint = f"the issuer {cert.issuer} is not trusted: " + hint
    via = f" through the proxy {route.proxy.address}" if route.proxy else ""
    return TLSError(f"the TLS certificate of {host}{shown}{via} is not trusted: {reason}; checked against {route.trust.described()}", hint=hint)


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
