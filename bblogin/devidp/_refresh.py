"""dex's refresh_token grant (server/refreshhandlers.go): rotation on every use, the reuse
interval, absolute and idle lifetimes, scope narrowing, a fresh look at the upstream account,
and dex's exact errors. Callers hold the IdP lock."""

from __future__ import annotations

import time

from bblogin import _record
from bblogin.devidp import _gojson, _tokens
from bblogin.devidp._connectors import ConnectorError, RefreshConnector
from bblogin.devidp._ids import marshal, new_id, unmarshal
from bblogin.devidp._provider import Client, Provider
from bblogin.devidp._settings import Settings
from bblogin.devidp._store import RefreshToken
from bblogin.devidp._web import Reply, Request, TokenError, json_reply

INVALID = "Refresh token is invalid or has already been claimed by another client."
EXPIRED = "Refresh token expired."


def _internal() -> TokenError:
    """newInternalServerError: 500 with error invalid_request and no description."""
    return TokenError("invalid_request", "", 500)


def _reuse_allowed(settings: Settings, last_used: float, now: float) -> bool:
    return settings.refresh_reuse_interval > 0 and now <= last_used + settings.refresh_reuse_interval


def lookup(p: Provider, client_id: str | None, presented: str) -> tuple[RefreshToken, str]:
    """getRefreshTokenFromStorage: the record and the connector data to refresh with; a
    TokenError with dex's answer otherwise."""
    try:
        refresh_id, token = unmarshal(presented)
    except ValueError:
        refresh_id, token = presented, ""  # dex's fallback: a raw refresh ID
    record = p.store.refresh_tokens.get(refresh_id)
    if record is None:
        raise TokenError("invalid_request", INVALID)
    if client_id is not None and record.client_id != client_id:
        raise TokenError("invalid_grant", INVALID)
    now, settings = time.time(), p.settings
    if record.token != token and not (_reuse_allowed(settings, record.last_used, now) and record.obsolete_token and record.obsolete_token == token):
        raise TokenError("invalid_request", INVALID)
    if settings.refresh_token_ttl is not None and now > record.created_at + settings.refresh_token_ttl:
        raise TokenError("invalid_request", EXPIRED)
    if settings.refresh_unused_ttl is not None and now > record.last_used + settings.refresh_unused_ttl:
        raise TokenError("invalid_request", EXPIRED)
    if record.connector_id not in p.connectors:
        raise _internal()
    session = p.store.offline_sessions.get((record.claims.user_id, record.connector_id))
    data = "" if session is None else record.connector_data or session.connector_data
    return record, data


def refresh_grant(p: Provider, request: Request, client: Client) -> Reply:
    presented = request.post("refresh_token")
    if not presented:
        raise TokenError("invalid_request", "No refresh token is found in request.")
    record, connector_data = lookup(p, client.id, presented)
    scopes = record.scopes
    if request.post("scope"):
        scopes = request.post("scope").split()
        unauthorized = [s for s in scopes if s not in record.scopes]
        if unauthorized:
            raise TokenError("invalid_request", f"Requested scopes contain unauthorized scope(s): {_gojson.quote_list(unauthorized)}.")
    now = time.time()
    if _reuse_allowed(p.settings, record.last_used, now):
        # inside the reuse interval: the current token again, no upstream call, last use unchanged
        identity = record.claims
    else:
        connector = p.connectors[record.connector_id]
        identity = record.claims
        if isinstance(connector, RefreshConnector):
            try:
                identity = connector.refresh(scopes, record.claims, connector_data)
            except ConnectorError:
                raise _internal() from None  # the update is abandoned: the presented token still works
        record.obsolete_token, record.token, record.last_used = record.token, new_id(), now
        record.claims = _record.replace(identity, user_id=record.claims.user_id)
        session = p.store.offline_sessions.get((record.claims.user_id, record.connector_id))
        if session is not None and connector_data:
            session.connector_data = connector_data  # the session keeps the upstream grant from now on
    record.connector_data = ""
    access, _ = _tokens.access_token(p, client.id, identity, scopes, record.nonce, record.connector_id)
    id_token, expiry = _tokens.id_token(p, client.id, identity, scopes, record.nonce, access, "", record.connector_id)
    body = _tokens.response(id_token, access, marshal(record.id, record.token), expiry)
    return json_reply(200, body, headers=_tokens.no_store_headers())
