"""The account index, ``accounts.json`` in the state dir: who is logged in where, and until when.

No secrets live here (those are in ``_store``). This module parses and validates the file
(:func:`load`) and edits it (:func:`transaction`: a read-modify-write under the index lock,
written atomically, so concurrent bblogin processes never lose each other's updates). The hot path
never reads this JSON: it reads the marshal mirror that ``_mirrors`` writes from exactly the bytes
parsed or written here, under the same lock.

The model (docs/security.md, "Accounts, token sets and profiles"): an **account** is an identity
— (issuer, client id, subject), its id :func:`_tokens.account_id` — and each record here is one
of its **token sets**: the tokens one request shape (``_shape``) obtained, with the profiles that
are its **members**. Profiles asking for exactly the same thing share a set; a profile is a member
of at most one set per account; ``active`` names each profile's active set. Version 1 files (one
record per account, holding one ``profile``) are migrated when read (:func:`migrate_v1`).
"""

from __future__ import annotations

from bblogin import _files, _lock, _mirrors, _paths
from bblogin._clock import Clock, Sample
from bblogin._errors import AccountNotFound, StorageError
from bblogin._hot._mirror import token_digest
from bblogin._lazy import contextmanager
from bblogin._record import FIELDS, asdict, field, record
from bblogin._tokens import Identity, TokenSet, account_id, now

TYPE_CHECKING = False  # not `from typing import …` at run time: typing costs a cached call a fifth of a Python start-up
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

VERSION = 2  # 2: token sets with member profiles and a request shape (1: one profile per account)
INDEX_LOCK_TIMEOUT = 10.0
DEFAULT_ACCESS_TOKEN_LIFETIME = 3600


@record
class Account:
    """One account's token set: what one request shape obtained, and the profiles it serves."""

    id: str  # the token set's id: the key of its secrets in the store
    provider: str
    issuer: str
    client_id: str
    sub: str
    profiles: list[str] = field(default_factory=list)  # the member profiles, in the order they joined
    shape: str | None = None  # the request shape its tokens were obtained with (``_shape``); None: unknown, never served
    identity: str = ""  # the account id: ``_tokens.account_id(issuer, client_id, sub)``
    email: str | None = None
    name: str | None = None
    username: str | None = None
    groups: list[str] = field(default_factory=list)
    storage: str = "keyring"
    tokens: dict[str, dict[str, int | str | None]] = field(default_factory=dict)  # kind -> expires_at, issued_at, sha256
    refresh_dead: bool = False
    updated_at: int = 0
    subject_sha256: str | None = None  # a CI exchange: SHA-256 of the step token it was exchanged for
    clock: dict[str, Any] | None = None  # the IdP's clock as last measured (_clock.Clock); the hot path reads offset/epoch
    outage: dict[str, Any] | None = None  # the IdP failing for this account (_outage.Outage); the hot path reads retry_at

    def __post_init__(self) -> None:
        if not self.identity:
            self.identity = account_id(self.issuer, self.client_id, self.sub)

    @property
    def idp_clock(self) -> Clock:
        return Clock.from_json(self.clock)

    def idp_now(self) -> int:
        """The IdP's time now, by this account's last measurement of its clock."""
        return now() + self.idp_clock.offset

    @property
    def label(self) -> str:
        """How people recognise the account: email, else user name, else the subject."""
        return self.email or self.username or self.name or self.sub

    def expires_at(self, kind: str) -> int | None:
        value = self.tokens.get(kind, {}).get("expires_at")
        return value if isinstance(value, int) else None

    def has(self, kind: str) -> bool:
        return kind in self.tokens

    def record_tokens(self, tokens: TokenSet) -> None:
        """Note which tokens are stored and until when (the values go to the keyring), and what
        their answer told about the IdP's clock. Expiries are on the IdP's clock."""
        self.clock = self.idp_clock.updated(list(tokens.clock)).to_json()
        for kind, value in tokens.values().items():
            expires_at = tokens.expires_at(kind)
            if expires_at is None and kind == "access_token":
                expires_at = self.idp_now() + DEFAULT_ACCESS_TOKEN_LIFETIME  # the IdP named none; a 401 erases it sooner
            self.tokens[kind] = {"expires_at": expires_at, "issued_at": self.idp_now(), "sha256": token_digest(value)}
        self.refresh_dead = False
        self.updated_at = now()

    def set_identity(self, identity: Identity) -> None:
        self.email, self.name, self.username = identity.email, identity.name, identity.username
        self.groups = list(identity.groups)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Account:
        known = {k: v for k, v in data.items() if k in getattr(cls, FIELDS)}
        return cls(**known)


@record
class Index:
    accounts: dict[str, Account] = field(default_factory=dict)
    active: dict[str, str] = field(default_factory=dict)
    # records bblogin cannot read (a field missing, edited by hand): kept as they are, under their
    # own key (nothing serves them), so that `logout --all` can still delete their secrets
    unreadable: dict[str, Any] = field(default_factory=dict)

    def get(self, account_id: str) -> Account:
        try:
            return self.accounts[account_id]
        except KeyError:
            raise AccountNotFound(f"no account {account_id!r}") from None

    def for_profile(self, profile: str) -> list[Account]:
        """The token sets ``profile`` is a member of."""
        return [a for a in self.accounts.values() if profile in a.profiles]

    def clock_samples(self, issuer: str) -> list[Sample]:
        """What this issuer's accounts measured of its clock that still applies."""
        return [s for a in self.accounts.values() if a.issuer == issuer for s in a.idp_clock.current()]

    def active_account(self, profile: str) -> Account | None:
        """The profile's active token set (only one it is a member of)."""
        account = self.accounts.get(self.active.get(profile) or "")
        return account if account is not None and profile in account.profiles else None

    def leave(self, account: Account, profile: str) -> None:
        """``profile`` stops using ``account``'s token set; another of its sets becomes active."""
        current = self.accounts.get(account.id)
        if current is not None and profile in current.profiles:
            current.profiles.remove(profile)
        if self.active.get(profile) == account.id:
            others = [a.id for a in self.for_profile(profile)]
            if others:
                self.active[profile] = others[0]
            else:
                del self.active[profile]

    def remove(self, account: Account) -> None:
        """Forget the token set (its members leave it)."""
        for profile in list(account.profiles):
            self.leave(account, profile)
        for profile, chosen in list(self.active.items()):
            if chosen == account.id:
                self.leave(account, profile)
        self.accounts.pop(account.id, None)

    def find_all(self, query: str, profile: str | None = None) -> list[Account]:
        """The token sets of the one account ``query`` names — by account id (or a unique prefix
        of at least 4 digits), token set id, email or user name (ignoring case) — within
        ``profile``'s sets when given. Raises AccountNotFound when nothing, or more than one
        account, matches."""
        pool = self.accounts.values() if profile is None else self.for_profile(profile)
        tests: tuple[Callable[[Account], bool], ...] = (
            lambda a: query in (a.identity, a.id),
            lambda a: query.lower() in ((a.email or "").lower(), (a.username or "").lower()),
            lambda a: len(query) >= 4 and a.identity.startswith(query),
        )
        for test in tests:
            hits = [a for a in pool if test(a)]
            who = {a.identity for a in hits}
            if len(who) == 1:
                return hits
            if len(who) > 1:
                raise AccountNotFound(
                    f"{query!r} matches {len(who)} accounts", hint="name the profile with --profile, or use the account id from `bblogin accounts`"
                )
        within = f" in profile {profile!r}" if profile is not None else ""
        raise AccountNotFound(f"no account matches {query!r}{within}")

    def find(self, query: str, profile: str | None = None) -> Account:
        """The token set of the account ``query`` names (:meth:`find_all`): ``profile``'s own
        when given (a profile has at most one per account); else the account's only one."""
        hits = self.find_all(query, profile)
        if len(hits) > 1:
            raise AccountNotFound(
                f"{hits[0].label} is used by profiles {', '.join(sorted({p for a in hits for p in a.profiles}))} with different scopes",
                hint="name the profile with --profile",
            )
        return hits[0]

    def to_json(self) -> dict[str, Any]:
        data = {"version": VERSION, "active": self.active, "accounts": {k: asdict(v) for k, v in self.accounts.items()}}
        if self.unreadable:
            data["unreadable"] = self.unreadable
        return data


def _read() -> tuple[dict[str, Any], list | None, bool]:
    """accounts.json as parsed; the stamp of the very bytes it was parsed from (None when there
    is nothing to mirror: no file, unreadable, or changed during the read); and whether the parse
    came from the hot path's mirror. When the mirror is tagged with that stamp it holds
    ``json.loads`` of exactly these bytes (marshal keeps JSON's values as they were), and is used
    instead of parsing them again."""
    try:
        raw, stamp = _mirrors.read_stamped(_paths.accounts_file())
    except OSError:
        return {}, None, False
    data = _mirrors.parsed_index(stamp)  # what parsing exactly these bytes gave, when the mirror has it
    mirrored = data is not None and _well_formed(data)
    if not mirrored:
        import json  # not at the top: a cached answer reads the mirror (json brings re and enum)

        try:
            data = json.loads(raw)
        except ValueError:
            return {}, None, False
    if not isinstance(data, dict) or data.get("version") not in (1, VERSION):
        return {}, None, False
    return data, stamp, mirrored


def _json_types(annotation: str) -> tuple[type, ...]:
    """The JSON types a field annotated ``annotation`` holds (annotations are strings here):
    ``dict[str, int | None] | None`` → (dict, NoneType)."""
    names = {"str": str, "int": int, "bool": bool, "list": list, "dict": dict, "None": type(None)}
    out, depth, start = [], 0, 0
    for at, char in enumerate(annotation + "|"):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "|" and depth == 0:
            out.append(names.get(annotation[start:at].split("[")[0].strip(), object))
            start = at + 1
    return tuple(out)


_ACCOUNT_TYPES = {name: _json_types(annotation) for name, annotation in Account.__annotations__.items()}


def _well_formed(data: dict[str, Any]) -> bool:
    """Whether a mirror's parse has the shape this version writes — every account a record whose
    fields hold their types. A mirror that does not (damaged, edited) is not trusted: the bytes are
    parsed instead, so a cached answer is always what parsing the file would give."""
    accounts, active, unreadable = data.get("accounts"), data.get("active"), data.get("unreadable", {})
    return (
        data.get("version") == VERSION
        and isinstance(accounts, dict)
        and isinstance(active, dict)
        and isinstance(unreadable, dict)
        and all(isinstance(a, dict) and all(isinstance(v, _ACCOUNT_TYPES.get(k, object)) for k, v in a.items()) for a in accounts.values())
    )


def _parse(data: dict[str, Any]) -> Index:
    """The index in ``data`` — a version 1 file read as version 2 records whose shape is not known
    yet (:func:`settle` learns it from the profiles)."""
    v1 = data.get("version") == 1
    accounts = {}
    kept = data.get("unreadable")
    unreadable = dict(kept) if isinstance(kept, dict) else {}
    for key, raw in (data.get("accounts") or {}).items():
        value = raw
        if isinstance(value, dict):
            if v1:
                owner = value.get("profile")
                value = {**value, "profiles": [owner] if isinstance(owner, str) else [], "shape": None}
            try:
                account = Account.from_json(value)
            except TypeError:
                pass
            else:
                if isinstance(account.profiles, list) and all(isinstance(p, str) for p in account.profiles):
                    accounts[key] = account
                    continue
        unreadable[key] = raw
    active = {k: v for k, v in (data.get("active") or {}).items() if isinstance(v, str)}
    return Index(accounts=accounts, active=active, unreadable=unreadable)


def _unsettled(index: Index) -> bool:
    return any(a.shape is None for a in index.accounts.values())


def settle(index: Index, shapes: dict[str, tuple[tuple[str, str, str], str]]) -> None:
    """Give each token set of unknown shape (a version 1 account) the shape of the profile that
    obtained it — the ``profile`` it recorded, which every login and exchange rewrote — and make
    every other profile that had it active a member when that profile asks for exactly the same
    (same party, same shape): so no one needs a new login, and no profile is served tokens shaped
    for another. ``shapes``: profile name → ((provider, issuer, client id), shape). A set whose
    profile is gone, or names another party now, is kept (logout and the TUI still see it) with
    shape "" — never served. Active choices that point at a set the profile is not a member of go."""
    for account in index.accounts.values():
        if account.shape is not None:
            continue
        party = (account.provider, account.issuer, account.client_id)
        owner = account.profiles[0] if account.profiles else None
        known = shapes.get(owner) if owner is not None else None
        account.shape = known[1] if known is not None and known[0] == party else ""
        if not account.shape:
            continue
        for profile, chosen in index.active.items():
            if chosen == account.id and profile not in account.profiles and shapes.get(profile) == (party, account.shape):
                account.profiles.append(profile)
    for profile, chosen in list(index.active.items()):
        if index.active_account(profile) is None:
            del index.active[profile]
            others = index.for_profile(profile)
            if others:
                index.active[profile] = others[0].id


def _known_shapes() -> dict[str, tuple[tuple[str, str, str], str]] | None:
    """Every profile's party and shape (config.toml wins over remembered ad-hoc profiles); None
    when config.toml cannot be read now (then a version 1 index waits to be settled)."""
    from bblogin import _adhoc, _config
    from bblogin._errors import BbloginError

    try:
        profiles = {**_adhoc.load(), **_config.load().profiles}
    except BbloginError:
        return None
    return {name: ((p.provider, p.issuer, p.client_id), p.shape) for name, p in profiles.items()}


def load() -> Index:
    """The index. When the hot path's mirror describes other bytes (edited by hand, by an older
    bblogin, or a write whose mirror was lost), rebuild it from a read made under the index lock
    — if the lock is free; its holder mirrors what it writes. A version 1 index is settled
    (:func:`settle`) and written back once, under the lock."""
    data, stamp, mirrored = _read()
    index = _parse(data)
    if _unsettled(index):
        from bblogin._errors import BbloginError

        try:
            with transaction() as settled:
                pass
            return settled
        except BbloginError:
            pass  # a busy lock, a read-only state dir: settle in memory now, write later
        shapes = _known_shapes()
        if shapes is not None:
            settle(index, shapes)
        return index
    if stamp is not None and not mirrored and _well_formed(data):  # (a file whose own parse is not well formed is parsed on every read: a mirror of it would never be used)
        with _mirrors.opportunistic(_mirrors.INDEX_LOCK) as held:
            if held:
                data, stamp, mirrored = _read()
                if stamp is not None and not mirrored and _well_formed(data):
                    try:
                        _mirrors.write_index(data, stamp)
                    except StorageError:
                        pass
    return index


@contextmanager
def transaction() -> Iterator[Index]:
    """Read the index under the index lock, let the caller change it, write it back atomically
    and mirror exactly what was written (still under the lock)."""
    with _lock.account_lock(_mirrors.INDEX_LOCK, INDEX_LOCK_TIMEOUT):
        index = _parse(_read()[0])
        if _unsettled(index):
            shapes = _known_shapes()
            if shapes is None:
                raise StorageError(
                    f"{_paths.accounts_file()} is from an older bblogin and is brought up to date with config.toml, which cannot be read now",
                    hint="fix config.toml (`bblogin doctor` shows what is wrong); no login is lost",
                )
            settle(index, shapes)
        yield index
        import json

        raw = _files.json_bytes(index.to_json())
        written = _files.atomic_write_bytes(_paths.accounts_file(), raw)
        _mirrors.write_index(json.loads(raw), _mirrors.stamp_of(written, raw))  # as a read parses it: key order, lists
