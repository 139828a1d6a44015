"""The token endpoint: authorization code (RFC 6749 §4.1.3), refresh (§6), device code (RFC 8628),
token exchange (RFC 8693, with dex's ``connector_id``), revocation (RFC 7009), and the
authorization request with PKCE S256 (RFC 7636).

authlib's OAuth 2.0 client core builds every request — forms, revocation body, authorization URL,
client authentication (RFC 6749 §2.3.1: ``none`` for a public client, else client_secret_basic,
or client_secret_post when that is all the IdP offers) — and sends it through bblogin's httpx
client (``_http``: TLS policy, retries, no redirects). bblogin reads every answer, since authlib
reads leniently (a 4xx JSON object without ``error`` passes as a token, ``expires_in`` goes
through ``int()``):

- a JSON ``{"error": ...}`` answer is an :class:`OAuthError` (its code and description);
- on refresh, ``invalid_grant`` — and dex's 400 ``invalid_request`` "Refresh token is invalid or has
  already been claimed by another client." / "Refresh token expired." — is :class:`RefreshTokenDead`:
  only a new login helps;
- network trouble and 5xx are :class:`IdPError` from ``_http`` (transient: retry later).

Success bodies are parsed strictly (RFC 6749 §5.1): a string access_token, token_type bearer (any
case), expires_in an integer or a numeric string, turned into an absolute time on receipt.
"""

from __future__ import annotations

import base64
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import httpx
from authlib.common.urls import add_params_to_uri, url_decode  # type: ignore[import-untyped]
from authlib.oauth2.client import OAuth2Client  # type: ignore[import-untyped]

from bblogin import _http
from bblogin._config import is_allowed_issuer
from bblogin._errors import IdPResponseError, OAuthError, RefreshTokenDead, printable
from bblogin._record import record
from bblogin._tokens import TokenSet

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
# parameters the authorization request sets itself: a profile's extra_auth_params never replace them
# (nor send the PKCE verifier, which must never travel in the front channel)
RESERVED_AUTH_PARAMS = frozenset(
    {"response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge", "code_challenge_method", "code_verifier", "request", "request_uri"}
)
DEX_DEAD_REFRESH = ("Refresh token is invalid or has already been claimed by another client.", "Refresh token expired.")


@record(frozen=True)
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

    def __repr__(self) -> str:
        return f"ClientAuth(client_id={self.client_id!r}, method={self.method if self.client_secret else 'none'!r})"


def _form_encoded_basic(client: Any, method: str, uri: str, headers: dict[str, str], body: str) -> tuple[str, dict[str, str], str]:
    """client_secret_basic as RFC 6749 §2.3.1 has it: each part form-encoded, then HTTP Basic.
    authlib's own sends them raw, and dex (like the RFC) decodes them: a secret with ``+`` or ``%`` breaks."""
    quote = urllib.parse.quote
    credentials = f"{quote(client.client_id, safe='')}:{quote(client.client_secret, safe='')}"
    headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
    return uri, headers, body


_SECRET_FIELDS = ("code", "code_verifier", "refresh_token", "device_code", "subject_token", "client_secret", "token")


class _Client(OAuth2Client):  # type: ignore[misc]
    """authlib's client core, for one request. It is its own "session" (as authlib's httpx client
    is): authlib calls ``post`` with the form, headers and client authentication, and
    ``parse_response_token`` with the answer."""

    def __init__(self, http: httpx.Client, client: ClientAuth, what: str) -> None:
        method = client.method if client.client_secret else "none"
        super().__init__(self, client.client_id, client.client_secret, token_endpoint_auth_method=method, revocation_endpoint_auth_method=method)
        self.register_client_auth_method(("client_secret_basic", _form_encoded_basic))
        self.http, self.what = http, what
        self.secrets = [client.client_secret] if client.client_secret else []

    def post(self, url: str, data: dict[str, str], headers: dict[str, str], auth: Any) -> httpx.Response:
        """Send through ``_http``; a 200 comes back, any other answer is raised as its OAuth error."""
        self.secrets += [v for k, v in data.items() if k in _SECRET_FIELDS and v]
        url, headers, body = auth.prepare("POST", url, dict(headers), urllib.parse.urlencode(data))
        response = _http.request(self.http, "POST", url, data=dict(url_decode(body)), headers=headers, what=self.what)
        if response.status_code != 200:
            raise oauth_error(response.status_code, _http.parse_json(response, self.what), self.what, self.secrets)
        return response

    def parse_response_token(self, resp: httpx.Response) -> dict[str, Any]:
        """The token answer's JSON object, for :func:`parse_token_response` (an ``error`` in a 200
        is still an error)."""
        body = _http.parse_json(resp, self.what)
        if "error" in body:
            raise oauth_error(resp.status_code, body, self.what, self.secrets)
        return body


REFUSAL_HINTS = {  # RFC 6749 §5.2 refusals: what the user can change
    "invalid_client": "check client_id and client_secret in the profile",
    "unauthorized_client": "the identity provider does not allow this client this grant: check the client's registration there (grant types, refresh tokens)",
    "invalid_scope": "check the profile's scopes: the identity provider no longer grants one of them to this client",
}


def oauth_error(status: int, body: dict[str, Any], what: str, secrets: list[str] | None = None) -> OAuthError | IdPResponseError:
    """The error an answer carries (non-200, or ``error`` in a 200). Any of the ``secrets`` we sent
    that the IdP's description echoes back is masked: the description ends up on the user's terminal."""
    error = body.get("error")
    if not isinstance(error, str) or not error or not error.isascii() or len(error) > 64 or not error.isprintable():
        return IdPResponseError(f"{what}: the identity provider answered HTTP {status} without a usable OAuth error code")
    description = body.get("error_description")
    description = " ".join(description.split()) if isinstance(description, str) else ""
    for secret in secrets or []:
        description = description.replace(secret, "[redacted]")
    hint = REFUSAL_HINTS.get(error)
    return OAuthError(error, printable(description, 300), hint=hint)  # nothing that drives the terminal


def post_form(http: httpx.Client, url: str, client: ClientAuth, form: dict[str, str], what: str, *, credentials_in_form: bool = False) -> dict[str, Any]:
    """POST ``form`` with authlib's client authentication; the JSON of a 200, else the OAuth error
    raised. ``credentials_in_form`` puts the credentials in the form (dex's device authorization
    endpoint reads only the form)."""
    oauth = _Client(http, client, what)
    method = ("client_secret_post" if client.client_secret else "none") if credentials_in_form else oauth.token_endpoint_auth_method
    return oauth.parse_response_token(oauth.post(url, form, {}, oauth.client_auth(method)))


def authorization_url(
    endpoint: str, client_id: str, *, redirect_uri: str, state: str, code_challenge: str, scope: str | None, nonce: str | None = None, extra: dict[str, str]
) -> str:
    """The authorization request (RFC 6749 §4.1.1) with PKCE S256 (RFC 7636 §4.3). ``extra`` adds
    parameters (dex's connector_id, a profile's own) but never replaces the request's own."""
    own = OAuth2Client(None, client_id, scope=scope, redirect_uri=redirect_uri)
    url, _state = own.create_authorization_url(endpoint, state=state, nonce=nonce, code_challenge=code_challenge, code_challenge_method="S256")
    # the profile's own as pairs, not keywords: a name such as "url" would collide with authlib's arguments
    return str(add_params_to_uri(url, [(k, v) for k, v in extra.items() if k not in RESERVED_AUTH_PARAMS]))


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


def fetch_token(http: httpx.Client, token_endpoint: str, client: ClientAuth, what: str, grant_type: str, **form: str | None) -> dict[str, Any]:
    """One token request through authlib's ``fetch_token`` (empty fields are left out): the JSON of
    a 200, else the OAuth error raised. Refresh goes through it too: authlib's ``refresh_token``
    writes the old refresh token into an answer without one, and the caller must see that none
    was issued."""
    return dict(_Client(http, client, what).fetch_token(token_endpoint, grant_type=grant_type, **form))


def exchange_code(http: httpx.Client, token_endpoint: str, client: ClientAuth, *, code: str, redirect_uri: str, code_verifier: str) -> TokenSet:
    """Redeem an authorization code with its PKCE verifier."""
    body = fetch_token(http, token_endpoint, client, "redeeming the authorization code", "authorization_code", code=code, redirect_uri=redirect_uri, code_verifier=code_verifier)
    return parse_token_response(body, received_at=int(time.time()))


def is_dead_refresh(exc: OAuthError) -> bool:
    """Whether the IdP refused a refresh token for good (standard, or dex's wording)."""
    return exc.error == "invalid_grant" or (exc.error == "invalid_request" and exc.description in DEX_DEAD_REFRESH)


def hand_over_rotated(body: dict[str, Any], on_rotated: Callable[[str], None] | None) -> None:
    """Give a 200 refresh answer's refresh token to ``on_rotated`` before anything else in the
    answer is judged: the IdP has spent the old one whether or not the rest (``expires_in``,
    ``token_type``, the ID token) is acceptable."""
    rotated = body.get("refresh_token")
    if on_rotated is not None and isinstance(rotated, str) and rotated:
        on_rotated(rotated)


def refresh(
    http: httpx.Client,
    token_endpoint: str,
    client: ClientAuth,
    refresh_token: str,
    *,
    relogin_command: str,
    scope: str | None = None,
    on_rotated: Callable[[str], None] | None = None,
) -> TokenSet:
    """Redeem ``refresh_token``. A refusal for good is RefreshTokenDead whose hint is ``relogin_command``.

    The answer may carry no refresh token: the caller keeps the one it has. A new one goes to
    ``on_rotated`` first (:func:`hand_over_rotated`)."""
    try:
        body = fetch_token(http, token_endpoint, client, "refreshing the tokens", "refresh_token", refresh_token=refresh_token, scope=scope)
    except OAuthError as exc:
        if is_dead_refresh(exc):
            reason = f"{exc.error}: {exc.description}" if exc.description else exc.error
            raise RefreshTokenDead(f"the identity provider no longer accepts this login's refresh token ({reason})", hint=f"log in again: `{relogin_command}`") from None
        raise
    hand_over_rotated(body, on_rotated)
    return parse_token_response(body, received_at=int(time.time()))


@record(frozen=True)
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
    """Start a device login (RFC 8628 §3.1; authlib has no client for this request)."""
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
    body = fetch_token(http, token_endpoint, client, "polling the device login", DEVICE_CODE_GRANT, device_code=device_code)
    return parse_token_response(body, received_at=int(time.time()))


@record(frozen=True)
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
    form = {"subject_token": subject_token, "subject_token_type": subject_token_type, "requested_token_type": requested_token_type}
    body = fetch_token(http, token_endpoint, client, "exchanging the token", TOKEN_EXCHANGE_GRANT, connector_id=connector_id, scope=scope, **form)
    tokens = parse_token_response(body, received_at=int(time.time()), allow_na=True)
    issued = body.get("issued_token_type")
    if not isinstance(issued, str) or not issued:
        raise IdPResponseError("the token exchange response lacks issued_token_type")
    if requested_token_type and issued != requested_token_type:
        raise IdPResponseError(f"the token exchange issued {issued}, not the requested {requested_token_type}")
    return ExchangedToken(tokens.access_token, issued, tokens.access_expires_at)


def revoke(http: httpx.Client, endpoint: str, client: ClientAuth, token: str, *, token_type_hint: str) -> None:
    """Revoke ``token`` (RFC 7009 §2.1). 200 is success (also for a token already invalid)."""
    _Client(http, client, f"revoking the {token_type_hint.replace('_', ' ')}").revoke_token(endpoint, token=token, token_type_hint=token_type_hint)
