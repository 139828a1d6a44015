"""Account descriptions shared by `status`, `accounts` and the TUI: one source for what is shown."""

from __future__ import annotations

from typing import Any

from bblogin import _outage
from bblogin._config import BITBUCKET_PROVIDERS, Config, Profile
from bblogin._hot._answer import OUTAGE_FLOOR, effective_margin
from bblogin._index import Account, Index
from bblogin._session import issued_for, serves
from bblogin._store import SecretStore
from bblogin._timefmt import describe_expiry


def _token_view(account: Account, kind: str, info: dict[str, Any], margin: int | None, at: int) -> dict[str, Any]:
    """One token's line: its expiry and, for ID and access tokens, the effective refresh margin."""
    if kind == "refresh_token":
        return {"expires_at": info.get("expires_at"), "expiry": "refused by the IdP" if account.refresh_dead else "held"}
    expiry = describe_expiry(account.expires_at(kind), at)
    if margin is None:
        return {"expires_at": info.get("expires_at"), "expiry": expiry}
    effective = effective_margin(margin, info)
    expires_at = account.expires_at(kind)
    inside = expires_at is not None and at < expires_at <= at + effective
    note = f"refresh margin {effective} s" + (f" (capped from {margin} s: a quarter of its lifetime)" if effective < margin else "")
    return {
        "expires_at": info.get("expires_at"),
        "refresh_margin": effective,
        "expiry": f"{expiry}; {'inside its ' if inside else ''}{note}",
    }


def token_state(account: Account, at: int, kind: str = "id_token", margin: int = 0, profile: Profile | None = None) -> str:
    """What `bblogin token` (and kubectl/git) will do for ``kind`` now: use the cached token,
    refresh it, or ask for a login — with the same margin test the token path makes; or not use
    it at all, when its profile now names another identity provider or client (docs/security.md)."""
    if profile is not None and not issued_for(account, profile):
        return f"not used: profile {profile.name} now names {profile.issuer} (client {profile.client_id})"
    if profile is not None and not serves(account, profile):
        return f"not used: profile {profile.name} now asks for other scopes or parameters than this login was made with (log in again)"
    info = account.tokens.get(kind) or {}
    expires_at = account.expires_at(kind)
    if expires_at is not None and expires_at > at + effective_margin(margin, info):
        return "valid"
    refreshable = account.has("refresh_token") and not account.refresh_dead
    outage = _outage.waiting(account) if refreshable else None
    if outage is not None:
        if expires_at is not None and expires_at > at + OUTAGE_FLOOR:
            return f"served from the cache while the identity provider is failing (next try at {outage.next_try()})"
        return f"expired, and the identity provider is failing: calls fail until the next try at {outage.next_try()}"
    if expires_at is not None and expires_at > at:
        return "expiring (the next use refreshes it)" if refreshable else "login needed (the token is inside its refresh margin and cannot be refreshed)"
    return "expired (the next use refreshes it)" if refreshable else "login needed"


def served_kind(account: Account, profile: Profile | None) -> str:
    """The token an account's state is judged by: the one its profile serves — the ID token,
    unless the profile serves access tokens (``use_access_token``) or has no ID tokens at all
    (Bitbucket Cloud and Data Center issue none: git and kubectl get the access token)."""
    if account.provider in BITBUCKET_PROVIDERS or (profile is not None and (profile.use_access_token or profile.provider in BITBUCKET_PROVIDERS)):
        return "access_token"
    return "id_token" if "id_token" in account.tokens or "access_token" not in account.tokens else "access_token"


def memberships(index: Index) -> list[tuple[str, Account]]:
    """(profile, token set) for every profile each set serves, sorted by profile and who."""
    pairs = [(name, a) for a in index.accounts.values() for name in a.profiles]
    return sorted(pairs, key=lambda pair: (pair[0], pair[1].email or pair[1].sub))


def outage_view(account: Account) -> dict[str, Any] | None:
    """The recorded IdP outage of ``account`` (``_outage``) for `status --json` and the TUI."""
    outage = _outage.of(account)
    return None if outage is None else {**outage.to_json(), "waiting": outage.waiting(), "note": outage.describe()}


def describe(account: Account, config: Config, index: Index, member: str) -> dict[str, Any]:
    """Everything `status --json` says about one account as profile ``member`` uses it; no
    token values. Expiries are judged in the IdP's time (this machine's clock + the offset last
    measured)."""
    at = account.idp_now()
    clock = account.idp_clock
    profile = config.profiles.get(member) or config.adhoc.get(member)
    margin = profile.refresh_margin if profile is not None else None
    kind = served_kind(account, profile)
    store = SecretStore(account.storage)
    return {
        "id": account.identity,
        "token_set": account.id,
        "profile": member,
        "shared_with": [p for p in account.profiles if p != member],
        "active": index.active.get(member) == account.id,
        "provider": account.provider,
        "issuer": account.issuer,
        "client_id": account.client_id,
        "sub": account.sub,
        "email": account.email,
        "name": account.name,
        "username": account.username,
        "groups": account.groups,
        "state": token_state(account, at, kind, margin or 0, profile),
        "tokens": {k: _token_view(account, k, info, margin, at) for k, info in account.tokens.items()},
        "storage": account.storage,
        "storage_description": store.backend_description(),
        "plaintext": store.is_plaintext,
        "profile_configured": profile is not None,
        "clock": {"offset": clock.offset, "unbelieved": clock.unbelieved, "note": clock.note()},
        "outage": outage_view(account),
    }
