"""PKCE (RFC 7636), through authlib's implementation: always S256, never ``plain``.

The verifier is 64 characters of [A-Za-z0-9] drawn from the OS CSPRNG (``random.SystemRandom``),
about 381 bits: inside RFC 7636's 43-128 characters of the unreserved set.
"""

from __future__ import annotations

VERIFIER_LENGTH = 64
METHOD = "S256"


def make_pkce() -> tuple[str, str]:
    """``(code_verifier, code_challenge)`` with challenge = BASE64URL(SHA256(verifier)), no padding."""
    from authlib.common.security import generate_token  # type: ignore[import-untyped]
    from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]

    verifier = generate_token(VERIFIER_LENGTH)
    return verifier, create_s256_code_challenge(verifier)
