"""Small, careful file helpers: private directories, atomic 0600 writes, tolerant JSON reads.

Stdlib only. (The hot path reads none of these files: see ``bblogin._hot``; ``_mirrors`` writes
its mirrors through here.)
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing itself costs the hot path a fifth of a start-up
if TYPE_CHECKING:
    from typing import Any

from bblogin._errors import StorageError

DIR_MODE = 0o700


def ensure_private_dir(path: str) -> str:
    """Create ``path`` (and parents) with mode 0700; tighten it if it exists looser."""
    try:
        os.makedirs(path, mode=DIR_MODE, exist_ok=True)
        if os.name == "posix" and os.stat(path).st_mode & 0o077:
            os.chmod(path, DIR_MODE)
    except OSError as exc:
        raise StorageError(
            f"cannot create the directory {path}: {exc.strerror}",
            hint="check that the directory is writable, or point BBLOGIN_STATE_DIR/BBLOGIN_CACHE_DIR elsewhere",
        ) from exc
    return path


def atomic_write_bytes(path: str, data: bytes, *, own_dir: bool = True) -> os.stat_result:
    """Write ``data`` to ``path`` atomically (mkstemp makes it 0600, fsync, rename).

    Readers see the old file or the new one, never a torn write; a full disk leaves the old file.
    ``own_dir=False`` for a file in someone else's directory (a kubeconfig): a missing directory
    is still created 0700, an existing one keeps its mode. Returns the written file's stat (taken
    from the open file; a rename keeps inode, size and mtime), so a mirror of exactly these bytes
    can be tagged without a second, racy ``stat``.
    """
    import tempfile  # not at module level: the hot path only reads

    directory = os.path.dirname(path) or "."
    if own_dir or not os.path.isdir(directory):
        ensure_private_dir(directory)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
            written = os.fstat(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise StorageError(
            f"cannot write {path}: {exc.strerror}",
            hint="free disk space or make the directory writable; the previous file is unchanged",
        ) from exc
    return written


def json_bytes(obj: Any) -> bytes:
    """``obj`` as bblogin writes its JSON files."""
    import json  # not at the top: a cached answer reads no JSON (json brings re and enum)

    return json.dumps(obj, indent=1, sort_keys=True).encode() + b"\n"


def atomic_write_json(path: str, obj: Any) -> os.stat_result:
    return atomic_write_bytes(path, json_bytes(obj))


def read_json(path: str) -> Any | None:
    """The parsed JSON at ``path``; None when it is missing or unreadable as JSON."""
    import json

    try:
        with open(path, "rb") as fh:
            return json.loads(fh.read())
    except (OSError, ValueError):
        return None

