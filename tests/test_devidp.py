"""The dev IdP fails the way dex v2.45 fails (shared/dex-facts.md), over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import time
import urllib.parse

import httpx
import jwt
import pytest

from bblogin.devidp import DevIdP, dex_subject

DEVICE = "urn:ietf:params:oauth:grant-type:device_code"
REUSED = "Refresh token is invalid or has already been claimed by another client."


@pytest.fixture
def http() -> httpx.Client:
    with httpx.Client(follow_redirects=False, timeout=10) as client:
        yield client


def auth_params(**overrides: str) -> dict[str, str]:
    params = {"client_id": "bblogin", "redirect_uri": "http://127.0.0.1:8400/callback", "response_type": "code", "scope": "openid email groups profile offline_access", "state": "st", "nonce": "nn"}
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def code_for(idp: DevIdP, http: httpx.Client, **overrides: str) -> str:
    r = http.get(f"{idp.issuer}/auth", params=auth_params(connector_id="bitbucket-cloud", **overrides))
    while r.status_code in (302, 303) and not r.headers["Location"].startswith("http://127.0.0.1:8400"):
        r = http.get(r.headers["Location"])
    assert r.status_code == 303, r.text
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(r.headers["Location"]).query)
    assert query["state"] == ["st"]
    return query["code"][0]


def token(idp: DevIdP, http: httpx.Client, **form: str) -> httpx.Response:
    return http.post(f"{idp.issuer}/token", data={"client_id": "bblogin", **form})


def test_discovery_and_keys(devidp: DevIdP, http: httpx.Client) -> None:
    doc = http.get(f"{devidp.issuer}/.well-known/openid-configuration")
    assert "Cache-Control" not in doc.headers
    body = doc.json()
    assert body["issuer"] == devidp.issuer and body["device_authorization_endpoint"] == f"{devidp.issuer}/device/code"
    assert body["code_challenge_methods_supported"] == ["S256", "plain"] and body["id_token_signing_alg_values_supported"] == ["RS256"]
    keys = http.get(f"{devidp.issuer}/keys")
    assert keys.headers["Cache-Control"] == "max-age=600, must-revalidate"
    kid = keys.json()["keys"][0]["kid"]
    assert len(kid) == 40 and int(kid, 16) >= 0
    devidp.rotate_keys()
    after = [k["kid"] for k in http.get(f"{devidp.issuer}/keys").json()["keys"]]
    assert after[1] == kid and after[0] != kid  # new key first, retired key kept


@pytest.mark.parametrize(
    ("overrides", "status"),
    [
        ({"client_id": "nobody"}, 404),
        ({"redirect_uri": "https://localhost/callback"}, 400),
        ({"redirect_uri": "http://evil.example/callback"}, 400),
        ({"connector_id": "github"}, 400),
    ],
)
def test_auth_errors_shown_as_html(devidp: DevIdP, http: httpx.Client, overrides: dict[str, str], status: int) -> None:
    r = http.get(f"{devidp.issuer}/auth", params=auth_params(**overrides))
    assert r.status_code == status and r.headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("overrides", "error"),
    [({"scope": "email"}, "invalid_scope"), ({"scope": "openid bogus"}, "invalid_scope"), ({"request": "x"}, "request_not_supported"), ({"code_challenge": "c", "code_challenge_method": "S512"}, "invalid_request")],
)
def test_auth_errors_redirected_to_the_client(devidp: DevIdP, http: httpx.Client, overrides: dict[str, str], error: str) -> None:
    r = http.get(f"{devidp.issuer}/auth", params=auth_params(**overrides))
    assert r.status_code == 303
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(r.headers["Location"]).query)
    assert query["error"] == [error] and query["state"] == ["st"]


@pytest.mark.parametrize("redirect", ["http://localhost:1234/cb", "http://127.0.0.1:50000/callback", "http://[::1]:8080/", "urn:ietf:wg:oauth:2.0:oob"])
def test_public_client_redirects(devidp: DevIdP, http: httpx.Client, redirect: str) -> None:
    r = http.get(f"{devidp.issuer}/auth", params=auth_params(redirect_uri=redirect, connector_id="bitbucket-cloud"))
    assert r.status_code == 302 and "/auth/bitbucket-cloud" in r.headers["Location"]


def test_code_grant_errors_exactly_like_dex(devidp: DevIdP, http: httpx.Client) -> None:
    redirect = "http://127.0.0.1:8400/callback"
    assert token(devidp, http, grant_type="authorization_code").json()["error"] == "invalid_request"
    assert token(devidp, http, grant_type="authorization_code", code="nope", redirect_uri=redirect).json()["error"] == "invalid_grant"
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    code = code_for(devidp, http, code_challenge=challenge, code_challenge_method="S256")
    assert token(devidp, http, grant_type="authorization_code", code=code, redirect_uri=redirect, code_verifier="w" * 50).json()["error"] == "invalid_grant"
    assert token(devidp, http, grant_type="authorization_code", code=code, redirect_uri=redirect).json()["error"] == "invalid_grant"
    assert token(devidp, http, grant_type="authorization_code", code=code, redirect_uri="http://127.0.0.1:1/x", code_verifier=verifier).json()["error"] == "invalid_request"
    ok = token(devidp, http, grant_type="authorization_code", code=code, redirect_uri=redirect, code_verifier=verifier)
    assert ok.status_code == 200 and ok.headers["Cache-Control"] == "no-store"
    body = ok.json()
    assert body["token_type"] == "bearer" and {"access_token", "id_token", "refresh_token", "expires_in"} <= set(body)
    plain = code_for(devidp, http)
    assert token(devidp, http, grant_type="authorization_code", code=plain, redirect_uri=redirect, code_verifier=verifier).json()["error"] == "invalid_request"
    assert token(devidp, http, grant_type="authorization_code", code=code, redirect_uri=redirect, code_verifier=verifier).json()["error"] == "invalid_grant"  # single use
    assert http.post(f"{devidp.issuer}/token", data={"client_id": "bblogin-ci", "client_secret": "wrong", "grant_type": "authorization_code", "code": "x"}).status_code == 401


def test_id_token_claims_and_sub(devidp: DevIdP, http: httpx.Client) -> None:
    code = code_for(devidp, http)
    body = token(devidp, http, grant_type="authorization_code", code=code, redirect_uri="http://127.0.0.1:8400/callback").json()
    key = jwt.PyJWKClient(f"{devidp.issuer}/keys").get_signing_key_from_jwt(body["id_token"])
    claims = jwt.decode(body["id_token"], key.key, algorithms=["RS256"], audience="bblogin", issuer=devidp.issuer)
    assert claims["nonce"] == "nn" and "at_hash" in claims and "c_hash" in claims
    assert claims["groups"] == ["acme", "platform-team"] and claims["email_verified"] is True and claims["preferred_username"] == "alice"
    assert claims["sub"] == dex_subject("{0b6e2f6c-6d3b-4c58-9b1a-7a1f0e2a4c11}", "bitbucket-cloud")
    assert dex_subject("user", "conn") == "CgR1c2VyEgRjb25u"  # protobuf {1: "user", 2: "conn"}, base64url, no padding


def test_refresh_rotation_reuse_and_narrowing(devidp_factory, http: httpx.Client) -> None:
    idp = devidp_factory(refresh_reuse_interval=2)
    code = code_for(idp, http)
    first = token(idp, http, grant_type="authorization_code", code=code, redirect_uri="http://127.0.0.1:8400/callback").json()["refresh_token"]
    second = token(idp, http, grant_type="refresh_token", refresh_token=first).json()
    assert second["refresh_token"] != first
    assert token(idp, http, grant_type="refresh_token", refresh_token=first).status_code == 200  # inside reuseInterval
    time.sleep(2.2)
    reused = token(idp, http, grant_type="refresh_token", refresh_token=first)
    assert reused.status_code == 400 and reused.json() == {"error": "invalid_request", "error_description": REUSED}
    assert token(idp, http, grant_type="refresh_token", refresh_token=second["refresh_token"], scope="openid email").status_code == 200
    widened = token(idp, http, grant_type="refresh_token", refresh_token=second["refresh_token"], scope="openid admin")
    assert widened.json()["error"] == "invalid_request"


def test_no_refresh_token_without_offline_access(devidp: DevIdP, http: httpx.Client) -> None:
    code = code_for(devidp, http, scope="openid email")
    assert "refresh_token" not in token(devidp, http, grant_type="authorization_code", code=code, redirect_uri="http://127.0.0.1:8400/callback").json()


def test_device_flow_pending_slow_down_and_expiry(devidp_factory, http: httpx.Client) -> None:
    idp = devidp_factory(auto_approve=False, device_interval=1, device_expires_in=2)
    start = http.post(f"{idp.issuer}/device/code", data={"client_id": "bblogin", "scope": "openid offline_access"}).json()
    assert len(start["user_code"]) == 9 and start["user_code"][4] == "-" and set(start["user_code"].replace("-", "")) <= set("BCDFGHJKLMNPQRSTVWXZ")
    assert start["verification_uri_complete"].endswith(start["user_code"])
    assert token(idp, http, grant_type=DEVICE, device_code=start["device_code"]).json()["error"] == "authorization_pending"
    assert token(idp, http, grant_type=DEVICE, device_code=start["device_code"]).json()["error"] == "slow_down"
    time.sleep(2.1)
    assert token(idp, http, grant_type=DEVICE, device_code=start["device_code"]).json()["error"] == "expired_token"


def test_denied_approval_is_an_html_error_not_a_redirect(devidp_factory, http: httpx.Client) -> None:
    idp = devidp_factory(auto_approve=False)
    r = http.get(f"{idp.issuer}/auth", params=auth_params(connector_id="bitbucket-cloud"))
    page = http.get(r.headers["Location"])
    req = page.text.split("req=")[1].split('"')[0]
    approval = http.post(f"{idp.issuer}/auth/bitbucket-cloud/login?req={req}", data={"user": "alice"})
    assert approval.status_code == 303
    denied = http.post(approval.headers["Location"], data={"approval": "rejected"})
    assert denied.status_code == 500 and "Approval rejected" in denied.text
