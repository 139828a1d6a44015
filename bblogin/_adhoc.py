"""Ad-hoc profiles: the token requests that kubeconfig entries describe by flags alone.

A platform team hands out kubeconfigs whose exec entry is ``kubectl-bblogin --issuer URL
--client-id ID [--scope …] [--connector-id …]`` and no config.toml; an entry may also pass flags
on top of a profile (``--profile work --scope groups``) that change what it asks for. bblogin
names such a profile ``adhoc-`` + 12 hex digits of the request's shape (``_shape.shape_of``:
provider, issuer, client, scopes, connector, extra parameters; ``_hot._answer.adhoc_profile_name``),
so two entries asking for other tokens are two profiles with their own token sets (docs/security.md,
"Accounts, token sets and profiles"). The first time the full path builds one it is remembered
in ``STATE/adhoc-profiles.json`` (0600, like config.toml: it may hold a ``--client-secret`` the
kubeconfig passed). So every command that takes ``--profile`` — login, logout, status, token,
use, setup kubectl — accepts that name, and the hint a kubectl call prints (``bblogin login
--profile adhoc-…``) logs in exactly what that entry asks for.

The file is edited under its own lock (read, change, write), so parallel kubectl calls for many
clusters keep every record. Each record is validated as flags are (https issuer, a known
provider, what config.toml could hold) and must carry the name its shape gives — or the name an
older bblogin gave it (SHA-256 of issuer and client alone, :func:`legacy_name`), which keeps
working: the first call that builds the same request under its new name joins the new name to
the logins of the old one (:func:`remember`). A damaged file is none for every other command;
the next write keeps it aside as ``adhoc-profiles.json.damaged`` and says so. ``logout`` of an
ad-hoc profile's last login forgets its record (:func:`forget`).

config.toml wins: a profile of the same name there is the profile. The hot path answers an
entry's flags from the flags themselves, and ``--profile adhoc-…`` from the marshal mirror of
this file (``cache/adhoc.marshal``, tagged with the stamp of the bytes it was built from,
like the config mirror): every full-path read or write of the file brings it up to date.
"""

from __future__ import annotations

import os
import sys

from bblogin import _config, _files, _lock, _mirrors, _paths
from bblogin._config import Profile
from bblogin._hot._answer import adhoc_profile_name
from bblogin._hot._mirror import _sha256
from bblogin._lazy import contextmanager

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

VERSION = 1
# what the flags can say about an ad-hoc profile (``_commands._common.IDP_FLAGS``), as stored; and
# the parts of a request that a profile the flags override may bring along (its shape)
FIELDS = ("issuer", "client_id", "client_secret", "provider", "connector_id", "scopes", "ca_file", "extra_auth_params")
LOCK = "adhoc-profiles"
LOCK_TIMEOUT = 10.0
MAX_BYTES = 1 << 20  # far beyond any real set of clusters; a bound on what a damaged file costs


def path() -> str:
    return _paths.adhoc_profiles_file()


def legacy_name(issuer: str, client_id: str) -> str:
    """The name bblogin gave an ad-hoc profile before names came from the whole request."""
    return "adhoc-" + _sha256()(f"{issuer}\n{client_id}".encode()).hexdigest()[:12]


def _record(profile: Profile) -> dict[str, object]:
    values = {k: getattr(profile, k) for k in FIELDS}
    values["scopes"] = list(profile.scopes)
    values["extra_auth_params"] = dict(profile.extra_auth_params or {}) or None
    return {k: v for k, v in values.items() if v is not None}


def _profile(name: str, raw: object) -> Profile | None:
    """The record as a profile, or None when it is damaged or anything flags could not say."""
    from bblogin._configedit import profile_problem

    if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str) for k in ("issuer", "client_id")):
        return None
    values = {k: raw[k] for k in FIELDS if k in raw}
    if not all(isinstance(v, str) for k, v in values.items() if k not in ("scopes", "extra_auth_params")):
        return None
    scopes = values.pop("scopes", None)
    if scopes is not None:
        if not (isinstance(scopes, list) and scopes and all(isinstance(s, str) for s in scopes)):
            return None
        values["scopes"] = tuple(scopes)
    extra = values.get("extra_auth_params")
    if extra is not None and not (isinstance(extra, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in extra.items())):
        return None
    if values.get("provider", "oidc") not in _config.PROVIDERS or not _config.is_allowed_issuer(values["issuer"]):
        return None
    try:
        profile = Profile(name=name, **values)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if name not in (adhoc_profile_name(profile.shape), legacy_name(profile.issuer, profile.client_id)) or profile_problem(profile):
        return None
    return profile


def _profiles(data: object) -> dict[str, Profile]:
    """The ad-hoc profiles in the file's parsed JSON; anything damaged or invalid is left out."""
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("profiles"), dict):
        return {}
    found = {name: _profile(name, raw) for name, raw in data["profiles"].items() if isinstance(name, str)}
    return {name: p for name, p in found.items() if p is not None}


def _parse(data: bytes) -> object:
    """The file's JSON; None when it is too big, not JSON, or nested deeper than Python parses."""
    if len(data) > MAX_BYTES:
        return None
    import json  # only when the file exists: a cached answer without ad-hoc profiles reads no JSON

    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def load(*, mirror: bool = True) -> dict[str, Profile]:
    """The remembered ad-hoc profiles by name; a missing or damaged file is none (the next
    kubectl call through flags writes it again). ``mirror``: bring the hot path's mirror up to
    date (False writes no file)."""
    try:
        data, stamp = _mirrors.read_stamped(path())
    except OSError:
        return {}
    parsed = _mirrors.parsed_adhoc(stamp)  # these very bytes, parsed before: no json on a cached answer
    if parsed is None:
        parsed = _parse(data)
        if mirror and parsed is not None:
            _mirrors.keep_adhoc_parse(stamp, parsed)
    profiles = _profiles(parsed)
    if mirror:
        _mirrors.write_adhoc(profiles, stamp)
    return profiles


@contextmanager
def _editing() -> "Iterator[dict[str, object]]":
    """The file's records, to change in place, under the file's lock; written back (and
    mirrored) when changed. A damaged file is kept aside first, with one line saying so."""
    with _lock.account_lock(LOCK, LOCK_TIMEOUT):
        try:
            with open(path(), "rb") as fh:
                data = fh.read(MAX_BYTES + 1)
        except FileNotFoundError:
            data = None
        known = _parse(data) if data is not None else {"version": VERSION, "profiles": {}}
        if not (isinstance(known, dict) and known.get("version") == VERSION and isinstance(known.get("profiles"), dict)):
            aside = path() + ".damaged"
            os.replace(path(), aside)
            print(f"bblogin: {path()} was damaged (not an ad-hoc profile list bblogin reads); kept as {aside}, written anew", file=sys.stderr)
            known = {"version": VERSION, "profiles": {}}
        records = dict(known["profiles"])  # type: ignore[index,call-overload]
        before = dict(records)
        yield records
        if records != before:
            data_out = {"version": VERSION, "profiles": records}
            raw = _files.json_bytes(data_out)
            written = _files.atomic_write_bytes(path(), raw)
            import json

            parsed = json.loads(raw)  # as a read parses it
            stamp = _mirrors.stamp_of(written, raw)
            _mirrors.keep_adhoc_parse(stamp, parsed)
            _mirrors.write_adhoc(_profiles(parsed), stamp)


def recorded(adhoc: dict[str, Profile], profile: Profile) -> bool:
    """Whether ``adhoc`` (the profiles :func:`load` just read) records ``profile`` as it is: then
    :func:`remember` would change nothing, and a cached answer takes no lock and writes no file."""
    known = adhoc.get(profile.name)
    return known is not None and _record(known) == _record(profile)


def remember(profile: Profile) -> None:
    """Record ``profile`` (built from flags) under its name; no write when it is recorded as is.
    A login an older bblogin keeps under this request's legacy name serves the new name too."""
    old = legacy_name(profile.issuer, profile.client_id)
    with _editing() as records:
        if records.get(profile.name) == _record(profile):
            return
        records[profile.name] = _record(profile)
        legacy = _profile(old, records.get(old))
    if legacy is not None and legacy.shape == profile.shape:
        _join_legacy(old, profile)


def _join_legacy(old: str, profile: Profile) -> None:
    from bblogin import _index

    with _index.transaction() as index:
        for account in index.accounts.values():
            if old in account.profiles and account.shape == profile.shape and profile.name not in account.profiles:
                account.profiles.append(profile.name)
        active = index.accounts.get(index.active.get(old, ""))
        if active is not None and profile.name in active.profiles and profile.name not in index.active:
            index.active[profile.name] = active.id


def forget(name: str) -> bool:
    """Drop the record of ad-hoc profile ``name`` (its last login left); whether there was one."""
    with _editing() as records:
        return records.pop(name, None) is not None
