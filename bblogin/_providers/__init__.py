"""Identity providers: what differs between dex/OIDC, Bitbucket Cloud and Bitbucket Data Center.

The session (``bblogin._session``) drives logins and refreshes through this one protocol; a
provider knows its endpoints, how to turn a code or a refresh token into a :class:`TokenSet`
(verifying any ID token), and who the tokens belong to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

    from bblogin._config import Profile
    from bblogin._tokens import Identity, TokenSet


class Provider(Protocol):
    profile: Profile

    @property
    def supports_device_flow(self) -> bool: ...

    def authorization_url(self, *, redirect_uri: str, state: str, nonce: str, code_challenge: str) -> str:
        """The URL to open in the browser (PKCE S256 always; nonce where the protocol has one)."""

    def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str) -> TokenSet:
        """Redeem an authorization code; any ID token is verified (nonce included) before returning."""

    def refresh(self, refresh_token: str, *, on_rotated: Callable[[str], None] | None = None) -> TokenSet:
        """Redeem a refresh token. Raises RefreshTokenDead when the IdP refuses it for good.

        ``on_rotated`` receives the new refresh token the moment the token endpoint answered,
        before anything else (ID-token verification, a JWKS fetch) can fail: the token it
        replaces is spent at the IdP, so the caller must keep the new one whatever follows."""

    def identity(self, tokens: TokenSet) -> Identity:
        """Who the tokens belong to (verified ID-token claims, or the provider's user API)."""

    def revoke(self, tokens: TokenSet) -> bool:
        """Revoke at the IdP where it offers revocation; False when it does not."""


def for_profile(profile: Profile) -> Provider:
    """The provider for ``profile.provider`` (imported lazily: each pulls in httpx)."""
    if profile.provider == "bitbucket-cloud":
        from bblogin._providers._bitbucket import BitbucketCloud

        return BitbucketCloud(profile)
    if profile.provider == "bitbucket-dc":
        from bblogin._providers._bitbucket import BitbucketDataCenter

        return BitbucketDataCenter(profile)
    from bblogin._providers._oidc import OIDCProvider

    return OIDCProvider(profile)
