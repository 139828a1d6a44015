"""CI without stored secrets: exchange a workload identity token (Bitbucket Pipelines'
``BITBUCKET_STEP_OIDC_TOKEN`` with ``oidc: true``) for IdP tokens — RFC 8693 token exchange at
dex, with dex's required ``connector_id`` naming its `oidc` connector that trusts the Pipelines
issuer. Never a browser, never a prompt. The issued ID token is verified like any other.
"""

from __future__ import annotations

import os

from bblogin._config import Profile
from bblogin._errors import LoginFailed, LoginRequired, OAuthError, UsageError
from bblogin._tokens import Identity, TokenSet

ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
PIPELINES_ENV = "BITBUCKET_STEP_OIDC_TOKEN"


def subject_token(env_var: str = PIPELINES_ENV) -> str:
    value = os.environ.get(env_var, "").strip()
    if not value:
        hint = "set `oidc: true` on the Pipelines step" if env_var == PIPELINES_ENV else f"export {env_var} with the CI's identity token"
        raise LoginRequired(f"${env_var} is not set: there is no CI identity token to exchange", hint=hint)
    return value


def exchange(profile: Profile, subject: str) -> tuple[TokenSet, Identity]:
    """Trade ``subject`` (a CI ID token) for a verified ID token from the profile's IdP."""
    from bblogin._oidc import _grants
    from bblogin._oidc._verify import verify_id_token
    from bblogin._providers._oidc import OIDCProvider

    if profile.client_secret is None:
        raise UsageError(f"profile {profile.name!r} needs a client_secret: dex only exchanges tokens for confidential clients")
    provider = OIDCProvider(profile)
    try:
        body = _grants.token_exchange(
            provider.http,
            provider.metadata.token_endpoint,
            provider.client,
            subject_token=subject,
            subject_token_type=ID_TOKEN_TYPE,
            connector_id=profile.exchange_connector_id or profile.connector_id,
            requested_token_type=ID_TOKEN_TYPE,
            scopes=tuple(s for s in profile.scopes if s != "offline_access"),
        )
    except OAuthError as exc:
        if exc.error != "access_denied":
            raise
        raise LoginFailed(
            "the identity provider refused the CI identity token (access_denied)",
            hint="check that dex's oidc connector trusts this workspace's Pipelines issuer and audience, and that the token is this step's",
        ) from None
    issued = _grants.parse_token_response(body)
    claims = verify_id_token(
        issued.access_token,
        issuer=provider.metadata.issuer,
        client_id=profile.client_id,
        jwks=provider.jwks,
        advertised_algs=provider.metadata.id_token_signing_alg_values_supported,
        nonce=None,
    )
    tokens = TokenSet(access_token=issued.access_token, id_token=issued.access_token, access_expires_at=int(claims["exp"]), id_expires_at=int(claims["exp"]))
    groups = claims.get("groups") if isinstance(claims.get("groups"), list) else []
    identity = Identity(sub=str(claims["sub"]), email=claims.get("email"), name=claims.get("name"), username=claims.get("preferred_username"), groups=tuple(map(str, groups)), claims=claims)
    return tokens, identity
