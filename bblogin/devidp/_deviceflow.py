"""dex's device flow (server/deviceflowhandlers.go): /device/code, the code-entry page, its
hand-over to a normal /auth with redirect_uri /device/callback, the callback that redeems the
code for the device, and the device_code grant (pending, slow_down, expired_token; never
access_denied). Callers hold the IdP lock."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable

from bblogin.devidp import _gojson, _pages, _tokens
from bblogin.devidp._authflow import DEVICE_CALLBACK
from bblogin.devidp._ids import new_device_code, new_user_code
from bblogin.devidp._provider import Provider
from bblogin.devidp._store import PKCE, DeviceRequest, DeviceToken
from bblogin.devidp._web import (
    HTMLError,
    Reply,
    Request,
    TokenError,
    go_encode,
    html,
    json_reply,
    redirect,
)

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}


def device_code(p: Provider, request: Request, issued: Callable[[str], None]) -> Reply:
    """handleDeviceCode: no client check here (dex checks the client when the person logs in)."""
    if request.method != "POST":
        raise HTMLError(400, "Invalid device code request type")
    if request.bad_form:
        raise TokenError("invalid_request", "", 404)
    scopes = request.form("scope").split() or ["openid"]
    method = request.form("code_challenge_method") or "plain"
    if method not in ("S256", "plain"):
        raise TokenError("invalid_request", f"Unsupported PKCE challenge method ({_gojson.quote(method)}).")
    settings, now = p.settings, time.time()
    code, user_code = new_device_code(), new_user_code()
    expiry = now + settings.device_expires_in
    p.store.device_requests[user_code] = DeviceRequest(user_code, code, request.form("client_id"), request.form("client_secret"), scopes, expiry)
    p.store.device_tokens[code] = DeviceToken(expiry, now, PKCE(request.form("code_challenge"), method))
    issued(user_code)
    verification_uri = f"{p.issuer}/device"
    body = {
        "device_code": code,
        "user_code": user_code,
        "verification_uri": verification_uri,
        "verification_uri_complete": f"{verification_uri}?{urllib.parse.urlencode({'user_code': user_code})}",
        "expires_in": settings.device_expires_in,
        "interval": settings.device_interval,
    }
    return json_reply(200, body, headers={"Cache-Control": "no-store"}, indent=3, newline=True, escape_html=False)


def entry_page(p: Provider, request: Request) -> Reply:
    """handleDeviceExchange: the form; ?user_code= pre-fills it, ?invalid=true says it failed."""
    if request.method != "GET":
        raise HTMLError(400, "Requested resource does not exist.")
    invalid = request.arg("invalid") in _TRUE
    return html(400 if invalid else 200, _pages.device(p.path("/device/auth/verify_code"), request.arg("user_code"), invalid))


def verify_user_code(p: Provider, request: Request) -> Reply:
    """verifyUserCode: on to /auth as the device's client, state = the user code."""
    if request.method != "POST":
        raise HTMLError(400, "Requested resource does not exist.")
    if request.bad_form:
        raise HTMLError(400, "")
    user_code = request.form("user_code")
    if not user_code:
        raise HTMLError(400, "No user code received")
    user_code = user_code.upper()
    device = p.store.device_requests.get(user_code)
    if device is None or time.time() > device.expiry:
        return html(400, _pages.device(p.path("/device/auth/verify_code"), user_code, True))
    params = [
        ("client_id", device.client_id),
        ("client_secret", device.client_secret),
        ("state", device.user_code),
        ("response_type", "code"),
        ("redirect_uri", DEVICE_CALLBACK),
        ("scope", " ".join(device.scopes)),
    ]
    return redirect(p.path("/auth") + "?" + go_encode(params))


def callback(p: Provider, request: Request) -> Reply:
    """handleDeviceCallback: redeem the code for the device and store the token response."""
    if request.method != "GET":
        raise HTMLError(400, "Method not allowed.")
    user_code, code_id = request.form("state"), request.form("code")
    if not user_code or not code_id:
        raise HTMLError(400, "Request was missing parameters")
    if request.form("error"):
        raise HTMLError(400, "Authorization failed. Please try again.")
    now = time.time()
    code = p.store.auth_codes.get(code_id)
    if code is None or now > code.expiry:
        raise HTMLError(400, "Invalid or expired auth code.")
    device = p.store.device_requests.get(user_code)
    if device is None or now > device.expiry:
        raise HTMLError(400, "Invalid or expired user code.")
    client = p.clients.get(device.client_id)
    if client is None or (client.secret or "") != device.client_secret:
        raise TokenError("invalid_client", "Invalid client credentials.", 401)
    try:
        response = _tokens.exchange_auth_code(p, code, client)
    except TokenError:
        raise HTMLError(500, "Failed to exchange auth code.") from None
    token = p.store.device_tokens.get(device.device_code)
    if token is None or now > token.expiry:
        raise HTMLError(400, "Invalid or expired device code.")
    if token.token is not None:
        raise HTMLError(400, "")  # already complete
    token.token = _gojson.dumps(response, indent=2)
    return html(200, _pages.device_success(client.name))


def device_token(p: Provider, request: Request) -> Reply:
    """handleDeviceToken: the stored response, as often as the device asks, until expiry.
    Polling before the interval is up answers slow_down and adds 5 seconds to it."""
    code = request.form("device_code")
    if not code:
        raise TokenError("invalid_request", "No device code received")
    token = p.store.device_tokens.get(code)
    if token is None:
        raise TokenError("invalid_request", "Invalid Device code.")
    now = time.time()
    if now > token.expiry:
        raise TokenError("expired_token")
    slow = now < token.last_request + token.poll_interval
    if token.token is None:
        token.poll_interval = token.poll_interval + 5 if slow else p.settings.device_interval
        token.last_request = now
        raise TokenError("slow_down" if slow else "authorization_pending")
    _tokens.verify_pkce(token.pkce, request.form("code_verifier"))
    return Reply(200, token.token, "application/json")
