"""Ensure-fresh: the one answer to "give me a valid credential for this account".

    cached and valid?  ── yes → return it
    take the account lock (timeout) → re-read index and keyring (another process may have
    refreshed) → refresh with the refresh token → store the rotated refresh token first →
    (dead grant and interactive → a new login; network trouble → an error, never a browser)

The margin is a wish, expiry is the rule (``_outage``): a refresh that is only early — the cached
token still lives ``_outage.FLOOR`` seconds — gets a short budget and no retries, and when the
IdP fails (anything but refusing the grant) the cached token is served with one line on stderr;
the failure is recorded so that no process tries again before its backoff window ends.

Every frontend (kubectl, git, CLI, TUI) calls :func:`get_credential`; the hot path in ``_hot._answer``
answers the common case before this module is even imported.

Binding (docs/security.md): an account's tokens belong to the (provider, issuer, client id) that
issued them — the provider and issuer also fix the API host a Bitbucket token is used at. A
profile that names another one (flags such as ``--issuer``, an edited config.toml) does not see
the account; nothing here sends its tokens anywhere else, or marks it dead because another IdP
refused them. And a token set is served only to its member profiles while they ask for exactly
the request shape it was obtained with (:func:`serves`). :func:`profile_for` is the one place that
builds a profile for an account.
"""

from __future__ import annotations

import sys

from bblogin import _index, _outage, _record
from bblogin._config import Profile
from bblogin._errors import IdentityUnchecked, IdPError, LockTimeout, LoginRequired, ProxySettingError, RefreshTokenDead
from bblogin._interactive import Gate, why_not
from bblogin._lock import account_lock
from bblogin._record import record
from bblogin._store import SecretStore
from bblogin._tokens import TOKEN_KINDS, Identity, TokenSet, account_id

TYPE_CHECKING = False  # not `from typing import …` at run time: typing costs a cached call a fifth of a Python start-up
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from bblogin._config import Config
    from bblogin._index import Account, Index
    from bblogin._login import LoginOptions
    from bblogin._loginresult import Result
    from bblogin._outage import Outage

class _Log:
    """``logging.getLogger("bblogin")``, imported when something is logged: a cached answer logs
    nothing, and importing logging costs more than a tenth of that answer. Debug and info lines
    before logging was ever imported go nowhere, as they would through it: ``-v`` configures
    logging (``_log.configure``) before anything is logged, and unconfigured logging drops them."""

    def __getattr__(self, name: str) -> Any:
        if name in ("debug", "info") and "logging" not in sys.modules:
            return _dropped
        import logging

        return getattr(logging.getLogger("bblogin"), name)


def _dropped(*_args: object, **_kwargs: object) -> None:
    """A debug or info line with logging not configured (``_Log``)."""


log = _Log()

NON_INTERACTIVE_LOCK_TIMEOUT = 30  # seconds a caller that may not log in waits for the lock
LOGIN_WAIT_MARGIN = 30  # seconds past a login's own timeout that a waiter allows it (the code exchange, storing)


@record(frozen=True)
class Credential:
    account: Account
    kind: str
    token: str
    expires_at: int

    def __repr__(self) -> str:
        return f"Credential(account={self.account.id}, kind={self.kind}, expires_at={self.expires_at})"


def login_command(profile: Profile) -> str:
    return f"bblogin login --profile {profile.name}"


def issued_for(account: Account, profile: Profile) -> bool:
    """Whether ``profile`` names the very party that issued ``account``'s tokens."""
    return (account.provider, account.issuer, account.client_id) == (profile.provider, profile.issuer, profile.client_id)


def serves(account: Account, profile: Profile) -> bool:
    """Whether ``account``'s token set may be served to ``profile``: issued for its party, the
    profile a member, and asked for with exactly the profile's request shape (``_shape``).
    ``_hot._answer.cached_token`` makes the same test."""
    return issued_for(account, profile) and profile.name in account.profiles and account.shape == profile.shape


def _require_issued_for(account: Account, profile: Profile) -> None:
    """The guard in front of everything that sends or changes an account's tokens."""
    if not issued_for(account, profile):
        raise LoginRequired(
            f"the login {account.label} was issued by {account.issuer} (client {account.client_id}); "
            f"profile {profile.name!r} now names {profile.issuer} (client {profile.client_id}), so its tokens are not used here",
            hint=f"run `{login_command(profile)}` for a login at {profile.issuer}",
        )


def _require_serves(account: Account, profile: Profile) -> None:
    """The guard in front of everything that hands out an account's tokens."""
    _require_issued_for(account, profile)
    if not serves(account, profile):
        raise LoginRequired(
            f"the login {account.label} was not made for what profile {profile.name!r} asks for now (its scopes, connector or parameters), so its tokens are not used here",
            hint=f"run `{login_command(profile)}`",
        )


def visible_account(index: Index, profile: Profile, query: str | None = None) -> Account | None:
    """The token set ``profile`` may use: its set of the account ``query`` names (id, email, user
    name), else the set of its active account (the identity ``use`` or the last login chose) —
    and only one it :func:`serves`. The active account's choice is never replaced by another
    identity's set: when the active account has no set of the profile's current request shape
    (its scopes changed since it logged in), the answer is None — that account logs in again.
    Only a profile whose active account is none, or of another party (a login through
    ``--issuer`` flags under this name), takes its one serving set, if it has one.
    ``_hot._answer._account`` makes the same choice."""
    if query:
        account = index.find(query, profile.name)
        _require_serves(account, profile)
        return account
    active = index.active_account(profile.name)
    pool = [a for a in index.for_profile(profile.name) if serves(a, profile)]
    if active is not None and issued_for(active, profile):
        pool = [a for a in pool if a.identity == active.identity]
        return active if active in pool else (pool[0] if len(pool) == 1 else None)
    return pool[0] if len(pool) == 1 else None


def _claim_migrated(index: Index, profile: Profile) -> Account | None:
    """A flags-only kubeconfig entry's login from bblogin 0.x (accounts.json version 1), which
    the migration could not place: 0.x remembered no ad-hoc profiles, so its ``adhoc-…`` owner
    (named by issuer and client alone) was unknown and the set kept with shape "" (served to
    nobody). The first call of an ad-hoc profile at that very issuer and client claims it — its
    tokens were obtained there by such an entry — so the upgrade needs no new login
    (docs/security.md, "Migration"). None when there is no such set, or more than one account."""
    from bblogin._adhoc import legacy_name

    if not profile.name.startswith("adhoc-") or profile.pipelines:
        return None
    owner = legacy_name(profile.issuer, profile.client_id)  # the name 0.x gave such an entry
    found = [a for a in index.accounts.values() if a.shape == "" and a.profiles == [owner] and issued_for(a, profile) and a.storage == profile.storage]
    if len({a.identity for a in found}) != 1 or len(found) != 1:
        return None
    with account_lock(found[0].id, profile.lock_timeout), _index.transaction() as current:
        claimed = current.accounts.get(found[0].id)
        if claimed is None or claimed.shape != "" or claimed.profiles != [owner]:
            return None
        claimed.shape = profile.shape
        claimed.profiles.append(profile.name)
        if current.active_account(profile.name) is None:
            current.active[profile.name] = claimed.id
    return claimed


def profile_for(account: Account, config: Config, member: str | None = None) -> Profile:
    """The profile to act for ``account`` with (refresh, revoke, read its tokens): ``member`` (else
    the first of its member profiles that it serves, else that still names its issuer, client and
    provider) as configured; else — the profiles are gone, or point elsewhere now — one built from
    the account alone, never borrowing a configured profile's client secret or settings, which
    belong to another client."""
    names = [member] if member is not None else account.profiles
    configured = [p for p in (config.profiles.get(n) or config.adhoc.get(n) for n in names) if p is not None and issued_for(account, p)]
    chosen = next((p for p in configured if serves(account, p)), configured[0] if configured else None)
    if chosen is not None:
        return _record.replace(chosen, storage=account.storage)
    name = names[0] if names else account.identity
    return Profile(name=name, issuer=account.issuer, client_id=account.client_id, provider=account.provider, storage=account.storage)


def _checks(profile: Profile, margin: int) -> dict[str, Any]:
    """What ``_hot._answer.cached_token`` reads of a profile (as in the hot path's config mirror)."""
    return {
        "name": profile.name, "shape": profile.shape, "provider": profile.provider, "issuer": profile.issuer,
        "client_id": profile.client_id, "refresh_margin": margin, "pipelines": profile.pipelines,
    }


def _fresh(profile: Profile, account: Account, store: SecretStore, kind: str, margin: int, *, floor: int | None = None) -> Credential | None:
    """The cached ``kind`` token when it stays valid for ``margin`` more seconds (or ``floor``:
    the fallback during an outage) — the same test the hot path makes
    (``_hot._answer.cached_token``: during a backoff window it serves down to ``_outage.FLOOR``),
    reading through the keyring library."""
    from bblogin._record import asdict

    from bblogin._hot._answer import cached_token

    hit = cached_token(_checks(profile, margin), asdict(account), kind, read=lambda acct, k, _storage: store.get(acct, k), floor=floor)
    return Credential(account, kind, *hit) if hit else None


def _served(profile: Profile, cred: Credential) -> Credential:
    """``cred``, after the line the hot path prints when it serves a token inside its margin
    because the IdP is failing (``_hot._answer.outage_notice``; -v adds the cause)."""
    from bblogin._record import asdict

    from bblogin._hot._answer import outage_notice

    notice = outage_notice(_checks(profile, profile.refresh_margin), asdict(cred.account), cred.kind, cred.expires_at)
    if notice is not None:
        sys.stderr.write(notice)
        outage = _outage.of(cred.account)
        if outage is not None and not outage.in_flight:  # in flight: nothing failed yet
            log.info("the last attempt failed: %s", outage.cause)
    return cred


def _write_secrets(account_id: str, tokens: TokenSet, store: SecretStore) -> None:
    """The (rotated) refresh token first: it is the one thing that cannot be had again."""
    values = tokens.values()
    for kind in ("refresh_token", "id_token", "access_token"):
        if kind in values:
            store.set(account_id, kind, values[kind])


def store_tokens(profile: Profile, account: Account, tokens: TokenSet, store: SecretStore, identity: Identity | None = None, *, unchecked: IdPError | None = None) -> Outage | None:
    """After a refresh: write what changed (tokens the IdP did not re-issue stay as they are) and,
    with ``identity``, who the refreshed tokens speak for now (groups change) — the IdP answered,
    so any recorded outage is over. With ``unchecked`` instead (the identity call's failure), the
    identity is still to be checked: that failure is recorded (``_outage``: ``identity_pending``)
    in the same transaction as the tokens, so no kill between the two keeps tokens unchecked
    with nothing saying so; its record is returned."""
    _write_secrets(account.id, tokens, store)
    pending = None
    with _index.transaction() as index:
        current = index.accounts.get(account.id, account)
        if unchecked is not None:
            pending = _outage.failure_after(_outage.of(current), unchecked, identity_pending=True)
        for acct in {id(account): account, id(current): current}.values():
            acct.record_tokens(tokens)
            if identity is not None:
                acct.set_identity(identity)
                acct.outage = None
            elif pending is not None:
                acct.outage = pending.to_json()
        index.accounts[account.id] = current
    return pending


def save_login(
    profile: Profile, tokens: TokenSet, identity: Identity, *, make_active: bool = True, subject: str | None = None, own: bool | None = None
) -> Account:
    """Record a completed login: the account (stable id from issuer, client id, sub), its token
    set for the profile's request shape, and the profile as a member of that set; for a CI
    exchange, the digest of the ``subject`` token it was exchanged for (the cached answer is for
    that step only).

    Profiles that ask for exactly the same (same shape and storage) share one set: this login's
    tokens replace its earlier ones for every member — they are the same kind of token.

    ``own``: the login is the profile's own request — what config.toml (or the remembered ad-hoc
    profile) asks for under that name, or what ``bblogin login`` is about to write there (it
    passes True). Only then does the account become the profile's active one (``make_active``)
    and the profile leave its other sets of that account (older shapes; a set no profile uses any
    more is deleted with its secrets, not revoked: docs/security.md). A login through flags that
    change the request under the profile's name (``--scope``, ``--connector-id``) adds its own
    set and takes nothing from the configured one. Default: decided from the configuration.

    Under the token set's lock (re-entrant: a refresh's login holds it already), so two members
    logging in at once, or a logout of the last member, never leave a set of mixed tokens or
    delete a login that just arrived."""
    from bblogin._hot._mirror import token_digest
    from bblogin._index import Account
    from bblogin._shape import token_set_id

    identity_id = account_id(profile.issuer, profile.client_id, identity.sub)
    shape = profile.shape
    if own is None:
        own = _is_configured_request(profile)

    def same_set(candidate: Account) -> bool:
        return candidate.identity == identity_id and candidate.shape == shape and candidate.storage == profile.storage and issued_for(candidate, profile)

    def set_id_now() -> str:
        joined = next((a for a in _index.load().accounts.values() if same_set(a)), None)
        return joined.id if joined is not None else token_set_id(identity_id, shape, profile.storage)

    set_id = set_id_now()
    for _attempt in range(3):
        with account_lock(set_id, profile.lock_timeout):
            if set_id_now() != set_id:  # joined or removed while we waited: that set's lock, then
                set_id = set_id_now()
                continue
            return _save_login_locked(profile, tokens, identity, set_id, identity_id, own=own, make_active=make_active, subject_digest=token_digest(subject) if subject is not None else None)
    raise LockTimeout(f"the token set of {identity.email or identity.sub} kept changing while this login was stored", hint=f"run `{login_command(profile)}` again")


def _is_configured_request(profile: Profile) -> bool:
    """Whether ``profile`` asks for what its name asks for in config.toml or the ad-hoc
    profiles (True for a name neither knows: a profile being created)."""
    from bblogin import _adhoc, _config
    from bblogin._errors import BbloginError

    try:
        configured = _config.load().profiles.get(profile.name) or _adhoc.load().get(profile.name)
    except BbloginError:
        return False  # unreadable config.toml: take nothing from the profile's sets
    return configured is None or configured.shape == profile.shape


def _save_login_locked(
    profile: Profile, tokens: TokenSet, identity: Identity, set_id: str, identity_id: str, *, own: bool, make_active: bool, subject_digest: str | None
) -> Account:
    from bblogin._index import Account

    account = Account(
        id=set_id, provider=profile.provider, issuer=profile.issuer, client_id=profile.client_id, sub=identity.sub,
        profiles=[profile.name], shape=profile.shape, identity=identity_id, storage=profile.storage, subject_sha256=subject_digest,
    )
    account.set_identity(identity)
    account.record_tokens(tokens)
    store = SecretStore(profile.storage)
    _write_secrets(set_id, tokens, store)
    for kind in TOKEN_KINDS:
        if kind not in account.tokens:
            store.delete(set_id, kind)  # e.g. a refresh token from an older login: dead now
    with _index.transaction() as index:
        earlier = index.accounts.get(set_id)
        if earlier is not None:
            account.profiles = [*earlier.profiles, *([profile.name] if profile.name not in earlier.profiles else [])]
        index.accounts[set_id] = account
        unused = _leave_other_sets(index, account, profile.name) if own else []
        if (make_active and own) or index.active_account(profile.name) is None:
            index.active[profile.name] = set_id
    _delete_secrets(unused, profile.lock_timeout)
    from bblogin import _gcpfiles

    _gcpfiles.reconcile()  # another account may be active now: its predecessor's token copies go
    return account


def _leave_other_sets(index: Index, account: Account, profile: str) -> list[Account]:
    """``profile`` keeps one token set per account — ``account``'s: it leaves the others; those
    no profile uses any more are removed from the index and returned (their secrets go next)."""
    left = [a for a in index.accounts.values() if a.id != account.id and a.identity == account.identity and profile in a.profiles]
    for old in left:
        index.leave(old, profile)
    unused = [a for a in left if not a.profiles]
    for old in unused:
        index.remove(old)
    return unused


def _delete_secrets(accounts: list[Account], timeout: float) -> None:
    """The secrets of token sets removed from the index, each under its lock (a refresh of it
    in flight finishes first)."""
    for old in accounts:
        with account_lock(old.id, timeout):
            SecretStore(old.storage).delete_account(old.id)


def join(profile: Profile, account: Account) -> None:
    """Make ``profile`` a member of ``account``'s token set — only when it asks for exactly what
    the set was obtained with (``setup team``: one login for the profiles that share a request);
    its active account when it has none."""
    if not (issued_for(account, profile) and account.shape == profile.shape):
        raise LoginRequired(f"profile {profile.name!r} asks for other tokens than the login of {account.label}", hint=f"run `{login_command(profile)}`")
    with account_lock(account.id, profile.lock_timeout):  # not while its last member logs out
        with _index.transaction() as index:
            current = index.accounts.get(account.id)
            if current is None:
                raise LoginRequired(f"the login of {account.label} is gone", hint=f"run `{login_command(profile)}`")
            unused = _leave_other_sets(index, current, profile.name)
            if profile.name not in current.profiles:
                current.profiles.append(profile.name)
            if index.active_account(profile.name) is None:
                index.active[profile.name] = current.id
        _delete_secrets(unused, profile.lock_timeout)


def keep_rotated_refresh_token(account: Account, refresh_token: str, store: SecretStore) -> None:
    """Store a rotated refresh token the moment the IdP issued it, before anything else can fail.

    The token it replaces is spent: Bitbucket Cloud expires it minutes after first use, and an IdP
    that detects reuse (dex, Okta, Auth0) revokes the whole grant when it is sent again. So the new
    one is kept even when what follows — verifying the accompanying ID token, asking the provider
    who the tokens belong to — fails (docs/security.md, "Rotated refresh tokens")."""
    store.set(account.id, "refresh_token", refresh_token)
    rotated = TokenSet(access_token="", refresh_token=refresh_token)  # values(): the refresh token alone
    account.record_tokens(rotated)
    with _index.transaction() as index:
        current = index.accounts.get(account.id)
        if current is not None:
            current.record_tokens(rotated)


def _mark_dead(account: Account, *, drop_refresh_token: bool = False) -> None:
    """Only a new login helps this account (the hot path and ``status`` show it as ended)."""
    with _index.transaction() as index:
        current = index.accounts.get(account.id)
        for acct in (account, current):
            if acct is not None:
                acct.refresh_dead = True
                acct.outage = None  # the IdP answered: no outage, a refusal
                if drop_refresh_token:
                    acct.tokens.pop("refresh_token", None)


def _refresh(profile: Profile, account: Account, store: SecretStore, *, strict: bool = False) -> TokenSet | None:
    """Refresh ``account`` at the party that issued it; None when it has no usable refresh
    token. Marks dead grants. When only the identity calls after a good token answer fail, the
    new tokens are kept unchecked (``_outage``) — and with ``strict`` (a refresh asked for by
    name: it is to say what changed) the failure is raised all the same."""
    _require_issued_for(account, profile)
    if account.refresh_dead or not account.has("refresh_token"):
        return None
    refresh_token = store.get(account.id, "refresh_token")
    if refresh_token is None:
        return None
    from bblogin._providers import for_profile

    provider = for_profile(profile)
    log.debug("refreshing tokens for account %s at %s", account.id, profile.issuer)
    kept: list[str] = []

    def keep(rotated: str) -> None:
        keep_rotated_refresh_token(account, rotated, store)
        kept.append(rotated)

    try:
        tokens = provider.refresh(refresh_token, on_rotated=keep)
    except RefreshTokenDead:
        _mark_dead(account)
        raise
    if tokens.refresh_token in kept:
        tokens = _record.replace(tokens, refresh_token=None)  # stored already: not twice
    try:
        identity = provider.identity(tokens)
    except IdPError as exc:
        # The token answer was good, only the identity API failed (Bitbucket's whoami/users): the
        # tokens come from this account's own grant, whose old refresh token is spent now. Keep
        # them, and check who they speak for once the backoff window is over — never a second
        # rotation per call just because the user API is down.
        outage = store_tokens(profile, account, tokens, store, unchecked=exc)
        assert outage is not None
        if strict:
            raise IdentityUnchecked(f"the tokens were refreshed and kept, but asking who they belong to failed: {exc.message}", hint=exc.hint) from exc
        log.info("kept the refreshed tokens of %s; who they belong to is checked after %s: %s", account.id, outage.next_try(), exc.message)
        return tokens
    _require_same_user(profile, account, identity, store)
    store_tokens(profile, account, tokens, store, identity)
    return tokens


def refresh_account(profile: Profile, account: Account) -> None:
    """Refresh ``account``'s token set now (the TUI's refresh), at the party that issued it —
    whatever its profiles ask for now: nothing is handed out here. As `bblogin refresh`, it
    bypasses the margin and a backoff window (``_refreshed`` with ``force``). Raises
    LoginRequired when it cannot be refreshed (no usable refresh token)."""
    _require_issued_for(account, profile)
    store = SecretStore(account.storage)
    with account_lock(account.id, profile.lock_timeout, what=f"{account.label} (profile {profile.name})"):
        current = _index.load().accounts.get(account.id)
        if current is None or current.refresh_dead or not current.has("refresh_token"):
            raise LoginRequired(f"{account.label} cannot be refreshed: it has no usable refresh token", hint=f"run `{login_command(profile)}`")
        _refreshed(profile, current, store, "id_token" if current.has("id_token") else "access_token", force=True)


def _require_same_user(profile: Profile, account: Account, identity: Identity, store: SecretStore, stored: tuple[str, ...] = ("refresh_token",)) -> None:
    """Raise unless ``identity`` is the account's user; ``stored``: the kinds of the refresh's
    tokens already in the store (the rotated refresh token; all of them when kept unchecked)."""
    if identity.sub == account.sub:
        return
    from bblogin._errors import TokenVerificationError

    # The grant now speaks for someone else and the account's own refresh token is spent:
    # drop the new tokens and ask for a login rather than ever sending them again.
    for kind in stored:
        store.delete(account.id, kind)
    _mark_dead(account, drop_refresh_token=True)
    with _index.transaction() as index:
        current = index.accounts.get(account.id)
        for acct in (account, current):
            if acct is not None:
                for kind in stored:
                    acct.tokens.pop(kind, None)
                acct.outage = None
    raise TokenVerificationError(
        "the refreshed tokens belong to a different user than the account; they were discarded",
        hint=f"log in again: `{login_command(profile)}`",
    )


def _check_pending_identity(profile: Profile, account: Account, store: SecretStore) -> None:
    """Who the tokens kept without an identity check (``_refresh``) speak for: the same user →
    the account's identity is current and the outage over; another → they are discarded."""
    from bblogin._providers import for_profile

    values = {kind: store.get(account.id, kind) for kind in ("access_token", "id_token")}
    tokens = TokenSet(access_token=values["access_token"] or "", id_token=values["id_token"])
    identity = for_profile(profile).identity(tokens)  # an IdPError: the caller records it (still pending)
    _require_same_user(profile, account, identity, store, stored=TOKEN_KINDS)
    with _index.transaction() as index:
        current = index.accounts.get(account.id, account)
        for acct in {id(account): account, id(current): current}.values():
            acct.set_identity(identity)
            acct.outage = None


def lock_wait(profile: Profile, interactive: object) -> float:
    """How long a caller waits for the account lock: never longer than a login running there can
    last (the profile's ``login_timeout``) plus :data:`LOGIN_WAIT_MARGIN`, capped by
    ``lock_timeout``; a caller that may not log in waits at most
    :data:`NON_INTERACTIVE_LOCK_TIMEOUT`. Always finite: the lock always times out."""
    wait = min(profile.lock_timeout, profile.login_timeout + LOGIN_WAIT_MARGIN)
    return float(wait if interactive else min(wait, NON_INTERACTIVE_LOCK_TIMEOUT))


def note_waiting(profile: Profile, seconds: float) -> Callable[[], None]:
    def note() -> None:
        if sys.stderr is not None and sys.stderr.isatty():  # not into a pipe someone parses (google-auth reads stderr as JSON)
            print(f"bblogin: another bblogin is signing in or refreshing for profile {profile.name}; waiting up to {seconds:g} s for its result…", file=sys.stderr, flush=True)

    return note


def login_key(profile: Profile) -> str:
    """The lock of a login for ``profile``: shared by every way into a login and by every profile
    asking for exactly the same (``_shape.login_key``)."""
    from bblogin._shape import login_key as key_of

    return key_of(profile.shape, profile.storage)


def get_credential(
    profile: Profile,
    *,
    kind: str = "id_token",
    account: Account | None = None,
    interactive: bool | Gate = False,
    force_refresh: bool = False,
    login: LoginOptions | None = None,
) -> Credential:
    """A valid ``kind`` token for ``account`` (default: the profile's active account).

    Refreshes when the cached token expires within the profile's margin, under the token set's
    lock. A dead refresh token leads to a login only when ``interactive`` (a
    :class:`~bblogin._interactive.Gate`, asked only then); otherwise :class:`LoginRequired` names
    the command to run and why no login started. A login runs under the login's lock
    (:func:`login_key`: the one `bblogin login` and the TUI take too; always after the set's lock
    is released, never while holding it). A login that another process ran under that lock while
    this one waited is this call's result too: its failure is raised here, its success served
    (``_loginresult``), never a second login.
    Network and IdP failures raise :class:`IdPError` and never start a login —
    unless the cached token still lives ``_outage.FLOOR`` seconds: then it is served (see the
    module's docstring). ``force_refresh`` refreshes now, whatever the backoff window says,
    and never falls back to the cached token.
    """
    import time

    index = _index.load()
    pinned = account is not None
    if account is not None:
        _require_serves(account, profile)
    else:
        account = visible_account(index, profile) or _claim_migrated(index, profile)
    store = SecretStore(profile.storage)
    margin = profile.refresh_margin
    fallback = None
    if account is not None and not force_refresh:
        cached = _fresh(profile, account, store, kind, margin)
        if cached is not None:
            return _served(profile, cached)
        fallback = _fresh(profile, account, store, kind, margin, floor=_outage.FLOOR)
    from bblogin import _loginresult  # not for a cached answer

    key = login_key(profile)
    seen = _loginresult.generation(key)  # before any wait: a login that ends after this is ours to take
    deadline = time.monotonic() + lock_wait(profile, interactive)
    dead: RefreshTokenDead | None = None
    if account is not None:
        timeout = max(0.0, deadline - time.monotonic())
        if fallback is not None:
            timeout = min(timeout, _outage.EARLY_LOCK_WAIT)  # another process refreshing it: ours is still good
        try:
            early = _renewed_in_background(profile, account, store, kind, fallback) if fallback is not None and _in_background(profile, account) else None
            if early is not None:
                cached, account = early
            else:
                with account_lock(account.id, timeout, on_wait=None if fallback is not None else note_waiting(profile, timeout), what=f"{account.label} (profile {profile.name})"):
                    cached, account = _renewed(profile, account, store, kind, force_refresh)
        except LockTimeout:
            if fallback is None:
                raise
            return _served(profile, fallback)
        except RefreshTokenDead as exc:
            dead, cached = exc, None
        if cached is not None:
            return _served(profile, cached)
    timeout = max(0.0, deadline - time.monotonic())
    with account_lock(key, timeout, on_wait=note_waiting(profile, timeout), what=f"the login for profile {profile.name}"):
        ended = _loginresult.ended_since(key, seen)
        index = _index.load()
        account = index.accounts.get(account.id, account) if pinned and account is not None else visible_account(index, profile)
        if account is not None and not force_refresh:  # forced: never the token the refresh was to replace
            cached = _fresh(profile, account, store, kind, margin)
            if cached is not None:
                return _served(profile, cached)
        if ended is not None:
            if not ended.ok:
                raise ended.error(f"run `{login_command(profile)}`")  # the login we waited for failed: its failure, not another login
            taken = None if pinned else _take(profile, ended)
            if taken is not None:
                return _issued(taken, profile, kind)
        if profile.pipelines:  # CI: a fresh exchange of the step's identity token, never a login
            return _served(profile, _exchanged(profile, account, store, kind, force=force_refresh))
        if not interactive or ended is not None:
            if dead is not None and account is not None:
                raise RefreshTokenDead(
                    f"the login for {account.label} ({profile.name}) has ended: the identity provider refused the refresh token"
                    + _no_login_because(interactive, ended),
                    hint=f"run `{login_command(profile)}`" + _superseded_by(index, account),
                ) from dead
            named = account or index.active_account(profile.name)  # the active account, of an older request shape
            who = f" for {named.label}" if named is not None else ""
            raise LoginRequired(
                f"no valid {kind.replace('_', ' ')}{who} in profile {profile.name!r}" + _no_login_because(interactive, ended),
                hint=f"run `{login_command(profile)}`",
            )
        if dead is not None and account is not None:
            print(f"bblogin: the login for {account.label} has ended ({dead.message}); starting a new login.", file=sys.stderr)
        from bblogin._login import LoginOptions

        store.check()  # before the browser: a sign-in whose tokens cannot be stored is wasted
        return _issued(_login_published(key, profile, login or LoginOptions()), profile, kind)


def _renewed(profile: Profile, account: Account, store: SecretStore, kind: str, force_refresh: bool) -> tuple[Credential | None, Account]:
    """Under the token set's lock: its ``kind`` token after another process refreshed it, or after
    refreshing (or, in CI, exchanging) it now; None when only a login can help. Also the set as
    the index has it now."""
    index = _index.load()
    if account.id in index.accounts:
        fresh_after_wait = index.accounts[account.id]
        refreshed_meanwhile = fresh_after_wait.updated_at != account.updated_at
        account = fresh_after_wait
        if force_refresh and refreshed_meanwhile:
            force_refresh = False  # someone refreshed while we waited: their tokens are new
    _lost_answer(account)  # before any token is judged
    if not force_refresh:
        cached = _fresh(profile, account, store, kind, profile.refresh_margin)
        if cached is not None:
            return cached, account
    if profile.pipelines:
        return _exchanged(profile, account, store, kind, force=force_refresh), account
    return _refreshed(profile, account, store, kind, force=force_refresh), account


def _settled(account: Account) -> Outage | None:
    """Under the token set's lock: its provisional window is none (``_outage.settle_in_flight``);
    the record of a lost answer when the detached refresh's request had gone out."""
    lost = _outage.settle_in_flight(account)
    if lost is not None:
        log.info("the background refresh of %s ended after its token request went out, without the answer; it is not sent again before %s", account.id, lost.next_try())
    return lost


def _lost_answer(account: Account) -> Outage | None:
    """Under the token set's lock: the record of the lost answer, when ``account``'s record is a
    dead detached refresh's ``sent`` mark (its request went out, its answer never came), settled
    now into that failed attempt and its window; else None, nothing changed."""
    mark = _outage.of(account)
    return _settled(account) if mark is not None and mark.sent else None


def _in_background(profile: Profile, account: Account) -> bool:
    """Whether an early refresh of ``account`` goes to a detached child (``_background``): not in
    CI (the exchange stays in-process), not inside a backoff window (nothing is sent: the
    in-process path serves the fallback at once), not from a frozen build (its executable runs
    no ``-c``: docs/platforms.md), and not while this thread holds the token set's lock already
    (the child could not take it)."""
    from bblogin._lock import holds

    return not profile.pipelines and not getattr(sys, "frozen", False) and _outage.waiting(account) is None and not holds(account.id)


def _renewed_in_background(profile: Profile, account: Account, store: SecretStore, kind: str, fallback: Credential) -> tuple[Credential | None, Account] | None:
    """As :func:`_renewed`, for a caller that holds ``fallback`` (valid beyond the floor): the
    refresh runs in a detached child (``_background``), which this caller waits for at most
    ``_background.WAIT`` seconds. In time: what the child's refresh makes of the token set (its
    errors raised here as in-process, its stderr relayed). Too late: ``fallback``, as the index
    has the set now (a provisional window: ``_served`` prints its one line); the child stores
    what the IdP sends, or records the outage, by itself. None: the child ended without doing
    its work (it could not start, crashed, or was killed): the caller goes on in-process under the
    lock — a refresh, or, when the child's token request went out (``_outage.record_sent``), the
    backoff window of its lost answer (``_refreshed``): the old refresh token is not sent again.
    None too, with no child started, when a dead child's mark settled here opens that window."""
    from bblogin import _background

    try:
        with account_lock(account.id, _outage.EARLY_LOCK_WAIT, what=f"{account.label} (profile {profile.name})"):
            # free: the child takes it (it re-checks under it: two callers racing make one attempt);
            # a dead child's mark found meanwhile is settled here, and its window wants no child
            lost = _lost_answer(account)
            if lost is not None and lost.waiting():
                return None
        try:
            answer = _background.start(profile, account, kind).outcome()
        except OSError as exc:  # no interpreter to start
            answer = {"outcome": "crash", "type": f"{type(exc).__name__} starting it"}
        if answer is None:
            _outage.record_in_flight(account, _background.WAIT)  # until it ends, the next calls (the hot path's too) serve at once
            log.info("the refresh of %s did not end within %g s; it goes on in a background process", account.id, _background.WAIT)
    except LockTimeout:
        answer = None  # another process is refreshing it: no child, the cached token
    if answer is not None and answer.get("outcome") == "crash":
        log.info("the background refresh of %s ended without an answer (%s); going on in this process", account.id, answer.get("type"))
        return None
    account = _index.load().accounts.get(account.id, account)
    if answer is None:
        return _fresh(profile, account, store, kind, profile.refresh_margin) or _record.replace(fallback, account=account), account
    sys.stderr.write(_background.printable_lines(str(answer.get("stderr") or "")))
    if answer.get("outcome") == "error":
        raise _background.rebuilt(answer.get("error") or {})
    if answer.get("outcome") != "served":
        return None, account
    return _fresh(profile, account, store, kind, 0), account


def _take(profile: Profile, ended: Result) -> Account | None:
    """The token set a login that another bblogin ran for this request shape made while this one
    waited, with ``profile`` a member and that set active for it — what the profile's own login
    would have made of it; None when it is gone or not one for this profile."""
    made = _index.load().accounts.get(ended.token_set)
    if made is None or made.storage != profile.storage or not (issued_for(made, profile) and made.shape == profile.shape):
        return None
    join(profile, made)
    with _index.transaction() as index:
        current = index.accounts.get(made.id)
        if current is None:
            return None
        index.active[profile.name] = current.id
    return current


def _no_login_because(interactive: object, ended: Result | None) -> str:
    """Why this call starts no login, for the message ("" when the caller gave no reason)."""
    if ended is not None:
        return "; the login another bblogin ran meanwhile did not provide it"
    why = why_not(interactive)
    return f"; no login started: {why}" if why else ""


def _login_published(key: str, profile: Profile, options: LoginOptions, *, own: bool | None = None) -> Account:
    """Run a login under ``key``'s lock (held by the caller), store it, publish how it ended
    (``own``: as :func:`save_login`'s)."""
    from bblogin import _loginresult
    from bblogin._login import interactive_login

    own_timeout = options.timeout is not None and options.timeout != profile.login_timeout
    with _loginresult.publishing(key, own_timeout=own_timeout) as ending:
        tokens, identity = interactive_login(profile, options)
        account = save_login(profile, tokens, identity, own=own)
        ending.token_set = account.id
    return account


def login_now(profile: Profile, options: LoginOptions) -> Account:
    """A login the person asked for (``bblogin login``, the TUI), made active for its profile: one
    at a time under the login's lock (:func:`login_key`, the lock kubectl's and git's logins take).
    One that had to wait while another login for that request ran takes its result: its failure,
    or the token set it made (no second browser tab)."""
    from bblogin import _loginresult

    key = login_key(profile)
    seen = _loginresult.generation(key)
    timeout = lock_wait(profile, True)
    with account_lock(key, timeout, on_wait=note_waiting(profile, timeout), what=f"the login for profile {profile.name}"):
        ended = _loginresult.ended_since(key, seen)
        if ended is not None:
            if not ended.ok:
                raise ended.error(f"run `{login_command(profile)}` to try again")
            taken = _take(profile, ended)
            if taken is not None:
                return taken  # the waiting note said whose login this is; the command says who is logged in
        return _login_published(key, profile, options, own=True)  # what the person logs in is the profile from now on


def _exchanged(profile: Profile, account: Account | None, store: SecretStore, kind: str, *, force: bool) -> Credential:
    """CI: the ``kind`` token of a fresh exchange of this step's identity token. When this step's
    exchanged token still lives ``_outage.FLOOR`` seconds and the IdP fails, that token is served
    (the early budget, no retries) and the failure recorded, as for a refresh."""
    import contextlib

    from bblogin import _http
    from bblogin._exchange import exchange, subject_token

    subject = subject_token()
    fallback = None if force or account is None else _fresh(profile, account, store, kind, profile.refresh_margin, floor=_outage.FLOOR)
    try:
        with _http.budget(_outage.EARLY_BUDGET) if fallback is not None else contextlib.nullcontext():
            tokens, identity = exchange(profile, subject)
    except IdPError as exc:
        if fallback is None or account is None or not _outage.is_outage(exc):
            raise
        _outage.record_failure(account, exc)
        return fallback
    return _issued(save_login(profile, tokens, identity, subject=subject), profile, kind)


def _refreshed(profile: Profile, account: Account, store: SecretStore, kind: str, *, force: bool) -> Credential | None:
    """Under the account's lock: the ``kind`` token after refreshing ``account`` (or after the
    identity check a Bitbucket outage postponed), None when it cannot be refreshed.

    Outages (``_outage``): inside a backoff window nothing is sent, unless ``force``. With a
    token that lives ``_outage.FLOOR`` more seconds the attempt gets ``_outage.EARLY_BUDGET``
    seconds and no retries, and its failure serves that token; during a known outage even a
    call without one makes a single attempt. Every failure is recorded; the IdP's answer ends it."""
    import contextlib

    from bblogin import _http

    fallback = None if force else _fresh(profile, account, store, kind, profile.refresh_margin, floor=_outage.FLOOR)
    outage = _outage.of(account)
    # A provisional window (``in_flight``) seen under this lock stands for no refresh at work: a
    # child at work holds the lock until it has replaced the record. Its child was killed, or has
    # not taken the lock yet (then it finds the set refreshed). A caller with a valid token may
    # still serve it at once; one without has nothing to wait for and refreshes (a child's token
    # request that went out, ``sent``, was settled already: ``_renewed``).
    if outage is not None and outage.in_flight and (fallback is None or not outage.waiting()):
        outage = _settled(account) or _outage.of(account)
    if outage is not None and outage.waiting() and not force:
        if fallback is not None:
            return fallback
        raise IdPError(
            f"no valid {kind.replace('_', ' ')} for {account.label} ({profile.name}), and {outage.describe()}",
            hint=f"bblogin does not ask the identity provider again before then; `bblogin refresh --profile {profile.name}` tries now",
        )
    budget = _http.budget(_outage.EARLY_BUDGET) if fallback is not None else _http.budget(_outage.KNOWN_OUTAGE_BUDGET) if outage is not None and not force else contextlib.nullcontext()
    try:
        with budget:
            if outage is not None and outage.identity_pending:
                _check_pending_identity(profile, account, store)
                cached = None if force else _fresh(profile, account, store, kind, profile.refresh_margin)
                if cached is not None:
                    return cached
            if _refresh(profile, account, store, strict=force) is None:
                return None
    except IdentityUnchecked:
        raise  # recorded by _refresh, the new tokens kept
    except ProxySettingError as exc:
        if fallback is None:
            raise  # a login or a needed refresh: the clear configuration error (exit 3)
        # Only early: this request could not be sent, the cached token is still good. Not an
        # outage of the IdP (nothing recorded, no backoff): the next call tries again.
        from bblogin._hot._answer import _clock_time

        shown = kind.replace("_", " ").replace("id ", "ID ")
        sys.stderr.write(f"bblogin: cannot refresh early ({exc.message}): serving the cached {shown}, valid until {_clock_time(fallback.expires_at)}\n")
        return fallback
    except IdPError as exc:
        if not _outage.is_outage(exc):
            raise  # a refusal (invalid_client, …): its own hint, no backoff window, nothing served as if the IdP were down
        recorded = _outage.record_failure(account, exc)
        if fallback is not None:
            log.info("refreshing %s failed (%s); serving the cached token until the IdP answers", account.id, exc.message)
            return fallback
        exc.hint = f"{exc.hint}. bblogin tries again after {recorded.next_try()}; `bblogin refresh --profile {profile.name}` tries now".lstrip(". ")
        raise
    return _fresh(profile, account, store, kind, 0)


def _superseded_by(index: Index, account: Account) -> str:
    """Why a refresh token may have been refused: a later login of the same user through the same
    client for another request shape (dex keeps one refresh token per user, client and connector,
    and a new login deletes the previous one — docs/security.md). "" when there is none."""
    ours = (account.tokens.get("refresh_token") or {}).get("issued_at") or 0
    later = sorted({
        p for a in index.accounts.values() if a.id != account.id and a.identity == account.identity
        and isinstance(issued := (a.tokens.get("refresh_token") or {}).get("issued_at"), int) and issued >= ours for p in a.profiles
    })
    if not later:
        return ""
    return (
        f"; profile {', '.join(later)} logged in as the same user, with other scopes, since: an IdP that keeps one refresh token "
        "per user and client (dex) ended this one. Give the profiles the same scopes, or each its own client"
    )


def _issued(account: Account, profile: Profile, kind: str) -> Credential:
    """The ``kind`` token a login or exchange just stored."""
    cached = _fresh(profile, account, SecretStore(profile.storage), kind, 0)
    if cached is None:
        raise LoginRequired(f"the identity provider issued no {kind.replace('_', ' ')} for profile {profile.name!r}", hint="check the profile's scopes")
    return cached


def forget_cached(profile: Profile, account: Account) -> None:
    """After a 401: drop the cached access and ID tokens, keep the refresh token."""
    _require_issued_for(account, profile)
    store = SecretStore(profile.storage)
    for kind in ("access_token", "id_token"):
        store.delete(account.id, kind)
    with _index.transaction() as index:
        current = index.accounts.get(account.id)
        if current is not None:
            for kind in ("access_token", "id_token"):
                current.tokens.pop(kind, None)


def logout(profile: Profile, account: Account, members: list[str] | None = None) -> tuple[bool, list[str]]:
    """``members`` (default: all) stop using ``account``'s token set. When no member is left,
    revoke at the IdP that issued the tokens where possible (``profile`` must name it: see
    :func:`profile_for`) and delete the secrets and the record; a set other profiles still use
    keeps its tokens, unrevoked — they are theirs as well. Returns (revoked, the members left).

    Under the account's lock: a refresh in progress (which stores a rotated refresh token, then
    the other tokens, and records the account) finishes first, so it cannot bring the account or
    its tokens back after they were removed."""
    _require_issued_for(account, profile)
    with account_lock(account.id, profile.lock_timeout, what=f"{account.label} (profile {profile.name})"):
        outcome = _leave(profile, account, members)
    from bblogin import _gcpfiles

    _gcpfiles.reconcile()  # the Google output files holding its token, for the profiles that left (bblogin/_gcpfiles.py)
    return outcome


def _leave(profile: Profile, account: Account, members: list[str] | None) -> tuple[bool, list[str]]:
    current = _index.load().accounts.get(account.id, account)
    leaving = set(current.profiles if members is None else members)
    remaining = [p for p in current.profiles if p not in leaving]
    if remaining:
        with _index.transaction() as index:
            current = index.accounts.get(account.id)
            for name in leaving:
                if current is not None:
                    index.leave(current, name)
            remaining = current.profiles if current is not None else []
        if remaining:
            return False, list(remaining)
    return _logout(profile, account), []


def _logout(profile: Profile, account: Account) -> bool:
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
        current = index.accounts.get(account.id)
        if current is not None:
            index.remove(current)
    return revoked
