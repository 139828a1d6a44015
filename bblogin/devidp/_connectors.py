"""dex's connectors as the dev IdP runs them: ``bitbucketcloud`` (a browser login at the
Bitbucket double; refresh re-reads the account) and ``oidc`` (here: trusting a Bitbucket
Pipelines issuer, for the token-exchange grant only). Like dex's connector interfaces, what a
connector can do is the protocols it implements: another connector is one more class."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from bblogin import _record
from bblogin._record import record
from bblogin.devidp._bitbucket import CONSUMER_KEY, FakeBitbucket
from bblogin.devidp._pipelines import PipelinesIssuer
from bblogin.devidp._store import Identity
from bblogin.devidp._users import BitbucketUser
from bblogin.devidp._web import Request, with_params

ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


class ConnectorError(Exception):
    """The upstream refused or failed: dex logs the reason and shows the person a generic error."""


class Connector(Protocol):
    id: str
    name: str
    type: str


@runtime_checkable
class CallbackConnector(Protocol):
    """A browser login at the upstream, which sends the person back to dex's /callback."""

    def login_url(self, scopes: list[str], state: str) -> str: ...

    def handle_callback(self, scopes: list[str], request: Request) -> tuple[Identity, str]: ...


@runtime_checkable
class RefreshConnector(Protocol):
    """dex hands out refresh tokens only for these, and asks them again on every refresh."""

    def refresh(self, scopes: list[str], identity: Identity, connector_data: str) -> Identity: ...


@runtime_checkable
class TokenIdentityConnector(Protocol):
    """Verifies a subject token for the token-exchange grant."""

    def token_identity(self, subject_token_type: str, subject_token: str) -> Identity: ...


class BitbucketCloudConnector:
    """dex's connector/bitbucketcloud (v2.45): UserID = account uuid, Username = username, the
    primary confirmed email (verified), groups = workspace slugs when the ``groups`` scope or
    ``teams`` asks for them (``teams`` also filters them; no overlap fails the login)."""

    type = "bitbucketcloud"

    def __init__(self, connector_id: str, name: str, bitbucket: FakeBitbucket, teams: tuple[str, ...] = ()) -> None:
        self.id, self.name, self.bitbucket, self.teams = connector_id, name, bitbucket, teams

    def _groups_required(self, scopes: list[str]) -> bool:
        return bool(self.teams) or "groups" in scopes

    def login_url(self, scopes: list[str], state: str) -> str:
        bitbucket_scopes = "account email" + (" team" if self._groups_required(scopes) else "")
        params = [("client_id", CONSUMER_KEY), ("response_type", "code"), ("scope", bitbucket_scopes), ("state", state)]
        return with_params(self.bitbucket.authorize_url, params, replace=True)

    def handle_callback(self, scopes: list[str], request: Request) -> tuple[Identity, str]:
        """The identity and the connector data dex keeps for refreshes (the upstream token)."""
        if request.arg("error"):
            raise ConnectorError(f"{request.arg('error')}: {request.arg('error_description')}")
        token = self.bitbucket.exchange(request.arg("code"))
        if token is None:
            raise ConnectorError("bitbucket: failed to get token")
        identity = self._identity(scopes, self._account(token), None)
        return identity, token if "offline_access" in scopes else ""

    def refresh(self, scopes: list[str], identity: Identity, connector_data: str) -> Identity:
        """dex re-reads the account on every refresh: username, email and groups follow Bitbucket."""
        if not connector_data:
            raise ConnectorError("bitbucket: no upstream access token found")
        return self._identity(scopes, self._account(connector_data), identity)

    def _account(self, token: str) -> BitbucketUser:
        user = self.bitbucket.account(token)
        if user is None:
            raise ConnectorError("bitbucket: get user: 401 Unauthorized")
        if user.email is None:
            raise ConnectorError("bitbucket: user has no confirmed, primary email")
        return user

    def _identity(self, scopes: list[str], user: BitbucketUser, previous: Identity | None) -> Identity:
        groups: tuple[str, ...] = previous.groups if previous else ()
        if self._groups_required(scopes):
            groups = user.workspaces
            if self.teams:
                groups = tuple(g for g in groups if g in self.teams)
                if not groups:
                    raise ConnectorError(f"bitbucket: user {user.username!r} is not in any of the required teams")
        if previous is not None:  # Refresh keeps UserID and EmailVerified
            return _record.replace(previous, username=user.username, email=user.email or "", groups=groups)
        return Identity(user_id=user.uuid, username=user.username, email=user.email or "", email_verified=True, groups=groups)


@record(frozen=True)
class OIDCConfig:
    """The subset of dex's oidc connector configuration that token exchange reads. An empty
    issuer or client_id means the Pipelines double's ``acme`` workspace issuer and audience."""

    issuer: str = ""
    client_id: str = ""
    scopes: tuple[str, ...] = ()  # dex prepends openid; empty means "profile email"
    user_name_key: str = ""  # default "name"
    user_id_key: str = ""  # default "sub"
    insecure_skip_email_verified: bool = False
    insecure_enable_groups: bool = False


class OIDCConnector:
    """dex's connector/oidc for RFC 8693 token exchange (createIdentity with the exchange caller).
    The upstream here is the Pipelines double; it has no userinfo, so access tokens never verify."""

    type = "oidc"

    def __init__(self, connector_id: str, name: str, config: OIDCConfig, issuers: PipelinesIssuer) -> None:
        self.id, self.name, self.config, self.issuers = connector_id, name, config, issuers

    def token_identity(self, subject_token_type: str, subject_token: str) -> Identity:
        if subject_token_type == ACCESS_TOKEN_TYPE:
            raise ConnectorError("oidc: getUserInfo is required for access token exchange")
        if subject_token_type != ID_TOKEN_TYPE:
            raise ConnectorError(f"unknown token type for token exchange: {subject_token_type}")
        claims = self.issuers.verify(subject_token, self.config.issuer)
        if claims is None:
            raise ConnectorError("oidc: failed to verify token")
        return self._identity(claims)

    def _identity(self, claims: dict[str, Any]) -> Identity:
        config = self.config
        subject, name_key = claims.get("sub"), config.user_name_key or "name"
        if not isinstance(subject, str):
            raise ConnectorError('missing "sub" claim')
        name = claims.get(name_key)
        if not isinstance(name, str):
            raise ConnectorError(f'missing "{name_key}" claim')
        has_email_scope = "email" in (config.scopes or ("profile", "email"))
        email = claims.get("email")
        if not isinstance(email, str) and has_email_scope:
            raise ConnectorError('missing email claim, not found "email" key')
        verified = claims.get("email_verified")
        if not isinstance(verified, bool):
            if not config.insecure_skip_email_verified and has_email_scope:
                raise ConnectorError('missing "email_verified" claim')
            verified = config.insecure_skip_email_verified
        user_id = subject
        if config.user_id_key:
            value = claims.get(config.user_id_key)
            if not isinstance(value, str):
                raise ConnectorError(f"oidc: not found {config.user_id_key} claim")
            user_id = value
        preferred = claims.get("preferred_username")
        return Identity(
            user_id=user_id,
            username=name,
            preferred_username=preferred if isinstance(preferred, str) else "",
            email=email if isinstance(email, str) else "",
            email_verified=verified,
            groups=self._groups(claims) if config.insecure_enable_groups else (),
        )

    @staticmethod
    def _groups(claims: dict[str, Any]) -> tuple[str, ...]:
        value = claims.get("groups")
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list):
            return ()
        groups = []
        for item in value:
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                groups.append(item["name"])
            elif isinstance(item, str):
                groups.append(item)
            else:
                raise ConnectorError('malformed "groups" claim')
        return tuple(groups)

