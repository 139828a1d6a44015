"""The dev IdP's tunables: dex's configuration values, plus the double's own (auto_approve,
default_user). Mutable on purpose: tests change them between requests."""

from __future__ import annotations

from bblogin._record import record


@record
class Settings:
    issuer: str  # set once the port is known
    auto_approve: bool  # the fake Bitbucket logs default_user in and no approval screen is shown
    default_user: str
    id_token_ttl: int  # dex expiry.idTokens
    refresh_reuse_interval: float  # dex expiry.refreshTokens.reuseInterval (0: off)
    refresh_token_ttl: float | None  # dex expiry.refreshTokens.absoluteLifetime (None: never)
    refresh_unused_ttl: float | None  # dex expiry.refreshTokens.validIfNotUsedFor (None: never)
    skip_approval: bool  # dex skipApprovalScreen
    device_interval: int  # dex's poll interval (5 in dex)
    device_expires_in: int  # dex expiry.deviceRequests

    @property
    def issuer_path(self) -> str:
        return "/" + self.issuer.split("/", 3)[3]
