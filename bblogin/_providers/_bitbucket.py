"""Bitbucket Cloud and Bitbucket Data Center as OAuth 2.0 providers (no OIDC, so no ID token).

Both use the authorization code flow with PKCE S256 (Cloud does not document PKCE; it is sent
anyway) and have no device flow: without a browser, bblogin falls back to pasting the redirect
URL. Both send the browser back only to the callback URL registered for the client, so a profile
names it (``redirect_uri``, or a fixed ``listen_port``: ``_config.registered_redirect``). Who
logged in comes from each product's REST API, asked only on the configured host.

Cloud (https://developer.atlassian.com/cloud/bitbucket/oauth-2/; GCM
src/shared/Atlassian.Bitbucket/Cloud; dex connector/bitbucketcloud):

- authorize ``https://bitbucket.org/site/oauth2/authorize`` with the profile's ``scope`` (the
  consumer's permissions cap what is granted); token ``/site/oauth2/access_token`` with the
  consumer key and secret via HTTP Basic (Atlassian's own examples: ``curl -u client_id:secret``);
- the token answer names the granted scopes in ``scopes`` (GCM's BitbucketTokenEndpointResponseJson
  reads that non-standard field); ``scope`` is accepted too;
- a revoked or expired refresh token is answered ``invalid_request`` "Invalid refresh_token", not
  ``invalid_grant`` (seen in readthedocs/readthedocs.org#2992): that too is a dead grant;
- the user from ``/2.0/user``, ``/2.0/user/emails`` and ``/2.0/user/workspaces`` on
  api.bitbucket.org, the only API host (dex's connector hard-codes it as well).

Data Center ≥ 7.21, incoming application link (Atlassian's "Bitbucket OAuth 2.0 provider API";
GCM src/shared/Atlassian.Bitbucket/DataCenter; Backstage's bitbucketServer provider):

- ``{base}/rest/oauth2/latest/authorize`` and ``/token`` (a context path such as
  https://host/bitbucket is fine). client_id and client_secret go in the form body
  (client_secret_post) as every peer sends them; ``redirect_uri`` goes with the code and, as in
  Atlassian's refresh example and GCM's OAuth2Client, with every refresh;
- the authorization code lives ``atlassian.oauth2.provider.max.client.delay.seconds`` — 10 s by
  default (Atlassian's "OAuth 2.0 provider system properties") — so the paste fallback warns first;
- the user name from ``{base}/plugins/servlet/applinks/whoami`` (``X-Ausername`` as Backstage
  reads it, else the text/plain body as eclipse-che/che-server and woodpecker read it; the servlet
  answers 200 even without a session, Backstage notes), then the user from
  ``/rest/api/latest/users?filter=<name>`` matched on ``name`` exactly: the ``/users/{slug}``
  path takes the slug, which differs from the name for many users (``a@b.com`` → ``a_b.com``).
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable
from functools import cached_property
from typing import Any

import httpx

from bblogin import _clock
from bblogin._config import BITBUCKET_CLOUD_URL, Profile, registered_redirect
from bblogin._errors import ConfigError, IdPResponseError, OAuthError, RefreshTokenDead, TokenVerificationError
from bblogin._oidc import _grants
from bblogin._tokens import Identity, TokenSet

MAX_PAGES = 20
CLOUD_API = "https://api.bitbucket.org/2.0"
CLOUD_DEAD_REFRESH = ("invalid_request", "Invalid refresh_token")  # Cloud's answer to a revoked/expired one


class _BitbucketOAuth2:
    authorize_path = ""
    token_path = ""
    client_auth_method = "client_secret_basic"
    paste_warning: str | None = None

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.base = profile.issuer.rstrip("/")

    @cached_property
    def http(self) -> httpx.Client:
        from bblogin._http import make_client

        # the IdP is the git host itself: git's http.proxy (when the environment names none) and
        # http.sslCAInfo for it apply, as they do to git (and to Git Credential Manager)
        return make_client(ca_file=self.profile.ca_file, proxy=self.profile.proxy, git_url=self.base)

    @property
    def supports_device_flow(self) -> bool:
        return False

    @property
    def client(self) -> _grants.ClientAuth:
        return _grants.ClientAuth(self.profile.client_id, self.profile.client_secret, self.client_auth_method)

    def _check_client(self) -> None:
        """Refuse, before the first request of a login or refresh, what the product will refuse.
        Not in ``__init__``: logging out (Bitbucket revokes nothing) and reading tokens must work
        for an account whose profile is gone (``_session.profile_for`` has no secret then)."""

    def authorization_url(self, *, redirect_uri: str, state: str, nonce: str, code_challenge: str) -> str:
        self._check_client()
        scope = " ".join(self.profile.scopes) if self.profile.scopes else None
        endpoint = self.base + self.authorize_path
        return _grants.authorization_url(endpoint, self.profile.client_id, redirect_uri=redirect_uri, state=state, code_challenge=code_challenge, scope=scope, extra=self.profile.extra_auth_params)

    def _token(self, what: str, grant_type: str, on_rotated: Callable[[str], None] | None = None, **form: str | None) -> TokenSet:
        self._check_client()
        endpoint = self.base + self.token_path
        body = _grants.fetch_token(self.http, endpoint, self.client, what, grant_type, **form)
        _grants.hand_over_rotated(body, on_rotated)
        if "scope" not in body and isinstance(body.get("scopes"), str):
            body = {**body, "scope": body["scopes"]}  # Bitbucket's name for the granted scopes
        tokens = _grants.parse_token_response(body, received_at=int(time.time()))
        return _clock.stamped(tokens, endpoint)  # opaque tokens: expires_in counted from the answer's Date

    def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str) -> TokenSet:
        return self._token("redeeming the authorization code", "authorization_code", code=code, redirect_uri=redirect_uri, code_verifier=code_verifier)

    def _refresh_form(self) -> dict[str, str]:
        return {}

    def _is_dead_refresh(self, exc: OAuthError) -> bool:
        return _grants.is_dead_refresh(exc)

    def refresh(self, refresh_token: str, *, on_rotated: Callable[[str], None] | None = None) -> TokenSet:
        try:
            return self._token("refreshing the tokens", "refresh_token", on_rotated, refresh_token=refresh_token, **self._refresh_form())
        except OAuthError as exc:
            if not self._is_dead_refresh(exc):
                raise
            reason = f"{exc.error}: {exc.description}" if exc.description else exc.error
            raise RefreshTokenDead(
                f"Bitbucket no longer accepts this login's refresh token ({reason})",
                hint=f"log in again: `bblogin login --profile {self.profile.name}`",
            ) from None

    def revoke(self, tokens: TokenSet) -> bool:
        return False  # neither product offers token revocation to OAuth clients

    def _get(self, url: str, token: str, what: str) -> httpx.Response:
        from bblogin._http import request

        if httpx.URL(url).host not in self._api_hosts():
            raise TokenVerificationError(f"{what}: refusing to send the token to {httpx.URL(url).host}, which is not this profile's Bitbucket")
        response = request(self.http, "GET", url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}, what=what)
        if response.status_code != 200:
            raise IdPResponseError(f"{what}: HTTP {response.status_code}", hint="check the OAuth consumer's permissions (account, email) in Bitbucket")
        return response

    def _json(self, url: str, token: str, what: str) -> dict[str, Any]:
        from bblogin._http import parse_json

        return parse_json(self._get(url, token, what), what)

    def _api_hosts(self) -> set[str]:
        return {httpx.URL(self.base).host}


class BitbucketCloud(_BitbucketOAuth2):
    authorize_path = "/site/oauth2/authorize"
    token_path = "/site/oauth2/access_token"

    def __init__(self, profile: Profile) -> None:
        super().__init__(profile)
        if self.base != BITBUCKET_CLOUD_URL:
            raise ConfigError(
                f"profile {profile.name!r}: Bitbucket Cloud lives at {BITBUCKET_CLOUD_URL}, not {profile.issuer}",
                hint=f"set issuer = \"{BITBUCKET_CLOUD_URL}\" (or leave it out); a self-hosted Bitbucket is provider = \"bitbucket-dc\"",
            )

    def _check_client(self) -> None:
        if not self.profile.client_secret:
            raise ConfigError(
                f"profile {self.profile.name!r}: Bitbucket Cloud OAuth consumers need client_secret",
                hint="copy the consumer's secret from Bitbucket (workspace settings → OAuth consumers) into the profile",
            )

    def _is_dead_refresh(self, exc: OAuthError) -> bool:
        return super()._is_dead_refresh(exc) or (exc.error, exc.description) == CLOUD_DEAD_REFRESH

    def _api_hosts(self) -> set[str]:
        return {httpx.URL(CLOUD_API).host}

    def identity(self, tokens: TokenSet) -> Identity:
        token = tokens.access_token
        user = self._json(f"{CLOUD_API}/user", token, "reading the Bitbucket user")
        uuid = user.get("uuid")
        if not isinstance(uuid, str) or not uuid:
            raise IdPResponseError("Bitbucket's /2.0/user answer has no uuid")
        emails = self._json(f"{CLOUD_API}/user/emails", token, "reading the Bitbucket user's emails").get("values") or []
        primary = next((e.get("email") for e in emails if isinstance(e, dict) and e.get("is_primary") and e.get("is_confirmed")), None)
        return Identity(
            sub=uuid,
            email=primary if isinstance(primary, str) else None,
            name=user.get("display_name") if isinstance(user.get("display_name"), str) else None,
            username=user.get("username") if isinstance(user.get("username"), str) else None,
            groups=tuple(self._workspaces(token)),
            claims={k: v for k, v in user.items() if k in ("uuid", "username", "display_name", "account_id")},
        )

    def _workspaces(self, token: str) -> list[str]:
        slugs: list[str] = []
        url: str | None = f"{CLOUD_API}/user/workspaces?pagelen=100"
        for _ in range(MAX_PAGES):
            if url is None:
                break
            page = self._json(url, token, "listing the Bitbucket user's workspaces")
            for value in page.get("values") or []:
                workspace = value.get("workspace", value) if isinstance(value, dict) else {}
                if isinstance(workspace, dict) and isinstance(workspace.get("slug"), str):
                    slugs.append(workspace["slug"])
            nxt = page.get("next")
            url = nxt if isinstance(nxt, str) else None  # _get refuses a next page on another host
        return slugs


class BitbucketDataCenter(_BitbucketOAuth2):
    authorize_path = "/rest/oauth2/latest/authorize"
    token_path = "/rest/oauth2/latest/token"
    client_auth_method = "client_secret_post"
    paste_warning = (
        "Bitbucket Data Center accepts the authorization code for 10 seconds by default "
        "(atlassian.oauth2.provider.max.client.delay.seconds): have this terminal ready, and paste the "
        "address the moment the browser shows it. If the login fails with invalid_grant, run it again, or "
        "ask the Bitbucket administrator to raise that limit (up to 600 seconds)."
    )

    def _refresh_form(self) -> dict[str, str]:
        """DC refuses a refresh without the client secret or the registered redirect_uri — the
        latter with a bare ``invalid_grant`` that would pass for a dead login — so without them
        (the account's profile is gone or names no callback) nothing is sent."""
        registered = registered_redirect(self.profile)
        if registered is None or not self.profile.client_secret:
            missing = [key for key, absent in (("client_secret", not self.profile.client_secret), ("redirect_uri", registered is None)) if absent]
            raise ConfigError(
                f"profile {self.profile.name!r} has no {' and no '.join(missing)}, which Bitbucket Data Center needs to refresh "
                "the login; the refresh token was not sent",
                hint=f"put them in [profiles.{self.profile.name}] in config.toml (redirect_uri: the incoming link's Redirect URL)",
            )
        return {"redirect_uri": registered[1]}

    def identity(self, tokens: TokenSet) -> Identity:
        token = tokens.access_token
        whoami = self._get(f"{self.base}/plugins/servlet/applinks/whoami", token, "asking Bitbucket who is logged in")
        body = whoami.text.strip()
        # X-Ausername, else the text/plain body (a proxy may strip X-A* headers: they disclose user names)
        name = whoami.headers.get("X-Ausername", "").strip() or (body if len(body) <= 255 and "\n" not in body else "")
        if not name:
            raise IdPResponseError("Bitbucket Data Center did not say who is logged in (whoami)", hint="the access token may have expired: log in again")
        user = self._user_named(name, token)
        user_id = user.get("id")
        if user_id is None:
            raise IdPResponseError("Bitbucket Data Center's user answer has no id")
        return Identity(
            sub=str(user_id),
            email=user.get("emailAddress") if isinstance(user.get("emailAddress"), str) else None,
            name=user.get("displayName") if isinstance(user.get("displayName"), str) else None,
            username=name,
            claims={k: v for k, v in user.items() if k in ("id", "name", "slug", "displayName")},
        )

    def _user_named(self, name: str, token: str) -> dict[str, Any]:
        """The user whose ``name`` is exactly ``name`` (the filter also matches parts of names,
        display names and e-mail addresses)."""
        start = 0
        for _ in range(MAX_PAGES):
            query = urllib.parse.urlencode({"filter": name, "start": start, "limit": 100})
            page = self._json(f"{self.base}/rest/api/latest/users?{query}", token, "reading the Bitbucket user")
            values = page.get("values")
            for user in values if isinstance(values, list) else []:
                if isinstance(user, dict) and user.get("name") == name:
                    return user
            nxt = page.get("nextPageStart")
            if page.get("isLastPage") is not False or isinstance(nxt, bool) or not isinstance(nxt, int) or nxt <= start:
                break
            start = nxt
        raise IdPResponseError("Bitbucket Data Center's user list has no user with the name whoami reported", hint="check the incoming link's permissions")
