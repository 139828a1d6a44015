"""The hot path's mirrors of config.toml and accounts.json, in `marshal` format: no JSON on the cached path.

`import json` pulls in `re`, `enum` and `functools` — about half a Python start-up, which kubectl
would pay on every call. The full path therefore writes two small marshal mirrors next to the
human-readable files: ``cache/config.marshal`` (the compiled config.toml) and
``cache/accounts.marshal`` (the account index), each tagged with the stamp of exactly the
bytes it was built from (``stamp``; ``bblogin._mirrors`` writes them, under the index lock). They hold no
secrets and live in private 0700 directories.

A mirror is ``MAGIC + SHA-256(payload) + payload``. ``read`` trusts nothing: it reads at most
MAX_BYTES, and hands the payload to ``marshal.loads`` only when its digest matches — a flipped
length inside marshal data would otherwise make ``marshal.loads`` allocate gigabytes before it
notices the data is short. The caller still type-checks every value it uses (the hot path's
boundary in ``_answer`` turns anything odd into "decline"). Stdlib only.
"""

import marshal

from bblogin import _paths

MAGIC = b"bblogin-mirror-2\n"  # the format's version: a mirror from an older bblogin reads as a miss
MAX_BYTES = 1 << 20  # a mirror holds a few profiles and accounts: a few KiB


def config_path() -> str:
    return _paths.join(_paths.cache_dir(), "config.marshal")


def accounts_path() -> str:
    return _paths.join(_paths.cache_dir(), "accounts.marshal")


def adhoc_path() -> str:
    """The mirror of adhoc-profiles.json: the ad-hoc profiles a ``--profile adhoc-…`` names."""
    return _paths.join(_paths.cache_dir(), "adhoc.marshal")


def _sha256() -> type:
    """The small C module, not hashlib (which loads OpenSSL); found without a failed import."""
    import sys

    try:
        if sys.version_info >= (3, 12):
            from _sha2 import sha256  # type: ignore[import-not-found]
        else:
            from _sha256 import sha256  # type: ignore[import-not-found,no-redef]
    except ImportError:
        from hashlib import sha256  # type: ignore[assignment]
    return sha256  # type: ignore[no-any-return]


def write(path: str, data: dict) -> None:
    from bblogin._files import atomic_write_bytes

    payload = marshal.dumps(data)
    if len(MAGIC) + 32 + len(payload) > MAX_BYTES:
        raise ValueError(f"the hot-path mirror {path} would exceed {MAX_BYTES} bytes")
    atomic_write_bytes(path, MAGIC + _sha256()(payload).digest() + payload)


def read(path: str) -> dict | None:
    """The mirror's data, or None when it is missing, too big, damaged or not a dict."""
    try:
        with open(path, "rb") as fh:
            blob = fh.read(MAX_BYTES + 1)
    except OSError:
        return None
    head = len(MAGIC) + 32
    if len(blob) > MAX_BYTES or blob[: len(MAGIC)] != MAGIC or _sha256()(blob[head:]).digest() != blob[len(MAGIC) : head]:
        return None
    try:
        data = marshal.loads(blob[head:])
    except (EOFError, ValueError, TypeError, MemoryError):
        return None
    return data if isinstance(data, dict) else None


def read_stamped(path: str) -> tuple[bytes, list | None]:
    """The bytes at ``path`` and the stamp of the file they came from (``stamp_of``); the stamp is
    None when the file changed while it was read (then no mirror may be built from them).
    Raises OSError (FileNotFoundError when there is no file)."""
    with open(path, "rb") as fh:
        before = _paths.stat(fh.fileno())
        data = fh.read()
        after = _paths.stat(fh.fileno())
    return data, stamp_of(before, data) if _fingerprint(before) == _fingerprint(after) else None


def stamp(path: str) -> list | None:
    """The stamp of the file at ``path`` now: None when there is none (what a mirror of a missing
    config.toml says), ``[]`` — which tags no mirror — when it cannot be read or changed while read."""
    try:
        return read_stamped(path)[1] or []
    except FileNotFoundError:
        return None
    except OSError:
        return []


def stamp_of(st: object, data: bytes) -> list:
    """What tags a mirror: the file's (mtime_ns, size, inode) from ``st`` (a stat result) and the
    SHA-256 of ``data``, its bytes. The digest because a same-size rewrite within one mtime tick
    keeps the rest on filesystems that store mtime to 1-2 s (FAT, HFS+, some network mounts)."""
    return [*_fingerprint(st), bytes_digest(data)]


def _fingerprint(st: object) -> list[int]:
    return [st.st_mtime_ns, st.st_size, st.st_ino]  # type: ignore[attr-defined]


def token_digest(token: str) -> str:
    """SHA-256 of a token, hex: the index records which token was verified; the hot path checks
    that the keyring still holds exactly that one."""
    return bytes_digest(token.encode())


def bytes_digest(data: bytes) -> str:
    """SHA-256 of ``data``, hex."""
    return str(_sha256()(data).hexdigest())
