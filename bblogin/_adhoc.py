"""Ad-hoc profiles: the identity providers that kubeconfig entries name by flags alone.

A platform team hands out kubeconfigs whose exec entry is ``kubectl-bblogin --issuer URL
--client-id ID`` and no config.toml. bblogin names such a profile ``adhoc-`` + 12 hex digits of
SHA-256(issuer, client id) (``_hot._answer.adhoc_profile_name``), and remembers what the flags
said in ``STATE/adhoc-profiles.json`` (0600, like config.toml: it may hold a ``--client-secret``
the kubeconfig passed) the first time the full path builds it. So every command that takes
``--profile`` — login, logout, status, token, use, setup kubectl — accepts that name, and the
hint a kubectl call prints (``bblogin login --profile adhoc-…``) is a command that works.

config.toml wins: a profile of the same name there is the profile. The hot path answers an
entry's flags from the flags themselves, and ``--profile adhoc-…`` from the marshal mirror of
this file (``cache/adhoc.marshal``, tagged with the fingerprint of the bytes it was built from,
like the config mirror): every full-path read or write of the file brings it up to date.
"""

from __future__ import annotations

import json

from bblogin import _files, _mirrors, _paths
from bblogin._config import Profile

VERSION = 1
# what the flags can say about an ad-hoc profile (``_commands._common.IDP_FLAGS``), as stored
FIELDS = ("issuer", "client_id", "client_secret", "provider", "connector_id", "scopes", "ca_file")


def path() -> str:
    return _paths.adhoc_profiles_file()


def _record(profile: Profile) -> dict[str, object]:
    values = {k: getattr(profile, k) for k in FIELDS}
    values["scopes"] = list(profile.scopes)
    return {k: v for k, v in values.items() if v is not None}


def _profiles(data: object) -> dict[str, Profile]:
    """The ad-hoc profiles in the file's parsed JSON; anything damaged is left out."""
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("profiles"), dict):
        return {}
    out = {}
    for name, raw in data["profiles"].items():
        if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str) for k in ("issuer", "client_id")):
            continue
        values = {k: raw[k] for k in FIELDS if k in raw}
        if not all(isinstance(v, str) for k, v in values.items() if k != "scopes"):
            continue
        scopes = values.pop("scopes", None)
        if isinstance(scopes, list) and scopes and all(isinstance(s, str) for s in scopes):
            values["scopes"] = tuple(scopes)
        out[name] = Profile(name=name, **values)  # type: ignore[arg-type]
    return out


def load(*, mirror: bool = True) -> dict[str, Profile]:
    """The remembered ad-hoc profiles by name; a missing or damaged file is none (the next
    kubectl call through flags writes it again). ``mirror``: bring the hot path's mirror up to
    date (False writes no file)."""
    try:
        data, stamp = _mirrors.read_stamped(path())
    except OSError:
        return {}
    try:
        profiles = _profiles(json.loads(data))
    except ValueError:
        profiles = {}
    if mirror:
        _mirrors.write_adhoc(profiles, stamp)
    return profiles


def remember(profile: Profile) -> None:
    """Record ``profile`` (built from flags) under its name; no write when it is recorded as is."""
    known = _files.read_json(path())
    profiles = known.get("profiles") if isinstance(known, dict) and known.get("version") == VERSION else None
    profiles = dict(profiles) if isinstance(profiles, dict) else {}
    record = _record(profile)
    if profiles.get(profile.name) == record:
        return
    profiles[profile.name] = record
    data = {"version": VERSION, "profiles": profiles}
    written = _files.atomic_write_json(path(), data)
    _mirrors.write_adhoc(_profiles(data), _mirrors.stamp_of(written))
