"""OpenID Connect Discovery: the provider's endpoints, from ``{issuer}/.well-known/openid-configuration``."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from bblogin._errors import IdPResponseError, TokenVerificationError
from bblogin._oidc import _cache


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None = None
    device_authorization_endpoint: str | None = None
    revocation_endpoint: str | None = None
    grant_types_supported: tuple[str, ...] = ("authorization_code", "implicit")
    code_challenge_methods_supported: tuple[str, ...] = ()
    id_token_signing_alg_values_supported: tuple[str, ...] = ("RS256",)
    token_endpoint_auth_methods_supported: tuple[str, ...] = ("client_secret_basic",)


def discover(issuer: str, client: httpx.Client) -> ProviderMetadata:
    """Fetch (or reuse the cached) discovery document; refuse one that names another issuer."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    doc = _cache.get_json(client, url, "OIDC discovery")
    if doc.get("issuer") != issuer:
        raise TokenVerificationError(
            f"the discovery document at {url} names the issuer {doc.get('issuer')!r}, not {issuer!r}",
            hint="use exactly the issuer URL the IdP announces (scheme, host, path, trailing slash)",
        )
    try:
        required = {k: str(doc[k]) for k in ("authorization_endpoint", "token_endpoint", "jwks_uri")}
    except KeyError as exc:
        raise IdPResponseError(f"the discovery document at {url} lacks {exc.args[0]}") from None

    def strings(key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = doc.get(key)
        return tuple(str(v) for v in value) if isinstance(value, list) else default

    optional = {k: str(doc[k]) if isinstance(doc.get(k), str) else None for k in ("userinfo_endpoint", "device_authorization_endpoint", "revocation_endpoint")}
    return ProviderMetadata(
        issuer=issuer,
        **required,
        **optional,
        grant_types_supported=strings("grant_types_supported", ("authorization_code", "implicit")),
        code_challenge_methods_supported=strings("code_challenge_methods_supported", ()),
        id_token_signing_alg_values_supported=strings("id_token_signing_alg_values_supported", ("RS256",)),
        token_endpoint_auth_methods_supported=strings("token_endpoint_auth_methods_supported", ("client_secret_basic",)),
    )
