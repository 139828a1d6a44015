"""The token endpoint: authorization code (RFC 6749 §4.1.3), refresh (§6), device code (RFC 8628),
token exchange (RFC 8693, with dex's ``connector_id``), and revocation (RFC 7009).

Client authentication (RFC 6749 §2.3.1): a public client sends its client_id in the form; a
confidential one uses client_secret_basic, or client_secret_post when that is all the IdP offers.

Answers become a :class:`TokenSet` or an error from the tree:

- a JSON ``{"error": ...}`` answer is an :class:`OAuthError` (its code and description);
- on refresh, ``invalid_grant`` — and dex's 400 ``invalid_request`` "Refresh token is invalid or has
  already been claimed by another client." / "Refresh token expired." — is :class:`RefreshTokenDead`:
  only a new login helps;
- network trouble and 5xx are :class:`IdPError` from ``_http`` (transient: retry later).

Success bodies are parsed strictly (RFC 6749 §5.1): a string access_token, token_type bearer (any
case), expires_in an integer or a numeric string, turned into an absolute time on receipt.
"""

from __future__ import annotations

import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import httpx

from bblogin import _http
from bblogin._config import is_allowed_issuer
from bblogin._errors import IdPResponseError, OAuthError, RefreshTokenDead
from bblogin._tokens import TokenSet

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
DEX_DEAD_REFRESH = ("Refresh token is invalid or has already been claimed by another client.", "Refresh token expired.")


@dataclass(frozen=True)
class ClientAuth:
    """How this client authenticates at the token endpoint."""

    client_id: str
    client_secret: str | None = None
    method: str = "client_secret_basic"  # or client_secret_post; ignored for public clients

    @classmethod
    def for_idp(cls, client_id: str, client_secret: str | None, supported_methods: tuple[str, ...]) -> ClientAuth:
        """client_secret_basic unless the IdP advertises only client_secret_post."""
        post_only = "client_secret_post" in supported_methods and "client_secret_basic" not in supported_methods
        return cls(client_id, client_secret, "client_secret_post" if post_only else "client_secret_basic")

    def form_and_auth(self, form: dict[str, str], *, in_form: bool = False) -> tuple[dict[str, str], tuple[str, str] | None]:
        """The form to send and the HTTP Basic credentials, if any. ``in_form`` forces the
        credentials into the form (dex's device authorization endpoint reads only the form)."""
        if self.client_secret is None:
            return {**form, "client_id": self.client_id}, None
        if self.method == "client_secret_post" or in_form:
            return {**form, "client_id": self.client_id, "client_secret": self.client_secret}, None
        quote = urllib.parse.quote  # RFC 6749 §2.3.1: form-encode both parts, then Basic
        return form, (quote(self.client_id, safe=""), quote(self.client_secret, safe=""))

    def __repr__(self) -> str:
        return f"ClientAuth(client_id={self.client_id!r}, method={self.method if self.client_secret else 'none'!r})"


_SECRET_FIELDS = ("code", "code_verifier", "refresh_token", "device_code", "subject_token", "client_secret", "token")


def _secrets_in(data: dict[str, str], client: ClientAuth) -> list[str]:
    return [v for k, v in data.items() if k in _SECRET_FIELDS and v] + ([client.client_secret] if client.client_secret else [])


def oauth_error(status: int, body: dict[str, Any], what: str, secrets: list[str] | None = None) -> OAuthError | IdPResponseError:
    """The error a non-200 JSON answer carries. Any of the ``secrets`` we sent that the IdP's
    description echoes back is masked: the description ends up on the user's terminal."""
    error = body.get("error")
    if not isinstance(error, str) or not error or not error.isascii() or len(error) > 64 or not error.isprintable():
        return IdPResponseError(f"{what}: the identity provider answered HTTP {status} without a usable OAuth error code")
    description = body.get("error_description")
    description = " ".join(description.split()) if isinstance(description, str) else ""
    for secret in secrets or []:
        description = description.replace(secret, "[redacted]")
    hint = "check client_id and client_secret in the profile" if error == "invalid_client" else None
    return OAuthError(error, description[:300], hint=hint)


def post_form(http: httpx.Client, url: str, client: ClientAuth, form: dict[str, str], what: str, *, credentials_in_form: bool = False) -> dict[str, Any]:
    """POST ``form`` with client authentication; the JSON of a 200, else the OAuth error raised."""
    data, auth = client.form_and_auth(form, in_form=credentials_in_form)
    status, body, _headers = _http.request_json(http, "POST", url, data=data, auth=auth, what=what)
    if status == 200:
        return body
    raise oauth_error(status, body, what, _secrets_in(data, client))


def _expires_at(body: dict[str, Any], received_at: int) -> int | None:
    value = body.get("expires_in")
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise IdPResponseError("the token response has an invalid expires_in (not a non-negative integer)")
    return received_at + value


def parse_token_response(body: dict[str, Any], *, received_at: int, allow_na: bool = False) -> TokenSet:
    """A successful token response as a TokenSet (the ID token's expiry is set once verified)."""
    access_token = body.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise IdPResponseError("the token response has no access_token")
    token_type = body.get("token_type")
    accepted = ("bearer", "n_a") if allow_na else ("bearer",)
    if not isinstance(token_type, str) or token_type.lower() not in accepted:
        shown = token_type if isinstance(token_type, str) and len(token_type) < 20 else type(token_type).__name__
        raise IdPResponseError(f"the token response has token_type {shown!r}; bblogin uses bearer tokens only")
    optional: dict[str, str | None] = {}
    for key in ("id_token", "refresh_token", "scope"):
        value = body.get(key)
        if value is not None and not isinstance(value, str):
            raise IdPResponseError(f"the token response has a {key} that is not a string")
        optional[key] = value or None
    return TokenSet(
        access_token=access_token,
        id_token=optional["id_token"],
        refresh_token=optional["refresh_token"],
        access_expires_at=_expires_at(body, received_at),
        scope=optional["scope"],
    )


def _token_request(http: httpx.Client, token_endpoint: str, client: ClientAuth, form: dict[str, str], what: str) -> TokenSet:
    body = post_form(http, token_endpoint, client, form, what)
    return parse_token_response(body, received_at=int(time.time()))


def exchange_code(http: httpx.Client, token_endpoint: str, client: ClientAuth, *, code: str, redirect_uri: str, code_verifier: str) -> TokenSet:
    """Redeem an authorization code with its PKCE verifier."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": code_verifier}
    return _token_request(http, token_endpoint, client, form, "redeeming the authorization code")


def is_dead_refresh(exc: OAuthError) -> bool:
    """Whether the IdP refused a refresh token for good (standard, or dex's wording)."""
    return exc.error == "invalid_grant" or (exc.error == "invalid_request" and exc.description in DEX_DEAD_REFRESH)


def refresh(http: httpx.Client, token_endpoint: str, client: ClientAuth, refresh_token: str, *, relogin_command: str, scope: str | None = None) -> TokenSet:
    """Redeem ``refresh_token``. A refusal for good is RefreshTokenDead whose hint is ``relogin_command``.

    The answer may carry no refresh token: the caller keeps the one it has."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if scope:
        form["scope"] = scope
    try:
        return _token_request(http, token_endpoint, client, form, "refreshing the tokens")
    except OAuthError as exc:
        if is_dead_refresh(exc):
            reason = f"{exc.error}: {exc.description}" if exc.description else exc.error
            raise RefreshTokenDead(f"the identity provider no longer accepts this login's refresh token ({reason})", hint=f"log in again: `{relogin_command}`") from None
        raise


@dataclass(frozen=True)
class DeviceAuthorization:
    """RFC 8628 §3.2: what to show the person, and the device code to poll with (kept out of repr)."""

    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: int
    interval: int

    def __repr__(self) -> str:
        return f"DeviceAuthorization(user_code={self.user_code!r}, verification_uri={self.verification_uri!r}, expires_in={self.expires_in})"


def _browser_url(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not is_allowed_issuer(value):
        raise IdPResponseError(f"the device authorization response has an unusable {key} (not an https URL)")
    return value


def device_authorize(http: httpx.Client, endpoint: str, client: ClientAuth, *, scope: str) -> DeviceAuthorization:
    """Start a device login (RFC 8628 §3.1)."""
    body = post_form(http, endpoint, client, {"scope": scope}, "starting the device login", credentials_in_form=True)
    device_code, user_code = body.get("device_code"), body.get("user_code")
    if not isinstance(device_code, str) or not device_code or not isinstance(user_code, str) or not user_code:
        raise IdPResponseError("the device authorization response lacks device_code or user_code")
    # verification_url: the pre-RFC name some IdPs still send
    uri = _browser_url(body, "verification_uri") or _browser_url(body, "verification_url")
    if uri is None:
        raise IdPResponseError("the device authorization response lacks verification_uri")
    expires_in, interval = body.get("expires_in"), body.get("interval", 5)
    if isinstance(expires_in, bool) or not isinstance(expires_in, int) or expires_in <= 0:
        raise IdPResponseError("the device authorization response has no valid expires_in")
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < 0:
        raise IdPResponseError("the device authorization response has an invalid interval")
    return DeviceAuthorization(device_code, user_code, uri, _browser_url(body, "verification_uri_complete"), expires_in, max(interval, 1))


def poll_device_token(http: httpx.Client, token_endpoint: str, client: ClientAuth, device_code: str) -> TokenSet:
    """One poll (RFC 8628 §3.4). Pending, slow_down, expiry and denial are OAuthErrors for the caller."""
    return _token_request(http, token_endpoint, client, {"grant_type": DEVICE_CODE_GRANT, "device_code": device_code}, "polling the device login")


@dataclass(frozen=True)
class ExchangedToken:
    """An RFC 8693 answer: the issued token and its type (``…:id_token`` or ``…:access_token``)."""

    token: str
    issued_token_type: str
    expires_at: int | None

    def __repr__(self) -> str:
        return f"ExchangedToken(issued_token_type={self.issued_token_type!r}, expires_at={self.expires_at})"


def token_exchange(
    http: httpx.Client,
    token_endpoint: str,
    client: ClientAuth,
    *,
    subject_token: str,
    subject_token_type: str = ID_TOKEN_TYPE,
    requested_token_type: str | None = None,
    connector_id: str | None = None,
    scope: str | None = None,
) -> ExchangedToken:
    """RFC 8693 token exchange; ``connector_id`` is dex's (non-standard, required) connector to ask."""
    form = {"grant_type": TOKEN_EXCHANGE_GRANT, "subject_token": subject_token, "subject_token_type": subject_token_type}
    for key, value in (("requested_token_type", requested_token_type), ("connector_id", connector_id), ("scope", scope)):
        if value:
            form[key] = value
    body = post_form(http, token_endpoint, client, form, "exchanging the token")
    tokens = parse_token_response(body, received_at=int(time.time()), allow_na=True)
    issued = body.get("issued_token_type")
    if not isinstance(issued, str) or not issued:
        raise IdPResponseError("the token exchange response lacks issued_token_type")
    if requested_token_type and issued != requested_token_type:
        raise IdPResponseError(f"the token exchange issued {issued}, not the requested {requested_token_type}")
    return ExchangedToken(tokens.access_token, issued, tokens.access_expires_at)


def revoke(http: httpx.Client, endpoint: str, client: ClientAuth, token: str, *, token_type_hint: str) -> None:
    """Revoke ``token`` (RFC 7009 §2.1). 200 is success (also for a token already invalid)."""
    data, auth = client.form_and_auth({"token": token, "token_type_hint": token_type_hint})
    what = f"revoking the {token_type_hint.replace('_', ' ')}"
    response = _http.request(http, "POST", endpoint, data=data, auth=auth, what=what)
    if response.status_code != 200:
        try:
            body = _http.parse_json(response, what)
        except IdPResponseError:
            raise IdPResponseError(f"{what}: the identity provider answered HTTP {response.status_code}") from None
        raise oauth_error(response.status_code, body, what, _secrets_in(data, client))
