"""The dev IdP answers like dex v2.45 with the bitbucket-cloud connector, over real HTTP:
discovery and keys, /auth and the connector login (dex's HTML errors and its redirected
errors), the Bitbucket double, the approval screen, the code redirect, the ID token's claims."""

from __future__ import annotations

import json
import pathlib
import time
from collections.abc import Callable, Iterator

import httpx
import jwt
import pytest

from bblogin.devidp import USERS, Client, DevIdP, dex_subject
from tests.fixtures.devidp import redirect_params, sign_in

REDIRECT = "http://127.0.0.1:8400/callback"


@pytest.fixture(scope="module")
def idp() -> Iterator[DevIdP]:
    """One dex double for the tests that only read or make fresh logins (pages shown)."""
    with DevIdP(clients=(Client("peer", "peer-secret", ("http://127.0.0.1:9/cb",), "Peer", trusted_peers=("bblogin",)),)) as server:
        yield server


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(follow_redirects=False, timeout=10) as client:
        yield client


def auth_url(idp: DevIdP, **overrides: str | None) -> str:
    params: dict[str, str | None] = {
        "client_id": "bblogin", "redirect_uri": REDIRECT, "response_type": "code",
        "scope": "openid email groups profile offline_access", "state": "st", "nonce": "nn", "connector_id": "bitbucket-cloud",
    }
    params.update(overrides)
    return str(httpx.URL(f"{idp.issuer}/auth", params={k: v for k, v in params.items() if v is not None}))


def tokens_for(idp: DevIdP, http: httpx.Client, **overrides: str | None) -> dict[str, str]:
    code = redirect_params(sign_in(http, auth_url(idp, **overrides)))["code"]
    answer = http.post(f"{idp.issuer}/token", data={"client_id": "bblogin", "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def verified(idp: DevIdP, token: str, audience: str = "bblogin") -> dict[str, object]:
    key = jwt.PyJWKClient(f"{idp.issuer}/keys").get_signing_key_from_jwt(token)
    return dict(jwt.decode(token, key.key, algorithms=["RS256"], audience=audience, issuer=idp.issuer))


# -- discovery and keys ------------------------------------------------------------------------
def test_discovery_is_dex_s_document(idp: DevIdP, http: httpx.Client) -> None:
    answer = http.get(f"{idp.issuer}/.well-known/openid-configuration")
    assert answer.status_code == 200 and "Cache-Control" not in answer.headers
    assert answer.text.startswith('{\n  "issuer": ')  # json.MarshalIndent's layout
    doc = answer.json()
    assert list(doc)[:7] == ["issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint", "device_authorization_endpoint", "introspection_endpoint"]
    assert doc["issuer"] == idp.issuer == f"http://127.0.0.1:{idp.port}/dex"
    assert doc["device_authorization_endpoint"] == f"{idp.issuer}/device/code" and doc["introspection_endpoint"] == f"{idp.issuer}/token/introspect"
    assert doc["grant_types_supported"] == ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:token-exchange"]
    assert doc["response_types_supported"] == ["code"] and doc["subject_types_supported"] == ["public"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"] and doc["code_challenge_methods_supported"] == ["S256", "plain"]
    assert doc["scopes_supported"] == ["openid", "email", "groups", "profile", "offline_access"]
    assert doc["token_endpoint_auth_methods_supported"] == ["client_secret_basic", "client_secret_post"]
    assert "revocation_endpoint" not in doc and "end_session_endpoint" not in doc


def test_keys_and_rotation(devidp_factory: Callable[..., DevIdP], http: httpx.Client) -> None:
    idp = devidp_factory(id_token_ttl=1)
    answer = http.get(f"{idp.issuer}/keys")
    assert answer.headers["Cache-Control"] == "max-age=600, must-revalidate"
    [key] = answer.json()["keys"]
    assert list(key) == ["use", "kty", "kid", "alg", "n", "e"] and key["alg"] == "RS256" and key["e"] == "AQAB"
    assert len(key["kid"]) == 40 and int(key["kid"], 16) >= 0
    assert len(jwt.PyJWK(key).key.public_numbers().n.to_bytes(256, "big")) == 256  # RSA-2048
    idp.rotate_keys()
    idp.rotate_keys()
    kids = [k["kid"] for k in http.get(f"{idp.issuer}/keys").json()["keys"]]
    assert len(kids) == 3 and kids[1] == key["kid"]  # the new key first, then the retired ones, oldest first
    time.sleep(1.1)  # retired keys go once the ID tokens they signed have expired
    assert [k["kid"] for k in http.get(f"{idp.issuer}/keys").json()["keys"]] == kids[:1]


def test_signing_keys_survive_a_restart_with_a_key_file(devidp_factory: Callable[..., DevIdP], http: httpx.Client, tmp_path: pathlib.Path) -> None:
    """As dex with persistent storage: a restarted dev IdP still verifies the tokens it issued
    (docs/getting-started.md restarts `bblogin dev-idp`; before, its tokens then got 401s while
    `bblogin status` said they were valid). Without a key file, as dex's memory storage, it does not."""
    key_file = tmp_path / "dev-idp" / "signing-keys.json"
    first = devidp_factory(key_file=str(key_file))
    token = tokens_for(first, http)["id_token"]
    port = first.port
    first.rotate_keys()  # a retired key is kept too, until the tokens it signed expire
    first.stop()
    assert key_file.stat().st_mode & 0o777 == 0o600
    again = devidp_factory(port=port, key_file=str(key_file))
    assert verified(again, token)["email"] == "alice@example.com"
    again.stop()
    in_memory = devidp_factory(port=port)
    with pytest.raises(jwt.PyJWKClientError):
        verified(in_memory, token)


def test_an_unusable_key_file_is_replaced(devidp_factory: Callable[..., DevIdP], http: httpx.Client, tmp_path: pathlib.Path) -> None:
    key_file = tmp_path / "signing-keys.json"
    key_file.write_text("{not json")
    idp = devidp_factory(key_file=str(key_file))
    verified(idp, tokens_for(idp, http)["id_token"])
    assert json.loads(key_file.read_text())["current"]["kid"] == http.get(f"{idp.issuer}/keys").json()["keys"][0]["kid"]


def test_landing_page_and_unknown_paths(idp: DevIdP, http: httpx.Client) -> None:
    landing = http.get(idp.issuer)
    assert landing.status_code == 200 and "Discovery" in landing.text and "not a real identity provider" in landing.text
    missing = http.get(f"{idp.issuer}/nope")
    assert (missing.status_code, missing.text, missing.headers["Content-Type"]) == (404, "404 page not found\n", "text/plain; charset=utf-8")
    assert http.get(f"{idp.issuer}/healthz").text == "Health check passed"


def test_a_stopped_idp_is_gone_for_pooled_connections_too(devidp_factory: Callable[..., DevIdP], http: httpx.Client) -> None:
    idp = devidp_factory()
    assert http.get(f"{idp.issuer}/keys").status_code == 200  # the connection stays in the pool
    idp.stop()
    with pytest.raises(httpx.TransportError):
        http.get(f"{idp.issuer}/keys")


# -- /auth: the connector ------------------------------------------------------------------------
def test_auth_redirects_to_the_connector_without_connector_id(idp: DevIdP, http: httpx.Client) -> None:
    answer = http.get(auth_url(idp))
    assert answer.status_code == 302
    location = httpx.URL(answer.headers["Location"])
    assert location.path == "/dex/auth/bitbucket-cloud" and "connector_id" not in location.params
    assert list(location.params) == sorted(location.params)  # Go's url.Values.Encode
    assert http.get(auth_url(idp, connector_id=None)).headers["Location"].startswith("/dex/auth/bitbucket-cloud?")  # the only connector


def test_unknown_connector_and_no_check_before_the_connector(idp: DevIdP, http: httpx.Client) -> None:
    unknown = http.get(auth_url(idp, connector_id="github"))
    assert unknown.status_code == 400 and "Connector ID does not match a valid Connector" in unknown.text
    assert "text/html" in unknown.headers["Content-Type"] and "development double of dex" in unknown.text
    assert http.get(auth_url(idp, client_id="nobody")).status_code == 302  # dex checks the client at /auth/{connector}


def test_several_connectors_show_a_chooser(devidp_factory: Callable[..., DevIdP], http: httpx.Client) -> None:
    idp = devidp_factory(connectors=("bitbucket-cloud", "bitbucket-eu"), auto_approve=False)
    chooser = http.get(auth_url(idp, connector_id=None))
    assert chooser.status_code == 200
    assert chooser.text.index("Log in with Bitbucket Cloud<") < chooser.text.index("Log in with Bitbucket Cloud (bitbucket-eu)")
    assert "/dex/auth/bitbucket-eu?client_id=bblogin" in chooser.text
    eu = tokens_for(idp, http, connector_id="bitbucket-eu")
    assert verified(idp, eu["id_token"])["sub"] == dex_subject(USERS["alice"].uuid, "bitbucket-eu")


# -- /auth/{connector}: the request --------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "status", "message"),
    [
        ({"client_id": "nobody"}, 404, "Invalid client_id."),
        ({"redirect_uri": "https://localhost/callback"}, 400, "Unregistered redirect_uri."),
        ({"redirect_uri": "http://evil.example/callback"}, 400, "Unregistered redirect_uri."),
        ({"redirect_uri": "http://localhost.evil.example:80/"}, 400, "Unregistered redirect_uri."),
        ({"redirect_uri": "http://[::1]/callback"}, 400, "Unregistered redirect_uri."),  # Go: no port, no loopback match
        ({"redirect_uri": "http://127.0.0.1:8400/%zz"}, 400, "No redirect_uri provided."),  # dex unescapes it once more
        ({"client_id": "bblogin-ci", "redirect_uri": "http://127.0.0.1:5556/callback"}, 400, "Unregistered redirect_uri."),  # exact match, no port wildcard
    ],
)
def test_request_errors_shown_as_html(idp: DevIdP, http: httpx.Client, overrides: dict[str, str], status: int, message: str) -> None:
    page = sign_in(http, auth_url(idp, **overrides))
    assert page.status_code == status and message in page.text and page.headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("overrides", "error", "description"),
    [
        ({"scope": "email"}, "invalid_scope", 'Missing required scope(s) ["openid"].'),
        ({"scope": "openid bogus email x"}, "invalid_scope", 'Unrecognized scope(s) ["bogus" "x"]'),
        ({"scope": "openid audience:server:client_id:bblogin-ci"}, "invalid_scope", """Client can't request scope(s) ["audience:server:client_id:bblogin-ci"]"""),
        ({"request": "eyJ"}, "request_not_supported", "Server does not support request parameter."),
        ({"code_challenge": "c", "code_challenge_method": "S512"}, "invalid_request", 'Unsupported PKCE challenge method ("S512").'),
        ({"code_challenge_method": "S512"}, "invalid_request", 'Unsupported PKCE challenge method ("S512").'),
        ({"response_type": "token"}, "unsupported_response_type", 'Unsupported response type "token"'),
        ({"response_type": "code foo"}, "invalid_request", 'Invalid response type "foo"'),
        ({"response_type": None}, "invalid_request", "No response_type provided"),
    ],
)
def test_request_errors_redirected_to_the_client(idp: DevIdP, http: httpx.Client, overrides: dict[str, str | None], error: str, description: str) -> None:
    answer = sign_in(http, auth_url(idp, **overrides))
    assert answer.status_code == 303 and answer.headers["Location"].startswith(REDIRECT + "?error=")  # sorted: error, error_description, state
    assert redirect_params(answer) == {"error": error, "error_description": description, "state": "st"}


@pytest.mark.parametrize(
    "redirect_uri",
    ["http://localhost/cb", "http://localhost:1234/cb", "http://127.0.0.1:50000/callback", "http://127.0.0.1", "http://127.9.8.7:1/x", "http://[::1]:8080/", "urn:ietf:wg:oauth:2.0:oob"],
)
def test_public_client_redirect_uris(idp: DevIdP, http: httpx.Client, redirect_uri: str) -> None:
    answer = sign_in(http, auth_url(idp, redirect_uri=redirect_uri))
    if redirect_uri.startswith("urn:"):  # dex shows the code instead of redirecting
        assert answer.status_code == 200 and "Please copy this code" in answer.text
    else:
        assert answer.status_code == 303 and answer.headers["Location"].startswith(redirect_uri + "?code=")


def test_the_code_redirect(idp: DevIdP, http: httpx.Client) -> None:
    answer = sign_in(http, auth_url(idp, redirect_uri="http://127.0.0.1:8400/callback?keep=1&z=2"))
    assert answer.status_code == 303
    assert answer.headers["Location"].startswith("http://127.0.0.1:8400/callback?code=")
    params = redirect_params(answer)
    assert list(params) == ["code", "keep", "state", "z"] and len(params["code"]) == 25 and params["state"] == "st"


def test_cross_client_audience(idp: DevIdP, http: httpx.Client) -> None:
    claims = verified(idp, tokens_for(idp, http, scope="openid audience:server:client_id:peer")["id_token"], audience="peer")
    assert claims["aud"] == ["peer", "bblogin"] and claims["azp"] == "bblogin"


# -- Bitbucket and the approval screen -------------------------------------------------------------
def test_bitbucket_login_and_approval_pages(idp: DevIdP, http: httpx.Client) -> None:
    to_connector = http.get(auth_url(idp))
    bitbucket = http.get(to_connector.url.join(to_connector.headers["Location"]))
    assert bitbucket.status_code == 302 and "/bitbucket/site/oauth2/authorize?client_id=" in bitbucket.headers["Location"]
    assert "scope=account+email+team" in bitbucket.headers["Location"]  # groups asked: Bitbucket's team scope
    page = http.get(bitbucket.headers["Location"])
    assert page.status_code == 200 and "Alice Example" in page.text and "fake Bitbucket Cloud" in page.text and "not a real identity provider" in page.text
    to_dex = http.post(page.url, data={"user": "bob"})
    assert to_dex.status_code == 302 and to_dex.headers["Location"].startswith(f"{idp.issuer}/callback?code=")
    approval = http.get(to_dex.headers["Location"])
    assert approval.status_code == 303 and approval.headers["Location"].startswith("/dex/approval?req=")
    screen = http.get(approval.url.join(approval.headers["Location"]))
    assert screen.status_code == 200 and "Grant Access" in screen.text and "Logged in as bob" in screen.text
    assert "View your email address" in screen.text and "Have offline access" in screen.text
    tampered = http.post(str(screen.url).replace("hmac=", "hmac=AA"), data={"approval": "approve"})
    assert tampered.status_code == 401 and "Unauthorized request" in tampered.text
    done = http.post(screen.url, data={"approval": "approve"})
    assert done.status_code == 303 and done.headers["Location"].startswith(REDIRECT + "?code=")
    again = http.post(screen.url, data={"approval": "approve"})
    assert again.status_code == 500 and "Database error." in again.text  # the request is gone


def test_denials_are_dex_error_pages_never_a_redirect(idp: DevIdP, http: httpx.Client) -> None:
    denied = sign_in(http, auth_url(idp), approve=False)
    assert denied.status_code == 500 and "Approval rejected." in denied.text
    cancelled = sign_in(http, auth_url(idp), bitbucket_cancel=True)
    assert cancelled.status_code == 500 and "Authentication failed." in cancelled.text


def test_accounts_bitbucket_refuses(devidp_factory: Callable[..., DevIdP], http: httpx.Client) -> None:
    idp = devidp_factory(auto_approve=False, skip_approval=True, teams=("platform-team",))
    assert sign_in(http, auth_url(idp), user="alice").status_code == 303
    for user in ("bob", "dave"):  # not in the required team; no confirmed email
        page = sign_in(http, auth_url(idp), user=user)
        assert page.status_code == 500 and "Authentication failed." in page.text


def test_skip_approval_unless_forced(devidp_factory: Callable[..., DevIdP], http: httpx.Client) -> None:
    idp = devidp_factory(auto_approve=False, skip_approval=True)
    assert sign_in(http, auth_url(idp), approve=False).status_code == 303  # no screen to decline
    forced = sign_in(http, auth_url(idp, approval_prompt="force"), approve=False)
    assert forced.status_code == 500 and "Approval rejected." in forced.text


def test_auto_approve_logs_in_the_default_user(devidp: DevIdP, http: httpx.Client) -> None:
    devidp.default_user = "bob"
    answer = sign_in(http, auth_url(devidp))
    assert answer.status_code == 303
    claims = verified(devidp, tokens_for(devidp, http)["id_token"])
    assert claims["email"] == "bob@example.com"


# -- what the ID token says -----------------------------------------------------------------------
def test_id_token_claims_like_dex(idp: DevIdP, http: httpx.Client) -> None:
    tokens = tokens_for(idp, http)
    header = jwt.get_unverified_header(tokens["id_token"])
    assert header == {"alg": "RS256", "kid": header["kid"]} and len(header["kid"]) == 40
    claims = verified(idp, tokens["id_token"])
    alice = USERS["alice"]
    assert list(claims) == ["iss", "sub", "aud", "exp", "iat", "nonce", "at_hash", "c_hash", "email", "email_verified", "groups", "name"]
    assert claims["sub"] == dex_subject(alice.uuid, "bitbucket-cloud") and claims["aud"] == "bblogin" and claims["nonce"] == "nn"
    assert (claims["email"], claims["email_verified"], claims["groups"], claims["name"]) == ("alice@example.com", True, ["acme", "platform-team"], "alice")
    assert "preferred_username" not in claims  # the bitbucket-cloud connector sets none
    assert 86390 <= int(claims["exp"]) - int(claims["iat"]) <= 86400 and 86390 <= int(tokens["expires_in"]) <= 86400
    access = verified(idp, tokens["access_token"])
    assert access["sub"] == claims["sub"] and "c_hash" not in access and access["at_hash"] != claims["at_hash"]


def test_scopes_decide_the_claims(idp: DevIdP, http: httpx.Client) -> None:
    bare = verified(idp, tokens_for(idp, http, scope="openid", nonce=None)["id_token"])
    assert set(bare) == {"iss", "sub", "aud", "exp", "iat", "at_hash", "c_hash"}
    federated = verified(idp, tokens_for(idp, http, scope="openid federated:id groups")["id_token"])
    assert federated["federated_claims"] == {"connector_id": "bitbucket-cloud", "user_id": USERS["alice"].uuid}
    carol_code = redirect_params(sign_in(http, auth_url(idp, scope="openid groups"), user="carol"))["code"]
    carol = http.post(f"{idp.issuer}/token", data={"client_id": "bblogin", "grant_type": "authorization_code", "code": carol_code, "redirect_uri": REDIRECT}).json()
    assert "groups" not in verified(idp, carol["id_token"])  # no workspaces: no groups claim at all


def test_dex_sub_encoding() -> None:
    # protobuf {1: user_id, 2: connector_id}, base64url without padding, as dex's internal.Marshal writes it
    assert dex_subject("user", "conn") == "CgR1c2VyEgRjb25u"
    assert dex_subject("{0b6e2f6c-6d3b-4c58-9b1a-7a1f0e2a4c11}", "bitbucket-cloud") == "CiZ7MGI2ZTJmNmMtNmQzYi00YzU4LTliMWEtN2ExZjBlMmE0YzExfRIPYml0YnVja2V0LWNsb3Vk"
    assert dex_subject("x" * 200, "c").startswith("CsgB")  # a two-byte length varint


def test_claims_survive_a_json_round_trip_with_html_characters(devidp_factory: Callable[..., DevIdP], http: httpx.Client) -> None:
    idp = devidp_factory()
    idp.bitbucket.update_user("alice", workspaces=("a<b>&c",))
    payload = tokens_for(idp, http, scope="openid groups")["id_token"].split(".")[1]
    raw = jwt.utils.base64url_decode(payload).decode()
    assert "\\u003cb\\u003e\\u0026c" in raw and json.loads(raw)["groups"] == ["a<b>&c"]  # Go's json escapes <, >, &
