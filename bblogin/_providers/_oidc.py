"""An OpenID Connect provider (dex above all), driven by its discovery document.

With dex, ``connector_id`` skips the connector chooser (``bitbucket-cloud``). Every ID token is
verified before anything is stored: on code exchange with the nonce, at_hash and c_hash; on
refresh without a nonce check (dex copies the first nonce into refreshed tokens, OIDC Core §12.2
does not require one) while the session checks that ``sub`` did not change.
"""

from __future__ import annotations

import dataclasses
import sys
import urllib.parse
from collections.abc import Callable
from functools import cached_property
from typing import Any

import httpx

from bblogin._config import Profile
from bblogin._errors import TokenVerificationError, UsageError
from bblogin._oidc import _device, _grants
from bblogin._oidc._discovery import ProviderMetadata, discover
from bblogin._oidc._jwks import JWKSCache
from bblogin._oidc._verify import verify_id_token
from bblogin._tokens import Identity, TokenSet

_RESERVED = {"response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge", "code_challenge_method"}


class OIDCProvider:
    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self._verified: dict[str, dict[str, Any]] = {}

    @cached_property
    def http(self) -> httpx.Client:
        from bblogin._http import make_client

        return make_client(ca_file=self.profile.ca_file)

    @cached_property
    def metadata(self) -> ProviderMetadata:
        return discover(self.profile.issuer, self.http)

    @cached_property
    def jwks(self) -> JWKSCache:
        return JWKSCache(self.metadata.jwks_uri, self.http)

    @cached_property
    def client(self) -> _grants.ClientCredentials:
        methods = self.metadata.token_endpoint_auth_methods_supported
        use_basic = "client_secret_basic" in methods or "client_secret_post" not in methods
        return _grants.ClientCredentials(self.profile.client_id, self.profile.client_secret, use_basic)

    @property
    def supports_device_flow(self) -> bool:
        return self.metadata.device_authorization_endpoint is not None

    def _login_hint(self) -> str:
        return f"bblogin login --profile {self.profile.name}"

    def authorization_url(self, *, redirect_uri: str, state: str, nonce: str, code_challenge: str) -> str:
        params = {k: v for k, v in self.profile.extra_auth_params.items() if k not in _RESERVED}
        if self.profile.connector_id:
            params["connector_id"] = self.profile.connector_id
        params.update(
            response_type="code",
            client_id=self.profile.client_id,
            redirect_uri=redirect_uri,
            scope=" ".join(self.profile.scopes),
            state=state,
            nonce=nonce,
            code_challenge=code_challenge,
            code_challenge_method="S256",
        )
        endpoint = self.metadata.authorization_endpoint
        return endpoint + ("&" if "?" in endpoint else "?") + urllib.parse.urlencode(params)

    def _verify(self, tokens: TokenSet, *, nonce: str | None, code: str | None = None) -> TokenSet:
        if tokens.id_token is None:
            raise TokenVerificationError("the identity provider sent no ID token", hint="request the openid scope (see the profile's scopes)")
        claims = verify_id_token(
            tokens.id_token,
            issuer=self.metadata.issuer,
            client_id=self.profile.client_id,
            jwks=self.jwks,
            advertised_algs=self.metadata.id_token_signing_alg_values_supported,
            nonce=nonce,
            access_token=tokens.access_token,
            code=code,
        )
        self._verified[tokens.id_token] = claims
        return dataclasses.replace(tokens, id_expires_at=int(claims["exp"]))

    def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str) -> TokenSet:
        tokens = _grants.exchange_code(self.http, self.metadata.token_endpoint, self.client, code=code, redirect_uri=redirect_uri, code_verifier=code_verifier)
        return self._verify(tokens, nonce=nonce, code=code)

    def refresh(self, refresh_token: str) -> TokenSet:
        tokens = _grants.refresh(self.http, self.metadata.token_endpoint, self.client, refresh_token, login_hint=self._login_hint())
        return self._verify(tokens, nonce=None) if tokens.id_token else tokens

    def device_login(self, *, open_browser: bool, on_prompt: Callable[[_grants.DeviceAuthorization], None] | None, timeout: int) -> TokenSet:
        endpoint = self.metadata.device_authorization_endpoint
        if endpoint is None:
            raise UsageError(f"{self.profile.issuer} offers no device-code login", hint="use --flow loopback")
        auth = _grants.device_authorize(self.http, endpoint, self.client, self.profile.scopes)
        if on_prompt is not None:
            on_prompt(auth)
        else:
            _device.show_prompt(auth, sys.stderr)
        if open_browser:
            from bblogin._oidc._browser import open_browser as launch

            launch(auth.verification_uri_complete or auth.verification_uri)
        tokens = _device.wait_for_tokens(
            auth, lambda: _grants.poll_device(self.http, self.metadata.token_endpoint, self.client, auth.device_code), out=sys.stderr, timeout=timeout
        )
        return self._verify(tokens, nonce=None)

    def identity(self, tokens: TokenSet) -> Identity:
        claims = self._verified.get(tokens.id_token or "")
        if claims is None:
            raise TokenVerificationError("no verified ID token to take the identity from")
        groups = claims.get("groups") if isinstance(claims.get("groups"), list) else []
        email = claims.get("email") if claims.get("email_verified") is not False else None
        return Identity(
            sub=str(claims["sub"]),
            email=email if isinstance(email, str) else None,
            name=claims.get("name") if isinstance(claims.get("name"), str) else None,
            username=claims.get("preferred_username") if isinstance(claims.get("preferred_username"), str) else None,
            groups=tuple(str(g) for g in groups),
            claims=claims,
        )

    def revoke(self, tokens: TokenSet) -> bool:
        endpoint = self.metadata.revocation_endpoint
        if endpoint is None:
            return False  # dex has no revocation endpoint
        if tokens.refresh_token:
            _grants.revoke(self.http, endpoint, self.client, tokens.refresh_token, "refresh_token")
        _grants.revoke(self.http, endpoint, self.client, tokens.access_token, "access_token")
        return True
