"""ID token verification (OpenID Connect Core 3.1.3.7): every check, every time.

Signature via the IdP's JWKS; an alg allow-list (asymmetric only: never `none`, never HS* — an
HMAC "signed" with the RSA public key is the classic confusion attack); iss exact; aud contains
our client id, and several audiences need azp = our client id; exp and iat with a small leeway;
nonce when we sent one; at_hash and c_hash when present.
"""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

import jwt

from bblogin._errors import TokenVerificationError
from bblogin._oidc._jwks import JWKSCache

ALLOWED_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
MAX_CLOCK_SKEW = 60


def half_hash(value: str, alg: str) -> str:
    """at_hash / c_hash: base64url of the left half of the hash that matches the alg's size."""
    digest = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}[alg[-3:]](value.encode()).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


def verify_id_token(
    token: str,
    *,
    issuer: str,
    client_id: str,
    jwks: JWKSCache,
    advertised_algs: tuple[str, ...] = ("RS256",),
    nonce: str | None,
    access_token: str | None = None,
    code: str | None = None,
    leeway: int = MAX_CLOCK_SKEW,
) -> dict[str, Any]:
    """The verified claims, or TokenVerificationError naming the check that failed."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise TokenVerificationError("the ID token is not a well-formed JWT") from None
    alg = header.get("alg")
    if alg not in ALLOWED_ALGS or alg not in advertised_algs:
        raise TokenVerificationError(f"the ID token is signed with {alg!r}, which bblogin does not accept from this IdP")
    key = jwks.key_for(header.get("kid"), alg)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[alg],
            audience=client_id,
            issuer=issuer,
            leeway=leeway,
            options={"require": ["iss", "sub", "aud", "exp", "iat"]},
        )
    except jwt.InvalidSignatureError:
        raise TokenVerificationError("the ID token's signature does not verify") from None
    except jwt.ExpiredSignatureError:
        raise TokenVerificationError("the ID token has expired", hint="check this machine's clock against the IdP's") from None
    except jwt.InvalidAudienceError:
        raise TokenVerificationError(f"the ID token is not meant for client {client_id!r} (aud)") from None
    except jwt.InvalidIssuerError:
        raise TokenVerificationError(f"the ID token's issuer is not {issuer!r}") from None
    except jwt.ImmatureSignatureError:
        raise TokenVerificationError("the ID token was issued in the future (iat)", hint="check this machine's clock") from None
    except jwt.PyJWTError as exc:
        raise TokenVerificationError(f"the ID token is invalid ({type(exc).__name__})") from None
    if claims["iat"] > time.time() + leeway:
        raise TokenVerificationError("the ID token was issued in the future (iat)", hint="check this machine's clock")
    aud = claims["aud"]
    if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != client_id:
        raise TokenVerificationError("the ID token has several audiences but its azp is not this client")
    if "azp" in claims and claims["azp"] != client_id:
        raise TokenVerificationError("the ID token's azp is not this client")
    if nonce is not None and claims.get("nonce") != nonce:
        raise TokenVerificationError("the ID token's nonce does not match this login (replayed or injected token)")
    if access_token is not None and "at_hash" in claims and claims["at_hash"] != half_hash(access_token, alg):
        raise TokenVerificationError("the ID token's at_hash does not match the access token")
    if code is not None and "c_hash" in claims and claims["c_hash"] != half_hash(code, alg):
        raise TokenVerificationError("the ID token's c_hash does not match the authorization code")
    return claims
