"""Discovery and JWKS: validation, Cache-Control honoured on disk (counted in requests), stale
discovery during outages, key rotation with one rate-limited refetch."""

from __future__ import annotations

import email.utils
import json
import os
import stat
from collections.abc import Iterator

import httpx
import pytest

from bblogin import _paths
from bblogin._errors import IdPResponseError, IdPUnreachable, TokenVerificationError
from bblogin._http import make_client
from bblogin._oidc import _cache
from bblogin._oidc._discovery import DISCOVERY_TTL, discover
from bblogin._oidc._jwks import JWKSCache
from tests.fixtures.oidc import MiniIdP


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with make_client(timeout=5) as client:
        yield client


def cache_files() -> list[str]:
    directory = os.path.join(_paths.cache_dir(), "oidc")
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


# -- discovery --------------------------------------------------------------------------------


def test_dex_like_document(mini_idp: MiniIdP, http: httpx.Client) -> None:
    mini_idp.serve_discovery()
    meta = discover(mini_idp.issuer, http=http)
    assert meta.issuer == mini_idp.issuer
    assert meta.token_endpoint == mini_idp.url("/token") and meta.jwks_uri == mini_idp.url("/keys")
    assert meta.device_authorization_endpoint == mini_idp.url("/device/code")
    assert meta.revocation_endpoint is None and meta.end_session_endpoint is None
    assert meta.code_challenge_methods_supported == ("S256", "plain")
    assert meta.id_token_signing_alg_values_supported == ("RS256", "ES256")
    assert "offline_access" in meta.scopes_supported


def test_spec_defaults_when_the_document_is_silent(mini_idp: MiniIdP, http: httpx.Client) -> None:
    doc = mini_idp.document(grant_types_supported=None, id_token_signing_alg_values_supported=None, token_endpoint_auth_methods_supported=None, code_challenge_methods_supported=None)
    mini_idp.serve_discovery(doc)
    meta = discover(mini_idp.issuer, http=http)
    assert meta.grant_types_supported == ("authorization_code", "implicit")
    assert meta.id_token_signing_alg_values_supported == ("RS256",)
    assert meta.token_endpoint_auth_methods_supported == ("client_secret_basic",)
    assert meta.code_challenge_methods_supported == ()


@pytest.mark.parametrize("announced", ["https://idp.example/dex", "{issuer}/", None])
def test_issuer_mismatch_is_refused(mini_idp: MiniIdP, http: httpx.Client, announced: str | None) -> None:
    mini_idp.serve_discovery(mini_idp.document(issuer=announced.format(issuer=mini_idp.issuer) if announced else None))
    with pytest.raises(TokenVerificationError, match="names the issuer") as info:
        discover(mini_idp.issuer, http=http)
    assert "issuer" in (info.value.hint or "")


def test_plain_http_endpoint_off_loopback_is_refused(mini_idp: MiniIdP, http: httpx.Client) -> None:
    mini_idp.serve_discovery(mini_idp.document(token_endpoint="http://idp.example/token"))
    with pytest.raises(IdPResponseError, match="unusable \\(non-https\\) token_endpoint"):
        discover(mini_idp.issuer, http=http)


def test_missing_jwks_uri(mini_idp: MiniIdP, http: httpx.Client) -> None:
    mini_idp.serve_discovery(mini_idp.document(jwks_uri=None))
    with pytest.raises(IdPResponseError, match="lacks jwks_uri"):
        discover(mini_idp.issuer, http=http)


def test_404_points_at_the_issuer_url(mini_idp: MiniIdP, http: httpx.Client) -> None:
    mini_idp.server.expect_request("/idp/wrong/.well-known/openid-configuration").respond_with_data("not found", status=404)
    with pytest.raises(IdPResponseError, match="answered HTTP 404 for .*/idp/wrong/.well-known/openid-configuration") as info:
        discover(mini_idp.url("/wrong"), http=http)
    assert "issuer" in (info.value.hint or "")


# -- the disk cache ---------------------------------------------------------------------------


def test_without_cache_control_discovery_is_reused_for_an_hour(mini_idp: MiniIdP, http: httpx.Client) -> None:
    mini_idp.serve_discovery()
    discover(mini_idp.issuer, http=http)
    discover(mini_idp.issuer, http=http)
    assert mini_idp.requests_to("/.well-known/openid-configuration") == 1
    [name] = cache_files()
    path = os.path.join(_paths.cache_dir(), "oidc", name)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path) as fh:
        entry = json.load(fh)
    assert DISCOVERY_TTL - 5 <= entry["expires_at"] - entry["fetched_at"] <= DISCOVERY_TTL


@pytest.mark.parametrize(
    ("cache_control", "age", "requests"),
    [("max-age=300", None, 1), ("max-age=300", "300", 2), ("no-cache", None, 2), ("max-age=0", None, 2), ("no-store", None, 2)],
)
def test_cache_control_is_honoured(mini_idp: MiniIdP, http: httpx.Client, cache_control: str, age: str | None, requests: int) -> None:
    headers = {"Cache-Control": cache_control, **({"Age": age} if age else {})}
    mini_idp.serve_discovery(headers=headers)
    discover(mini_idp.issuer, http=http)
    discover(mini_idp.issuer, http=http)
    assert mini_idp.requests_to("/.well-known/openid-configuration") == requests
    if cache_control == "no-store":
        assert cache_files() == []


def test_expires_header_when_there_is_no_max_age() -> None:
    now = 1_000_000.0
    headers = httpx.Headers({"Expires": email.utils.formatdate(now + 20, usegmt=True)})
    assert _cache.freshness(headers, 3600, now) == _cache.Freshness(20, True)
    assert _cache.freshness(httpx.Headers({"Expires": "0"}), 3600, now).ttl == 0
    assert _cache.freshness(httpx.Headers({"Cache-Control": "max-age=600, must-revalidate"}), 3600, now) == _cache.Freshness(600, False)


def test_no_store_deletes_an_older_copy(mini_idp: MiniIdP, http: httpx.Client) -> None:
    mini_idp.serve_discovery(headers={"Cache-Control": "max-age=0"})
    discover(mini_idp.issuer, http=http)
    assert len(cache_files()) == 1
    mini_idp.server.clear()
    mini_idp.serve_discovery(headers={"Cache-Control": "no-store"})
    discover(mini_idp.issuer, http=http)
    assert cache_files() == []


def test_an_unwritable_cache_never_fails_discovery(mini_idp: MiniIdP, http: httpx.Client, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("BBLOGIN_CACHE_DIR", str(blocker / "cache"))  # cannot be created
    mini_idp.serve_discovery()
    assert discover(mini_idp.issuer, http=http).issuer == mini_idp.issuer
    assert discover(mini_idp.issuer, http=http).issuer == mini_idp.issuer
    assert mini_idp.requests_to("/.well-known/openid-configuration") == 2


def test_stale_discovery_stands_in_while_the_idp_is_down(mini_idp: MiniIdP, http: httpx.Client) -> None:
    mini_idp.serve_discovery(headers={"Cache-Control": "max-age=0"})
    first = discover(mini_idp.issuer, http=http)
    mini_idp.server.clear()
    mini_idp.server.expect_request("/idp/.well-known/openid-configuration").respond_with_data("<h1>down</h1>", status=500, content_type="text/html")
    assert discover(mini_idp.issuer, http=http) == first
    assert mini_idp.requests_to("/.well-known/openid-configuration") == 1  # it did try


def test_no_stale_copy_against_must_revalidate_or_when_unreachable_without_one(mini_idp: MiniIdP, http: httpx.Client) -> None:
    mini_idp.serve_discovery(headers={"Cache-Control": "max-age=0, must-revalidate"})
    discover(mini_idp.issuer, http=http)
    mini_idp.server.clear()
    mini_idp.server.expect_request("/idp/.well-known/openid-configuration").respond_with_data("down", status=500)
    with pytest.raises(IdPResponseError, match="HTTP 500"):
        discover(mini_idp.issuer, http=http)
    with pytest.raises(IdPUnreachable):
        discover("http://127.0.0.1:9/nothing", http=http)


# -- JWKS -------------------------------------------------------------------------------------


def test_jwks_max_age_must_revalidate_is_reused(mini_idp: MiniIdP, http: httpx.Client) -> None:
    mini_idp.serve_jwks("rsa", headers={"Cache-Control": "max-age=600, must-revalidate"})
    jwks = JWKSCache(mini_idp.url("/keys"), http=http)
    assert jwks.key_for("rsa-1", "RS256").key_id == "rsa-1"
    assert JWKSCache(mini_idp.url("/keys"), http=http).key_for("rsa-1", "RS256").key_id == "rsa-1"  # another process: the disk copy
    assert mini_idp.requests_to("/keys") == 1


def test_rotation_unknown_kid_refetches_once_then_succeeds(mini_idp: MiniIdP, http: httpx.Client) -> None:
    mini_idp.serve_jwks("rsa", headers={"Cache-Control": "max-age=600"})
    jwks = JWKSCache(mini_idp.url("/keys"), http=http)
    jwks.key_for("rsa-1", "RS256")
    mini_idp.server.clear()
    mini_idp.serve_jwks("rsa2", "rsa", headers={"Cache-Control": "max-age=600"})
    assert jwks.key_for("rsa-2", "RS256").key_id == "rsa-2"
    assert mini_idp.requests_to("/keys") == 1  # the log was cleared: exactly the one refetch
    jwks.key_for("rsa-1", "RS256")
    assert mini_idp.requests_to("/keys") == 1  # and the refetched set was cached


def test_a_flood_of_unknown_kids_causes_one_refetch(mini_idp: MiniIdP, http: httpx.Client) -> None:
    mini_idp.serve_jwks("rsa", headers={"Cache-Control": "max-age=600"})
    jwks = JWKSCache(mini_idp.url("/keys"), http=http)
    for i in range(20):
        with pytest.raises(TokenVerificationError, match=f"the kid 'bad-{i}'"):
            jwks.key_for(f"bad-{i}", "RS256")
    assert mini_idp.requests_to("/keys") == 2  # the first load and one refetch


def test_refetch_is_allowed_again_after_the_interval(mini_idp: MiniIdP, http: httpx.Client) -> None:
    now = [0.0]
    mini_idp.serve_jwks("rsa", headers={"Cache-Control": "max-age=600"})
    jwks = JWKSCache(mini_idp.url("/keys"), http=http, refetch_interval=60, clock=lambda: now[0])
    for _ in range(2):
        with pytest.raises(TokenVerificationError):
            jwks.key_for("new", "RS256")
    now[0] = 61
    with pytest.raises(TokenVerificationError):
        jwks.key_for("new", "RS256")
    assert mini_idp.requests_to("/keys") == 3


def test_no_kid_takes_the_only_key_that_fits_the_alg(mini_idp: MiniIdP, http: httpx.Client) -> None:
    mini_idp.serve_jwks("rsa", "ec")
    jwks = JWKSCache(mini_idp.url("/keys"), http=http)
    assert jwks.key_for(None, "RS256").key_id == "rsa-1"
    assert jwks.key_for(None, "ES256").key_id == "ec-1"
    with pytest.raises(TokenVerificationError, match="no ES384 key"):
        jwks.key_for(None, "ES384")  # P-256 key: wrong curve for ES384


def test_no_kid_with_several_fitting_keys_is_refused(mini_idp: MiniIdP, http: httpx.Client) -> None:
    mini_idp.serve_jwks("rsa", "rsa2")
    with pytest.raises(TokenVerificationError, match="names no kid and the IdP's JWKS has 2 RS256 keys"):
        JWKSCache(mini_idp.url("/keys"), http=http).key_for(None, "RS256")


def test_symmetric_encryption_and_broken_keys_are_skipped(mini_idp: MiniIdP, http: httpx.Client, signing_keys) -> None:
    extra = [
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0", "alg": "HS256"},
        signing_keys["rsa2"].jwk(use="enc"),
        {**signing_keys["rsa2"].jwk(), "kid": "ops", "key_ops": ["encrypt"]},
        {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
    ]
    mini_idp.serve_jwks("rsa", extra=extra)
    jwks = JWKSCache(mini_idp.url("/keys"), http=http)
    for kid in ("hmac", "rsa-2", "ops", "broken"):
        with pytest.raises(TokenVerificationError):
            jwks.key_for(kid, "RS256" if kid != "hmac" else "HS256")
    assert jwks.key_for(None, "RS256").key_id == "rsa-1"


def test_a_key_declared_for_another_alg_does_not_fit(mini_idp: MiniIdP, http: httpx.Client) -> None:
    mini_idp.serve_jwks("rsa")
    with pytest.raises(TokenVerificationError, match="no PS256 key"):
        JWKSCache(mini_idp.url("/keys"), http=http).key_for("rsa-1", "PS256")
