"""The dev IdP: an OIDC provider on 127.0.0.1 that behaves like dex v2.45 with the
bitbucket-cloud connector — the same endpoints, the same redirect-URI rules for public clients,
the same token responses, and above all the same failures (see shared/dex-facts.md).

It is a development and test double, labelled as such on every page. Tests drive it through
``fail_next`` (faults), ``count`` (request accounting), ``rotate_keys``, ``revoke_refresh_tokens``
and the ``id_token_ttl`` / ``default_user`` attributes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac as hmac_mod
import json
import re
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bblogin.devidp import _pages
from bblogin.devidp._keys import SigningKey, half_hash
from bblogin.devidp._pipelines import PipelinesIssuer
from bblogin.devidp._users import USERS, BitbucketUser, claims_for

SUPPORTED_SCOPES = ("openid", "email", "groups", "profile", "offline_access")
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
TOKEN_TYPES = {"id_token": "urn:ietf:params:oauth:token-type:id_token", "access_token": "urn:ietf:params:oauth:token-type:access_token"}
PIPELINES_CONNECTOR = "bitbucket-pipelines"
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
CODE_LIFETIME = 30 * 60
_LOOPBACK_REDIRECT = re.compile(r"^http://(localhost|127\.0\.0\.1|\[::1\])(:\d+)?(/.*)?$")


@dataclass
class Client:
    id: str
    secret: str | None = None
    redirect_uris: tuple[str, ...] = ()
    name: str = ""

    @property
    def public(self) -> bool:
        return self.secret is None


@dataclass
class AuthRequest:
    client_id: str
    redirect_uri: str
    scopes: list[str]
    state: str
    nonce: str | None
    code_challenge: str
    challenge_method: str
    connector_id: str = ""
    user: BitbucketUser | None = None
    device_code: str | None = None
    hmac_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))


@dataclass
class RefreshRecord:
    client_id: str
    user: BitbucketUser
    connector_id: str
    scopes: list[str]
    nonce: str | None
    token: str
    previous: str | None = None
    rotated_at: float = 0.0
    expires_at: float | None = None


@dataclass
class DeviceRequest:
    client_id: str
    user_code: str
    scopes: list[str]
    expires_at: float
    interval: int
    last_poll: float = 0.0
    user: BitbucketUser | None = None
    issued: bool = False


class Fault:
    def __init__(self, status: int, body: bytes, content_type: str, count: int, delay: float) -> None:
        self.status, self.body, self.content_type, self.count, self.delay = status, body, content_type, count, delay


class DevIdP:
    """``with DevIdP(auto_approve=True) as idp: idp.issuer``"""

    def __init__(
        self,
        *,
        port: int = 0,
        auto_approve: bool = False,
        default_user: str = "alice",
        id_token_ttl: int = 86400,
        refresh_reuse_interval: int = 0,
        refresh_token_ttl: int | None = None,
        skip_approval: bool = False,
        connectors: tuple[str, ...] = ("bitbucket-cloud",),
        device_interval: int = 5,
        device_expires_in: int = 300,
        clients: tuple[Client, ...] = (),
    ) -> None:
        self.port = port
        self.auto_approve = auto_approve
        self.default_user = default_user
        self.id_token_ttl = id_token_ttl
        self.refresh_reuse_interval = refresh_reuse_interval
        self.refresh_token_ttl = refresh_token_ttl
        self.skip_approval = skip_approval or auto_approve
        self.connectors = list(connectors)
        self.device_interval = device_interval
        self.device_expires_in = device_expires_in
        self.clients = {c.id: c for c in (Client("bblogin", name="bblogin"), Client("bblogin-ci", "bblogin-ci-secret", ("http://127.0.0.1:5555/callback",), "bblogin CI"), *clients)}
        self.keys = [SigningKey.generate()]
        self.lock = threading.RLock()
        self.requests: list[tuple[str, str, str | None]] = []
        self._faults: dict[str, Fault] = {}
        self._delays: dict[str, list[float]] = {}
        self._auth: dict[str, AuthRequest] = {}
        self._codes: dict[str, tuple[AuthRequest, float]] = {}
        self._refresh: dict[tuple[str, str, str], RefreshRecord] = {}
        self._devices: dict[str, DeviceRequest] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.pipelines: PipelinesIssuer | None = None  # the Pipelines issuer double, once started

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}/dex"

    def start(self) -> DevIdP:
        idp = self

        class Handler(_Handler):
            server_idp = idp

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.pipelines = PipelinesIssuer(f"http://127.0.0.1:{self.port}")
        self._thread = threading.Thread(target=self._server.serve_forever, name="bblogin-devidp", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> DevIdP:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test controls -----------------------------------------------------------------------
    def rotate_keys(self) -> None:
        """A new current key first; the old ones stay in the JWKS (as retired keys do in dex)."""
        with self.lock:
            self.keys.insert(0, SigningKey.generate())

    def revoke_refresh_tokens(self, user: str | None = None) -> None:
        with self.lock:
            for key in [k for k, r in self._refresh.items() if user is None or r.user.username == user]:
                del self._refresh[key]

    def approve_device(self, user_code: str, user: str = "alice") -> None:
        with self.lock:
            device = next(d for d in self._devices.values() if d.user_code == user_code)
            device.user = USERS[user]

    def fail_next(self, path: str, status: int, body: str | bytes, content_type: str = "application/json", count: int = 1, delay: float = 0.0) -> None:
        """The next ``count`` requests to ``path`` (relative to the issuer) get this answer; 0 clears."""
        with self.lock:
            if count <= 0:
                self._faults.pop(path, None)
            else:
                self._faults[path] = Fault(status, body.encode() if isinstance(body, str) else body, content_type, count, delay)

    def delay_next(self, path: str, seconds: float, count: int = 1) -> None:
        """The next ``count`` requests to ``path`` are answered normally, after ``seconds``."""
        with self.lock:
            self._delays[path] = [seconds, count]

    def count(self, path: str, grant_type: str | None = None) -> int:
        with self.lock:
            return sum(1 for _m, p, g in self.requests if p == path and (grant_type is None or g == grant_type))

    # -- token minting -----------------------------------------------------------------------
    def _claims(self, req_client: str, user: BitbucketUser, connector: str, scopes: list[str], nonce: str | None) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {"iss": self.issuer, "aud": req_client, "exp": now + self.id_token_ttl, "iat": now}
        if nonce:
            claims["nonce"] = nonce
        claims.update(claims_for(user, connector, scopes))
        return claims

    def mint(self, client_id: str, user: BitbucketUser, connector: str, scopes: list[str], nonce: str | None, code: str | None = None) -> dict[str, Any]:
        base = self._claims(client_id, user, connector, scopes, nonce)
        access_token = self.keys[0].sign(base)
        id_claims = {**base, "at_hash": half_hash(access_token)}
        if code is not None:
            id_claims["c_hash"] = half_hash(code)
        return {"access_token": access_token, "token_type": "bearer", "expires_in": self.id_token_ttl, "id_token": self.keys[0].sign(id_claims)}

    def _new_refresh(self, client_id: str, user: BitbucketUser, connector: str, scopes: list[str], nonce: str | None) -> str:
        """dex keeps one refresh token per user, connector and client: a new login replaces it."""
        token = secrets.token_urlsafe(24)
        expires = time.time() + self.refresh_token_ttl if self.refresh_token_ttl else None
        self._refresh[(user.uuid, connector, client_id)] = RefreshRecord(client_id, user, connector, scopes, nonce, token, expires_at=expires)
        return token

    def verify_access_token(self, token: str) -> dict[str, Any] | None:
        import jwt

        for key in self.keys:
            try:
                return jwt.decode(token, key.private.public_key(), algorithms=["RS256"], audience=None, options={"verify_aud": False}, issuer=self.issuer)
            except jwt.PyJWTError:
                continue
        return None


class _Reply(Exception):
    def __init__(self, status: int, body: bytes, content_type: str = "text/html; charset=utf-8", headers: dict[str, str] | None = None) -> None:
        self.status, self.body, self.content_type, self.headers = status, body, content_type, headers or {}


def _json(status: int, obj: dict[str, Any], headers: dict[str, str] | None = None) -> _Reply:
    return _Reply(status, json.dumps(obj).encode(), "application/json", headers)


def _oauth_error(error: str, description: str = "", status: int = 400) -> _Reply:
    body = {"error": error, **({"error_description": description} if description else {})}
    return _json(status, body)


def _redirect(location: str, status: int = 302) -> _Reply:
    return _Reply(status, b"", "text/plain", {"Location": location})


def _with_query(uri: str, params: dict[str, str]) -> str:
    sep = "&" if "?" in uri else "?"
    return uri + sep + urllib.parse.urlencode(params)


class _Handler(BaseHTTPRequestHandler):
    server_idp: DevIdP
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read their own output
        pass

    # -- plumbing ----------------------------------------------------------------------------
    def _dispatch(self, method: str) -> None:
        idp = self.server_idp
        url = urllib.parse.urlsplit(self.path)
        prefix = "/dex"
        path = url.path[len(prefix) :] if url.path.startswith(prefix + "/") else None
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        form = {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode("utf-8", "replace")).items()} if method == "POST" else {}
        query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
        with idp.lock:
            idp.requests.append((method, path or url.path, form.get("grant_type")))
            fault = idp._faults.get(path or "")
            if fault is not None:
                fault.count -= 1
                if fault.count <= 0:
                    del idp._faults[path or ""]
            delay = idp._delays.get(path or "")
            if delay is not None:
                delay[1] -= 1
                if delay[1] <= 0:
                    del idp._delays[path or ""]
        if delay is not None:
            time.sleep(delay[0])
        try:
            if fault is not None:
                time.sleep(fault.delay)
                raise _Reply(fault.status, fault.body, fault.content_type)
            pipelines = idp.pipelines
            if pipelines is not None and url.path == f"/{pipelines.path}/.well-known/openid-configuration":
                raise _json(200, pipelines.discovery())
            if pipelines is not None and url.path == f"/{pipelines.path}/keys.json":
                raise _json(200, pipelines.jwks())
            if path is None:
                raise _Reply(404, _pages.error_page("Not found."))
            self._route(method, path, query, form, url.query)
        except _Reply as reply:
            self._send(reply)

    def _send(self, reply: _Reply) -> None:
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for k, v in reply.headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _route(self, method: str, path: str, query: dict[str, str], form: dict[str, str], raw_query: str) -> None:
        routes = {
            ("GET", "/.well-known/openid-configuration"): lambda: self._discovery(),
            ("GET", "/keys"): lambda: self._keys(),
            ("GET", "/auth"): lambda: self._auth(query, raw_query),
            ("POST", "/token"): lambda: self._token(form),
            ("GET", "/userinfo"): lambda: self._userinfo(),
            ("POST", "/device/code"): lambda: self._device_code(form),
            ("GET", "/device"): lambda: _Reply(200, _pages.device_entry(query.get("user_code", ""))),
            ("POST", "/device/auth/verify_code"): lambda: self._device_verify(form),
            ("GET", "/device/callback"): lambda: self._device_callback(query),
            ("GET", "/approval"): lambda: self._approval_page(query),
            ("POST", "/approval"): lambda: self._approval(query, form),
        }
        handler = routes.get((method, path))
        if handler is not None:
            raise handler()
        for connector in self.server_idp.connectors:
            if path == f"/auth/{connector}" and method == "GET":
                raise self._connector_login_page(connector, query, raw_query)
            if path == f"/auth/{connector}/login" and method == "POST":
                raise self._connector_login(query, form)
        if path.startswith("/auth/") and method == "GET":
            raise _Reply(400, _pages.error_page("Requested resource does not exist."))
        raise _Reply(404, _pages.error_page("Not found."))

    # -- discovery and keys ------------------------------------------------------------------
    def _discovery(self) -> _Reply:
        iss = self.server_idp.issuer
        return _json(200, {
            "issuer": iss,
            "authorization_endpoint": f"{iss}/auth",
            "token_endpoint": f"{iss}/token",
            "jwks_uri": f"{iss}/keys",
            "userinfo_endpoint": f"{iss}/userinfo",
            "device_authorization_endpoint": f"{iss}/device/code",
            "introspection_endpoint": f"{iss}/token/introspect",
            "grant_types_supported": ["authorization_code", "refresh_token", DEVICE_GRANT, EXCHANGE_GRANT],
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256", "plain"],
            "scopes_supported": ["openid", "email", "groups", "profile", "offline_access"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "claims_supported": ["iss", "sub", "aud", "iat", "exp", "email", "email_verified", "locale", "name", "preferred_username", "at_hash"],
        })

    def _keys(self) -> _Reply:
        with self.server_idp.lock:
            keys = [k.jwk() for k in self.server_idp.keys]
        return _json(200, {"keys": keys}, {"Cache-Control": "max-age=600, must-revalidate"})

    # -- /auth ---------------------------------------------------------------------------------
    def _redirect_allowed(self, client: Client, uri: str) -> bool:
        if client.redirect_uris:
            return uri in client.redirect_uris
        if not client.public:
            return False
        return uri in ("urn:ietf:wg:oauth:2.0:oob", f"{self.server_idp.issuer}/device/callback") or bool(_LOOPBACK_REDIRECT.match(uri))

    def _parse_auth(self, query: dict[str, str]) -> AuthRequest:
        idp = self.server_idp
        client = idp.clients.get(query.get("client_id", ""))
        if client is None:
            raise _Reply(404, _pages.error_page(f"Invalid client_id ({query.get('client_id', '')!r})."))
        redirect_uri = query.get("redirect_uri", "")
        if not self._redirect_allowed(client, redirect_uri):
            raise _Reply(400, _pages.error_page(f"Unregistered redirect_uri ({redirect_uri!r})."))
        state = query.get("state", "")

        def to_client(error: str, description: str) -> _Reply:
            return _redirect(_with_query(redirect_uri, {"state": state, "error": error, "error_description": description}), 303)

        if "request" in query:
            raise to_client("request_not_supported", "Server does not support request parameter.")
        if query.get("response_type") != "code":
            raise to_client("unsupported_response_type", f"Unsupported response type {query.get('response_type', '')!r}")
        scopes = query.get("scope", "").split()
        if "openid" not in scopes:
            raise to_client("invalid_scope", 'Missing required scope(s) ["openid"].')
        for scope in scopes:
            peer = scope.removeprefix("audience:server:client_id:")
            if scope not in SUPPORTED_SCOPES and scope != "federated:id" and not (scope.startswith("audience:server:client_id:") and peer == client.id):
                raise to_client("invalid_scope", f'Unrecognized scope(s) ["{scope}"]')
        method = query.get("code_challenge_method", "plain" if query.get("code_challenge") else "")
        if query.get("code_challenge") and method not in ("S256", "plain"):
            raise to_client("invalid_request", f"Unsupported PKCE challenge method ({method}).")
        return AuthRequest(client.id, redirect_uri, scopes, state, query.get("nonce") or None, query.get("code_challenge", ""), method)

    def _auth(self, query: dict[str, str], raw_query: str) -> _Reply:
        self._parse_auth(query)
        idp = self.server_idp
        connector = query.get("connector_id")
        if connector:
            if connector not in idp.connectors:
                return _Reply(400, _pages.error_page("Connector ID does not match a valid Connector"))
            return _redirect(f"{idp.issuer}/auth/{connector}?{raw_query}")
        if len(idp.connectors) == 1:
            return _redirect(f"{idp.issuer}/auth/{idp.connectors[0]}?{raw_query}")
        return _Reply(200, _pages.chooser(idp.connectors, raw_query))

    def _connector_login_page(self, connector: str, query: dict[str, str], raw_query: str) -> _Reply:
        idp = self.server_idp
        if "req" in query:  # the second step of the device flow comes back with its request id
            req_id = query["req"]
            if req_id not in idp._auth:
                return _Reply(400, _pages.error_page("Invalid login session."))
        else:
            request = self._parse_auth(query)
            request.connector_id = connector
            req_id = secrets.token_urlsafe(16)
            with idp.lock:
                idp._auth[req_id] = request
        if idp.auto_approve:
            return self._finish_login(req_id, USERS[idp.default_user])
        users = {login: (u.display_name, u.email, u.workspaces) for login, u in USERS.items()}
        return _Reply(200, _pages.bitbucket_login(connector, req_id, users))

    def _connector_login(self, query: dict[str, str], form: dict[str, str]) -> _Reply:
        user = USERS.get(form.get("user", ""))
        if user is None:
            return _Reply(500, _pages.error_page("Failed to authenticate: the Bitbucket login was denied."))
        return self._finish_login(query.get("req", ""), user)

    def _finish_login(self, req_id: str, user: BitbucketUser) -> _Reply:
        idp = self.server_idp
        with idp.lock:
            request = idp._auth.get(req_id)
            if request is None:
                return _Reply(400, _pages.error_page("Invalid login session."))
            request.user = user
        mac = hmac_mod.new(request.hmac_key, req_id.encode(), hashlib.sha256).hexdigest()
        if idp.skip_approval:
            return self._send_code(req_id)
        return _redirect(f"{idp.issuer}/approval?req={req_id}&hmac={mac}", 303)

    def _check_approval(self, query: dict[str, str]) -> AuthRequest:
        request = self.server_idp._auth.get(query.get("req", ""))
        if request is None or request.user is None:
            raise _Reply(400, _pages.error_page("Invalid login session."))
        want = hmac_mod.new(request.hmac_key, query["req"].encode(), hashlib.sha256).hexdigest()
        if not hmac_mod.compare_digest(want, query.get("hmac", "")):
            raise _Reply(401, _pages.error_page("Unauthorized request."))
        return request

    def _approval_page(self, query: dict[str, str]) -> _Reply:
        request = self._check_approval(query)
        client = self.server_idp.clients[request.client_id]
        return _Reply(200, _pages.approval(query["req"], query["hmac"], client.name or client.id, request.scopes))

    def _approval(self, query: dict[str, str], form: dict[str, str]) -> _Reply:
        self._check_approval(query)
        if form.get("approval") != "approve":
            return _Reply(500, _pages.error_page("Approval rejected."))  # dex does not redirect a denial
        return self._send_code(query["req"])

    def _send_code(self, req_id: str) -> _Reply:
        idp = self.server_idp
        with idp.lock:
            request = idp._auth.pop(req_id)
            code = secrets.token_urlsafe(19)[:25]
            idp._codes[code] = (request, time.time() + CODE_LIFETIME)
        return _redirect(_with_query(request.redirect_uri, {"code": code, "state": request.state}), 303)

    # -- /token --------------------------------------------------------------------------------
    def _client_auth(self, form: dict[str, str], required: bool = True) -> Client:
        idp = self.server_idp
        client_id, secret = form.get("client_id", ""), form.get("client_secret")
        header = self.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                user, _, secret = base64.b64decode(header[6:]).decode().partition(":")
                client_id = urllib.parse.unquote(user)
                secret = urllib.parse.unquote(secret)
            except ValueError:
                raise _oauth_error("invalid_client", "Invalid client credentials.", 401) from None
        client = idp.clients.get(client_id)
        if client is None or (not client.public and not hmac_mod.compare_digest(client.secret or "", secret or "")):
            raise _oauth_error("invalid_client", "Invalid client credentials.", 401)
        return client

    def _tokens(self, body: dict[str, Any]) -> _Reply:
        return _json(200, body, {"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _token(self, form: dict[str, str]) -> _Reply:
        grant = form.get("grant_type", "")
        if grant == DEVICE_GRANT:
            return self._device_token(form)
        client = self._client_auth(form)
        if grant == "authorization_code":
            return self._code_grant(client, form)
        if grant == "refresh_token":
            return self._refresh_grant(client, form)
        if grant == EXCHANGE_GRANT:
            return self._token_exchange(client, form)
        return _oauth_error("unsupported_grant_type")

    def _token_exchange(self, client: Client, form: dict[str, str]) -> _Reply:
        """dex's RFC 8693 grant: client auth, connector_id (required), an oidc connector that
        verifies the subject token; 401 access_denied when it does not verify."""
        idp = self.server_idp
        if client.public:
            return _oauth_error("invalid_client", "Invalid client credentials.", 401)
        if form.get("connector_id") != PIPELINES_CONNECTOR or idp.pipelines is None:
            return _oauth_error("invalid_request", "Requested connector does not exist.")
        if form.get("subject_token_type") not in TOKEN_TYPES.values():
            return _oauth_error("invalid_request", "Invalid subject_token_type.")
        requested = form.get("requested_token_type") or TOKEN_TYPES["access_token"]
        if requested not in TOKEN_TYPES.values():
            return _oauth_error("invalid_request", "Invalid requested_token_type.")
        claims = idp.pipelines.verify(form.get("subject_token", ""))
        if claims is None:
            return _oauth_error("access_denied", status=401)
        ci_user = BitbucketUser(str(claims["sub"]), str(claims["sub"]), f"Pipelines step {claims.get('stepUuid', '')}", "", ())
        body = idp.mint(client.id, ci_user, PIPELINES_CONNECTOR, [s for s in form.get("scope", "openid").split() if s != "email"], None)
        issued = body["id_token"] if requested == TOKEN_TYPES["id_token"] else body["access_token"]
        return self._tokens({"access_token": issued, "issued_token_type": requested, "token_type": "bearer", "expires_in": body["expires_in"]})

    def _code_grant(self, client: Client, form: dict[str, str]) -> _Reply:
        idp = self.server_idp
        code = form.get("code")
        if not code:
            return _oauth_error("invalid_request", "Required param: code.")
        with idp.lock:
            entry = idp._codes.get(code)
            if entry is None or entry[0].client_id != client.id:
                return _oauth_error("invalid_grant", "Invalid or expired code parameter.")
            request, expires = entry
            if expires < time.time():
                return _oauth_error("server_error", status=500)  # dex v2.45's known bug
            verifier = form.get("code_verifier", "")
            if request.code_challenge:
                if not verifier:
                    return _oauth_error("invalid_grant", "Expecting parameter code_verifier in PKCE flow.")
                computed = verifier if request.challenge_method == "plain" else base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                if not hmac_mod.compare_digest(computed, request.code_challenge):
                    return _oauth_error("invalid_grant", "Invalid code_verifier.")
            elif verifier:
                return _oauth_error("invalid_request", "No PKCE flow started. Cannot check code_verifier.")
            if form.get("redirect_uri") != request.redirect_uri:
                return _oauth_error("invalid_request", "redirect_uri did not match URI from initial request.")
            del idp._codes[code]
            assert request.user is not None
            body = idp.mint(client.id, request.user, request.connector_id, request.scopes, request.nonce, code=code)
            if "offline_access" in request.scopes:
                body["refresh_token"] = idp._new_refresh(client.id, request.user, request.connector_id, request.scopes, request.nonce)
        return self._tokens(body)

    def _refresh_grant(self, client: Client, form: dict[str, str]) -> _Reply:
        idp = self.server_idp
        token = form.get("refresh_token", "")
        invalid = _oauth_error("invalid_request", "Refresh token is invalid or has already been claimed by another client.")
        with idp.lock:
            record = next((r for r in idp._refresh.values() if r.client_id == client.id and token in (r.token, r.previous)), None)
            if record is None or not token:
                return invalid
            now = time.time()
            if token == record.previous:
                if now - record.rotated_at > idp.refresh_reuse_interval:
                    return invalid
            elif record.expires_at is not None and record.expires_at < now:
                return _oauth_error("invalid_request", "Refresh token expired.")
            scopes = record.scopes
            if form.get("scope"):
                asked = form["scope"].split()
                if not set(asked) <= set(record.scopes):
                    return _oauth_error("invalid_request", "Requested scopes did not contain authorized scopes.")
                scopes = asked
            body = idp.mint(client.id, record.user, record.connector_id, scopes, record.nonce)
            if token == record.token:
                record.previous, record.token, record.rotated_at = record.token, secrets.token_urlsafe(24), now
            body["refresh_token"] = record.token
        return self._tokens(body)

    # -- /userinfo -----------------------------------------------------------------------------
    def _userinfo(self) -> _Reply:
        header = self.headers.get("Authorization", "")
        claims = self.server_idp.verify_access_token(header[7:]) if header.lower().startswith("bearer ") else None
        if claims is None:
            return _Reply(401, b"Invalid bearer token.", "text/plain", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return _json(200, {k: v for k, v in claims.items() if k not in ("iss", "aud", "exp", "iat", "nonce", "at_hash", "c_hash")})

    # -- device flow ---------------------------------------------------------------------------
    def _device_code(self, form: dict[str, str]) -> _Reply:
        idp = self.server_idp
        client = idp.clients.get(form.get("client_id", ""))
        if client is None:
            return _oauth_error("invalid_client", "Invalid client credentials.", 401)
        scopes = form.get("scope", "").split()
        device_code = secrets.token_urlsafe(32)
        user_code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8))
        user_code = f"{user_code[:4]}-{user_code[4:]}"
        with idp.lock:
            device = DeviceRequest(client.id, user_code, scopes, time.time() + idp.device_expires_in, idp.device_interval)
            if idp.auto_approve:
                device.user = USERS[idp.default_user]
            idp._devices[device_code] = device
        return _json(200, {
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": f"{idp.issuer}/device",
            "verification_uri_complete": f"{idp.issuer}/device?user_code={user_code}",
            "expires_in": idp.device_expires_in,
            "interval": idp.device_interval,
        })

    def _device_verify(self, form: dict[str, str]) -> _Reply:
        idp = self.server_idp
        user_code = form.get("user_code", "").strip().upper()
        with idp.lock:
            found = next(((c, d) for c, d in idp._devices.items() if d.user_code == user_code and d.expires_at > time.time()), None)
        if found is None:
            return _Reply(400, _pages.device_entry(user_code, "Invalid or expired user code."))
        device_code, device = found
        req_id = secrets.token_urlsafe(16)
        request = AuthRequest(device.client_id, f"{idp.issuer}/device/callback", device.scopes, device_code, None, "", "", idp.connectors[0], device_code=device_code)
        with idp.lock:
            idp._auth[req_id] = request
        return _redirect(f"{idp.issuer}/auth/{idp.connectors[0]}?req={req_id}", 302)

    def _device_callback(self, query: dict[str, str]) -> _Reply:
        idp = self.server_idp
        with idp.lock:
            entry = idp._codes.pop(query.get("code", ""), None)
            if entry is None or entry[0].device_code is None or entry[0].device_code not in idp._devices:
                return _Reply(400, _pages.error_page("Invalid or expired device authorization."))
            idp._devices[entry[0].device_code].user = entry[0].user
        return _Reply(200, _pages.device_done())

    def _device_token(self, form: dict[str, str]) -> _Reply:
        idp = self.server_idp
        with idp.lock:
            device = idp._devices.get(form.get("device_code", ""))
            now = time.time()
            if device is None:
                return _oauth_error("invalid_request", "Invalid Device code.")
            if device.expires_at < now:
                return _oauth_error("expired_token")
            if device.last_poll and now - device.last_poll < device.interval:
                device.interval += 5
                device.last_poll = now
                return _oauth_error("slow_down")
            device.last_poll = now
            if device.user is None:
                return _oauth_error("authorization_pending")
            if device.issued:
                return _oauth_error("invalid_request", "Invalid Device code.")
            device.issued = True
            connector = idp.connectors[0]
            body = idp.mint(device.client_id, device.user, connector, device.scopes, None)
            if "offline_access" in device.scopes:
                body["refresh_token"] = idp._new_refresh(device.client_id, device.user, connector, device.scopes, None)
        return self._tokens(body)
