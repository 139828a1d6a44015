"""The token endpoint: client authentication, strict parsing, and the error mapping (above all,
which refusals mean "the refresh token is dead")."""

from __future__ import annotations

import base64
import json
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from bblogin._errors import IdPResponseError, OAuthError, RefreshTokenDead
from bblogin._http import make_client
from bblogin._oidc import _grants
from bblogin._oidc._grants import ClientAuth

PUBLIC = ClientAuth("bblogin")
CONFIDENTIAL = ClientAuth("ci client", "s3cret:/+")
RELOGIN = "bblogin login --profile work"


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with make_client(timeout=5) as client:
        yield client


class Recorder:
    """Answers every request with ``reply`` and keeps the forms and Authorization headers."""

    def __init__(self, server: HTTPServer, path: str, reply: dict[str, Any], status: int = 200) -> None:
        self.forms: list[dict[str, str]] = []
        self.auth: list[str | None] = []
        self.url = server.url_for(path)

        def handle(request: Request) -> Response:
            self.forms.append(dict(urllib.parse.parse_qsl(request.get_data(as_text=True))))
            self.auth.append(request.headers.get("Authorization"))
            return Response(json.dumps(reply), status=status, content_type="application/json")

        server.expect_request(path, method="POST").respond_with_handler(handle)


TOKENS = {"access_token": "at-1", "token_type": "bearer", "expires_in": 3600, "refresh_token": "rt-2", "id_token": "h.p.s", "scope": "openid email"}


def test_code_exchange_as_a_public_client(httpserver: HTTPServer, http: httpx.Client) -> None:
    rec = Recorder(httpserver, "/token", TOKENS)
    before = int(time.time())
    tokens = _grants.exchange_code(http, rec.url, PUBLIC, code="c-1", redirect_uri="http://127.0.0.1:5/callback", code_verifier="v" * 64)
    assert rec.forms == [{"grant_type": "authorization_code", "code": "c-1", "redirect_uri": "http://127.0.0.1:5/callback", "code_verifier": "v" * 64, "client_id": "bblogin"}]
    assert rec.auth == [None]
    assert (tokens.access_token, tokens.refresh_token, tokens.id_token, tokens.scope) == ("at-1", "rt-2", "h.p.s", "openid email")
    assert before + 3600 <= (tokens.access_expires_at or 0) <= int(time.time()) + 3600
    assert "at-1" not in repr(tokens)


def test_confidential_client_uses_basic_with_form_encoded_parts(httpserver: HTTPServer, http: httpx.Client) -> None:
    rec = Recorder(httpserver, "/token", TOKENS)
    _grants.refresh(http, rec.url, CONFIDENTIAL, "rt-1", relogin_command=RELOGIN)
    assert rec.forms == [{"grant_type": "refresh_token", "refresh_token": "rt-1"}]
    user, _, password = base64.b64decode((rec.auth[0] or "")[6:]).decode().partition(":")
    assert (urllib.parse.unquote(user), urllib.parse.unquote(password)) == ("ci client", "s3cret:/+")
    assert ":" not in password  # the secret's own colon is encoded


def test_client_secret_post_when_that_is_all_the_idp_offers(httpserver: HTTPServer, http: httpx.Client) -> None:
    rec = Recorder(httpserver, "/token", TOKENS)
    client = ClientAuth.for_idp("c", "s", ("client_secret_post",))
    _grants.refresh(http, rec.url, client, "rt-1", relogin_command=RELOGIN, scope="openid")
    assert rec.forms[0]["client_secret"] == "s" and rec.forms[0]["scope"] == "openid" and rec.auth == [None]
    assert ClientAuth.for_idp("c", "s", ("client_secret_basic", "client_secret_post")).method == "client_secret_basic"
    assert "secret-value" not in repr(ClientAuth("c", "secret-value"))


@pytest.mark.parametrize(
    ("body", "expires_in"),
    [({"token_type": "Bearer", "expires_in": "120"}, 120), ({"token_type": "BEARER", "expires_in": 60.0}, 60), ({"token_type": "bearer"}, None)],
)
def test_lenient_where_the_spec_allows(body: dict[str, Any], expires_in: int | None) -> None:
    tokens = _grants.parse_token_response({"access_token": "a", **body}, received_at=1000)
    assert tokens.access_expires_at == (1000 + expires_in if expires_in is not None else None)
    assert tokens.refresh_token is None and tokens.id_token is None


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"token_type": "bearer"}, "no access_token"),
        ({"access_token": 5, "token_type": "bearer"}, "no access_token"),
        ({"access_token": "a"}, "token_type 'NoneType'"),
        ({"access_token": "a", "token_type": "mac"}, "token_type 'mac'"),
        ({"access_token": "a", "token_type": "N_A"}, "token_type 'N_A'"),
        ({"access_token": "a", "token_type": "bearer", "expires_in": "soon"}, "invalid expires_in"),
        ({"access_token": "a", "token_type": "bearer", "expires_in": -5}, "invalid expires_in"),
        ({"access_token": "a", "token_type": "bearer", "expires_in": True}, "invalid expires_in"),
        ({"access_token": "a", "token_type": "bearer", "id_token": {"x": 1}}, "id_token that is not a string"),
    ],
)
def test_strict_about_everything_else(body: dict[str, Any], problem: str) -> None:
    with pytest.raises(IdPResponseError, match=problem):
        _grants.parse_token_response(body, received_at=0)


@pytest.mark.parametrize(
    "answer",
    [
        {"error": "invalid_grant", "error_description": "Invalid refresh token."},
        {"error": "invalid_request", "error_description": "Refresh token is invalid or has already been claimed by another client."},
        {"error": "invalid_request", "error_description": "Refresh token expired."},
    ],
)
def test_dead_refresh_tokens(httpserver: HTTPServer, http: httpx.Client, answer: dict[str, str]) -> None:
    rec = Recorder(httpserver, "/token", answer, status=400)
    with pytest.raises(RefreshTokenDead) as info:
        _grants.refresh(http, rec.url, PUBLIC, "rt-1", relogin_command=RELOGIN)
    assert info.value.exit_code == 4 and RELOGIN in (info.value.hint or "")
    assert answer["error_description"] in info.value.message


@pytest.mark.parametrize(
    ("status", "answer", "error"),
    [
        (400, {"error": "invalid_request", "error_description": "Requested scopes did not contain authorized scopes."}, OAuthError),
        (401, {"error": "invalid_client", "error_description": "Invalid client credentials."}, OAuthError),
        (400, {"message": "no error code"}, IdPResponseError),
        (500, {"error": "invalid_request"}, IdPResponseError),  # dex: the connector's refresh failed (transient)
    ],
)
def test_other_refusals_are_not_a_dead_token(httpserver: HTTPServer, http: httpx.Client, status: int, answer: dict[str, str], error: type) -> None:
    rec = Recorder(httpserver, "/token", answer, status=status)
    with pytest.raises(error) as info:
        _grants.refresh(http, rec.url, PUBLIC, "rt-1", relogin_command=RELOGIN)
    assert not isinstance(info.value, RefreshTokenDead)
    if answer.get("error") == "invalid_client":
        assert "client_secret" in (info.value.hint or "")


def test_a_description_echoing_our_secrets_is_masked(httpserver: HTTPServer, http: httpx.Client) -> None:
    answer = {"error": "invalid_grant", "error_description": "token rt-SECRET-1 unknown for client with secret s3cret:/+"}
    rec = Recorder(httpserver, "/token", answer, status=400)
    with pytest.raises(RefreshTokenDead) as info:
        _grants.refresh(http, rec.url, CONFIDENTIAL, "rt-SECRET-1", relogin_command=RELOGIN)
    assert "rt-SECRET-1" not in info.value.render() and "s3cret" not in info.value.render()
    assert info.value.message.count("[redacted]") == 2


def test_an_unusable_error_code_is_not_echoed(httpserver: HTTPServer, http: httpx.Client) -> None:
    rec = Recorder(httpserver, "/token", {"error": "x" * 500}, status=400)
    with pytest.raises(IdPResponseError, match="without a usable OAuth error code"):
        _grants.exchange_code(http, rec.url, PUBLIC, code="c", redirect_uri="r", code_verifier="v")


def test_device_authorization(httpserver: HTTPServer, http: httpx.Client) -> None:
    answer = {
        "device_code": "dc-1",
        "user_code": "BCDF-GHJK",
        "verification_uri": "https://idp.example/device",
        "verification_uri_complete": "https://idp.example/device?user_code=BCDF-GHJK",
        "expires_in": 300,
        "interval": 5,
    }
    rec = Recorder(httpserver, "/device/code", answer)
    auth = _grants.device_authorize(http, rec.url, ClientAuth("c", "s"), scope="openid email")
    assert (auth.user_code, auth.expires_in, auth.interval, auth.verification_uri_complete) == ("BCDF-GHJK", 300, 5, answer["verification_uri_complete"])
    assert rec.forms == [{"scope": "openid email", "client_id": "c", "client_secret": "s"}]  # dex reads only the form
    assert "dc-1" not in repr(auth)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"verification_uri": "javascript:alert(1)"}, "unusable verification_uri"),
        ({"verification_uri_complete": "http://idp.example/device"}, "unusable verification_uri_complete"),
        ({"verification_uri": None}, "lacks verification_uri"),
        ({"device_code": None}, "lacks device_code"),
        ({"expires_in": "300"}, "no valid expires_in"),
        ({"interval": -1}, "invalid interval"),
    ],
)
def test_device_authorization_is_validated(httpserver: HTTPServer, http: httpx.Client, change: dict[str, Any], problem: str) -> None:
    answer = {"device_code": "d", "user_code": "u", "verification_uri": "https://idp.example/device", "expires_in": 300, **change}
    rec = Recorder(httpserver, "/device/code", {k: v for k, v in answer.items() if v is not None})
    with pytest.raises(IdPResponseError, match=problem):
        _grants.device_authorize(http, rec.url, PUBLIC, scope="openid")


def test_legacy_verification_url_and_default_interval(httpserver: HTTPServer, http: httpx.Client) -> None:
    rec = Recorder(httpserver, "/device/code", {"device_code": "d", "user_code": "u", "verification_url": "https://idp.example/device", "expires_in": 60})
    auth = _grants.device_authorize(http, rec.url, PUBLIC, scope="openid")
    assert (auth.verification_uri, auth.interval, auth.verification_uri_complete) == ("https://idp.example/device", 5, None)


def test_device_poll_sends_the_device_grant(httpserver: HTTPServer, http: httpx.Client) -> None:
    rec = Recorder(httpserver, "/token", {"error": "authorization_pending"}, status=400)
    with pytest.raises(OAuthError) as info:
        _grants.poll_device_token(http, rec.url, PUBLIC, "dc-1")
    assert info.value.error == "authorization_pending"
    assert rec.forms == [{"grant_type": _grants.DEVICE_CODE_GRANT, "device_code": "dc-1", "client_id": "bblogin"}]


def test_token_exchange_with_dex_connector_id(httpserver: HTTPServer, http: httpx.Client) -> None:
    answer = {"access_token": "dex-id-token", "issued_token_type": _grants.ID_TOKEN_TYPE, "token_type": "N_A", "expires_in": 600}
    rec = Recorder(httpserver, "/token", answer)
    exchanged = _grants.token_exchange(
        http, rec.url, ClientAuth("c", "s"), subject_token="pipelines-jwt", requested_token_type=_grants.ID_TOKEN_TYPE, connector_id="pipelines", scope="openid"
    )
    assert rec.forms == [
        {
            "grant_type": _grants.TOKEN_EXCHANGE_GRANT,
            "subject_token": "pipelines-jwt",
            "subject_token_type": _grants.ID_TOKEN_TYPE,
            "requested_token_type": _grants.ID_TOKEN_TYPE,
            "connector_id": "pipelines",
            "scope": "openid",
        }
    ]
    assert exchanged.token == "dex-id-token" and exchanged.issued_token_type == _grants.ID_TOKEN_TYPE
    assert "dex-id-token" not in repr(exchanged)


def test_token_exchange_refusals(httpserver: HTTPServer, http: httpx.Client) -> None:
    rec = Recorder(httpserver, "/token", {"access_token": "t", "issued_token_type": _grants.ACCESS_TOKEN_TYPE, "token_type": "bearer"})
    with pytest.raises(IdPResponseError, match="not the requested"):
        _grants.token_exchange(http, rec.url, PUBLIC, subject_token="s", requested_token_type=_grants.ID_TOKEN_TYPE)
    httpserver.clear()
    rec = Recorder(httpserver, "/token", {"error": "access_denied"}, status=401)
    with pytest.raises(OAuthError, match="access_denied"):
        _grants.token_exchange(http, rec.url, PUBLIC, subject_token="s")


def test_revocation(httpserver: HTTPServer, http: httpx.Client) -> None:
    httpserver.expect_ordered_request("/revoke").respond_with_data("", status=503)
    httpserver.expect_ordered_request("/revoke").respond_with_data("", status=200)
    httpserver.expect_ordered_request("/revoke").respond_with_json({"error": "unsupported_token_type"}, status=400)
    httpserver.expect_ordered_request("/revoke").respond_with_data("<html>", status=403, content_type="text/html")
    url = httpserver.url_for("/revoke")
    _grants.revoke(http, url, PUBLIC, "rt-1", token_type_hint="refresh_token")  # 503 retried, then 200
    with pytest.raises(OAuthError, match="unsupported_token_type"):
        _grants.revoke(http, url, PUBLIC, "at-1", token_type_hint="access_token")
    with pytest.raises(IdPResponseError, match="revoking the access token: .*HTTP 403"):
        _grants.revoke(http, url, PUBLIC, "at-1", token_type_hint="access_token")
    request = httpserver.log[1][0]
    assert dict(urllib.parse.parse_qsl(request.get_data(as_text=True))) == {"token": "rt-1", "token_type_hint": "refresh_token", "client_id": "bblogin"}


def test_an_error_inside_a_200_is_still_an_error(httpserver: HTTPServer, http: httpx.Client) -> None:
    rec = Recorder(httpserver, "/token", {"error": "invalid_grant", "error_description": "Refresh token expired."})
    with pytest.raises(RefreshTokenDead, match="invalid_grant"):
        _grants.refresh(http, rec.url, PUBLIC, "rt-1", relogin_command=RELOGIN)


def test_a_refresh_answer_without_a_refresh_token_says_so(httpserver: HTTPServer, http: httpx.Client) -> None:
    rec = Recorder(httpserver, "/token", {"access_token": "at-2", "token_type": "bearer", "expires_in": "60"})
    tokens = _grants.refresh(http, rec.url, CONFIDENTIAL, "rt-1", relogin_command=RELOGIN)
    assert tokens.refresh_token is None and tokens.access_token == "at-2"  # the caller keeps rt-1; no copy of it comes back


def test_a_token_answer_that_is_not_json_names_status_and_type(httpserver: HTTPServer, http: httpx.Client) -> None:
    httpserver.expect_request("/token", method="POST").respond_with_data("<html>sign in</html>", status=200, content_type="text/html")
    with pytest.raises(IdPResponseError, match="polling the device login: .*HTTP 200 with text/html that is not valid JSON"):
        _grants.poll_device_token(http, httpserver.url_for("/token"), PUBLIC, "dc-1")
    httpserver.clear()
    httpserver.expect_request("/token", method="POST").respond_with_data("<html>", status=400, content_type="text/html")
    with pytest.raises(IdPResponseError, match="HTTP 400 with text/html"):
        _grants.exchange_code(http, httpserver.url_for("/token"), PUBLIC, code="c", redirect_uri="r", code_verifier="v")


def test_authorization_url_keeps_the_endpoints_query_and_pkce_s256_and_its_own_parameters() -> None:
    extra = {"prompt": "login", "state": "evil", "client_id": "evil", "redirect_uri": "https://evil.example/", "code_challenge_method": "plain", "nonce": "evil"}
    url = _grants.authorization_url(
        "https://idp.example/auth?tenant=a", "bblogin", redirect_uri="http://127.0.0.1:5/cb", state="st", nonce="n", code_challenge="ch", scope="openid", extra=extra
    )
    assert url.startswith("https://idp.example/auth?")
    assert urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query).count(("state", "st")) == 1
    assert dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query)) == {
        "tenant": "a",
        "prompt": "login",
        "response_type": "code",
        "client_id": "bblogin",
        "redirect_uri": "http://127.0.0.1:5/cb",
        "scope": "openid",
        "state": "st",
        "nonce": "n",
        "code_challenge": "ch",
        "code_challenge_method": "S256",
    }


def test_post_form_authenticates_as_the_client_says(httpserver: HTTPServer, http: httpx.Client) -> None:
    rec = Recorder(httpserver, "/token", TOKENS)
    body = _grants.post_form(http, rec.url, CONFIDENTIAL, {"grant_type": "refresh_token", "refresh_token": "rt-1"}, "refreshing")
    assert body["access_token"] == "at-1" and rec.forms == [{"grant_type": "refresh_token", "refresh_token": "rt-1"}] and (rec.auth[0] or "").startswith("Basic ")
    _grants.post_form(http, rec.url, ClientAuth("c", "s", "client_secret_post"), {"grant_type": "refresh_token", "refresh_token": "rt-1"}, "refreshing")
    assert rec.forms[1] == {"grant_type": "refresh_token", "refresh_token": "rt-1", "client_id": "c", "client_secret": "s"} and rec.auth[1] is None


def test_authorization_url_takes_any_extra_parameter_name() -> None:
    """A profile's extra_auth_params are the IdP's vocabulary: a name that happens to be one of
    authlib's keyword arguments ("url", "self") is sent like any other, not a TypeError; the PKCE
    verifier never travels in the front channel."""
    extra = {"url": "u", "self": "s", "audience": "api", "code_verifier": "leak"}
    url = _grants.authorization_url("https://idp.example/auth", "bblogin", redirect_uri="http://127.0.0.1:5/cb", state="st", code_challenge="ch", scope="openid", extra=extra)
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    assert (query["url"], query["self"], query["audience"]) == ("u", "s", "api")
    assert "code_verifier" not in query and query["code_challenge"] == "ch" and query["code_challenge_method"] == "S256"


@pytest.mark.parametrize("change", [{"expires_in": "soon"}, {"token_type": "mac"}, {"access_token": None}, {"id_token": 5}], ids=["expires_in", "token_type", "access_token", "id_token"])
def test_a_refresh_answer_that_fails_to_parse_still_hands_over_its_refresh_token(httpserver: HTTPServer, http: httpx.Client, change: dict[str, Any]) -> None:
    """The IdP spent the old refresh token when it answered 200: the new one is kept (#15.1, #13)
    even though the answer is refused. An error inside a 200 carries none to keep."""
    rec = Recorder(httpserver, "/token", {k: v for k, v in {**TOKENS, **change}.items() if v is not None})
    kept: list[str] = []
    with pytest.raises(IdPResponseError):
        _grants.refresh(http, rec.url, PUBLIC, "rt-1", relogin_command=RELOGIN, on_rotated=kept.append)
    assert kept == ["rt-2"]
