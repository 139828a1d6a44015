"""ID token validation (OpenID Connect Core §3.1.3.7, §3.1.3.8, §3.3.2.11, §12.2): every check, every time.

- Compact JWS only (an encrypted ID token has five parts: refused, never decrypted).
- alg: asymmetric only — RS/PS/ES 256/384/512 — and advertised by the IdP. Never ``none``, never
  HS*: an HMAC "signed" with the IdP's public RSA key as the secret is the classic confusion attack.
- The key comes from the IdP's JWKS (discovery's ``jwks_uri``), never from the token's own
  ``jku``/``jwk``/``x5u`` headers. No kid with several fitting keys is refused.
- iss exactly the issuer; aud contains our client id; several audiences need azp = our client id,
  and any azp must be our client id; sub present.
- exp, nbf and iat (:func:`check_time_claims`) against ``now``, the IdP's time (this machine's
  clock plus the offset measured from the IdP's answers, ``bblogin._clock``), with ``leeway``
  seconds for what that measurement cannot see; an iat in the future is refused.
- nonce: when the login sent one it must be there and equal (a missing nonce is a refusal).
- at_hash (§3.1.3.8, §3.2.2.9): checked whenever present and the access token is at hand. The code
  flow does not require it (only the implicit flow's ``id_token token`` does), so absent is fine.
- c_hash (§3.3.2.11): checked whenever present and the code is at hand.

Every refusal is a :class:`TokenVerificationError` naming the failed check, never the token.

pyjwt checks what it knows — the signature, iss, aud (one of them ours) and the required claims —
and its typed exceptions become the messages above. bblogin keeps what pyjwt cannot do: the alg
allow-list (intersected with the IdP's), kid selection (``_jwks``), azp with several audiences,
the time claims (judged in the IdP's time, while pyjwt knows only the local clock), nonce,
at_hash and c_hash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import jwt

from bblogin._claims import unverified_claims
from bblogin._errors import TokenVerificationError
from bblogin._oidc._discovery import ProviderMetadata
from bblogin._oidc._jwks import JWKSCache

ALLOWED_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
DEFAULT_LEEWAY = 60
REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp", "iat")  # OIDC Core §2
_CLOCK_HINT = "bblogin compensates this machine's clock for up to 24 h off the identity provider's: check the clock (and time zone), e.g. enable NTP"


def half_hash(value: str, alg: str) -> str:
    """at_hash / c_hash: base64url (no padding) of the left half of the alg's hash of ``value``."""
    digest = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}[alg[-3:]](value.encode()).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


def _refuse(check: str, hint: str | None = None) -> TokenVerificationError:
    return TokenVerificationError(f"the ID token failed verification: {check}", hint=hint)


def _header(token: str) -> dict[str, Any]:
    if token.count(".") == 4:
        raise _refuse("it is encrypted (JWE); bblogin accepts only signed ID tokens")
    if token.count(".") != 2:
        raise _refuse("it is not a compact JWS (header.payload.signature)")
    try:
        return jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise _refuse("its header is not valid JSON in base64url") from None


def _int_claim(claims: dict[str, Any], name: str, *, required: bool) -> int | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _refuse(f"its {name} claim is {'missing' if value is None else 'not a number'}")
    return int(value)


def check_time_claims(claims: dict[str, Any], *, now: int, leeway: int = DEFAULT_LEEWAY, latest: int | None = None) -> None:
    """exp (required), iat (required, not in the future) and nbf against ``now`` — the IdP's time,
    i.e. this machine's clock plus the offset ``_clock`` measured — with ``leeway`` seconds for
    what the measurement cannot see. A token stale in the IdP's time is refused whatever this
    machine's clock says. ``iat`` and ``nbf`` may instead be judged against ``latest`` when that
    is later (the IdP's time by the answers just received: its clock may have been set forward
    since ``now``'s measurement) — a later time never helps a replayed token, whose iat is old.
    bblogin's own checks, kept apart from the iss/aud/signature checks."""
    issued_by = max(now, latest) if latest is not None else now
    exp = _int_claim(claims, "exp", required=True)
    iat = _int_claim(claims, "iat", required=True)
    nbf = _int_claim(claims, "nbf", required=False)
    assert exp is not None and iat is not None
    if now > exp + leeway:
        raise _refuse(f"it expired {now - exp} s ago (exp)", hint=_CLOCK_HINT)
    if iat > issued_by + leeway:
        raise _refuse(f"it was issued {iat - issued_by} s in the future (iat)", hint=_CLOCK_HINT)
    if nbf is not None and nbf > issued_by + leeway:
        raise _refuse(f"it is not valid for another {nbf - issued_by} s (nbf)", hint=_CLOCK_HINT)


def verify_id_token(
    token: str,
    *,
    metadata: ProviderMetadata,
    jwks: JWKSCache,
    client_id: str,
    nonce: str | None,
    access_token: str | None = None,
    code: str | None = None,
    leeway: int = DEFAULT_LEEWAY,
    now: int | None = None,
    latest: int | None = None,
) -> dict[str, Any]:
    """The claims of ``token`` once every check above passed; else TokenVerificationError."""
    header = _header(token)
    alg = header.get("alg")
    allowed = [a for a in ALLOWED_ALGS if a in metadata.id_token_signing_alg_values_supported]
    if alg not in allowed:
        raise _refuse(f"it is signed with {alg!r}; bblogin accepts {', '.join(allowed) or 'none of the algorithms this IdP advertises'}")
    assert isinstance(alg, str)
    kid = header.get("kid")
    key = jwks.key_for(kid if isinstance(kid, str) else None, alg)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[alg],
            issuer=metadata.issuer,
            audience=client_id,
            # exp/iat/nbf off on purpose: check_time_claims judges them in the IdP's time (pyjwt knows only the local clock)
            options={"require": list(REQUIRED_CLAIMS), "verify_exp": False, "verify_iat": False, "verify_nbf": False},
        )
    except jwt.InvalidSignatureError:
        raise _refuse("its signature does not verify with the IdP's key") from None
    except jwt.InvalidIssuerError:  # raised once the signature verified: the payload can be named
        raise _refuse(f"its issuer (iss) is {(unverified_claims(token) or {}).get('iss')!r}, not {metadata.issuer!r}") from None
    except jwt.InvalidAudienceError:
        raise _refuse(f"its audience (aud) does not include this client {client_id!r}", hint="check the profile's client_id") from None
    except (jwt.MissingRequiredClaimError, jwt.exceptions.InvalidSubjectError) as exc:
        claim = getattr(exc, "claim", "sub")
        raise _refuse("it has no subject (sub)" if claim == "sub" else f"its {claim} claim is missing") from None
    except jwt.PyJWTError as exc:
        raise _refuse(f"it cannot be decoded ({type(exc).__name__})") from None
    if not claims["sub"]:
        raise _refuse("it has no subject (sub)")  # pyjwt's require lets an empty string pass
    aud = claims["aud"]
    azp = claims.get("azp")
    if isinstance(aud, list) and len(aud) > 1 and azp is None:
        raise _refuse("it has several audiences but no authorized party (azp)")
    if azp is not None and azp != client_id:
        raise _refuse(f"its authorized party (azp) is {azp!r}, not this client {client_id!r}")
    check_time_claims(claims, now=int(time.time()) if now is None else now, leeway=leeway, latest=latest)

    if nonce is not None:
        got = claims.get("nonce")
        if not isinstance(got, str):
            raise _refuse("it carries no nonce, but this login sent one (a token from another login?)")
        if not hmac.compare_digest(got.encode(), nonce.encode()):
            raise _refuse("its nonce does not match this login's (a replayed or injected token?)")
    for name, value in (("at_hash", access_token), ("c_hash", code)):
        if value is not None and name in claims:
            expected = half_hash(value, alg)
            if not isinstance(claims[name], str) or not hmac.compare_digest(claims[name].encode(), expected.encode()):
                what = "access token" if name == "at_hash" else "authorization code"
                raise _refuse(f"its {name} does not match the {what} it came with")
    return claims
