"""CI without stored secrets: exchange a workload identity token (Bitbucket Pipelines'
``BITBUCKET_STEP_OIDC_TOKEN`` with ``oidc: true``) for IdP tokens — RFC 8693 token exchange at
dex, with dex's required ``connector_id`` naming its `oidc` connector that trusts the Pipelines
issuer. Never a browser, never a prompt. The issued ID token is verified like any other.
"""

from __future__ import annotations

import os

from bblogin._config import Profile
from bblogin._errors import LoginFailed, LoginRequired, OAuthError, UsageError
from bblogin._hot._answer import PIPELINES_ENV
from bblogin._tokens import Identity, TokenSet


def subject_token(env_var: str = PIPELINES_ENV) -> str:
    value = os.environ.get(env_var, "").strip()
    if not value:
        hint = "set `oidc: true` on the Pipelines step" if env_var == PIPELINES_ENV else f"export {env_var} with the CI's identity token"
        raise LoginRequired(f"${env_var} is not set: there is no CI identity token to exchange", hint=hint)
    return value


def exchange(profile: Profile, subject: str) -> tuple[TokenSet, Identity]:
    """Trade ``subject`` (a CI ID token) for a verified ID token from the profile's IdP."""
    from bblogin._providers._oidc import OIDCProvider

    if profile.client_secret is None:
        raise UsageError(f"profile {profile.name!r} needs a client_secret: dex only exchanges tokens for confidential clients")
    provider = OIDCProvider(profile)
    try:
        tokens = provider.token_exchange(subject)
    except OAuthError as exc:
        if exc.error != "access_denied":
            raise
        raise LoginFailed(
            "the identity provider refused the CI identity token (access_denied)",
            hint="check that dex's oidc connector trusts this workspace's Pipelines issuer and audience, and that the token is this step's",
        ) from None
    return tokens, provider.identity(tokens)
