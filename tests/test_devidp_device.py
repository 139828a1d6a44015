"""The dev IdP's device flow behaves like dex v2.45: /device/code without a client check, the
code-entry page handing over to a normal /auth, the callback that stores the device's tokens,
and polling (authorization_pending, slow_down +5 s, expired_token; never access_denied)."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest

from bblogin.devidp import USERS, DevIdP, dex_subject
from tests.fixtures.devidp import sign_in

DEVICE = "urn:ietf:params:oauth:grant-type:device_code"


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(follow_redirects=False, timeout=10) as client:
        yield client


def start(idp: DevIdP, http: httpx.Client, **form: str) -> dict[str, Any]:
    answer = http.post(f"{idp.issuer}/device/code", data={"client_id": "bblogin", "scope": "openid email groups offline_access", **form})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def poll(idp: DevIdP, http: httpx.Client, device_code: str, **form: str) -> httpx.Response:
    return http.post(f"{idp.issuer}/token", data={"grant_type": DEVICE, "device_code": device_code, **form})


def test_device_code_response(devidp_factory: Callable[..., DevIdP], http: httpx.Client) -> None:
    idp = devidp_factory(auto_approve=False, device_interval=2, device_expires_in=60)
    answer = http.post(f"{idp.issuer}/device/code", data={"client_id": "anyone-at-all"})  # dex checks the client later
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    assert answer.text.startswith('{\n   "device_code": ')  # dex's encoder indents by three spaces
    body = answer.json()
    assert list(body) == ["device_code", "user_code", "verification_uri", "verification_uri_complete", "expires_in", "interval"]
    code = body["user_code"]
    assert len(code) == 9 and code[4] == "-" and set(code.replace("-", "")) <= set("BCDFGHJKLMNPQRSTVWXZ")
    assert body["verification_uri"] == f"{idp.issuer}/device" and body["verification_uri_complete"] == f"{idp.issuer}/device?user_code={code}"
    assert (body["expires_in"], body["interval"], len(body["device_code"])) == (60, 2, 51)
    assert http.get(f"{idp.issuer}/device/code").status_code == 400
    bad = http.post(f"{idp.issuer}/device/code", data={"client_id": "bblogin", "code_challenge": "c", "code_challenge_method": "S1"})
    assert bad.json() == {"error": "invalid_request", "error_description": 'Unsupported PKCE challenge method ("S1").'}


def test_polling_pending_slow_down_and_expiry(devidp_factory: Callable[..., DevIdP], http: httpx.Client) -> None:
    idp = devidp_factory(auto_approve=False, device_interval=1, device_expires_in=3)
    code = start(idp, http)["device_code"]
    assert poll(idp, http, code).json() == {"error": "authorization_pending"}
    time.sleep(1.05)
    assert poll(idp, http, code).json() == {"error": "authorization_pending"}  # waited the interval
    assert poll(idp, http, code).json() == {"error": "slow_down"}  # too soon: the interval grows by 5 s
    time.sleep(1.0)
    assert poll(idp, http, code).json() == {"error": "slow_down"}  # 1 s later: still inside the grown interval
    time.sleep(1.0)
    assert poll(idp, http, code).json() == {"error": "expired_token"}
    assert poll(idp, http, "").json() == {"error": "invalid_request", "error_description": "No device code received"}
    assert poll(idp, http, "nope").json() == {"error": "invalid_request", "error_description": "Invalid Device code."}


def test_the_person_s_path_over_http(devidp_factory: Callable[..., DevIdP], http: httpx.Client) -> None:
    idp = devidp_factory(auto_approve=False)
    started = start(idp, http)
    entry = http.get(started["verification_uri_complete"])
    assert entry.status_code == 200 and f'value="{started["user_code"]}"' in entry.text and "not a real identity provider" in entry.text
    handover = http.post(f"{idp.issuer}/device/auth/verify_code", data={"user_code": started["user_code"].lower()})
    assert handover.status_code == 302
    location = httpx.URL(handover.headers["Location"])
    assert location.path == "/dex/auth" and "connector_id" not in location.params
    assert dict(location.params) == {"client_id": "bblogin", "client_secret": "", "redirect_uri": "/device/callback", "response_type": "code", "scope": "openid email groups offline_access", "state": started["user_code"]}
    assert poll(idp, http, started["device_code"]).json()["error"] == "authorization_pending"
    done = sign_in(http, str(handover.url.join(handover.headers["Location"])), user="bob")
    assert done.status_code == 200 and "Login Successful for bblogin" in done.text
    tokens = poll(idp, http, started["device_code"])  # at once: dex checks the pace only while pending
    assert tokens.status_code == 200 and "Cache-Control" not in tokens.headers and tokens.text.startswith('{\n  "access_token": ')
    body = tokens.json()
    assert {"access_token", "token_type", "expires_in", "refresh_token", "id_token"} == set(body)
    claims = jwt.decode(body["id_token"], options={"verify_signature": False})
    assert claims["sub"] == dex_subject(USERS["bob"].uuid, "bitbucket-cloud") and "c_hash" in claims and "nonce" not in claims
    assert poll(idp, http, started["device_code"]).json() == body  # dex hands out the same answer until the code expires


def test_wrong_user_codes(devidp_factory: Callable[..., DevIdP], http: httpx.Client) -> None:
    idp = devidp_factory(auto_approve=False)
    wrong = http.post(f"{idp.issuer}/device/auth/verify_code", data={"user_code": "BCDF-GHJK"})
    assert wrong.status_code == 400 and "Invalid or Expired User Code" in wrong.text
    assert http.post(f"{idp.issuer}/device/auth/verify_code", data={"user_code": ""}).status_code == 400
    assert http.get(f"{idp.issuer}/device", params={"invalid": "true"}).status_code == 400
    with pytest.raises(ValueError, match="Invalid or Expired User Code"):
        idp.approve_device("BCDF-GHJK")


def test_approve_and_deny_device(devidp_factory: Callable[..., DevIdP], http: httpx.Client) -> None:
    idp = devidp_factory(auto_approve=False)
    approved, denied = start(idp, http), start(idp, http)
    idp.approve_device(approved["user_code"], user="carol")
    body = poll(idp, http, approved["device_code"]).json()
    assert jwt.decode(body["id_token"], options={"verify_signature": False})["email"] == "carol@example.com"
    idp.deny_device(denied["user_code"])
    assert poll(idp, http, denied["device_code"]).json() == {"error": "authorization_pending"}  # dex never says access_denied
    assert idp.count("/auth") == 0  # the in-process person is not counted as traffic
    quick = devidp_factory(auto_approve=False, skip_approval=True)
    quick.deny_device(start(quick, http)["user_code"])  # declined at Bitbucket: no approval screen to decline at


def test_auto_approve_at_issue(devidp: DevIdP, http: httpx.Client) -> None:
    started = start(devidp, http)
    assert poll(devidp, http, started["device_code"]).status_code == 200
    with pytest.raises(ValueError, match="auto_approve"):
        devidp.deny_device(started["user_code"])


def test_a_confidential_client_cannot_finish_like_in_dex(devidp_factory: Callable[..., DevIdP], http: httpx.Client) -> None:
    idp = devidp_factory(auto_approve=False)
    started = start(idp, http, client_id="bblogin-ci", client_secret="bblogin-ci-secret")
    with pytest.raises(ValueError, match="Unregistered redirect_uri"):  # /device/callback is not among its redirect URIs
        idp.approve_device(started["user_code"])
    assert poll(idp, http, started["device_code"]).json() == {"error": "authorization_pending"}


def test_device_pkce(devidp_factory: Callable[..., DevIdP], http: httpx.Client) -> None:
    idp = devidp_factory()
    verifier = "x" * 43
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    code = start(idp, http, code_challenge=challenge, code_challenge_method="S256")["device_code"]
    assert poll(idp, http, code).json() == {"error": "invalid_grant", "error_description": "Expecting parameter code_verifier in PKCE flow."}
    assert poll(idp, http, code, code_verifier="y" * 43).json()["error_description"] == "Invalid code_verifier."
    assert poll(idp, http, code, code_verifier=verifier).status_code == 200


def test_several_connectors_mean_a_chooser_in_the_browser(devidp_factory: Callable[..., DevIdP], http: httpx.Client) -> None:
    idp = devidp_factory(auto_approve=False, connectors=("bitbucket-cloud", "bitbucket-pipelines"))
    started = start(idp, http)
    handover = http.post(f"{idp.issuer}/device/auth/verify_code", data={"user_code": started["user_code"]})
    chooser = http.get(handover.url.join(handover.headers["Location"]))
    assert chooser.status_code == 200 and "Log in with Bitbucket Pipelines" in chooser.text and "Log in with Bitbucket Cloud" in chooser.text
    idp.approve_device(started["user_code"])  # the person picks Bitbucket Cloud
    assert poll(idp, http, started["device_code"]).status_code == 200
