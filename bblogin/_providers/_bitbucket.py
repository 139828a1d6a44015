"""Bitbucket Cloud and Bitbucket Data Center as OAuth 2.0 providers (no OIDC, so no ID token).

Both use the authorization code flow with PKCE S256 (Cloud does not document PKCE; it is sent
anyway) and have no device flow: without a browser, bblogin falls back to pasting the redirect
URL. Who logged in comes from each product's REST API, asked only on the configured host:

- Cloud: authorize ``{issuer}/site/oauth2/authorize``, token ``{issuer}/site/oauth2/access_token``
  (client id and secret via HTTP Basic: Bitbucket Cloud consumers are confidential); user from
  ``/2.0/user``, ``/2.0/user/emails`` and ``/2.0/user/workspaces`` on api.bitbucket.org for
  https://bitbucket.org, else on ``{issuer}/!api`` (Bitbucket's same-host API path).
- Data Center (≥ 7.20, incoming application link): ``{base}/rest/oauth2/latest/authorize`` and
  ``/token`` (a context path such as https://host/bitbucket is fine); user from
  ``{base}/plugins/servlet/applinks/whoami`` (``X-Ausername``) and ``/rest/api/latest/users/{name}``.
"""

from __future__ import annotations

import urllib.parse
from functools import cached_property
from typing import Any

import httpx

from bblogin import _clock
from bblogin._config import BITBUCKET_CLOUD_URL, Profile
from bblogin._errors import ConfigError, IdPResponseError, TokenVerificationError
from bblogin._oidc import _grants
from bblogin._tokens import Identity, TokenSet

MAX_PAGES = 20


class _BitbucketOAuth2:
    authorize_path = ""
    token_path = ""
    send_scope = True

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.base = profile.issuer.rstrip("/")

    @cached_property
    def http(self) -> httpx.Client:
        from bblogin._http import make_client

        return make_client(ca_file=self.profile.ca_file)

    @property
    def supports_device_flow(self) -> bool:
        return False

    @property
    def client(self) -> _grants.ClientAuth:
        return _grants.ClientAuth(self.profile.client_id, self.profile.client_secret)

    def authorization_url(self, *, redirect_uri: str, state: str, nonce: str, code_challenge: str) -> str:
        scope = " ".join(self.profile.scopes) if self.send_scope and self.profile.scopes else None
        endpoint = self.base + self.authorize_path
        return _grants.authorization_url(endpoint, self.profile.client_id, redirect_uri=redirect_uri, state=state, code_challenge=code_challenge, scope=scope, extra=self.profile.extra_auth_params)

    def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str) -> TokenSet:
        tokens = _grants.exchange_code(self.http, self.base + self.token_path, self.client, code=code, redirect_uri=redirect_uri, code_verifier=code_verifier)
        return _clock.stamped(tokens, self.base + self.token_path)  # opaque tokens: expires_in counted from the answer's Date

    def refresh(self, refresh_token: str) -> TokenSet:
        tokens = _grants.refresh(self.http, self.base + self.token_path, self.client, refresh_token, relogin_command=f"bblogin login --profile {self.profile.name}")
        return _clock.stamped(tokens, self.base + self.token_path)

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
    send_scope = False  # Bitbucket Cloud takes the consumer's permissions, not a scope parameter

    def __init__(self, profile: Profile) -> None:
        super().__init__(profile)
        if not profile.client_secret:
            raise ConfigError(
                f"profile {profile.name!r}: Bitbucket Cloud OAuth consumers need client_secret",
                hint="copy the consumer's secret from Bitbucket (workspace settings → OAuth consumers) into the profile",
            )

    @property
    def api(self) -> str:
        return "https://api.bitbucket.org/2.0" if self.base == BITBUCKET_CLOUD_URL else f"{self.base}/!api/2.0"

    def _api_hosts(self) -> set[str]:
        return {httpx.URL(self.api).host}

    def identity(self, tokens: TokenSet) -> Identity:
        token = tokens.access_token
        user = self._json(f"{self.api}/user", token, "reading the Bitbucket user")
        uuid = user.get("uuid")
        if not isinstance(uuid, str) or not uuid:
            raise IdPResponseError("Bitbucket's /2.0/user answer has no uuid")
        emails = self._json(f"{self.api}/user/emails", token, "reading the Bitbucket user's emails").get("values") or []
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
        url: str | None = f"{self.api}/user/workspaces?pagelen=100"
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

    def identity(self, tokens: TokenSet) -> Identity:
        token = tokens.access_token
        whoami = self._get(f"{self.base}/plugins/servlet/applinks/whoami", token, "asking Bitbucket who is logged in")
        name = (whoami.headers.get("X-Ausername") or whoami.text).strip()
        if not name:
            raise IdPResponseError("Bitbucket Data Center did not say who is logged in (whoami)")
        user = self._json(f"{self.base}/rest/api/latest/users/{urllib.parse.quote(name, safe='')}", token, "reading the Bitbucket user")
        user_id = user.get("id")
        if user_id is None:
            raise IdPResponseError("Bitbucket Data Center's user answer has no id")
        return Identity(
            sub=str(user_id),
            email=user.get("emailAddress") if isinstance(user.get("emailAddress"), str) else None,
            name=user.get("displayName") if isinstance(user.get("displayName"), str) else None,
            username=str(user.get("name") or name),
            claims={k: v for k, v in user.items() if k in ("id", "name", "slug", "displayName")},
        )
