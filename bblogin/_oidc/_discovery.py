"""OpenID Connect Discovery 1.0 (and RFC 8414): the provider's endpoints and capabilities.

``discover(issuer, http=...)`` reads ``{issuer}/.well-known/openid-configuration`` through the
disk cache (fresh for :data:`DISCOVERY_TTL` when the server sends no Cache-Control, as dex does;
a stale copy stands in while the IdP is unreachable). The document must name exactly the issuer
it was fetched for (Discovery §4.3): anything else is refused, since it would let one server
speak for another. Every endpoint must be https (plain http only on loopback).
"""

from __future__ import annotations

from typing import Any

import httpx

from bblogin._config import is_allowed_issuer
from bblogin._errors import IdPResponseError, TokenVerificationError
from bblogin._oidc import _cache
from bblogin._record import record

DISCOVERY_TTL = 3600


@record(frozen=True)
class ProviderMetadata:
    """The parts of a discovery document bblogin uses. Defaults are the specs' defaults."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None = None
    device_authorization_endpoint: str | None = None
    revocation_endpoint: str | None = None
    end_session_endpoint: str | None = None
    grant_types_supported: tuple[str, ...] = ("authorization_code", "implicit")
    code_challenge_methods_supported: tuple[str, ...] = ()
    id_token_signing_alg_values_supported: tuple[str, ...] = ("RS256",)
    scopes_supported: tuple[str, ...] = ()
    token_endpoint_auth_methods_supported: tuple[str, ...] = ("client_secret_basic",)

    @classmethod
    def from_document(cls, doc: dict[str, Any], *, issuer: str, source: str) -> ProviderMetadata:
        """Validate ``doc`` (fetched from ``source``) as the discovery document of ``issuer``."""
        if doc.get("issuer") != issuer:
            raise TokenVerificationError(
                f"the discovery document at {source} names the issuer {doc.get('issuer')!r}, not {issuer!r}",
                hint="set the profile's issuer to exactly the URL the IdP announces (scheme, host, path, no trailing slash unless it has one)",
            )

        def url(key: str, required: bool) -> str | None:
            value = doc.get(key)
            if value is None and not required:
                return None
            if not isinstance(value, str) or not is_allowed_issuer(value):
                problem = "lacks" if value is None else "has an unusable (non-https)"
                raise IdPResponseError(f"the discovery document at {source} {problem} {key}", hint="the identity provider is misconfigured; tell its administrator")
            return value

        def strings(key: str) -> dict[str, tuple[str, ...]]:
            value = doc.get(key)
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return {key: tuple(value)}
            return {}  # absent or malformed: the spec's default

        return cls(
            issuer=issuer,
            authorization_endpoint=url("authorization_endpoint", True) or "",
            token_endpoint=url("token_endpoint", True) or "",
            jwks_uri=url("jwks_uri", True) or "",
            userinfo_endpoint=url("userinfo_endpoint", False),
            device_authorization_endpoint=url("device_authorization_endpoint", False),
            revocation_endpoint=url("revocation_endpoint", False),
            end_session_endpoint=url("end_session_endpoint", False),
            **strings("grant_types_supported"),
            **strings("code_challenge_methods_supported"),
            **strings("id_token_signing_alg_values_supported"),
            **strings("scopes_supported"),
            **strings("token_endpoint_auth_methods_supported"),
        )


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def discover(issuer: str, *, http: httpx.Client) -> ProviderMetadata:
    """The validated metadata of ``issuer`` (cached on disk per Cache-Control)."""
    url = discovery_url(issuer)
    doc = _cache.get_json(http, url, "OIDC discovery", default_ttl=DISCOVERY_TTL, allow_stale=True)
    return ProviderMetadata.from_document(doc, issuer=issuer, source=url)
