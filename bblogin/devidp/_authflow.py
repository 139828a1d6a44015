"""dex's browser endpoints: /auth (connector choice), /auth/{connector} (the authorization
request is checked here), /callback (the upstream's answer), /approval, and the final
redirect with the code. Errors are dex's: HTML pages before the client is trusted, redirects
to the client after. Callers hold the IdP lock."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
import urllib.parse

from bblogin.devidp import _gojson, _pages
from bblogin.devidp._connectors import (
    CallbackConnector,
    ConnectorError,
    RefreshConnector,
)
from bblogin.devidp._ids import (
    new_hmac_key,
    new_id,
    raw_url_b64decode,
    raw_url_b64encode,
)
from bblogin.devidp._provider import Client, Provider
from bblogin.devidp._store import PKCE, AuthCode, AuthRequest, Identity, OfflineSession
from bblogin.devidp._tokens import CROSS_CLIENT_PREFIX
from bblogin.devidp._web import (
    HTMLError,
    RedirectedError,
    Reply,
    Request,
    go_encode,
    go_unescape,
    html,
    redirect,
    with_params,
)

OOB = "urn:ietf:wg:oauth:2.0:oob"
DEVICE_CALLBACK = "/device/callback"
AUTH_REQUEST_LIFETIME = 24 * 3600
CODE_LIFETIME = 30 * 60
_STANDARD_SCOPES = {"openid", "offline_access", "email", "profile", "groups", "federated:id"}
_SCOPE_DESCRIPTIONS = {
    "offline_access": "Have offline access",
    "profile": "View basic profile information",
    "email": "View your email address",
    "groups": "View your groups",
}
INVALID_REQUEST_PAGE = "Invalid request. Please try again."
AUTHENTICATION_FAILED = "Authentication failed. Please contact your administrator or try again later."


# -- redirect URIs ---------------------------------------------------------------------------
def _split_host_port(hostport: str) -> str:
    """net.SplitHostPort's host; ValueError where Go fails (no port, too many colons)."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0 or not hostport[end + 1 :].startswith(":") or ":" in hostport[end + 2 :]:
            raise ValueError(hostport)
        return hostport[1:end]
    host, colon, _port = hostport.rpartition(":")
    if not colon or ":" in host or "[" in hostport or "]" in hostport:
        raise ValueError(hostport)
    return host


def _is_loopback_ip(text: str) -> bool:
    """net.ParseIP(text).IsLoopback() (no zones; IPv4-mapped addresses count as IPv4)."""
    if "%" in text:
        return False
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _is_host_local(host: str) -> bool:
    if host == "localhost" or _is_loopback_ip(host):
        return True
    try:
        name = _split_host_port(host)
    except ValueError:
        return False
    return name == "localhost" or _is_loopback_ip(name)


def redirect_uri_allowed(client: Client, uri: str) -> bool:
    """validateRedirectURI: the registered URIs; for a public client without any, also OOB,
    /device/callback and http on localhost or a loopback IP literal, any port and path."""
    if uri in client.redirect_uris:
        return True
    if not client.public or client.redirect_uris:
        return False
    if uri in (OOB, DEVICE_CALLBACK):
        return True
    parts = urllib.parse.urlsplit(uri)
    return parts.scheme == "http" and _is_host_local(parts.netloc.rpartition("@")[2])


# -- /auth -----------------------------------------------------------------------------------
def authorize(p: Provider, request: Request) -> Reply:
    """handleAuthorization: nothing is checked here but the connector."""
    if request.bad_form:
        raise HTMLError(400, INVALID_REQUEST_PAGE)
    connector_id = request.form("connector_id")
    query = go_encode([(k, v) for k, v in request.form_pairs() if k != "connector_id"])

    def connector_url(cid: str) -> str:
        return p.path("/auth/" + urllib.parse.quote(cid, safe="")) + (f"?{query}" if query else "")

    if connector_id:
        if connector_id not in p.connectors:
            raise HTMLError(400, "Connector ID does not match a valid Connector")
        return redirect(connector_url(connector_id))
    if len(p.listed) == 1:
        return redirect(connector_url(p.listed[0]))
    choices = sorted((p.connectors[cid].name, connector_url(cid)) for cid in p.listed)
    return html(200, _pages.chooser(p.issuer, choices))


def parse_authorization_request(p: Provider, request: Request) -> AuthRequest:
    """parseAuthorizationRequest, check for check and message for message."""
    if request.bad_form:
        raise HTMLError(400, "Failed to parse request.")
    try:
        redirect_uri = go_unescape(request.form("redirect_uri"))
    except ValueError:
        raise HTMLError(400, "No redirect_uri provided.") from None
    client_id, state, nonce, connector_id = (request.form(k) for k in ("client_id", "state", "nonce", "connector_id"))
    scopes, response_types = request.form("scope").split(), request.form("response_type").split()
    method = request.form("code_challenge_method") or "plain"
    client = p.clients.get(client_id)
    if client is None:
        raise HTMLError(404, "Invalid client_id.")
    if not redirect_uri_allowed(client, redirect_uri):
        raise HTMLError(400, "Unregistered redirect_uri.")
    if redirect_uri == DEVICE_CALLBACK and client.public:
        redirect_uri = p.path(DEVICE_CALLBACK)

    def to_client(error: str, description: str) -> RedirectedError:
        return RedirectedError(redirect_uri, state, error, description)

    if connector_id and connector_id not in p.connectors:
        raise to_client("invalid_request", "Invalid ConnectorID")
    if request.form("request"):
        raise to_client("request_not_supported", "Server does not support request parameter.")
    if method not in ("S256", "plain"):
        raise to_client("invalid_request", f"Unsupported PKCE challenge method ({_gojson.quote(method)}).")
    unrecognized = [s for s in scopes if s not in _STANDARD_SCOPES and not s.startswith(CROSS_CLIENT_PREFIX)]
    untrusted = [s for s in scopes if s.startswith(CROSS_CLIENT_PREFIX) and not p.trusts(client_id, s[len(CROSS_CLIENT_PREFIX) :])]
    if "openid" not in scopes:
        raise to_client("invalid_scope", 'Missing required scope(s) ["openid"].')
    if unrecognized:
        raise to_client("invalid_scope", f"Unrecognized scope(s) {_gojson.quote_list(unrecognized)}")
    if untrusted:
        raise to_client("invalid_scope", f"Client can't request scope(s) {_gojson.quote_list(untrusted)}")
    for response_type in response_types:
        if response_type not in ("code", "id_token", "token"):
            raise to_client("invalid_request", f"Invalid response type {_gojson.quote(response_type)}")
        if response_type != "code":  # dex's default supportedResponseTypes: code only
            raise to_client("unsupported_response_type", f"Unsupported response type {_gojson.quote(response_type)}")
    if not response_types:
        raise to_client("invalid_request", "No response_type provided")
    return AuthRequest(
        id=new_id(),
        client_id=client.id,
        redirect_uri=redirect_uri,
        scopes=scopes,
        state=state,
        nonce=nonce,
        connector_id=connector_id,
        pkce=PKCE(request.form("code_challenge"), method),
        force_approval=request.form("approval_prompt") == "force",
        hmac_key=new_hmac_key(),
    )


def connector_login(p: Provider, request: Request, raw_connector_id: str) -> Reply:
    """handleConnectorLogin: check the request, store it, send the person to the upstream."""
    auth_request = parse_authorization_request(p, request)
    connector_id = urllib.parse.unquote(raw_connector_id)
    connector = p.connectors.get(connector_id)
    if connector is None:
        raise HTMLError(400, "Connector failed to initialize")
    if auth_request.connector_id and auth_request.connector_id != connector_id:
        raise HTMLError(400, "Bad connector ID")
    auth_request.connector_id = connector_id
    auth_request.expiry = time.time() + AUTH_REQUEST_LIFETIME
    p.store.auth_requests[auth_request.id] = auth_request
    if request.method != "GET":
        raise HTMLError(400, "Unsupported request method.")
    if not isinstance(connector, CallbackConnector):
        raise HTMLError(400, "Requested resource does not exist.")
    return redirect(connector.login_url(auth_request.scopes, auth_request.id))


# -- /callback ---------------------------------------------------------------------------------
def connector_callback(p: Provider, request: Request, path_connector_id: str = "") -> Reply:
    """handleConnectorCallback: the upstream sent the person back; log them in or fail (500)."""
    if request.method != "GET":
        raise HTMLError(400, "Method not supported")
    auth_id = request.arg("state")
    if not auth_id:
        raise HTMLError(400, "User session error.")
    auth_request = p.store.auth_requests.get(auth_id)
    if auth_request is None:
        raise HTMLError(400, "Requested resource does not exist.")
    if path_connector_id and urllib.parse.unquote(path_connector_id) != auth_request.connector_id:
        raise HTMLError(500, "Requested resource does not exist.")
    connector = p.connectors.get(auth_request.connector_id)
    if not isinstance(connector, CallbackConnector):
        raise HTMLError(500, "Requested resource does not exist.")
    try:
        identity, connector_data = connector.handle_callback(auth_request.scopes, request)
    except ConnectorError:
        raise HTMLError(500, AUTHENTICATION_FAILED) from None
    approval_url, skip = finalize_login(p, auth_request, identity, connector_data)
    return send_code(p, auth_request) if skip else redirect(approval_url, 303)


def _mac(auth_request: AuthRequest) -> bytes:
    return hmac.new(auth_request.hmac_key, auth_request.id.encode(), hashlib.sha256).digest()


def finalize_login(p: Provider, auth_request: AuthRequest, identity: Identity, connector_data: str) -> tuple[str, bool]:
    """finalizeLogin: remember who logged in; the approval page's URL, or True to skip it."""
    auth_request.logged_in, auth_request.claims, auth_request.connector_data = True, identity, connector_data
    connector = p.connectors[auth_request.connector_id]
    if "offline_access" in auth_request.scopes and isinstance(connector, RefreshConnector):
        session = p.store.offline_sessions.get((identity.user_id, auth_request.connector_id))
        if session is None:
            p.store.offline_sessions[(identity.user_id, auth_request.connector_id)] = OfflineSession(connector_data=connector_data)
        elif connector_data:
            session.connector_data = connector_data
    settings = p.settings
    if settings.auto_approve or (settings.skip_approval and not auth_request.force_approval):
        return "", True
    mac = raw_url_b64encode(_mac(auth_request))
    return p.path(f"/approval?req={auth_request.id}&hmac={mac}"), False


# -- /approval ---------------------------------------------------------------------------------
def approval(p: Provider, request: Request) -> Reply:
    """handleApproval: GET shows the page, POST approval=approve sends the code; a denial is
    dex's HTML 500 "Approval rejected." (the client is never told)."""
    try:
        mac = raw_url_b64decode(request.form("hmac"))
    except ValueError:
        mac = b""
    if not mac:
        raise HTMLError(401, "Unauthorized request")
    auth_request = p.store.auth_requests.get(request.form("req"))
    if auth_request is None:
        raise HTMLError(500, "Database error.")
    if not auth_request.logged_in or auth_request.claims is None:
        raise HTMLError(500, "Login process not yet finalized.")
    if not hmac.compare_digest(mac, _mac(auth_request)):
        raise HTMLError(401, "Unauthorized request")
    if request.method == "GET":
        client = p.clients.get(auth_request.client_id)
        if client is None:
            raise HTMLError(500, "Failed to retrieve client.")
        accesses = sorted(_SCOPE_DESCRIPTIONS[s] for s in auth_request.scopes if s in _SCOPE_DESCRIPTIONS)
        return html(200, _pages.approval(auth_request.claims.username, client.name, accesses))
    if request.method != "POST":
        return Reply(200, b"", None)
    if request.form("approval") != "approve":
        raise HTMLError(500, "Approval rejected.")
    return send_code(p, auth_request)


def send_code(p: Provider, auth_request: AuthRequest) -> Reply:
    """sendCodeResponse: a 25-character code (30 minutes, single use) in a 303 to the client,
    or dex's page showing it for the out-of-band redirect URI."""
    if time.time() > auth_request.expiry:
        raise HTMLError(400, "User session has expired.")
    if p.store.auth_requests.pop(auth_request.id, None) is None:
        raise HTMLError(400, "User session error.")
    assert auth_request.claims is not None  # logged in: finalize_login ran
    code = AuthCode(
        id=new_id(),
        client_id=auth_request.client_id,
        connector_id=auth_request.connector_id,
        nonce=auth_request.nonce,
        scopes=auth_request.scopes,
        claims=auth_request.claims,
        expiry=time.time() + CODE_LIFETIME,
        redirect_uri=auth_request.redirect_uri,
        connector_data=auth_request.connector_data,
        pkce=auth_request.pkce,
    )
    p.store.auth_codes[code.id] = code
    if auth_request.redirect_uri == OOB:
        return html(200, _pages.oob(code.id))
    return redirect(with_params(auth_request.redirect_uri, [("code", code.id), ("state", auth_request.state)], replace=True), 303)
