"""An OpenID Connect provider (dex above all), driven by its discovery document.

With dex, the profile's ``connector_id`` (``bitbucket-cloud``) skips the connector chooser.
Every ID token is verified before anything is returned:

- code exchange: signature, iss, aud/azp, exp/iat, the login's nonce, at_hash and c_hash;
- device login: the same without a nonce (RFC 8628 has none to send);
- refresh: the same checks without a nonce. A nonce binds an ID token to one authentication
  request; a refresh is not one, and OIDC Core §12.2 as clarified by the OpenID errata (issue
  #1025) lets a refreshed ID token omit it (if present it repeats the original — dex copies it
  in). The refreshed token arrives over TLS straight from the token endpoint in answer to our
  own refresh token, so there is nothing to replay-check: no nonce is required or compared.
  What §12.2 does require — the same iss, sub and aud as the original login — holds because iss
  and aud are verified against the profile on every token, and the caller compares
  ``identity(tokens).sub`` with the account's (``bblogin._session`` does, before storing).

The HTTP client, the discovery metadata (for :data:`METADATA_MEMO` seconds) and the JWKS cache
are kept per process; the documents themselves are cached on disk per Cache-Control.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

from bblogin import _record
from bblogin._config import Profile
from bblogin._errors import LoginFailed, TokenVerificationError
from bblogin._oidc import _grants
from bblogin._oidc._discovery import ProviderMetadata, discover
from bblogin._oidc._jwks import JWKSCache
from bblogin._oidc._verify import verify_id_token
from bblogin._tokens import Identity, TokenSet

if TYPE_CHECKING:
    from bblogin._oidc._device import DevicePrompt

METADATA_MEMO = 300.0

_clients: dict[tuple[str | None, str | None], httpx.Client] = {}
_metadata: dict[tuple[str, str | None], tuple[float, ProviderMetadata]] = {}
_jwks: dict[tuple[str, str | None, str | None], JWKSCache] = {}  # (uri, ca_file, proxy): a profile's keys come through its own client


def _client_for(ca_file: str | None, proxy: str | None = None) -> httpx.Client:
    """One client per trust and proxy setting (the proxy URL may differ by profile)."""
    key = (ca_file, proxy)
    if key not in _clients:
        from bblogin._http import make_client

        _clients[key] = make_client(ca_file=ca_file, proxy=proxy)
    return _clients[key]


def _str_claim(claims: dict[str, Any], name: str) -> str | None:
    value = claims.get(name)
    return value if isinstance(value, str) and value else None


class OIDCProvider:
    """The :class:`bblogin._providers.Provider` for ``provider = "oidc"`` profiles."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self._verified: dict[str, dict[str, Any]] = {}  # ID token -> its verified claims

    # -- what discovery tells ---------------------------------------------------------------
    @property
    def http(self) -> httpx.Client:
        return _client_for(self.profile.ca_file, self.profile.proxy)

    @property
    def metadata(self) -> ProviderMetadata:
        key = (self.profile.issuer, self.profile.ca_file)
        memo = _metadata.get(key)
        if memo is None or time.monotonic() - memo[0] > METADATA_MEMO:
            memo = _metadata[key] = (time.monotonic(), discover(self.profile.issuer, http=self.http))
        return memo[1]

    @property
    def jwks(self) -> JWKSCache:
        uri = self.metadata.jwks_uri
        key = (uri, self.profile.ca_file, self.profile.proxy)
        if key not in _jwks:
            _jwks[key] = JWKSCache(uri, http=self.http)
        return _jwks[key]

    @property
    def client(self) -> _grants.ClientAuth:
        return _grants.ClientAuth.for_idp(self.profile.client_id, self.profile.client_secret, self.metadata.token_endpoint_auth_methods_supported)

    @property
    def supports_device_flow(self) -> bool:
        return self.metadata.device_authorization_endpoint is not None

    @property
    def scope(self) -> str:
        """The profile's scopes, with ``openid`` first when the profile forgot it."""
        scopes = list(self.profile.scopes)
        return " ".join(scopes if "openid" in scopes else ["openid", *scopes])

    def relogin_command(self) -> str:
        return f"bblogin login --profile {self.profile.name}"

    # -- login --------------------------------------------------------------------------------
    def authorization_url(self, *, redirect_uri: str, state: str, nonce: str, code_challenge: str) -> str:
        """The authorization request (code flow, PKCE S256, nonce, dex's connector_id)."""
        methods = self.metadata.code_challenge_methods_supported
        if methods and "S256" not in methods:
            raise LoginFailed(
                f"{self.profile.issuer} does not offer PKCE with S256 (it advertises {', '.join(methods)}); bblogin will not log in without it",
                hint="ask the identity provider's administrator to enable S256 PKCE",
            )
        extra = dict(self.profile.extra_auth_params)
        if self.profile.connector_id:
            extra["connector_id"] = self.profile.connector_id
        endpoint = self.metadata.authorization_endpoint
        return _grants.authorization_url(endpoint, self.profile.client_id, redirect_uri=redirect_uri, state=state, nonce=nonce, code_challenge=code_challenge, scope=self.scope, extra=extra)

    def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str) -> TokenSet:
        tokens = _grants.exchange_code(self.http, self.metadata.token_endpoint, self.client, code=code, redirect_uri=redirect_uri, code_verifier=code_verifier)
        if tokens.id_token is None:
            raise TokenVerificationError("the identity provider sent no ID token", hint="make sure the profile's scopes include openid")
        return self._received(self._verified_tokens(tokens, nonce=nonce, code=code))

    def device_login(self, *, open_browser: bool = True, on_prompt: Callable[[DevicePrompt], None] | None = None, timeout: float | None = None) -> TokenSet:
        """A device-code login with this profile (see :func:`bblogin._oidc._device.run_device_flow`)."""
        from bblogin._oidc._device import run_device_flow

        tokens = run_device_flow(self.http, self.metadata, self.client, scope=self.scope, timeout=timeout, open_browser=open_browser, on_prompt=on_prompt)
        if tokens.id_token is None:
            raise TokenVerificationError("the identity provider sent no ID token", hint="make sure the profile's scopes include openid")
        return self._received(self._verified_tokens(tokens, nonce=None))

    # -- refresh, identity, logout ------------------------------------------------------------
    def refresh(self, refresh_token: str, *, on_rotated: Callable[[str], None] | None = None) -> TokenSet:
        """Redeem the refresh token; a returned ID token is verified (no nonce: see the module doc)
        after ``on_rotated`` was handed the new refresh token."""
        tokens = _grants.refresh(self.http, self.metadata.token_endpoint, self.client, refresh_token, relogin_command=self.relogin_command(), on_rotated=on_rotated)
        return self._received(self._verified_tokens(tokens, nonce=None) if tokens.id_token else tokens)

    def token_exchange(self, subject_token: str, *, subject_token_type: str = _grants.ID_TOKEN_TYPE) -> TokenSet:
        """RFC 8693 exchange of an external token (a Bitbucket Pipelines OIDC token) for a dex ID
        token through the profile's ``exchange_connector_id``; the ID token is verified."""
        exchanged = _grants.token_exchange(
            self.http,
            self.metadata.token_endpoint,
            self.client,
            subject_token=subject_token,
            subject_token_type=subject_token_type,
            requested_token_type=_grants.ID_TOKEN_TYPE,
            connector_id=self.profile.exchange_connector_id,
            scope=self.scope,
        )
        tokens = TokenSet(access_token=exchanged.token, id_token=exchanged.token, access_expires_at=exchanged.expires_at)
        return self._received(self._verified_tokens(tokens, nonce=None, check_at_hash=False))

    def _verified_tokens(self, tokens: TokenSet, *, nonce: str | None, code: str | None = None, check_at_hash: bool = True) -> TokenSet:
        assert tokens.id_token is not None
        from bblogin import _clock

        try:
            claims = verify_id_token(
                tokens.id_token,
                metadata=self.metadata,
                jwks=self.jwks,
                client_id=self.profile.client_id,
                nonce=nonce,
                access_token=tokens.access_token if check_at_hash else None,
                code=code,
                now=self._idp_now(),
                latest=self._idp_now_by_this_process(),
            )
        except TokenVerificationError as exc:
            far = _clock.Clock().updated(_clock.observed(self.metadata.token_endpoint))
            if far.unbelieved is None or not exc.message.endswith(("(exp)", "(iat)", "(nbf)")):
                raise
            raise TokenVerificationError(exc.message, hint=far.note()) from None  # a time claim failed on a clock days off: say so
        self._verified[tokens.id_token] = claims
        return _record.replace(tokens, id_expires_at=int(claims["exp"]))

    def _idp_now(self) -> int:
        """The IdP's time to judge a fresh token by: by the samples stored with this issuer's
        accounts while they apply (the wall clock was not stepped since), else by this process's
        answers from the IdP — the one that brought the token included, its token's iat never.
        So one answer with a wrong Date cannot make its own stale token look fresh."""
        from bblogin import _clock, _index

        samples = _index.load().clock_samples(self.profile.issuer) or _clock.observed(self.metadata.token_endpoint)
        return int(time.time()) + (_clock.estimate(samples) or 0)

    def _idp_now_by_this_process(self) -> int:
        """The IdP's time by this process's answers from it alone: judges only ``iat``/``nbf``
        (never ``exp``), so an IdP whose clock was set forward since the stored measurement does
        not have every fresh token refused — forever, as a refused token's sample is never stored."""
        from bblogin import _clock

        return int(time.time()) + (_clock.estimate(_clock.observed(self.metadata.token_endpoint)) or 0)

    def _received(self, tokens: TokenSet) -> TokenSet:
        """Fresh tokens from the token endpoint, verified: their answer's clock sample, narrowed
        by the ID token's iat, goes with them, and their expiries are on the IdP's clock."""
        from bblogin import _clock

        endpoint = self.metadata.token_endpoint
        if tokens.id_token is not None:
            _clock.refine_with_iat(endpoint, int(self._verified[tokens.id_token]["iat"]))
        return _clock.stamped(tokens, endpoint)

    def claims(self, tokens: TokenSet) -> dict[str, Any]:
        """The verified claims of ``tokens.id_token`` (verified now if this process has not yet);
        without an ID token, the userinfo endpoint's claims for the access token."""
        if tokens.id_token is not None:
            if tokens.id_token not in self._verified:
                self._verified_tokens(tokens, nonce=None)
            return self._verified[tokens.id_token]
        return self._userinfo(tokens.access_token)

    def _userinfo(self, access_token: str) -> dict[str, Any]:
        endpoint = self.metadata.userinfo_endpoint
        if endpoint is None:
            raise TokenVerificationError("the identity provider sent no ID token and has no userinfo endpoint: bblogin cannot tell who logged in")
        from bblogin._http import request_json

        what = "reading the user's profile (userinfo)"
        status, body, _ = request_json(self.http, "GET", endpoint, headers={"Authorization": f"Bearer {access_token}"}, what=what)
        if status != 200 or not isinstance(body.get("sub"), str) or not body["sub"]:
            raise TokenVerificationError(f"{what} failed (HTTP {status})")
        return body

    def identity(self, tokens: TokenSet) -> Identity:
        """Who logged in, from verified claims: email only when email_verified is not false."""
        claims = self.claims(tokens)
        groups = claims.get("groups")
        return Identity(
            sub=str(claims["sub"]),
            email=_str_claim(claims, "email") if claims.get("email_verified") is not False else None,
            name=_str_claim(claims, "name"),
            username=_str_claim(claims, "preferred_username") or _str_claim(claims, "name"),  # dex's bitbucket-cloud sets only name
            groups=tuple(g for g in groups if isinstance(g, str)) if isinstance(groups, list) else (),
            claims=claims,
        )

    def revoke(self, tokens: TokenSet) -> bool:
        """Revoke at the IdP (refresh token first: RFC 7009 §2.1 revokes its access tokens too).
        False when the IdP has no revocation endpoint (dex)."""
        endpoint = self.metadata.revocation_endpoint
        if endpoint is None:
            return False
        if tokens.refresh_token:
            _grants.revoke(self.http, endpoint, self.client, tokens.refresh_token, token_type_hint="refresh_token")
        _grants.revoke(self.http, endpoint, self.client, tokens.access_token, token_type_hint="access_token")
        return True
