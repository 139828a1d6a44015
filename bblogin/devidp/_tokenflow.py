"""dex's /token endpoint: client authentication, then the authorization_code, refresh_token,
device_code and token-exchange (RFC 8693) grants, with dex's status codes and messages.
Callers hold the IdP lock."""

from __future__ import annotations

import base64
import binascii
import hmac
import time

from bblogin.devidp import _deviceflow, _refresh, _tokens
from bblogin.devidp._connectors import (
    ACCESS_TOKEN_TYPE,
    ID_TOKEN_TYPE,
    ConnectorError,
    TokenIdentityConnector,
)
from bblogin.devidp._provider import Client, Provider
from bblogin.devidp._web import Reply, Request, TokenError, go_unescape, json_reply

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
GRANT_TYPES = ["authorization_code", "refresh_token", DEVICE_GRANT, EXCHANGE_GRANT]  # sorted, as dex lists them


def _basic_auth(header: str) -> tuple[str, str] | None:
    """net/http's Request.BasicAuth."""
    if len(header) < 6 or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:], validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


def authenticate_client(p: Provider, request: Request) -> Client:
    """withClientFromStorage: HTTP Basic (form-unescaped) or client_id/client_secret in the
    body; a public client has the empty secret. 401 invalid_client otherwise."""
    basic = _basic_auth(request.headers.get("Authorization") or "")
    if basic is not None:
        try:
            client_id = go_unescape(basic[0])
        except ValueError:
            raise TokenError("invalid_request", "client_id improperly encoded") from None
        try:
            secret = go_unescape(basic[1])
        except ValueError:
            raise TokenError("invalid_request", "client_secret improperly encoded") from None
    else:
        client_id, secret = request.post("client_id"), request.post("client_secret")
    client = p.clients.get(client_id)
    if client is None or not hmac.compare_digest((client.secret or "").encode(), secret.encode()):
        raise TokenError("invalid_client", "Invalid client credentials.", 401)
    return client


def token(p: Provider, request: Request) -> Reply:
    if request.method != "POST":
        raise TokenError("invalid_request", "method not allowed")
    if request.bad_form:
        raise TokenError("invalid_request")
    grant = request.post("grant_type")
    if grant not in GRANT_TYPES:
        raise TokenError("unsupported_grant_type")
    if grant == DEVICE_GRANT:
        return _deviceflow.device_token(p, request)  # no client authentication
    client = authenticate_client(p, request)
    if grant == "authorization_code":
        return _code_grant(p, request, client)
    if grant == "refresh_token":
        return _refresh.refresh_grant(p, request, client)
    return _token_exchange(p, request, client)


def _code_grant(p: Provider, request: Request, client: Client) -> Reply:
    """handleAuthCode."""
    code_id, redirect_uri = request.post("code"), request.post("redirect_uri")
    if not code_id:
        raise TokenError("invalid_request", "Required param: code.")
    code = p.store.auth_codes.get(code_id)
    if code is None:
        raise TokenError("invalid_grant", "Invalid or expired code parameter.")
    if time.time() > code.expiry or code.client_id != client.id:
        raise TokenError("server_error", "", 500)  # dex v2.45: an expired or foreign code is a 500 (a known bug)
    _tokens.verify_pkce(code.pkce, request.post("code_verifier"))
    if code.redirect_uri != redirect_uri:
        raise TokenError("invalid_request", "redirect_uri did not match URI from initial request.")
    return json_reply(200, _tokens.exchange_auth_code(p, code, client), headers=_tokens.no_store_headers())


def _token_exchange(p: Provider, request: Request, client: Client) -> Reply:
    """handleTokenExchange: the connector (connector_id, required) verifies the subject token;
    the answer is one token, never a refresh token."""
    scopes = request.form("scope").split()
    requested = request.form("requested_token_type") or ACCESS_TOKEN_TYPE
    subject_token, subject_type, connector_id = request.form("subject_token"), request.form("subject_token_type"), request.form("connector_id")
    if subject_type not in (ID_TOKEN_TYPE, ACCESS_TOKEN_TYPE):
        raise TokenError("request_not_supported", "Invalid subject_token_type.")
    if not subject_token:
        raise TokenError("invalid_request", "Missing subject_token")
    connector = p.connectors.get(connector_id)
    if not isinstance(connector, TokenIdentityConnector):
        raise TokenError("invalid_request", "Requested connector does not exist.")
    try:
        identity = connector.token_identity(subject_type, subject_token)
    except ConnectorError:
        raise TokenError("access_denied", "", 401) from None
    if requested == ID_TOKEN_TYPE:
        issued, expiry = _tokens.id_token(p, client.id, identity, scopes, "", "", "", connector_id)
    elif requested == ACCESS_TOKEN_TYPE:
        issued, expiry = _tokens.access_token(p, client.id, identity, scopes, "", connector_id)
    else:
        raise TokenError("request_not_supported", "Invalid requested_token_type.")
    body: dict[str, str | int] = {"access_token": issued, "issued_token_type": requested, "token_type": "bearer"}
    expires_in = int(expiry - time.time())
    if expires_in:
        body["expires_in"] = expires_in
    return json_reply(200, body, headers=_tokens.no_store_headers(), newline=True)
