"""What dex signs and returns: ID tokens (newIDToken, claim for claim and in dex's order),
access tokens (an ID token whose at_hash covers a random string), token responses, and the
code exchange shared by /token and the device flow. Callers hold the IdP lock."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from bblogin.devidp import _gojson
from bblogin.devidp._connectors import RefreshConnector
from bblogin.devidp._ids import dex_subject, marshal, new_id, raw_url_b64encode
from bblogin.devidp._keys import half_hash
from bblogin.devidp._provider import Client, Provider
from bblogin.devidp._store import PKCE, AuthCode, Identity, OfflineSession, RefreshToken
from bblogin.devidp._web import TokenError

CROSS_CLIENT_PREFIX = "audience:server:client_id:"


def audience(client_id: str, scopes: list[str]) -> list[str]:
    """getAudience: the cross-client peers asked for, plus the client itself."""
    peers = [s[len(CROSS_CLIENT_PREFIX) :] for s in scopes if s.startswith(CROSS_CLIENT_PREFIX)]
    if not peers:
        return [client_id]
    return peers if client_id in peers else [*peers, client_id]


def id_token(p: Provider, client_id: str, claims: Identity, scopes: list[str], nonce: str, access_token: str, code: str, connector_id: str) -> tuple[str, float]:
    """newIDToken: the signed token and its expiry."""
    issued = time.time()
    expiry = issued + p.settings.id_token_ttl
    optional: dict[str, Any] = {}
    for scope in scopes:
        if scope == "email":
            optional["email"], optional["email_verified"] = claims.email, claims.email_verified
        elif scope == "groups":
            optional["groups"] = list(claims.groups)
        elif scope == "profile":
            optional["name"], optional["preferred_username"] = claims.username, claims.preferred_username
        elif scope == "federated:id":
            optional["federated_claims"] = {k: v for k, v in (("connector_id", connector_id), ("user_id", claims.user_id)) if v}
        elif scope.startswith(CROSS_CLIENT_PREFIX) and not p.trusts(client_id, scope[len(CROSS_CLIENT_PREFIX) :]):
            raise TokenError("server_error", status=500)
    aud = audience(client_id, scopes)
    token: dict[str, Any] = {"iss": p.issuer, "sub": dex_subject(claims.user_id, connector_id), "aud": aud[0] if len(aud) == 1 else aud, "exp": int(expiry), "iat": int(issued)}
    if len(aud) > 1:
        token["azp"] = client_id
    for name, value in (("nonce", nonce), ("at_hash", half_hash(access_token) if access_token else ""), ("c_hash", half_hash(code) if code else "")):
        if value:
            token[name] = value
    # json omitempty: empty strings and lists go; email_verified (a pointer) stays
    for name in ("email", "email_verified", "groups", "name", "preferred_username", "federated_claims"):
        if name in optional and (name == "email_verified" or optional[name]):
            token[name] = optional[name]
    return p.keys.signing_key(p.settings.id_token_ttl).sign(_gojson.dumps(token)), expiry


def access_token(p: Provider, client_id: str, claims: Identity, scopes: list[str], nonce: str, connector_id: str) -> tuple[str, float]:
    """newAccessToken: an ID token whose at_hash covers a random ID."""
    return id_token(p, client_id, claims, scopes, nonce, new_id(), "", connector_id)


def response(id_tok: str, access: str, refresh: str, expiry: float) -> dict[str, Any]:
    """accessTokenResponse, omitempty fields left out."""
    body: dict[str, Any] = {"access_token": access, "token_type": "bearer"}
    expires_in = int(expiry - time.time())
    for name, value in (("expires_in", expires_in), ("refresh_token", refresh), ("id_token", id_tok)):
        if value:
            body[name] = value
    return body


def verify_pkce(pkce: PKCE, verifier: str) -> None:
    """RFC 7636 as dex checks it at /token, with dex's errors."""
    if verifier and pkce.challenge:
        computed = verifier if pkce.method == "plain" else raw_url_b64encode(hashlib.sha256(verifier.encode()).digest())
        if computed != pkce.challenge:
            raise TokenError("invalid_grant", "Invalid code_verifier.")
    elif verifier:
        raise TokenError("invalid_request", "No PKCE flow started. Cannot check code_verifier.")
    elif pkce.challenge:
        raise TokenError("invalid_grant", "Expecting parameter code_verifier in PKCE flow.")


def no_store_headers() -> dict[str, str]:
    return {"Cache-Control": "no-store", "Pragma": "no-cache"}


def exchange_auth_code(p: Provider, code: AuthCode, client: Client) -> dict[str, Any]:
    """exchangeAuthCode: tokens for a redeemed code; with offline_access a refresh token, which
    replaces this client's previous one for the user (one per user, connector and client)."""
    access, _ = access_token(p, client.id, code.claims, code.scopes, code.nonce, code.connector_id)
    id_tok, expiry = id_token(p, client.id, code.claims, code.scopes, code.nonce, access, code.id, code.connector_id)
    p.store.auth_codes.pop(code.id, None)
    connector = p.connectors.get(code.connector_id)
    if connector is None:
        raise TokenError("server_error", status=500)
    refresh = ""
    if isinstance(connector, RefreshConnector) and "offline_access" in code.scopes:
        now = time.time()
        record = RefreshToken(new_id(), new_id(), code.client_id, code.connector_id, code.scopes, code.claims, code.nonce, now, now, connector_data=code.connector_data)
        refresh = marshal(record.id, record.token)
        p.store.refresh_tokens[record.id] = record
        session = p.store.offline_sessions.setdefault((code.claims.user_id, code.connector_id), OfflineSession())
        previous = session.refresh.get(record.client_id)
        if previous is not None:
            p.store.refresh_tokens.pop(previous, None)
        session.refresh[record.client_id] = record.id
    return response(id_tok, access, refresh, expiry)
