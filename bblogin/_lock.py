"""Per-account single-flight lock across processes, always with a timeout.

Built on `filelock` (flock on POSIX, msvcrt on Windows): the kernel drops the lock when its holder
dies, so `kill -9` in the middle of a refresh never leaves a lock that blocks forever.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from bblogin import _files, _paths
from bblogin._errors import LockTimeout


@contextlib.contextmanager
def account_lock(account_key: str, timeout: float) -> Iterator[None]:
    """Hold the lock for ``account_key`` (an account id, or a profile key before the first login)."""
    import filelock

    path = os.path.join(_files.ensure_private_dir(_paths.locks_dir()), f"{account_key}.lock")
    lock = filelock.FileLock(path, mode=0o600, fallback_to_soft=False, preserve_lock_file=True)
    try:
        lock.acquire(timeout=timeout, poll_interval=0.05)
    except filelock.Timeout:
        raise LockTimeout(f"another bblogin held the lock for {account_key} for more than {timeout:g} s") from None
    try:
        yield
    finally:
        lock.release()
