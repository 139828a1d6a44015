"""What dex says about a token it issued: /userinfo (the claims of a valid bearer access
token, verbatim) and /token/introspect (RFC 7662 as dex v2.45 does it: no client
authentication, JWTs are access tokens, anything else is tried as a refresh token).
Callers hold the IdP lock."""

from __future__ import annotations

import json
import time
from typing import Any

from bblogin.devidp import _refresh, _tokens
from bblogin.devidp._ids import dex_subject, raw_url_b64decode
from bblogin.devidp._provider import Provider
from bblogin.devidp._web import (
    Reply,
    Request,
    TokenError,
    json_reply,
    token_error_reply,
)

_EXTRA = ("azp", "email", "email_verified", "groups", "name", "preferred_username", "federated_claims")


def verified_claims(p: Provider, token: str) -> tuple[bytes, dict[str, Any]] | None:
    """go-oidc's verifier with dex's keys: signature by a published key, iss, exp (no leeway)."""
    payload = p.keys.verify(token)
    if payload is None:
        return None
    try:
        claims = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(claims, dict) or claims.get("iss") != p.issuer:
        return None
    expiry = claims.get("exp")
    if not isinstance(expiry, int | float) or expiry < time.time():
        return None
    return payload, claims


def userinfo(p: Provider, request: Request) -> Reply:
    header = request.headers.get("Authorization") or ""
    if len(header) < 7 or header[:7].lower() != "bearer ":
        return token_error_reply(TokenError("access_denied", "Invalid bearer token.", 401), headers={"WWW-Authenticate": "Bearer"})
    verified = verified_claims(p, header[7:])
    if verified is None:
        raise TokenError("access_denied", "Invalid bearer token.", 403)
    return Reply(200, verified[0], "application/json")


def _inactive() -> Reply:
    return json_reply(200, {"active": False}, headers=_tokens.no_store_headers(), newline=True)


def _is_jwt(token: str) -> bool:
    """dex's guessTokenType: anything that parses as a JWT (signature unchecked) is an access token."""
    parts = token.split(".")
    if len(parts) != 3:
        return False
    try:
        return isinstance(json.loads(raw_url_b64decode(parts[1])), dict)
    except ValueError:
        return False


def introspect(p: Provider, request: Request) -> Reply:
    if request.method != "POST":
        raise TokenError("invalid_request", f'HTTP method is "{request.method}", expected "POST".')
    if request.bad_form:
        raise TokenError("invalid_request", "Unable to parse HTTP body, make sure to send a properly formatted form request body.")
    if not request.body:
        raise TokenError("invalid_request", "The POST body can not be empty.")
    if not request.has_post("token"):
        raise TokenError("invalid_request", "The POST body doesn't contain 'token' parameter.")
    token = request.post("token")
    body = _access_token(p, token) if _is_jwt(token) else _refresh_token(p, token)
    return _inactive() if body is None else json_reply(200, body)


def _access_token(p: Provider, token: str) -> dict[str, Any] | None:
    verified = verified_claims(p, token)
    if verified is None:
        return None
    claims = verified[1]
    audience = claims.get("aud")
    aud = [audience] if isinstance(audience, str) else list(audience or [])
    client_id = aud[0] if len(aud) == 1 else claims.get("azp", "")
    if not client_id or client_id not in p.clients:
        raise TokenError("server_error", "", 500)
    return _body(client_id, claims["sub"], claims["exp"], claims["iat"], claims.get("preferred_username", ""), aud, p.issuer, "access_token", {k: claims[k] for k in _EXTRA if k in claims})


def _refresh_token(p: Provider, token: str) -> dict[str, Any] | None:
    try:
        record, _data = _refresh.lookup(p, None, token)
    except TokenError as exc:
        if exc.status == 400:  # invalid or expired
            return None
        raise TokenError("server_error", "", 500) from None
    claims, created = record.claims, int(record.created_at)
    lifetime = int(p.settings.refresh_token_ttl or 0)
    extra: dict[str, Any] = {"email": claims.email, "email_verified": claims.email_verified, "groups": list(claims.groups), "name": claims.username, "preferred_username": claims.preferred_username}
    extra = {k: v for k, v in extra.items() if k == "email_verified" or v}
    subject = dex_subject(claims.user_id, record.connector_id)
    return _body(record.client_id, subject, created + lifetime, created, claims.preferred_username, [record.client_id], p.issuer, "refresh_token", extra)


def _body(client_id: str, sub: str, exp: int, iat: int, username: str, aud: list[str], issuer: str, use: str, extra: dict[str, Any]) -> dict[str, Any]:
    """dex's Introspection, in its field order (omitempty: scope, username, jti)."""
    body: dict[str, Any] = {"active": True, "client_id": client_id, "sub": sub, "exp": exp, "iat": iat, "nbf": iat}
    if username:
        body["username"] = username
    body.update({"aud": aud[0] if len(aud) == 1 else aud, "iss": issuer, "token_type": "Bearer", "token_use": use, "ext": extra})
    return body
