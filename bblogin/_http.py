"""HTTP to identity providers: httpx with TLS always verified, bounded retries, and every failure
mapped onto the bblogin error tree.

- TLS verification is always on, against the OS trust store (``_trust``: truststore, certifi
  where no OS store can be read); ``ca_file`` and git's ``http.sslCAInfo`` add private CAs to it.
- Every request picks its proxy (``_proxy``: the profile's ``proxy``, the environment's
  HTTPS_PROXY/HTTP_PROXY/ALL_PROXY/NO_PROXY, git's ``http.proxy``; never one for loopback), and a
  failure names the proxy or the refused certificate (``_neterrors``).
- Redirects are never followed: an IdP API that answers 3xx is misconfigured (or a captive
  portal), and a token request must not be replayed to wherever a redirect points.
- 429/502/503/504 are retried with exponential backoff (0.5 s, 1 s, ...) or the server's
  Retry-After, never waiting more than :data:`MAX_TOTAL_WAIT` seconds in all. Other 5xx answers,
  and 429/5xx once the retries are spent, are :class:`IdPResponseError` (carrying the answer's
  Retry-After, for ``_outage``).
- Inside :func:`budget` (a refresh that is only early: a valid token can be served instead)
  nothing is retried, and one short deadline bounds everything *before* a token request is sent:
  connecting, TLS, a proxy's CONNECT, sending, and whole GETs (discovery, JWKS: nothing is lost by
  dropping them). Once a POST has gone out, the IdP may already have acted on it (rotated the
  refresh token), so its answer is awaited — up to the client's own timeout, as one deadline — and
  the budget is over for the rest of that refresh (issue #24, B1). The deadlines are total, not per
  read: a watchdog shuts the connection down when one passes (a trickling answer cannot hold a call).
- Response bodies never reach an error message or a log line: an IdP's error page may echo a code
  or a token back. Errors name the host, the status and the content type.
"""

from __future__ import annotations

import contextlib
import contextvars
import email.utils
import json
import logging
import os
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from bblogin import __version__
from bblogin._errors import IdPResponseError, IdPUnreachable, TLSError

log = logging.getLogger("bblogin.http")

RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_TOTAL_WAIT = 10.0  # seconds of backoff per request, Retry-After included
_FAILING_HINT = "the identity provider (or a proxy in front of it) is failing; try again later. The cached tokens are untouched"
IDEMPOTENT = frozenset({"GET", "HEAD"})


class _Budget:
    """One :func:`budget`: its length, its deadline (set by the first request), and whether a
    token request went out (then the budget is over: what the IdP answers must be read)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline: float | None = None
        self.sent = False

    def left(self) -> float:
        if self.deadline is None:
            self.deadline = time.monotonic() + self.seconds
        return self.deadline - time.monotonic()


_budget: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("bblogin_http_budget", default=None)


@contextlib.contextmanager
def budget(seconds: float) -> Iterator[None]:
    """Requests inside are sent once, never retried, and share one deadline ``seconds`` after the
    first of them starts (importing and reading the keyring before it do not count) for all they
    do before a POST is sent — see the module's docstring: for a refresh whose caller has a valid
    token to fall back on, one dead IdP must not cost it the full timeout or a retry loop, and a
    slow one must never cost it the rotated refresh token."""
    token = _budget.set(_Budget(seconds))
    try:
        yield
    finally:
        _budget.reset(token)


_before_sending: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar("bblogin_http_before_sending", default=None)


@contextlib.contextmanager
def before_sending(note: Callable[[], None]) -> Iterator[None]:
    """``note()`` runs before each request inside that is not idempotent (a token request: from
    then on the IdP may act on it, and rotate the refresh token) is handed to the connection: a
    detached refresh (``_background``) tells its caller that its answer, if lost, is not to be
    had by sending the old refresh token again."""
    token = _before_sending.set(note)
    try:
        yield
    finally:
        _before_sending.reset(token)


class _Abandoned(Exception):
    """Raised from httpcore's trace hook: the deadline passed before the request was sent."""


class _Watch:
    """A total deadline for one request (httpx's timeouts bound each read and write, not the
    whole): a timer thread shuts the request's sockets down when it passes — unless a POST has
    gone out by then under ``budget``: its answer then gets ``full`` seconds more, as one deadline.
    The trace hook (httpcore's ``trace`` extension) sees the connections and the moment the
    request's headers start out; a request abandoned before that is never sent."""

    def __init__(self, early: float, full: float, *, idempotent: bool, held: _Budget) -> None:
        import threading

        self._early = early
        self.full = full
        self.idempotent = idempotent
        self.held = held
        self.abandoned = False
        self.sent = False
        self._streams: list[Any] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(early, self._expire)
        self._timer.daemon = True
        self._new_timer = threading.Timer

    def __enter__(self) -> _Watch:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._timer.cancel()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        with self._lock:
            if self.abandoned:
                raise _Abandoned
            if event.endswith((".connect_tcp.complete", ".start_tls.complete")) and info.get("return_value") is not None:
                self._streams.append(info["return_value"])
            elif event == "http11.send_request_headers.started" and getattr(info.get("request"), "method", b"") != b"CONNECT":
                if not self.idempotent and not self.sent:  # from here on the IdP may act on it: wait for its answer
                    self.sent = self.held.sent = True
                    self._timer.cancel()
                    self._timer = self._new_timer(self.full, self._expire)
                    self._timer.daemon = True
                    self._timer.start()

    def error(self, what: str, host: str) -> IdPUnreachable:
        limit = self.full if self.sent else self._early
        return IdPUnreachable(f"{host} did not answer: timed out after {limit:g} s")  # as httpx's own timeout says it

    def _expire(self) -> None:
        import socket

        with self._lock:
            self.abandoned = True
            for stream in self._streams:
                try:  # a duplicate of the descriptor: shuts the connection down under TLS too, leaves the SSL object alone
                    sock = stream.get_extra_info("socket")
                    with socket.socket(fileno=os.dup(sock.fileno())) as dup:
                        dup.shutdown(socket.SHUT_RDWR)
                except (OSError, AttributeError, ValueError):
                    pass


def make_client(*, ca_file: str | None = None, timeout: float = 10.0, proxy: str | None = None, git_url: str | None = None) -> httpx.Client:
    """An httpx client for one IdP: certificates checked against the OS trust store (``ca_file``
    trusted too), each request through the proxy that applies to it, no redirects.

    ``proxy``: the profile's ``proxy`` key (a URL, or ``"direct"``), which overrides the
    environment. ``git_url``: for the Bitbucket providers, the git host whose ``http.proxy`` (when
    the environment names none) and ``http.sslCAInfo`` apply, as they do to git itself."""
    from bblogin import _proxy, _trust

    git = _proxy.git_http(git_url) if git_url else _proxy.GitHTTP()
    ca_files = tuple(f for f in (ca_file, git.ca_info) if f)
    transport = _Router(_trust.trust(ca_files), profile_proxy=proxy, git_proxy=git.proxy)
    return httpx.Client(
        transport=transport,
        trust_env=False,  # proxies are chosen by _Router, not by httpx from the environment
        timeout=timeout,
        follow_redirects=False,
        headers={"User-Agent": f"bblogin/{__version__}", "Accept": "application/json"},
        event_hooks=clock_hooks(),
    )


def client_for_url(url: str, *, ca_file: str | None = None, proxy: str | None = None, git_url: str | None = None, timeout: float = 10.0) -> httpx.Client:
    """A client for fetching ``url`` (a team's setup bundle, a git host's ``info/refs``) the way
    bblogin reaches an IdP: the same trust store, the same proxy rules (git's for ``git_url``), no
    redirects. Usage: ``with client_for_url(u) as c: request(c, "GET", u)``."""
    from bblogin import _proxy

    git = _proxy.git_http(git_url) if git_url else _proxy.GitHTTP()
    _proxy.choose(url, profile_proxy=proxy, git_proxy=git.proxy)  # a malformed proxy setting is a ConfigError now, not at the first request
    return make_client(ca_file=ca_file, timeout=timeout, proxy=proxy, git_url=git_url)


def reach(client: httpx.Client, url: str, *, params: dict[str, str] | None = None, headers: dict[str, str] | None = None, auth: tuple[str, str] | None = None) -> httpx.Response:
    """One GET, never retried nor redirected, whose answer of any status (3xx included) proves the
    way to ``url`` (doctor's checks); a transport failure raises as in :func:`request`, naming
    the proxy or the refused certificate."""
    host = httpx.URL(url).host or url
    timeout = client.timeout.read or client.timeout.connect or 0.0
    try:
        return client.get(url, params=params, headers=headers, auth=auth)
    except httpx.TransportError as exc:
        raise _transport_error(exc, host, timeout, url) from None


class _Router(httpx.BaseTransport):
    """Sends each request through the proxy :func:`bblogin._proxy.choose` picks for its URL (one
    pooled transport per proxy), and tags it with the route for ``_neterrors``."""

    def __init__(self, trust: Any, *, profile_proxy: str | None, git_proxy: str | None) -> None:
        self.trust = trust
        self._profile_proxy = profile_proxy
        self._git_proxy = git_proxy
        self._transports: dict[str | None, httpx.HTTPTransport] = {}

    def _transport(self, choice: Any) -> httpx.HTTPTransport:
        key = choice.url if choice is not None else None
        if key not in self._transports:
            from bblogin._errors import ProxySettingError

            try:
                proxy = None
                if choice is not None:
                    https_proxy = choice.parts.scheme == "https"
                    proxy = httpx.Proxy(choice.url, ssl_context=self.trust.context) if https_proxy else httpx.Proxy(choice.url)
                self._transports[key] = httpx.HTTPTransport(verify=self.trust.context, proxy=proxy)
            except ImportError:
                raise ProxySettingError(
                    f"{choice.source} names the SOCKS proxy {choice.shown()}, and the socksio package is not installed",
                    hint="install it (pip install 'httpx[socks]', which bblogin's own install brings), or use an http:// proxy",
                ) from None
            except (ValueError, httpx.InvalidURL):
                raise ProxySettingError(f"the proxy in {choice.source} is not a proxy URL", hint="use http://[USER:PASSWORD@]HOST:PORT; special characters in the password %-encoded") from None
        return self._transports[key]

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        from bblogin import _neterrors, _proxy

        choice = _proxy.choose(str(request.url), profile_proxy=self._profile_proxy, git_proxy=self._git_proxy)
        route = _neterrors.Route(choice, self.trust)
        request.extensions[_neterrors.ROUTE] = route
        watch = request.extensions.get("trace")  # request()'s _Watch, under an early budget: both hear every step
        request.extensions["trace"] = route.trace if watch is None else _both(route.trace, watch)  # httpcore reports each step: which one failed names the party
        if choice is not None:
            log.debug("%s %s via the proxy %s (from %s)", request.method, request.url.host, choice.shown(), choice.source)
            if choice.parts.scheme == "socks5":
                _resolve_here(request, choice)
        return self._transport(choice).handle_request(request)

    def close(self) -> None:
        for transport in self._transports.values():
            transport.close()
        self._transports.clear()


def _both(first: Any, second: Any) -> Any:
    """One httpcore trace hook that calls two, in order."""

    def trace(event: str, info: dict[str, Any]) -> None:
        first(event, info)
        second(event, info)

    return trace


def _resolve_here(request: httpx.Request, choice: Any) -> None:
    """socks5:// (not socks5h://) resolves the name on this machine, as curl does, and hands the
    proxy an address (httpcore would send the name). The Host header and the TLS check (SNI and
    the certificate's name) keep the name."""
    import ipaddress
    import socket

    host = request.url.host
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, request.url.port or (443 if request.url.scheme == "https" else 80), type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        from bblogin._neterrors import ProxyFailed

        reason = getattr(exc, "strerror", None) or "not a host name"
        raise ProxyFailed(
            f"cannot resolve {host} on this machine: {reason} ({choice.source} names the socks5:// proxy {choice.address}, which is handed an address)",
            hint=f"use socks5h://{choice.address} to let the proxy resolve names, or fix the issuer URL",
            party=f"resolving {host}",
        ) from None
    request.extensions["sni_hostname"] = host
    request.url = request.url.copy_with(host=str(found[0][4][0]))


def clock_hooks() -> dict[str, list[Any]]:
    """httpx event hooks that show every answer's Date header to ``_clock`` (the IdP's clock is
    measured on every answer, whichever module sent the request)."""
    from bblogin import _clock

    def sent(request: httpx.Request) -> None:
        request.extensions["bblogin_sent"] = time.time()

    def received(response: httpx.Response) -> None:
        start = response.request.extensions.get("bblogin_sent")
        if isinstance(start, float):
            _clock.observe(str(response.request.url), response.headers.get("Date"), start, time.time())

    return {"request": [sent], "response": [received]}


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from (httpx wraps httpcore wraps ssl/OSError)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _transport_error(exc: httpx.TransportError, host: str, timeout: float, url: str = "") -> Exception:
    from bblogin import _neterrors

    explained = _neterrors.explain(exc, url, timeout) if url else None  # the proxy, or the refused certificate
    if explained is not None:
        return explained
    causes = _causes(exc)
    tls = next((c for c in causes if isinstance(c, ssl.SSLError)), None)
    if tls is not None:
        reason = getattr(tls, "verify_message", None) or getattr(tls, "reason", None) or "handshake failed"
        return TLSError(f"the TLS connection to {host} failed: {str(reason).replace('_', ' ').lower()}")
    if isinstance(exc, httpx.TimeoutException):
        return IdPUnreachable(f"{host} did not answer: timed out after {timeout:g} s")
    if isinstance(exc, httpx.RemoteProtocolError):
        return IdPResponseError(f"{host} closed the connection before its answer was complete", hint=_FAILING_HINT)
    os_error = next((c for c in causes if isinstance(c, OSError) and c.strerror), None)
    if isinstance(exc, httpx.ConnectError):
        reason = os_error.strerror if os_error is not None else "connection failed"
        return IdPUnreachable(f"cannot connect to {host}: {reason}")
    return IdPUnreachable(f"talking to {host} failed ({type(exc).__name__})")


def retry_delay(response: httpx.Response, attempt: int, now: float | None = None) -> float:
    """Seconds to wait before retry number ``attempt + 1``: Retry-After if given, else 0.5 * 2^attempt.
    A Retry-After date counts from the answer's own Date when it has one (this machine's clock
    may be off the server's), else from ``now`` (default: this machine's clock)."""
    value = response.headers.get("Retry-After", "").strip()
    if value.isdigit():
        return float(value)
    if value:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None and when.tzinfo is not None:
            from bblogin._clock import parse_date

            start = parse_date(response.headers.get("Date"))
            if start is None:
                start = time.time() if now is None else now
            return max(0.0, when.timestamp() - start)
    return 0.5 * 2.0**attempt


def _error_code(response: httpx.Response) -> str | None:
    """The OAuth ``error`` code of a JSON error body (a short registered word, safe to show)."""
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) and error.isascii() and error.isprintable() and len(error) <= 64 else None


def _content_kind(response: httpx.Response) -> str:
    return response.headers.get("Content-Type", "").split(";")[0].strip() or "no content type"


def request(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    data: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    auth: tuple[str, str] | None = None,
    retries: int = 2,
    what: str = "the request",
) -> httpx.Response:
    """Send one request with the retry policy above. Returns any 1xx/2xx/4xx response; raises
    :class:`IdPUnreachable`/:class:`TLSError` for transport failures and
    :class:`IdPResponseError` for redirects, exhausted 429s and 5xx."""
    host = httpx.URL(url).host or url
    full = client.timeout.read or client.timeout.connect or 0.0
    timeout = full
    held = _budget.get()
    early = None
    if held is not None:
        retries = 0
        if not held.sent:  # a token request of this refresh went out: the IdP is there, the budget is over
            early = round(min(full, held.left()), 2)
            if early <= 0:
                raise IdPUnreachable(f"{what}: not sent to {host}: the time for an early refresh was spent")
            timeout = early if method in IDEMPOTENT else full
    waited = 0.0
    attempt = 0
    while True:
        note = _before_sending.get() if method not in IDEMPOTENT else None
        if note is not None:
            note()
        watch = _Watch(early, full, idempotent=method in IDEMPOTENT, held=held) if early is not None and held is not None else None
        try:
            if watch is None:
                response = client.request(method, url, data=data, headers=headers, auth=auth)
            else:
                with watch:
                    response = client.request(
                        method, url, data=data, headers=headers, auth=auth, extensions={"trace": watch.trace},
                        timeout=httpx.Timeout(timeout, connect=early, pool=early),
                    )
        except _Abandoned:
            raise watch.error(what, host) from None  # type: ignore[union-attr]  # only a watch raises it
        except httpx.TransportError as exc:
            if watch is not None and watch.abandoned:
                raise watch.error(what, host) from None
            raise _transport_error(exc, host, timeout, url) from None
        log.debug("%s %s %s -> HTTP %s", method, host, httpx.URL(url).path, response.status_code)
        status = response.status_code
        if status in RETRY_STATUSES and attempt < retries:
            pause = retry_delay(response, attempt)
            if waited + pause <= MAX_TOTAL_WAIT:
                log.debug("%s answered HTTP %s; retrying in %.1f s", host, status, pause)
                time.sleep(pause)
                waited += pause
                attempt += 1
                continue
        if 300 <= status < 400:
            target = httpx.URL(url).join(response.headers.get("Location", "")).host or "elsewhere"  # a relative Location stays on this host
            raise IdPResponseError(
                f"{what}: {host} answered HTTP {status}, a redirect to {target}; bblogin does not follow redirects from an identity provider's API",
                hint="check the issuer URL in the profile (scheme, host and path exactly as the IdP announces them)",
            )
        if status == 429:
            error = IdPResponseError(f"{what}: {host} is rate-limiting requests (HTTP 429)", hint="wait a minute and try again; the cached tokens are untouched")
        elif status >= 500:
            code = _error_code(response)
            detail = f" ({code})" if code else f" ({_content_kind(response)})"
            error = IdPResponseError(f"{what}: {host} failed with HTTP {status}{detail}", hint=_FAILING_HINT)
        else:
            return response
        if response.headers.get("Retry-After"):
            error.retry_after = retry_delay(response, 0)
        raise error


def download(client: httpx.Client, url: str, *, limit: int, deadline: float, what: str) -> tuple[int, bytes | None]:
    """GET ``url`` and stream its body: ``(status, body)``, the body None when it is larger than
    ``limit`` bytes — refused from its Content-Length before it is read, else once ``limit + 1``
    bytes have come — so a huge or endless answer costs ``limit`` bytes of memory. The whole
    transfer must end within ``deadline`` seconds (the read timeout bounds only each wait). A
    redirect is refused, not followed: what is fetched comes from the URL given."""
    host = httpx.URL(url).host or url
    timeout = client.timeout.read or client.timeout.connect or 0.0
    end = time.monotonic() + deadline
    try:
        with client.stream("GET", url, headers={"Accept": "*/*", "Accept-Encoding": "identity"}) as response:
            log.debug("GET %s %s -> HTTP %s", host, httpx.URL(url).path, response.status_code)
            if 300 <= response.status_code < 400:
                target = httpx.URL(url).join(response.headers.get("Location", "")).host or "elsewhere"  # a relative Location stays on this host
                raise IdPResponseError(
                    f"{what}: {host} answered HTTP {response.status_code}, a redirect to {target}; bblogin does not follow redirects",
                    hint="give the URL the file is really at",
                )
            if response.headers.get("Content-Encoding", "identity").lower() != "identity":  # a compressed body could unpack to any size
                raise IdPResponseError(f"{what}: {host} sent a {response.headers['Content-Encoding']}-compressed answer although asked for none", hint="serve the file uncompressed")
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > limit:
                return response.status_code, None
            body = bytearray()
            for chunk in response.iter_raw():
                body += chunk
                if len(body) > limit:
                    return response.status_code, None
                if time.monotonic() > end:
                    raise IdPUnreachable(f"{what}: {host} did not send its answer within {deadline:g} s")
            return response.status_code, bytes(body)
    except httpx.TransportError as exc:
        raise _transport_error(exc, host, timeout, url) from None


def parse_json(response: httpx.Response, what: str) -> dict[str, Any]:
    """The JSON object in ``response``; otherwise IdPResponseError naming status and content type."""
    host = response.request.url.host
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        raise IdPResponseError(
            f"{what}: {host} answered HTTP {response.status_code} with {_content_kind(response)} that is not valid JSON",
            hint=_FAILING_HINT,
        ) from None
    if not isinstance(body, dict):
        raise IdPResponseError(f"{what}: {host} answered HTTP {response.status_code} with JSON that is not an object", hint=_FAILING_HINT)
    return body


def request_json(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    data: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    auth: tuple[str, str] | None = None,
    retries: int = 2,
    what: str = "the request",
) -> tuple[int, dict[str, Any], httpx.Headers]:
    """:func:`request`, then the body as a JSON object: ``(status, body, headers)``."""
    response = request(client, method, url, data=data, headers=headers, auth=auth, retries=retries, what=what)
    return response.status_code, parse_json(response, what), response.headers
