"""Ensure-fresh: the one answer to "give me a valid credential for this account".

    cached and valid?  ── yes → return it
    take the account lock (timeout) → re-read index and keyring (another process may have
    refreshed) → refresh with the refresh token → store the rotated refresh token first →
    (dead grant and interactive → a new login; network trouble → an error, never a browser)

Every frontend (kubectl, git, CLI, TUI) calls :func:`get_credential`; the hot path in ``_hot._answer``
answers the common case before this module is even imported.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bblogin import _index
from bblogin._errors import LoginRequired, RefreshTokenDead
from bblogin._lock import account_lock
from bblogin._store import SecretStore
from bblogin._tokens import TOKEN_KINDS, Identity, TokenSet, account_id

if TYPE_CHECKING:
    from bblogin._config import Profile
    from bblogin._index import Account
    from bblogin._login import LoginOptions

log = logging.getLogger("bblogin")

NON_INTERACTIVE_LOCK_TIMEOUT = 30


@dataclass(frozen=True)
class Credential:
    account: Account
    kind: str
    token: str
    expires_at: int

    def __repr__(self) -> str:
        return f"Credential(account={self.account.id}, kind={self.kind}, expires_at={self.expires_at})"


def login_command(profile: Profile) -> str:
    return f"bblogin login --profile {profile.name}"


def _fresh(profile: Profile, account: Account, store: SecretStore, kind: str, margin: int) -> Credential | None:
    """The cached ``kind`` token when it stays valid for ``margin`` more seconds — the same test
    the hot path makes (``_hot._answer.cached_token``), reading through the keyring library."""
    from dataclasses import asdict

    from bblogin._hot._answer import cached_token

    checks = {"issuer": profile.issuer, "client_id": profile.client_id, "refresh_margin": margin}
    hit = cached_token(checks, asdict(account), kind, read=lambda acct, k, _storage: store.get(acct, k))
    return Credential(account, kind, *hit) if hit else None


def _write_secrets(account_id: str, tokens: TokenSet, store: SecretStore) -> None:
    """The (rotated) refresh token first: it is the one thing that cannot be had again."""
    values = tokens.values()
    for kind in ("refresh_token", "id_token", "access_token"):
        if kind in values:
            store.set(account_id, kind, values[kind])


def store_tokens(profile: Profile, account: Account, tokens: TokenSet, store: SecretStore) -> None:
    """After a refresh: write what changed (tokens the IdP did not re-issue stay as they are)."""
    _write_secrets(account.id, tokens, store)
    account.record_tokens(tokens)
    with _index.transaction() as index:
        current = index.accounts.get(account.id, account)
        current.record_tokens(tokens)
        index.accounts[account.id] = current


def save_login(profile: Profile, tokens: TokenSet, identity: Identity, *, make_active: bool = True) -> Account:
    """Record a completed login: the account (stable id from issuer, client id, sub) and its tokens."""
    from bblogin._index import Account

    acct_id = account_id(profile.issuer, profile.client_id, identity.sub)
    account = Account(
        id=acct_id, profile=profile.name, provider=profile.provider, issuer=profile.issuer,
        client_id=profile.client_id, sub=identity.sub, storage=profile.storage,
    )
    account.set_identity(identity)
    account.record_tokens(tokens)
    store = SecretStore(profile.storage)
    _write_secrets(acct_id, tokens, store)
    for kind in TOKEN_KINDS:
        if kind not in account.tokens:
            store.delete(acct_id, kind)  # e.g. a refresh token from an older login: dead now
    with _index.transaction() as index:
        index.accounts[acct_id] = account
        if make_active or profile.name not in index.active:
            index.active[profile.name] = acct_id
    return account


def _refresh(profile: Profile, account: Account, store: SecretStore) -> TokenSet | None:
    """Refresh ``account``; None when it has no usable refresh token. Marks dead grants."""
    if account.refresh_dead or not account.has("refresh_token"):
        return None
    refresh_token = store.get(account.id, "refresh_token")
    if refresh_token is None:
        return None
    from bblogin._providers import for_profile

    provider = for_profile(profile)
    log.debug("refreshing tokens for account %s at %s", account.id, profile.issuer)
    try:
        tokens = provider.refresh(refresh_token)
    except RefreshTokenDead:
        with _index.transaction() as index:
            if account.id in index.accounts:
                index.accounts[account.id].refresh_dead = True
        account.refresh_dead = True
        raise
    identity = provider.identity(tokens)
    if identity.sub != account.sub:
        from bblogin._errors import TokenVerificationError

        raise TokenVerificationError("the refreshed tokens belong to a different user than the account; nothing was stored")
    store_tokens(profile, account, tokens, store)
    return tokens


def get_credential(
    profile: Profile,
    *,
    kind: str = "id_token",
    account: Account | None = None,
    interactive: bool = False,
    force_refresh: bool = False,
    login: LoginOptions | None = None,
) -> Credential:
    """A valid ``kind`` token for ``account`` (default: the profile's active account).

    Refreshes when the cached token expires within the profile's margin. A dead refresh token
    leads to a login only when ``interactive``; otherwise :class:`LoginRequired` names the
    command to run. Network and IdP failures raise :class:`IdPError` and never start a login.
    """
    index = _index.load()
    account = account or index.active_account(profile.name)
    store = SecretStore(profile.storage)
    margin = profile.refresh_margin
    if account is not None and not force_refresh:
        cached = _fresh(profile, account, store, kind, margin)
        if cached is not None:
            return cached
    lock_key = account.id if account is not None else f"profile-{profile.name}"
    timeout = profile.lock_timeout if interactive else min(profile.lock_timeout, NON_INTERACTIVE_LOCK_TIMEOUT)
    with account_lock(lock_key, timeout):
        index = _index.load()
        if account is None:
            account = index.active_account(profile.name)
        elif account.id in index.accounts:
            fresh_after_wait = index.accounts[account.id]
            refreshed_meanwhile = fresh_after_wait.updated_at != account.updated_at
            account = fresh_after_wait
            if force_refresh and refreshed_meanwhile:
                force_refresh = False  # someone refreshed while we waited: their tokens are new
        if account is not None and not force_refresh:
            cached = _fresh(profile, account, store, kind, margin)
            if cached is not None:
                return cached
        if profile.pipelines:  # CI: a fresh exchange of the step's identity token, never a login
            from bblogin._exchange import exchange, subject_token

            tokens, identity = exchange(profile, subject_token())
            return _issued(save_login(profile, tokens, identity), profile, kind)
        if account is not None:
            try:
                if _refresh(profile, account, store) is not None:
                    cached = _fresh(profile, account, store, kind, 0)
                    if cached is not None:
                        return cached
            except RefreshTokenDead as exc:
                if not interactive:
                    raise RefreshTokenDead(
                        f"the login for {account.label} ({profile.name}) has ended: the identity provider refused the refresh token",
                        hint=f"run `{login_command(profile)}`",
                    ) from exc
                print(f"bblogin: the login for {account.label} has ended ({exc.message}); starting a new login.", file=sys.stderr)
        if not interactive:
            who = f" for {account.label}" if account is not None else ""
            raise LoginRequired(f"no valid {kind.replace('_', ' ')}{who} in profile {profile.name!r}", hint=f"run `{login_command(profile)}`")
        from bblogin._login import LoginOptions, interactive_login

        tokens, identity = interactive_login(profile, login or LoginOptions())
        return _issued(save_login(profile, tokens, identity), profile, kind)


def _issued(account: Account, profile: Profile, kind: str) -> Credential:
    """The ``kind`` token a login or exchange just stored."""
    cached = _fresh(profile, account, SecretStore(profile.storage), kind, 0)
    if cached is None:
        raise LoginRequired(f"the identity provider issued no {kind.replace('_', ' ')} for profile {profile.name!r}", hint="check the profile's scopes")
    return cached


def forget_cached(profile: Profile, account: Account) -> None:
    """After a 401: drop the cached access and ID tokens, keep the refresh token."""
    store = SecretStore(profile.storage)
    for kind in ("access_token", "id_token"):
        store.delete(account.id, kind)
    with _index.transaction() as index:
        current = index.accounts.get(account.id)
        if current is not None:
            for kind in ("access_token", "id_token"):
                current.tokens.pop(kind, None)


def logout(profile: Profile, account: Account) -> bool:
    """Revoke at the IdP where possible, delete the secrets and the index entry. True if revoked."""
    store = SecretStore(profile.storage)
    revoked = False
    values = {k: store.get(account.id, k) for k in account.tokens}
    if values.get("access_token"):
        from bblogin._errors import IdPError
        from bblogin._providers import for_profile

        try:
            revoked = for_profile(profile).revoke(
                TokenSet(access_token=values["access_token"] or "", refresh_token=values.get("refresh_token"))
            )
        except IdPError as exc:
            print(f"bblogin: could not revoke at the identity provider ({exc.message}); removing the local tokens anyway", file=sys.stderr)
    store.delete_account(account.id)
    with _index.transaction() as index:
        index.accounts.pop(account.id, None)
        for prof, active in list(index.active.items()):
            if active == account.id:
                others = [a.id for a in index.for_profile(prof)]
                if others:
                    index.active[prof] = others[0]
                else:
                    del index.active[prof]
    return revoked
