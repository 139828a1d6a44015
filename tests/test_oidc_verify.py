"""The relying party's ID-token checks (OIDC Core §3.1.3.7): the whole refusal table."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from bblogin._errors import TokenVerificationError
from bblogin._http import make_client
from bblogin._oidc._discovery import ProviderMetadata, discover
from bblogin._oidc._jwks import JWKSCache
from bblogin._oidc._verify import half_hash, verify_id_token
from tests.fixtures.oidc import CLIENT_ID, MiniIdP, SigningKey

NOW = int(time.time())


@pytest.fixture
def idp(mini_idp: MiniIdP) -> MiniIdP:
    mini_idp.serve_discovery()
    mini_idp.serve_jwks("rsa", "rsa2", "ec", headers={"Cache-Control": "max-age=600, must-revalidate"})
    return mini_idp


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with make_client(timeout=5) as client:
        yield client


@pytest.fixture
def metadata(idp: MiniIdP, http: httpx.Client) -> ProviderMetadata:
    return discover(idp.issuer, http=http)


@pytest.fixture
def verify(idp: MiniIdP, http: httpx.Client, metadata: ProviderMetadata) -> Callable[..., dict[str, Any]]:
    jwks = JWKSCache(metadata.jwks_uri, http=http)

    def run(token: str, **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("nonce", "n-1")
        kwargs.setdefault("now", NOW)
        return verify_id_token(token, metadata=kwargs.pop("metadata", metadata), jwks=jwks, client_id=kwargs.pop("client_id", CLIENT_ID), **kwargs)

    return run


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


@pytest.mark.parametrize("key", ["rsa", "rsa2", "ec"])
def test_a_good_token_verifies(idp: MiniIdP, verify, key: str) -> None:
    claims = verify(idp.id_token(key, iat=NOW, exp=NOW + 600))
    assert claims["sub"] == "user-1" and claims["nonce"] == "n-1"


def test_within_the_leeway_is_accepted(idp: MiniIdP, verify) -> None:
    verify(idp.id_token(exp=NOW - 30, iat=NOW - 600))
    verify(idp.id_token(iat=NOW + 30, exp=NOW + 600))


def refusals(idp: MiniIdP, keys: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], str]]:
    """(case, token, verify kwargs, expected message fragment)."""
    rsa_public_pem = keys["rsa"].private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    good = idp.claims(iat=NOW, exp=NOW + 600)
    valid = idp.id_token(iat=NOW, exp=NOW + 600)
    h, _p, s = valid.split(".")
    tampered = f"{h}.{b64(json.dumps({**good, 'sub': 'admin'}).encode())}.{s}"
    return [
        ("bad signature (another key, same kid)", keys["stranger"].sign(good), {}, "signature does not verify"),
        ("tampered payload", tampered, {}, "signature does not verify"),
        ("alg none", forged({"alg": "none"}, good, lambda _: b""), {}, "signed with 'none'"),
        (
            "HS256 with the RSA public key as the secret",
            forged({"alg": "HS256", "kid": "rsa-1"}, good, lambda m: hmac.new(rsa_public_pem, m, hashlib.sha256).digest()),
            {},
            "signed with 'HS256'",
        ),
        ("alg the IdP does not advertise", SigningKey("rsa-1", "RS512", keys["rsa"].private).sign(good), {}, "signed with 'RS512'"),
        ("wrong iss", idp.id_token(iss="https://evil.example", iat=NOW, exp=NOW + 600), {}, "issuer (iss) is 'https://evil.example'"),
        ("wrong aud", idp.id_token(aud="other-client", iat=NOW, exp=NOW + 600), {}, "audience (aud) does not include"),
        ("multiple aud without azp", idp.id_token(aud=[CLIENT_ID, "other"], iat=NOW, exp=NOW + 600), {}, "several audiences but no authorized party"),
        ("azp of another client", idp.id_token(aud=[CLIENT_ID, "other"], azp="other", iat=NOW, exp=NOW + 600), {}, "authorized party (azp) is 'other'"),
        ("expired", idp.id_token(iat=NOW - 7200, exp=NOW - 61), {}, "expired 61 s ago"),
        ("iat in the future", idp.id_token(iat=NOW + 3600, exp=NOW + 7200), {}, "issued 3600 s in the future"),
        ("nbf in the future", idp.id_token(iat=NOW, nbf=NOW + 600, exp=NOW + 7200), {}, "not valid for another 600 s"),
        ("missing exp", idp.id_token(iat=NOW, exp=None), {}, "exp claim is missing"),
        ("iat not a number", idp.id_token(iat="yesterday", exp=NOW + 600), {}, "iat claim is not a number"),
        ("missing sub", idp.id_token(sub=None, iat=NOW, exp=NOW + 600), {}, "no subject"),
        ("sub not a string", idp.id_token(sub=42, iat=NOW, exp=NOW + 600), {}, "no subject"),
        ("empty sub", idp.id_token(sub="", iat=NOW, exp=NOW + 600), {}, "no subject"),
        ("missing iss", idp.id_token(iss=None, iat=NOW, exp=NOW + 600), {}, "iss claim is missing"),
        ("missing aud", idp.id_token(aud=None, iat=NOW, exp=NOW + 600), {}, "aud claim is missing"),
        ("aud not strings", idp.id_token(aud=[CLIENT_ID, 7], iat=NOW, exp=NOW + 600), {}, "audience (aud) does not include"),
        ("missing iat", idp.id_token(iat=None, exp=NOW + 600), {}, "iat claim is missing"),
        ("nonce mismatch", idp.id_token(nonce="other", iat=NOW, exp=NOW + 600), {}, "nonce does not match"),
        ("nonce missing", idp.id_token(nonce=None, iat=NOW, exp=NOW + 600), {}, "carries no nonce"),
        ("at_hash mismatch", idp.id_token(at_hash=half_hash("other", "RS256"), iat=NOW, exp=NOW + 600), {"access_token": "the-access-token"}, "at_hash does not match the access token"),
        ("c_hash mismatch", idp.id_token(c_hash=half_hash("other", "RS256"), iat=NOW, exp=NOW + 600), {"code": "the-code"}, "c_hash does not match the authorization code"),
        ("kid absent with several keys", SigningKey(None, "RS256", keys["rsa"].private).sign(good), {}, "names no kid and the IdP's JWKS has 2 RS256 keys"),
        ("unknown kid", SigningKey("gone", "RS256", keys["rsa"].private).sign(good), {}, "the kid 'gone'"),
        ("encrypted (JWE)", "a.b.c.d.e", {}, "encrypted (JWE)"),
        ("not a JWT", "opaque-token", {}, "not a compact JWS"),
    ]


def test_every_refusal_names_its_check_and_never_the_token(idp: MiniIdP, verify, signing_keys) -> None:
    for case, token, kwargs, fragment in refusals(idp, signing_keys):
        with pytest.raises(TokenVerificationError) as info:
            verify(token, **kwargs)
        text = info.value.render()
        assert fragment in text, (case, text)
        assert text.startswith("bblogin: the ID token failed verification: "), case
        for part in token.split("."):
            assert len(part) < 8 or part not in text, case


def test_hashes_verify_when_present_and_are_optional_when_absent(idp: MiniIdP, verify) -> None:
    token = idp.id_token(at_hash=half_hash("the-access-token", "RS256"), c_hash=half_hash("the-code", "RS256"), iat=NOW, exp=NOW + 600)
    verify(token, access_token="the-access-token", code="the-code")
    verify(idp.id_token(iat=NOW, exp=NOW + 600), access_token="the-access-token", code="the-code")  # code flow: at_hash optional


def test_at_hash_uses_the_algs_hash_size(idp: MiniIdP, verify) -> None:
    token = idp.id_token("ec", at_hash=half_hash("tok", "ES256"), iat=NOW, exp=NOW + 600)
    verify(token, access_token="tok")
    assert len(half_hash("tok", "RS512")) == 43 and len(half_hash("tok", "RS256")) == 22


def test_no_nonce_expected_means_none_is_checked(idp: MiniIdP, verify) -> None:
    verify(idp.id_token(nonce=None, iat=NOW, exp=NOW + 600), nonce=None)
    verify(idp.id_token(nonce="copied-by-dex", iat=NOW, exp=NOW + 600), nonce=None)


def test_multiple_audiences_with_our_azp(idp: MiniIdP, verify) -> None:
    assert verify(idp.id_token(aud=["peer", CLIENT_ID], azp=CLIENT_ID, iat=NOW, exp=NOW + 600))["azp"] == CLIENT_ID


def test_algs_are_intersected_with_what_the_idp_advertises(idp: MiniIdP, verify, metadata: ProviderMetadata) -> None:
    from bblogin import _record

    only_rs256 = _record.replace(metadata, id_token_signing_alg_values_supported=("RS256",))
    with pytest.raises(TokenVerificationError, match="signed with 'ES256'; bblogin accepts RS256"):
        verify(idp.id_token("ec", iat=NOW, exp=NOW + 600), metadata=only_rs256)
    hs_only = _record.replace(metadata, id_token_signing_alg_values_supported=("HS256", "none"))
    with pytest.raises(TokenVerificationError, match="none of the algorithms this IdP advertises"):
        verify(idp.id_token(iat=NOW, exp=NOW + 600), metadata=hs_only)


def test_key_rotation_refetches_once_then_verifies(idp: MiniIdP, verify, signing_keys) -> None:
    verify(idp.id_token(iat=NOW, exp=NOW + 600))
    assert idp.requests_to("/keys") == 1
    rotated = SigningKey("rsa-new", "RS256", signing_keys["stranger"].private)
    idp.server.clear()
    idp.serve_jwks("rsa", extra=[rotated.jwk()])
    assert verify(rotated.sign(idp.claims(iat=NOW, exp=NOW + 600)))["sub"] == "user-1"
    assert idp.requests_to("/keys") == 1
