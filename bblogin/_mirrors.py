"""The writing side of the hot path's cache: compile config.toml and accounts.json into the marshal
mirrors that the hot path reads (``_hot._mirror`` holds their format and the reader).

A mirror describes exactly the bytes it was built from. The source is read through one open file
and tagged with *that file's* stamp (``_mirror.stamp_of``: its fingerprint, ``fstat`` before the
read and checked again after it, and the SHA-256 of the bytes read) — never with a later ``stat``
of the path, which may already name a newer file. The hot path compares the tag with the path's
current stamp and declines on any difference, so a mirror can be stale (the next slow-path call
rebuilds it) but never describes other bytes than its tag says; the digest holds that where a
same-size rewrite keeps the fingerprint (a filesystem that stores mtime to 1-2 s). Mirrors are written only under their source's lock (the index lock; ``CONFIG_LOCK`` for
config.toml, which ``_config``'s editors hold too), so a slow process never replaces a newer
mirror with an older one.
"""

from __future__ import annotations

import sys

from bblogin import _lock, _paths
from bblogin._hot import _mirror
from bblogin._errors import LockTimeout, StorageError
from bblogin._lazy import contextmanager
from bblogin._record import asdict

TYPE_CHECKING = False  # not `from typing import …` at run time: typing costs a cached call a fifth of a Python start-up
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from bblogin._config import Config, Profile

COMPILED_VERSION = 3  # 2: each profile says whether it is a Pipelines profile; 3: its name and request shape (older mirrors are rebuilt)
CONFIG_LOCK = "config"
INDEX_LOCK = "index"
EDIT_LOCK_TIMEOUT = 10.0


read_stamped = _mirror.read_stamped
stamp_of = _mirror.stamp_of


@contextmanager
def opportunistic(lock_key: str) -> Iterator[bool]:
    """Hold the lock if it is free right now (True), else go on without it (False): a busy lock
    means its holder is writing the source, and the mirror with it. Never waits, so a read never
    stalls behind a writer."""
    held = _lock.account_lock(lock_key, 0)
    try:
        held.__enter__()
    except LockTimeout:
        yield False
        return
    try:
        yield True
    finally:
        held.__exit__(None, None, None)


# -- the account index ---------------------------------------------------------------------------
def parsed_index(stamp: list | None) -> dict[str, Any] | None:
    """The index as parsed from the bytes ``stamp`` names, from its mirror; None when the mirror
    describes other bytes (or there is no stamp: the file changed while it was read)."""
    mirror = _mirror.read(_mirror.accounts_path())
    if stamp is None or mirror is None or mirror.get("source") != stamp or not isinstance(mirror.get("index"), dict):
        return None
    return mirror["index"]  # type: ignore[no-any-return]


def write_index(data: dict[str, Any], stamp: list | None) -> None:
    """Mirror ``data`` — the index exactly as parsed from (or written to) the bytes ``stamp``
    names. The caller holds the index lock."""
    if stamp is not None:
        _mirror.write(_mirror.accounts_path(), {"source": stamp, "index": data})


# -- config.toml ---------------------------------------------------------------------------------
def parsed_toml_path() -> str:
    return _paths.join(_paths.cache_dir(), "config-toml.marshal")


def parsed_toml(text: str) -> dict[str, Any] | None:
    """What ``tomllib.loads(text)`` returned the last time this very text was parsed (the cache
    is keyed by the text's SHA-256 — any edit misses — and by the Python that parsed it, whose
    tomllib it was), or None. A cached call then needs no tomllib
    (with `typing`, which it imports, about a fifth of a Python start-up) and the validation runs
    on the same values. marshal keeps str, int, float, bool, list and dict exactly as they were;
    a document with a TOML date or time is never cached."""
    cached = _mirror.read(parsed_toml_path())
    if cached is None or cached.get("sha256") != _mirror.token_digest(text) or cached.get("python") != sys.version or not isinstance(cached.get("toml"), dict):
        return None
    return cached["toml"]  # type: ignore[no-any-return]


def remember_toml(text: str, parsed: dict[str, Any]) -> None:
    """Cache ``parsed`` (tomllib's result for ``text``) for ``parsed_toml``; quietly nothing when
    it holds a value marshal cannot keep (a date) or the cache cannot be written."""
    try:
        _mirror.write(parsed_toml_path(), {"sha256": _mirror.token_digest(text), "python": sys.version, "toml": parsed})
    except (ValueError, StorageError, OSError):
        pass


def config_snapshot(config: Config) -> dict[str, Any]:
    """What the hot path needs of config.toml: no secrets, no flow settings."""
    return {
        "version": COMPILED_VERSION,
        "source": config.path,
        "fingerprint": None if config.absent else config.stamp,  # what _mirror.stamp says of a missing file
        "default_profile": config.default_profile or (next(iter(config.profiles)) if len(config.profiles) == 1 else None),
        "profiles": {name: profile_snapshot(p) for name, p in config.profiles.items()},
        "git_hosts": [asdict(h) for h in config.git_hosts],
    }


def profile_snapshot(p: Profile) -> dict[str, Any]:
    """What the hot path needs of one profile (``_hot._answer.cached_token``)."""
    return {
        "name": p.name,
        "shape": p.shape,
        "provider": p.provider,
        "issuer": p.issuer,
        "client_id": p.client_id,
        "storage": p.storage,
        "refresh_margin": p.refresh_margin,
        "use_access_token": p.use_access_token,
        "pipelines": p.pipelines,
    }


# -- adhoc-profiles.json ---------------------------------------------------------------------------
def write_adhoc(profiles: dict[str, Profile], stamp: list[int] | None) -> None:
    """Mirror the ad-hoc profiles parsed from (or just written to) the file ``stamp`` names, so
    the hot path answers ``--profile adhoc-…`` as the full path does (no secrets). Nothing when
    the file changed while it was read; quietly nothing when the cache cannot be written."""
    current = _mirror.read(_mirror.adhoc_path())
    if stamp is None or (current is not None and current.get("version") == COMPILED_VERSION and current.get("source") == stamp):
        return
    try:
        _mirror.write(_mirror.adhoc_path(), {"version": COMPILED_VERSION, "source": stamp, "profiles": {name: profile_snapshot(p) for name, p in profiles.items()}})
    except (StorageError, OSError):
        pass


def parsed_adhoc_path() -> str:
    return _paths.join(_paths.cache_dir(), "adhoc-json.marshal")


def keep_adhoc_parse(stamp: list[int] | None, parsed: object) -> None:
    """Keep adhoc-profiles.json as json ``parsed`` the bytes ``stamp`` names, in a file of its own
    — client secrets included, as config-toml.marshal keeps config.toml's — so the full path
    reads it without json (:func:`parsed_adhoc`). Nothing when the file changed while it was
    read; quietly nothing when the cache cannot be written."""
    if stamp is None:
        return
    try:
        _mirror.write(parsed_adhoc_path(), {"source": stamp, "parsed": parsed})
    except (ValueError, StorageError, OSError):
        pass


def parsed_adhoc(stamp: list[int] | None) -> object:
    """adhoc-profiles.json as json parsed the bytes ``stamp`` names (``keep_adhoc_parse``); None when
    what is kept describes other bytes, or there is no stamp (the file changed while it was read)."""
    kept = _mirror.read(parsed_adhoc_path())
    if stamp is None or kept is None or kept.get("source") != stamp:
        return None
    return kept.get("parsed")


def config_is_current(config: Config) -> bool:
    current = _mirror.read(_mirror.config_path())
    return (
        _mirrorable(config)
        and isinstance(current, dict)
        and current.get("version") == COMPILED_VERSION
        and current.get("source") == config.path
        and current.get("fingerprint") == config_snapshot(config)["fingerprint"]
    )


def _mirrorable(config: Config) -> bool:
    """Parsed from bytes that did not change while read — or there is no file at all: then the
    mirror says so, and the hot path answers flags-only kubeconfig entries without a config.toml
    (a file created later has a fingerprint, so the hot path sees the mirror is stale)."""
    return config.stamp is not None or config.absent


def compile_config(config: Config) -> None:
    """Write the hot path's mirror of ``config`` (tagged with the bytes it was parsed from). The
    caller holds ``CONFIG_LOCK``. A config read while it changed (no stamp) is not mirrored."""
    if _mirrorable(config):
        _mirror.write(_mirror.config_path(), config_snapshot(config))


def load_config(path: str | None = None) -> Config:
    """Parse and validate config.toml (``_config.load``) and bring the hot path's mirror up to
    date when it describes other bytes — re-read under the config lock, so the mirror is built
    from the file as it is while no editor can change it."""
    from bblogin import _config

    config = _config.load(path or _paths.config_file())
    if not _mirrorable(config) or config_is_current(config):
        return config
    with opportunistic(CONFIG_LOCK) as held:
        if held:
            config = _config.load(config.path)
            if not config_is_current(config):
                try:
                    compile_config(config)
                except StorageError:
                    pass  # a read-only cache dir: the hot path declines
    return config
