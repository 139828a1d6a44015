"""The dev IdP's /token, /userinfo and /token/introspect answer like dex v2.45: client
authentication, the code grant with PKCE and dex's exact errors, refresh-token rotation with
the reuse interval and lifetimes, one refresh token per user and client, upstream re-checks."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Iterator

import httpx
import jwt
import pytest

from bblogin.devidp import DevIdP
from tests.fixtures.devidp import redirect_params, sign_in

REDIRECT = "http://127.0.0.1:8400/callback"
CLAIMED = {"error": "invalid_request", "error_description": "Refresh token is invalid or has already been claimed by another client."}
EXPIRED = {"error": "invalid_request", "error_description": "Refresh token expired."}


@pytest.fixture(scope="module")
def idp() -> Iterator[DevIdP]:
    with DevIdP(auto_approve=True) as server:
        yield server


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(follow_redirects=False, timeout=10) as client:
        yield client


def code_for(idp: DevIdP, http: httpx.Client, client_id: str = "bblogin", redirect_uri: str = REDIRECT, **params: str) -> str:
    query = {"client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code", "scope": "openid email groups profile offline_access", "state": "st", "nonce": "nn", "connector_id": "bitbucket-cloud", **params}
    return redirect_params(sign_in(http, str(httpx.URL(f"{idp.issuer}/auth", params=query))))["code"]


def post(idp: DevIdP, http: httpx.Client, **form: str) -> httpx.Response:
    form.setdefault("client_id", "bblogin")
    return http.post(f"{idp.issuer}/token", data=form)


def redeem(idp: DevIdP, http: httpx.Client, code: str, **form: str) -> httpx.Response:
    return post(idp, http, **{"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, **form})


def refresh(idp: DevIdP, http: httpx.Client, token: str, **form: str) -> httpx.Response:
    return post(idp, http, grant_type="refresh_token", refresh_token=token, **form)


def login(idp: DevIdP, http: httpx.Client, **params: str) -> dict[str, str]:
    answer = redeem(idp, http, code_for(idp, http, **params))
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def claims(token: str) -> dict[str, object]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


# -- the endpoint and client authentication ------------------------------------------------------
def test_endpoint_errors(idp: DevIdP, http: httpx.Client) -> None:
    assert http.get(f"{idp.issuer}/token").json() == {"error": "invalid_request", "error_description": "method not allowed"}
    assert post(idp, http, grant_type="password").json() == {"error": "unsupported_grant_type"}
    assert post(idp, http).status_code == 400


@pytest.mark.parametrize(
    ("auth", "form", "status"),
    [
        (("bblogin-ci", "bblogin-ci-secret"), {}, 400),  # Basic: authenticated, then the grant's own error
        (None, {"client_id": "bblogin-ci", "client_secret": "bblogin-ci-secret"}, 400),  # client_secret_post
        (("bblogin-ci", "wrong"), {}, 401),
        (None, {"client_id": "bblogin-ci"}, 401),  # a confidential client without its secret
        (None, {"client_id": "bblogin", "client_secret": "anything"}, 401),  # dex compares a public client's secret with ""
        (None, {"client_id": "nobody"}, 401),
    ],
)
def test_client_authentication(idp: DevIdP, http: httpx.Client, auth: tuple[str, str] | None, form: dict[str, str], status: int) -> None:
    answer = http.post(f"{idp.issuer}/token", data={"grant_type": "authorization_code", **form}, auth=auth)
    assert answer.status_code == status
    if status == 401:
        assert answer.json() == {"error": "invalid_client", "error_description": "Invalid client credentials."}


def test_basic_credentials_are_form_unescaped(idp: DevIdP, http: httpx.Client) -> None:
    bad = http.post(f"{idp.issuer}/token", data={"grant_type": "authorization_code"}, headers={"Authorization": "Basic " + base64.b64encode(b"bblogin-ci:%zz").decode()})
    assert bad.json() == {"error": "invalid_request", "error_description": "client_secret improperly encoded"}


# -- authorization_code ----------------------------------------------------------------------------
def test_code_grant_errors_exactly_like_dex(idp: DevIdP, http: httpx.Client) -> None:
    assert post(idp, http, grant_type="authorization_code").json() == {"error": "invalid_request", "error_description": "Required param: code."}
    assert redeem(idp, http, "nope").json() == {"error": "invalid_grant", "error_description": "Invalid or expired code parameter."}
    code = code_for(idp, http)
    mismatch = redeem(idp, http, code, redirect_uri="http://127.0.0.1:1/x")
    assert mismatch.json() == {"error": "invalid_request", "error_description": "redirect_uri did not match URI from initial request."}
    foreign = post(idp, http, grant_type="authorization_code", code=code, redirect_uri=REDIRECT, client_id="bblogin-ci", client_secret="bblogin-ci-secret")
    assert (foreign.status_code, foreign.json()) == (500, {"error": "server_error"})  # dex v2.45: another client's (or an expired) code is a 500
    ok = redeem(idp, http, code)
    assert ok.status_code == 200 and ok.headers["Cache-Control"] == "no-store" and ok.headers["Pragma"] == "no-cache"
    assert list(ok.json()) == ["access_token", "token_type", "expires_in", "refresh_token", "id_token"] and ok.json()["token_type"] == "bearer"
    assert redeem(idp, http, code).json()["error"] == "invalid_grant"  # single use


def test_pkce_s256_and_plain(idp: DevIdP, http: httpx.Client) -> None:
    verifier = "v" * 50
    code = code_for(idp, http, code_challenge=s256(verifier), code_challenge_method="S256")
    assert redeem(idp, http, code, code_verifier="w" * 50).json() == {"error": "invalid_grant", "error_description": "Invalid code_verifier."}
    assert redeem(idp, http, code).json() == {"error": "invalid_grant", "error_description": "Expecting parameter code_verifier in PKCE flow."}
    assert redeem(idp, http, code, code_verifier=verifier).status_code == 200
    plain = code_for(idp, http, code_challenge=verifier)  # no method: plain
    assert redeem(idp, http, plain, code_verifier=s256(verifier)).json()["error"] == "invalid_grant"
    assert redeem(idp, http, plain, code_verifier=verifier).status_code == 200
    without = code_for(idp, http)
    answer = redeem(idp, http, without, code_verifier=verifier)
    assert answer.json() == {"error": "invalid_request", "error_description": "No PKCE flow started. Cannot check code_verifier."}


def test_offline_access_decides_the_refresh_token(idp: DevIdP, http: httpx.Client) -> None:
    assert "refresh_token" not in login(idp, http, scope="openid email")


def test_confidential_client_login(idp: DevIdP, http: httpx.Client) -> None:
    ci = "http://127.0.0.1:5555/callback"
    code = code_for(idp, http, client_id="bblogin-ci", redirect_uri=ci)
    answer = http.post(f"{idp.issuer}/token", data={"grant_type": "authorization_code", "code": code, "redirect_uri": ci}, auth=("bblogin-ci", "bblogin-ci-secret"))
    assert answer.status_code == 200 and claims(answer.json()["id_token"])["aud"] == "bblogin-ci"


# -- refresh_token ------------------------------------------------------------------------------------
def test_rotation_and_the_already_claimed_error(idp: DevIdP, http: httpx.Client) -> None:
    first = login(idp, http)
    second = refresh(idp, http, first["refresh_token"])
    assert second.status_code == 200 and second.headers["Cache-Control"] == "no-store"
    body = second.json()
    assert body["refresh_token"] != first["refresh_token"] and list(body) == ["access_token", "token_type", "expires_in", "refresh_token", "id_token"]
    refreshed = claims(body["id_token"])
    assert refreshed["nonce"] == "nn" and "c_hash" not in refreshed and refreshed["sub"] == claims(first["id_token"])["sub"]
    reused = refresh(idp, http, first["refresh_token"])
    assert (reused.status_code, reused.json()) == (400, CLAIMED)
    assert refresh(idp, http, "garbage").json() == CLAIMED
    assert post(idp, http, grant_type="refresh_token").json() == {"error": "invalid_request", "error_description": "No refresh token is found in request."}
    other = post(idp, http, grant_type="refresh_token", refresh_token=body["refresh_token"], client_id="bblogin-ci", client_secret="bblogin-ci-secret")
    assert other.json() == {**CLAIMED, "error": "invalid_grant"}  # another client's token
    assert refresh(idp, http, body["refresh_token"]).status_code == 200


def test_scopes_may_only_narrow(idp: DevIdP, http: httpx.Client) -> None:
    token = login(idp, http)["refresh_token"]
    narrowed = refresh(idp, http, token, scope="openid email")
    assert narrowed.status_code == 200 and "groups" not in claims(narrowed.json()["id_token"])
    widened = refresh(idp, http, narrowed.json()["refresh_token"], scope="openid admin federated:id")
    assert widened.json() == {"error": "invalid_request", "error_description": 'Requested scopes contain unauthorized scope(s): ["admin" "federated:id"].'}


def test_reuse_interval(devidp_factory: Callable[..., DevIdP], http: httpx.Client) -> None:
    idp = devidp_factory(refresh_reuse_interval=0.5)
    first = login(idp, http)["refresh_token"]
    assert refresh(idp, http, first).json()["refresh_token"] == first  # used within the interval of its last use: not rotated
    time.sleep(0.6)
    second = refresh(idp, http, first).json()["refresh_token"]
    assert second != first
    assert refresh(idp, http, first).json()["refresh_token"] == second  # the obsolete token gets the current one back
    time.sleep(0.6)
    assert refresh(idp, http, first).json() == CLAIMED
    assert refresh(idp, http, second).status_code == 200


def test_absolute_and_idle_lifetimes(devidp_factory: Callable[..., DevIdP], http: httpx.Client) -> None:
    absolute = devidp_factory(refresh_token_ttl=0.5)
    token = login(absolute, http)["refresh_token"]
    token = refresh(absolute, http, token).json()["refresh_token"]
    time.sleep(0.6)
    assert refresh(absolute, http, token).json() == EXPIRED
    idle = devidp_factory(refresh_unused_ttl=0.5)
    token = login(idle, http)["refresh_token"]
    time.sleep(0.3)
    token = refresh(idle, http, token).json()["refresh_token"]
    time.sleep(0.3)
    token = refresh(idle, http, token).json()["refresh_token"]  # 0.6 s after login, but used 0.3 s ago
    time.sleep(0.6)
    assert refresh(idle, http, token).json() == EXPIRED


def test_one_refresh_token_per_user_and_client(idp: DevIdP, http: httpx.Client) -> None:
    old = login(idp, http)["refresh_token"]
    new = login(idp, http)["refresh_token"]
    assert refresh(idp, http, old).json() == CLAIMED  # the new login deleted it
    assert refresh(idp, http, new).status_code == 200
    ci = "http://127.0.0.1:5555/callback"
    code = code_for(idp, http, client_id="bblogin-ci", redirect_uri=ci)
    answer = http.post(f"{idp.issuer}/token", data={"grant_type": "authorization_code", "code": code, "redirect_uri": ci}, auth=("bblogin-ci", "bblogin-ci-secret"))
    ci_token = answer.json()["refresh_token"]
    assert refresh(idp, http, new).status_code == 400  # rotated above
    assert http.post(f"{idp.issuer}/token", data={"grant_type": "refresh_token", "refresh_token": ci_token}, auth=("bblogin-ci", "bblogin-ci-secret")).status_code == 200


def test_revoked_refresh_tokens(devidp_factory: Callable[..., DevIdP], http: httpx.Client) -> None:
    idp = devidp_factory()
    alice = login(idp, http)["refresh_token"]
    idp.default_user = "bob"
    bob = login(idp, http)["refresh_token"]
    idp.revoke_refresh_tokens("alice")
    assert refresh(idp, http, alice).json() == CLAIMED
    bob = refresh(idp, http, bob).json()["refresh_token"]
    idp.revoke_refresh_tokens()
    assert refresh(idp, http, bob).json() == CLAIMED


def test_refresh_asks_bitbucket_again(devidp_factory: Callable[..., DevIdP], http: httpx.Client) -> None:
    idp = devidp_factory()
    token = login(idp, http)["refresh_token"]
    idp.bitbucket.update_user("alice", workspaces=("acme",), email="alice@new.example")
    answer = refresh(idp, http, token).json()
    assert (claims(answer["id_token"])["groups"], claims(answer["id_token"])["email"]) == (["acme"], "alice@new.example")
    idp.bitbucket.revoke_access("alice")
    failed = refresh(idp, http, answer["refresh_token"])
    assert (failed.status_code, failed.json()) == (500, {"error": "invalid_request"})  # dex: the connector's refresh failed


# -- userinfo and introspection ------------------------------------------------------------------------
def test_userinfo(idp: DevIdP, http: httpx.Client) -> None:
    tokens = login(idp, http)
    missing = http.get(f"{idp.issuer}/userinfo")
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == "Bearer"
    assert missing.json() == {"error": "access_denied", "error_description": "Invalid bearer token."}
    assert http.get(f"{idp.issuer}/userinfo", headers={"Authorization": "Bearer nope"}).status_code == 403
    answer = http.get(f"{idp.issuer}/userinfo", headers={"Authorization": f"bearer {tokens['access_token']}"})
    assert answer.status_code == 200 and answer.json() == claims(tokens["access_token"])  # the token's claims, verbatim


def test_introspection(idp: DevIdP, http: httpx.Client) -> None:
    tokens = login(idp, http)
    access = http.post(f"{idp.issuer}/token/introspect", data={"token": tokens["access_token"]}).json()
    assert access["active"] is True and access["client_id"] == "bblogin" and access["token_use"] == "access_token"
    assert access["ext"]["email"] == "alice@example.com" and access["iss"] == idp.issuer and "username" not in access
    held = http.post(f"{idp.issuer}/token/introspect", data={"token": tokens["refresh_token"]}).json()
    assert held["active"] is True and held["token_use"] == "refresh_token" and held["sub"] == claims(tokens["id_token"])["sub"]
    inactive = http.post(f"{idp.issuer}/token/introspect", data={"token": "garbage"})
    assert (inactive.status_code, inactive.json()) == (200, {"active": False})
    assert http.post(f"{idp.issuer}/token/introspect", data={"x": "1"}).json()["error_description"] == "The POST body doesn't contain 'token' parameter."
