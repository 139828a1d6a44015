"""dex's storage objects, in memory: auth requests, auth codes, refresh tokens and the offline
sessions that tie one refresh token per client to a user, device requests and device tokens.
Callers hold the IdP lock."""

from __future__ import annotations

from bblogin._record import field, record


@record(frozen=True)
class Identity:
    """dex's storage.Claims (what a connector says about the user)."""

    user_id: str
    username: str
    preferred_username: str = ""
    email: str = ""
    email_verified: bool = False
    groups: tuple[str, ...] = ()


@record(frozen=True)
class PKCE:
    challenge: str = ""
    method: str = "plain"


@record
class AuthRequest:
    id: str
    client_id: str
    redirect_uri: str
    scopes: list[str]
    state: str
    nonce: str
    connector_id: str
    pkce: PKCE
    force_approval: bool
    hmac_key: bytes
    expiry: float = 0.0
    logged_in: bool = False
    claims: Identity | None = None
    connector_data: str = ""


@record
class AuthCode:
    id: str
    client_id: str
    connector_id: str
    nonce: str
    scopes: list[str]
    claims: Identity
    expiry: float
    redirect_uri: str
    connector_data: str
    pkce: PKCE


@record
class RefreshToken:
    id: str
    token: str
    client_id: str
    connector_id: str
    scopes: list[str]
    claims: Identity
    nonce: str
    created_at: float
    last_used: float
    obsolete_token: str = ""
    connector_data: str = ""  # the login's upstream grant, until the first refresh moves it to the session


@record
class OfflineSession:
    """Per user and connector: the one refresh token of each client, and the upstream grant."""

    refresh: dict[str, str] = field(default_factory=dict)  # client_id -> refresh token id
    connector_data: str = ""


@record
class DeviceRequest:
    user_code: str
    device_code: str
    client_id: str
    client_secret: str
    scopes: list[str]
    expiry: float


@record
class DeviceToken:
    expiry: float
    last_request: float
    pkce: PKCE
    poll_interval: int = 0
    token: bytes | None = None  # the token response, once the person approved


@record
class Store:
    auth_requests: dict[str, AuthRequest] = field(default_factory=dict)
    auth_codes: dict[str, AuthCode] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    offline_sessions: dict[tuple[str, str], OfflineSession] = field(default_factory=dict)  # (user_id, connector_id)
    device_requests: dict[str, DeviceRequest] = field(default_factory=dict)  # by user code
    device_tokens: dict[str, DeviceToken] = field(default_factory=dict)  # by device code
