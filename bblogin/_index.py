"""The account index, ``accounts.json`` in the state dir: who is logged in where, and until when.

No secrets live here (those are in ``_store``). This module parses and validates the file
(:func:`load`) and edits it (:func:`transaction`: a read-modify-write under the index lock,
written atomically, so concurrent bblogin processes never lose each other's updates). The hot path
never reads this JSON: it reads the marshal mirror that ``_mirrors`` writes from exactly the bytes
parsed or written here, under the same lock.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from bblogin import _files, _lock, _mirrors, _paths
from bblogin._clock import Clock, Sample
from bblogin._errors import AccountNotFound, StorageError
from bblogin._hot._mirror import token_digest
from bblogin._tokens import Identity, TokenSet, now

VERSION = 1
INDEX_LOCK_TIMEOUT = 10.0
DEFAULT_ACCESS_TOKEN_LIFETIME = 3600


@dataclass
class Account:
    id: str
    profile: str
    provider: str
    issuer: str
    client_id: str
    sub: str
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
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class Index:
    accounts: dict[str, Account] = field(default_factory=dict)
    active: dict[str, str] = field(default_factory=dict)

    def get(self, account_id: str) -> Account:
        try:
            return self.accounts[account_id]
        except KeyError:
            raise AccountNotFound(f"no account {account_id!r}") from None

    def for_profile(self, profile: str) -> list[Account]:
        return [a for a in self.accounts.values() if a.profile == profile]

    def clock_samples(self, issuer: str) -> list[Sample]:
        """What this issuer's accounts measured of its clock that still applies."""
        return [s for a in self.accounts.values() if a.issuer == issuer for s in a.idp_clock.current()]

    def active_account(self, profile: str) -> Account | None:
        account_id = self.active.get(profile)
        return self.accounts.get(account_id) if account_id else None

    def find(self, query: str, profile: str | None = None) -> Account:
        """An account by id (or unique id prefix), email or user name, optionally within a profile."""
        pool = [a for a in self.accounts.values() if profile is None or a.profile == profile]
        for test in (
            lambda a: a.id == query,
            lambda a: query.lower() in ((a.email or "").lower(), (a.username or "").lower()),
            lambda a: len(query) >= 4 and a.id.startswith(query),
        ):
            hits = [a for a in pool if test(a)]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                raise AccountNotFound(
                    f"{query!r} matches {len(hits)} accounts", hint="name the profile with --profile, or use the account id from `bblogin accounts`"
                )
        raise AccountNotFound(f"no account matches {query!r}")

    def to_json(self) -> dict[str, Any]:
        return {"version": VERSION, "active": self.active, "accounts": {k: asdict(v) for k, v in self.accounts.items()}}


def _read() -> tuple[dict[str, Any], list[int] | None]:
    """accounts.json as parsed, and the fingerprint of the very file it was parsed from (None
    when there is nothing to mirror: no file, unreadable, or changed during the read)."""
    try:
        raw, stamp = _mirrors.read_stamped(_paths.accounts_file())
        data = json.loads(raw)
    except (OSError, ValueError):
        return {}, None
    if not isinstance(data, dict) or data.get("version") != VERSION:
        return {}, None
    return data, stamp


def _parse(data: dict[str, Any]) -> Index:
    accounts = {}
    for key, value in (data.get("accounts") or {}).items():
        if isinstance(value, dict):
            with contextlib.suppress(TypeError):
                accounts[key] = Account.from_json(value)
    active = {k: v for k, v in (data.get("active") or {}).items() if isinstance(v, str)}
    return Index(accounts=accounts, active=active)


def load() -> Index:
    """The index. When the hot path's mirror describes other bytes (edited by hand, by an older
    bblogin, or a write whose mirror was lost), rebuild it from a read made under the index lock
    — if the lock is free; its holder mirrors what it writes."""
    data, stamp = _read()
    if stamp is not None and not _mirrors.index_is_current(stamp):
        with _mirrors.opportunistic(_mirrors.INDEX_LOCK) as held:
            if held:
                data, stamp = _read()
                if not _mirrors.index_is_current(stamp):
                    with contextlib.suppress(StorageError):
                        _mirrors.write_index(data, stamp)
    return _parse(data)


@contextlib.contextmanager
def transaction() -> Iterator[Index]:
    """Read the index under the index lock, let the caller change it, write it back atomically
    and mirror exactly what was written (still under the lock)."""
    with _lock.account_lock(_mirrors.INDEX_LOCK, INDEX_LOCK_TIMEOUT):
        index = _parse(_read()[0])
        yield index
        data = index.to_json()
        written = _files.atomic_write_json(_paths.accounts_file(), data)
        _mirrors.write_index(data, _mirrors.stamp_of(written))
