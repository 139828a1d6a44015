"""The dev IdP: an OIDC provider on 127.0.0.1 that behaves like dex v2.45 with the
bitbucket-cloud connector — the same endpoints, redirect-URI rules, token responses and, above
all, the same failures (shared/dex-facts.md, checked against dex's source) — with a Bitbucket
double to log in at and a Bitbucket Pipelines issuer double for token exchange.

A development and test double, labelled as such on every page. Tests steer it with
``fail_next``/``delay_next`` (faults), ``count``/``requests``/``presented_tokens``/``foreign_tokens``
(accounting), ``rotate_keys``,
``revoke_refresh_tokens``, ``approve_device``/``deny_device``, ``bitbucket`` (the accounts)
and ``mint_pipelines_token``.

Where it knowingly differs from dex: the ``bitbucket-pipelines`` connector is always
configured (for token exchange) but offered at /auth only when named in ``connectors``, and
it cannot run a browser login; ``auto_approve`` skips the approval screen even when
``approval_prompt=force`` asks for it; Bitbucket's login and consent are one page; the
deprecated /device/token, password logins and storage garbage collection are left out.
"""

from __future__ import annotations

import ssl
import sys
import threading
from collections.abc import Callable
from typing import Any, Self

from bblogin import _record
from bblogin.devidp import (
    _authflow,
    _browser,
    _deviceflow,
    _discovery,
    _pages,
    _tokenflow,
    _tokeninfo,
)
from bblogin.devidp._bitbucket import AUTHORIZE_PATH, FakeBitbucket
from bblogin.devidp._connectors import (
    BitbucketCloudConnector,
    CallbackConnector,
    Connector,
    OIDCConfig,
    OIDCConnector,
)
from bblogin.devidp._pipelines import PipelinesIssuer
from bblogin.devidp._provider import DEFAULT_CLIENTS, Client, Provider
from bblogin.devidp._settings import Settings
from bblogin.devidp._users import USERS
from bblogin.devidp._web import Reply, Request, Server, Traffic, html, serve

ISSUER_PATH = "/dex"
PIPELINES_CONNECTOR = "bitbucket-pipelines"
_NOT_FOUND = Reply(404, b"404 page not found\n", "text/plain; charset=utf-8", {"X-Content-Type-Options": "nosniff"})


class DevIdP:
    """``with DevIdP(auto_approve=True) as idp: idp.issuer``"""

    def __init__(
        self,
        *,
        port: int = 0,
        auto_approve: bool = False,
        default_user: str = "alice",
        id_token_ttl: int = 86400,
        refresh_reuse_interval: float = 0,
        refresh_token_ttl: float | None = None,
        refresh_unused_ttl: float | None = None,
        skip_approval: bool = False,
        connectors: tuple[str, ...] = ("bitbucket-cloud",),
        device_interval: int = 5,
        device_expires_in: int = 300,
        clients: tuple[Client, ...] = (),
        teams: tuple[str, ...] = (),
        pipelines_connector: OIDCConfig | None = None,
        key_file: str | None = None,
        tls: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
        public_port: int | None = None,
    ) -> None:
        """``tls``: serve https with this server context (its certificate must name ``host``);
        ``host``: the name the issuer URL carries (it still listens on 127.0.0.1 only: a test maps
        the name there in /etc/hosts of a private mount namespace); ``public_port``: the port the issuer
        URL carries when clients reach it through a proxy (tests/fixtures/faults.py; default: the
        port it listens on). ``connectors``: the connector IDs /auth offers (each a bitbucket-cloud connector, or
        ``bitbucket-pipelines``); ``teams``: the bitbucket-cloud connector's ``teams`` filter;
        ``pipelines_connector``: the oidc connector's config (default: trusts the ``acme``
        workspace's Pipelines issuer, user name from ``sub``, no email scope); ``key_file``: keep
        the signing keys there across restarts, as dex does in its storage (default: in memory)."""
        if default_user not in USERS:
            raise ValueError(f"unknown dev user {default_user!r} (have: {', '.join(USERS)})")
        if not connectors:
            raise ValueError("dex needs at least one connector")
        self.settings = Settings(
            issuer="",
            auto_approve=auto_approve,
            default_user=default_user,
            id_token_ttl=id_token_ttl,
            refresh_reuse_interval=refresh_reuse_interval,
            refresh_token_ttl=refresh_token_ttl,
            refresh_unused_ttl=refresh_unused_ttl,
            skip_approval=skip_approval,
            device_interval=device_interval,
            device_expires_in=device_expires_in,
        )
        self.port = port
        self._public_port = public_port
        self._tls = tls
        self._host = host
        self._clients = {c.id: c for c in (*DEFAULT_CLIENTS, *clients)}
        self._connector_ids = connectors
        self._teams = teams
        self._pipelines_config = pipelines_connector
        self._key_file = key_file
        self._traffic = Traffic()
        self._provider: Provider | None = None
        self._routes: dict[str, Callable[[Provider, Request], Reply]] = {  # paths below the issuer
            "": lambda p, _r: html(200, _pages.landing(f"{p.issuer}/.well-known/openid-configuration")),
            "/.well-known/openid-configuration": lambda p, _r: _discovery.discovery(p),
            "/keys": lambda p, _r: _discovery.keys(p),
            "/token": _tokenflow.token,
            "/userinfo": _tokeninfo.userinfo,
            "/token/introspect": _tokeninfo.introspect,
            "/auth": _authflow.authorize,
            "/callback": _authflow.connector_callback,
            "/approval": _authflow.approval,
            "/device": _deviceflow.entry_page,
            "/device/code": lambda p, r: _deviceflow.device_code(p, r, self._issued),
            "/device/auth/verify_code": _deviceflow.verify_user_code,
            "/device/callback": _deviceflow.callback,
            "/healthz": lambda _p, _r: Reply(200, b"Health check passed", "text/plain; charset=utf-8"),
        }
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def issuer(self) -> str:
        return f"{self.base}{ISSUER_PATH}"

    @property
    def base(self) -> str:
        return f"{'https' if self._tls else 'http'}://{self._host}:{self._public_port or self.port}"

    def start(self) -> Self:
        self._server = serve(self.port, ISSUER_PATH, self._dispatch, self._traffic, tls=self._tls)
        self.port = self._server.server_address[1]
        base = self.base
        self.settings.issuer = self.issuer
        bitbucket = FakeBitbucket(base, self.issuer + "/callback", self.settings)
        pipelines = PipelinesIssuer(base)
        connectors: dict[str, Connector] = {}
        for cid in self._connector_ids:
            if cid != PIPELINES_CONNECTOR:
                name = "Bitbucket Cloud" if cid == "bitbucket-cloud" else f"Bitbucket Cloud ({cid})"
                connectors[cid] = BitbucketCloudConnector(cid, name, bitbucket, self._teams)
        config = self._pipelines_config or OIDCConfig(scopes=("openid",), user_name_key="sub")
        config = _record.replace(config, issuer=config.issuer or pipelines.issuer("acme"), client_id=config.client_id or pipelines.audience("acme"))
        connectors[PIPELINES_CONNECTOR] = OIDCConnector(PIPELINES_CONNECTOR, "Bitbucket Pipelines", config, pipelines)
        self._provider = Provider(self.settings, self._clients, connectors, list(self._connector_ids), bitbucket, pipelines, self._key_file)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="bblogin-devidp", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.close_connections()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def _p(self) -> Provider:
        if self._provider is None:
            raise RuntimeError("the dev IdP is not started: call start() first")
        return self._provider

    # -- settings tests change on the fly ------------------------------------------------------
    @property
    def default_user(self) -> str:
        return self.settings.default_user

    @default_user.setter
    def default_user(self, username: str) -> None:
        if username not in USERS:
            raise ValueError(f"unknown dev user {username!r}")
        self.settings.default_user = username

    @property
    def id_token_ttl(self) -> int:
        return self.settings.id_token_ttl

    @id_token_ttl.setter
    def id_token_ttl(self, seconds: int) -> None:
        self.settings.id_token_ttl = seconds

    # -- the doubles behind dex ----------------------------------------------------------------
    @property
    def bitbucket(self) -> FakeBitbucket:
        """The Bitbucket Cloud double: ``update_user``, ``revoke_access``, ``users``."""
        return self._p.bitbucket

    @property
    def pipelines(self) -> PipelinesIssuer:
        """The Bitbucket Pipelines issuer double (one issuer per workspace)."""
        return self._p.pipelines

    def mint_pipelines_token(self, **claims: Any) -> str:
        """A step's BITBUCKET_STEP_OIDC_TOKEN: workspace="acme", repository_uuid, step_uuid,
        branch="main", ttl=3600, audience, deployment_environment_uuid (see PipelinesIssuer.mint)."""
        with self._p.lock:
            token = self._p.pipelines.mint(**claims)
        self._traffic.add_issued(token)  # the Pipelines issuer double is part of this server
        return token

    # -- test controls -----------------------------------------------------------------------
    def rotate_keys(self) -> None:
        """A new signing key, first in the JWKS; the old one stays published (as a retired key)."""
        with self._p.lock:
            self._p.keys.rotate(self.settings.id_token_ttl)

    def revoke_refresh_tokens(self, user: str | None = None) -> None:
        """Delete the refresh tokens of one Bitbucket username, or everyone's."""
        p = self._p
        with p.lock:
            doomed = {rid for rid, r in p.store.refresh_tokens.items() if user is None or r.claims.username == user}
            for rid in doomed:
                del p.store.refresh_tokens[rid]
            for session in p.store.offline_sessions.values():
                session.refresh = {cid: rid for cid, rid in session.refresh.items() if rid not in doomed}

    def approve_device(self, user_code: str, user: str = "alice") -> None:
        """The person enters the code, logs in at Bitbucket as ``user`` and grants access."""
        outcome = self._device_login(user_code, user, approve=True)
        if outcome.status != 200:
            raise ValueError(f"the device login did not complete: dex answered {outcome.status} {outcome.message!r}")

    def deny_device(self, user_code: str, user: str = "alice") -> None:
        """The person declines (at dex's approval screen, or at Bitbucket when there is none).
        dex tells the device nothing: it polls authorization_pending until expired_token."""
        if self.settings.auto_approve:
            raise ValueError("with auto_approve nobody is asked: the device was approved when it was issued")
        outcome = self._device_login(user_code, user, approve=False)
        if outcome.status != 500:
            raise ValueError(f"the person never got to decline: dex answered {outcome.status} {outcome.message!r}")

    def _device_login(self, user_code: str, user: str, *, approve: bool) -> _browser.Outcome:
        p, settings = self._p, self.settings
        connector = next((cid for cid in p.listed if isinstance(p.connectors[cid], CallbackConnector)), "")
        approval_screen = not (settings.auto_approve or settings.skip_approval)
        with p.lock:
            return _browser.device_login(self._route, ISSUER_PATH, connector, user_code, user, approve=approve, approval_screen=approval_screen)

    def fail_next(self, path: str, status: int, body: str | bytes, content_type: str = "application/json", count: int = 1, delay: float = 0.0) -> None:
        """The next ``count`` requests to ``path`` (relative to the issuer, e.g. "/token") get
        this answer after ``delay`` seconds. Replaces an earlier setting; count=0 clears it."""
        data = body.encode() if isinstance(body, str) else body
        self._traffic.inject(path, Reply(status, data, content_type), count, delay)

    def delay_next(self, path: str, seconds: float, count: int = 1) -> None:
        """The next ``count`` requests to ``path`` are answered normally, after ``seconds``."""
        self._traffic.inject(path, None, count, seconds)

    @property
    def requests(self) -> list[tuple[str, str, str | None]]:
        """Every request so far: (method, path relative to the issuer, grant_type or None)."""
        return self._traffic.entries()

    def count(self, path: str, grant_type: str | None = None) -> int:
        return sum(1 for _m, p, g in self._traffic.entries() if p == path and (grant_type is None or g == grant_type))

    @property
    def presented_tokens(self) -> list[tuple[str, str, str]]:
        """Every token a request carried: (path, form field or "Authorization", token)."""
        with self._traffic._lock:
            return list(self._traffic.presented)

    def foreign_tokens(self, since: int = 0) -> list[tuple[str, str]]:
        """(path, field) of every presented token (from the ``since``-th on) this server never
        issued: a token that belongs to another party reached it. Provenance tests assert this
        stays empty."""
        with self._traffic._lock:
            return [(path, where) for path, where, token in self._traffic.presented[since:] if token not in self._traffic.issued]

    # -- routing -------------------------------------------------------------------------------
    def _dispatch(self, request: Request) -> Reply:
        with self._p.lock:
            return self._route(request)

    def _route(self, request: Request) -> Reply:
        p = self._p
        if request.path == AUTHORIZE_PATH:
            return p.bitbucket.authorize(request)
        pipelines = p.pipelines.serve(request)
        if pipelines is not None:
            return pipelines
        if request.path != ISSUER_PATH and not request.path.startswith(ISSUER_PATH + "/"):
            return _NOT_FOUND
        path = request.path[len(ISSUER_PATH) :]
        handler = self._routes.get(path)
        if handler is not None:
            return handler(p, request)
        head, _, connector = path[1:].partition("/")  # dex's /auth/{connector} and /callback/{connector}
        if head == "auth" and connector and "/" not in connector:
            return _authflow.connector_login(p, request, connector)
        if head == "callback" and connector and "/" not in connector:
            return _authflow.connector_callback(p, request, connector)
        return _NOT_FOUND

    def _issued(self, user_code: str) -> None:
        """With auto_approve, the person approves each device code the moment it exists."""
        if not self.settings.auto_approve:
            return
        outcome = self._device_login(user_code, self.settings.default_user, approve=True)
        if outcome.status != 200:  # dex would have shown the person this page; the device waits
            print(f"bblogin dev IdP: auto-approval of device code {user_code} failed: {outcome.status} {outcome.message}", file=sys.stderr)

