"""dex's discovery document and JWKS, byte for byte in layout (json.MarshalIndent)."""

from __future__ import annotations

from bblogin.devidp._provider import Provider
from bblogin.devidp._tokenflow import GRANT_TYPES
from bblogin.devidp._web import Reply, json_reply


def discovery(p: Provider) -> Reply:
    """No Cache-Control: dex sends none for this document."""
    issuer = p.issuer
    return json_reply(200, {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/auth",
        "token_endpoint": f"{issuer}/token",
        "jwks_uri": f"{issuer}/keys",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "device_authorization_endpoint": f"{issuer}/device/code",
        "introspection_endpoint": f"{issuer}/token/introspect",
        "grant_types_supported": GRANT_TYPES,
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256", "plain"],
        "scopes_supported": ["openid", "email", "groups", "profile", "offline_access"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "claims_supported": ["iss", "sub", "aud", "iat", "exp", "email", "email_verified", "locale", "name", "preferred_username", "at_hash"],
    }, indent=2)


def keys(p: Provider) -> Reply:
    """The current key first, then the retired ones; clients may cache it for 10 minutes (v2.45)."""
    return json_reply(200, p.keys.jwks(), headers={"Cache-Control": "max-age=600, must-revalidate"}, indent=2)
