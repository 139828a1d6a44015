"""PKCE (RFC 7636): always S256, through authlib's implementation."""

from __future__ import annotations


def make_pkce() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge): a 64-character verifier from the OS CSPRNG."""
    from authlib.common.security import generate_token
    from authlib.oauth2.rfc7636 import create_s256_code_challenge

    verifier = generate_token(64)
    return verifier, create_s256_code_challenge(verifier)
