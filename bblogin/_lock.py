"""Per-account single-flight lock across processes, always with a timeout.

Built on `filelock` (flock on POSIX, msvcrt on Windows): the kernel drops the lock when its holder
dies, so `kill -9` in the middle of a refresh never leaves a lock that blocks forever.
"""

from __future__ import annotations

import os

from bblogin import _files, _paths
from bblogin._errors import LockTimeout
from bblogin._lazy import contextmanager

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


NOTE_AFTER = 1.0  # seconds of waiting before ``on_wait`` tells the person why nothing happens
_held: dict[int, set[str]] = {}  # thread id -> the keys it holds: taking one again is a no-op, never a wait on itself


def holds(account_key: str) -> bool:
    """Whether this thread holds the lock for ``account_key`` (``account_lock`` is re-entrant)."""
    import threading

    return account_key in _held.get(threading.get_ident(), ())


@contextmanager
def account_lock(account_key: str, timeout: float, *, on_wait: Callable[[], None] | None = None, what: str | None = None) -> Iterator[None]:
    """Hold the lock for ``account_key`` (a token set's id, a login's ``_shape.login_key``…).
    ``on_wait`` runs once when the lock is still taken after :data:`NOTE_AFTER` seconds; ``what``
    names the lock for the person in a :class:`LockTimeout` ("the login for profile dev").
    Re-entrant within a thread (a login under a set's lock stores into that set under it)."""
    import threading  # not at import: a cached answer takes no lock

    held = _held.setdefault(threading.get_ident(), set())
    if account_key in held:
        yield
        return
    import filelock

    timeout = max(0.0, timeout)  # filelock waits forever on a negative timeout: never that
    path = os.path.join(_files.ensure_private_dir(_paths.locks_dir()), f"{account_key}.lock")
    lock = filelock.FileLock(path, mode=0o600, fallback_to_soft=False, preserve_lock_file=True)
    first = min(timeout, NOTE_AFTER) if on_wait is not None else timeout
    try:
        try:
            lock.acquire(timeout=first, poll_interval=0.05)
        except filelock.Timeout:
            if first >= timeout or on_wait is None:
                raise
            on_wait()
            lock.acquire(timeout=timeout - first, poll_interval=0.05)
    except filelock.Timeout:
        raise LockTimeout(f"another bblogin held the lock for {what or account_key} for more than {timeout:.3g} s") from None
    held.add(account_key)
    try:
        yield
    finally:
        held.discard(account_key)
        lock.release()
