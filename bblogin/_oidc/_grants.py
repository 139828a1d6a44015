"""The token endpoint (RFC 6749 §4.1.3, §6; RFC 8628 §3.4; RFC 8693) and revocation (RFC 7009).

Answers become a :class:`TokenSet` or an error from the tree. A refresh the IdP refuses for good
— ``invalid_grant``, or dex's 400 ``invalid_request`` "Refresh token is invalid or has already
been claimed by another client." / "Refresh token expired." — is :class:`RefreshTokenDead`: a new
login is needed. Anything transient (network, 5xx) is an :class:`IdPError`: retry later.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from bblogin import _http
from bblogin._errors import IdPResponseError, OAuthError, RefreshTokenDead
from bblogin._tokens import TokenSet

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
_DEAD_REFRESH_PHRASES = ("already been claimed", "refresh token expired", "refresh token is invalid")


@dataclass(frozen=True)
class ClientCredentials:
    client_id: str
    client_secret: str | None = None
    use_basic: bool = True  # client_secret_basic unless the IdP offers only client_secret_post

    def apply(self, data: dict[str, str]) -> dict[str, Any]:
        """httpx keyword arguments that authenticate this client (RFC 6749 §2.3.1)."""
        if self.client_secret is None:
            return {"data": {**data, "client_id": self.client_id}}
        if self.use_basic:
            from urllib.parse import quote

            return {"data": data, "auth": (quote(self.client_id, safe=""), quote(self.client_secret, safe=""))}
        return {"data": {**data, "client_id": self.client_id, "client_secret": self.client_secret}}

    def __repr__(self) -> str:
        return f"ClientCredentials(client_id={self.client_id!r}, secret={'set' if self.client_secret else 'none'})"


def oauth_error(status: int, body: dict[str, Any]) -> OAuthError | IdPResponseError:
    error = body.get("error")
    if not isinstance(error, str):
        return IdPResponseError(f"the token endpoint answered HTTP {status} without an OAuth error")
    description = body.get("error_description")
    return OAuthError(error, description if isinstance(description, str) else "")


def post(http: httpx.Client, token_endpoint: str, client: ClientCredentials, data: dict[str, str], what: str) -> dict[str, Any]:
    """POST to the token endpoint; the JSON of a 200, else the OAuth error it carries."""
    status, body, _headers = _http.request_json(http, "POST", token_endpoint, what, headers={"Accept": "application/json"}, **client.apply(data))
    if status == 200:
        return body
    if status >= 500:
        raise IdPResponseError(f"{what}: the identity provider failed (HTTP {status})", hint="try again later; the cached tokens are untouched")
    raise oauth_error(status, body)


def parse_token_response(body: dict[str, Any], *, received_at: float | None = None) -> TokenSet:
    """Strictly parse a successful token response (RFC 6749 §5.1); ID token expiry comes later."""
    now = received_at or time.time()
    access_token = body.get("access_token")
    token_type = body.get("token_type")
    if not isinstance(access_token, str) or not access_token:
        raise IdPResponseError("the token response has no access_token")
    if not isinstance(token_type, str) or token_type.lower() not in ("bearer", "n_a"):
        raise IdPResponseError(f"the token response has token_type {token_type!r}, not bearer")
    expires_in = body.get("expires_in")
    if isinstance(expires_in, str) and expires_in.isdigit():
        expires_in = int(expires_in)
    if expires_in is not None and (not isinstance(expires_in, int) or isinstance(expires_in, bool) or expires_in < 0):
        raise IdPResponseError("the token response has an invalid expires_in")
    optional = {k: body.get(k) for k in ("id_token", "refresh_token", "scope")}
    for key, value in optional.items():
        if value is not None and not isinstance(value, str):
            raise IdPResponseError(f"the token response has a non-string {key}")
    return TokenSet(
        access_token=access_token,
        id_token=optional["id_token"] or None,
        refresh_token=optional["refresh_token"] or None,
        access_expires_at=int(now) + expires_in if expires_in is not None else None,
        scope=optional["scope"],
    )


def exchange_code(http: httpx.Client, token_endpoint: str, client: ClientCredentials, *, code: str, redirect_uri: str, code_verifier: str) -> TokenSet:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": code_verifier}
    return parse_token_response(post(http, token_endpoint, client, data, "redeeming the authorization code"))


def refresh(http: httpx.Client, token_endpoint: str, client: ClientCredentials, refresh_token: str, *, login_hint: str) -> TokenSet:
    """Redeem ``refresh_token``; a refusal for good becomes RefreshTokenDead naming ``login_hint``."""
    try:
        body = post(http, token_endpoint, client, {"grant_type": "refresh_token", "refresh_token": refresh_token}, "refreshing tokens")
    except OAuthError as exc:
        dead = exc.error == "invalid_grant" or (exc.error == "invalid_request" and any(p in exc.description.lower() for p in _DEAD_REFRESH_PHRASES))
        if dead:
            raise RefreshTokenDead(f"the identity provider refused the refresh token ({exc.error}: {exc.description or 'no description'})", hint=f"run `{login_hint}`") from None
        raise
    return parse_token_response(body)


@dataclass(frozen=True)
class DeviceAuthorization:
    """RFC 8628 §3.2: what to show the person, and what to poll with."""

    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: int
    interval: int

    def __repr__(self) -> str:
        return f"DeviceAuthorization(user_code={self.user_code!r}, verification_uri={self.verification_uri!r})"


def device_authorize(http: httpx.Client, endpoint: str, client: ClientCredentials, scopes: tuple[str, ...]) -> DeviceAuthorization:
    body = post(http, endpoint, client, {"scope": " ".join(scopes)}, "starting the device login")
    try:
        return DeviceAuthorization(
            device_code=str(body["device_code"]),
            user_code=str(body["user_code"]),
            verification_uri=str(body.get("verification_uri") or body["verification_url"]),
            verification_uri_complete=str(body["verification_uri_complete"]) if body.get("verification_uri_complete") else None,
            expires_in=int(body.get("expires_in", 600)),
            interval=int(body.get("interval", 5)),
        )
    except (KeyError, ValueError, TypeError):
        raise IdPResponseError("the device authorization response is missing fields") from None


def poll_device(http: httpx.Client, token_endpoint: str, client: ClientCredentials, device_code: str) -> TokenSet | str:
    """One poll: the tokens, or the pending error code (authorization_pending, slow_down)."""
    try:
        body = post(http, token_endpoint, client, {"grant_type": DEVICE_GRANT, "device_code": device_code}, "polling the device login")
    except OAuthError as exc:
        if exc.error in ("authorization_pending", "slow_down"):
            return exc.error
        raise
    return parse_token_response(body)


def token_exchange(
    http: httpx.Client, token_endpoint: str, client: ClientCredentials, *, subject_token: str, subject_token_type: str, connector_id: str | None, requested_token_type: str | None, scopes: tuple[str, ...]
) -> dict[str, Any]:
    """RFC 8693, with dex's non-standard (and required) ``connector_id``; the raw answer."""
    data = {"grant_type": TOKEN_EXCHANGE_GRANT, "subject_token": subject_token, "subject_token_type": subject_token_type, "scope": " ".join(scopes)}
    if connector_id:
        data["connector_id"] = connector_id
    if requested_token_type:
        data["requested_token_type"] = requested_token_type
    return post(http, token_endpoint, client, data, "exchanging the CI token")


def revoke(http: httpx.Client, endpoint: str, client: ClientCredentials, token: str, hint: str) -> None:
    response = _http.send(http, "POST", endpoint, **client.apply({"token": token, "token_type_hint": hint}))
    if response.status_code != 200:
        raise IdPResponseError(f"revoking the {hint.replace('_', ' ')} failed (HTTP {response.status_code})")
