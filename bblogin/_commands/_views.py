"""Account descriptions shared by `status`, `accounts` and the TUI: one source for what is shown."""

from __future__ import annotations

from typing import Any

from bblogin._config import Config, Profile
from bblogin._index import Account, Index
from bblogin._session import issued_for
from bblogin._store import SecretStore
from bblogin._timefmt import describe_expiry


def token_state(account: Account, at: int, profile: Profile | None = None) -> str:
    """One phrase for the account's login: valid, needs refresh, ended — or not used, when its
    profile now names another identity provider or client (docs/security.md)."""
    if profile is not None and not issued_for(account, profile):
        return f"not used: profile {profile.name} now names {profile.issuer} (client {profile.client_id})"
    id_exp = account.expires_at("id_token") or account.expires_at("access_token")
    if id_exp is not None and id_exp > at:
        return "valid"
    if account.has("refresh_token") and not account.refresh_dead:
        return "expired (will refresh)"
    return "login needed"


def describe(account: Account, config: Config, index: Index) -> dict[str, Any]:
    """Everything `status --json` says about one account; no token values. Expiries are judged
    in the IdP's time (this machine's clock + the offset last measured)."""
    at = account.idp_now()
    clock = account.idp_clock
    profile = config.profiles.get(account.profile)
    store = SecretStore(account.storage)
    return {
        "id": account.id,
        "profile": account.profile,
        "active": index.active.get(account.profile) == account.id,
        "provider": account.provider,
        "issuer": account.issuer,
        "client_id": account.client_id,
        "sub": account.sub,
        "email": account.email,
        "name": account.name,
        "username": account.username,
        "groups": account.groups,
        "state": token_state(account, at, profile),
        "tokens": {kind: {"expires_at": info.get("expires_at"), "expiry": describe_expiry(account.expires_at(kind), at) if kind != "refresh_token" else ("refused by the IdP" if account.refresh_dead else "held")} for kind, info in account.tokens.items()},
        "storage": account.storage,
        "storage_description": store.backend_description(),
        "plaintext": store.is_plaintext,
        "profile_configured": profile is not None,
        "clock": {"offset": clock.offset, "unbelieved": clock.unbelieved, "note": clock.note()},
    }
