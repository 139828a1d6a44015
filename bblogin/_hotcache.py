"""Snapshots for the hot path, in `marshal` format: no JSON on the cached path.

`import json` pulls in `re`, `enum` and `functools` — about half a Python start-up, which kubectl
would pay on every call. The slow path (``_mirrors``) therefore writes two small marshal mirrors next to the
human-readable files: ``cache/config.marshal`` (the compiled config.toml) and
``cache/accounts.marshal`` (the account index), each tagged with the fingerprint of exactly the
bytes it was built from. They hold no secrets, live in private 0700 directories, and are rebuilt
whenever their source changes; the hot path trusts a mirror only while its tag equals the source's
current fingerprint, and treats anything odd as a miss. Stdlib only.
"""

from __future__ import annotations

import marshal
import os

from bblogin import _paths

VERSION = 1


def config_path() -> str:
    return os.path.join(_paths.cache_dir(), "config.marshal")


def accounts_path() -> str:
    return os.path.join(_paths.cache_dir(), "accounts.marshal")


def write(path: str, data: dict) -> None:
    from bblogin._files import atomic_write_bytes

    atomic_write_bytes(path, marshal.dumps({"v": VERSION, "data": data}))


def read(path: str) -> dict | None:
    try:
        with open(path, "rb") as fh:
            loaded = marshal.loads(fh.read())
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if not isinstance(loaded, dict) or loaded.get("v") != VERSION or not isinstance(loaded.get("data"), dict):
        return None
    return loaded["data"]


def fingerprint(source: str | int | os.stat_result) -> list[int] | None:
    """(mtime_ns, size, inode) of a path, an open file descriptor or a stat result: how a mirror
    knows its source file has not changed since (``_mirrors`` tags it from the file it read)."""
    try:
        st = source if isinstance(source, os.stat_result) else os.stat(source)
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_size, st.st_ino]


def token_digest(token: str) -> str:
    """SHA-256 of a token, hex: the index records which token was verified; the hot path checks
    that the keyring still holds exactly that one. Uses the small built-in module, not hashlib."""
    try:
        from _sha2 import sha256  # type: ignore[import-not-found]  # Python 3.12+
    except ImportError:
        try:
            from _sha256 import sha256  # type: ignore[import-not-found,no-redef]  # Python 3.11
        except ImportError:
            from hashlib import sha256  # type: ignore[assignment]
    return sha256(token.encode()).hexdigest()
