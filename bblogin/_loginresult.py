"""The outcome of the last interactive login under a lock, for the processes that waited for it.

Three kubectl (or git fetches) at once with no valid tokens: the first takes the lock and runs
the login; the others wait for the lock. Without this module each waiter, once it got the lock,
found no tokens and ran a login of its own: one tab per waiter after a denial. Now the holder
publishes what its login came to, and a waiter that was already waiting when it ended takes
that result — success (the tokens are in the cache) or the very failure, with its message, hint
and exit code — instead of starting another login.

    waiter:  seen = generation(key)          before it waits for the lock
             with lock: ended = ended_since(key, seen)
                        ended and not ended.ok → raise ended.error()   (no second login)
    holder:  with lock: with publishing(key, profile): interactive_login(…)

A generation is a random id per login, so the comparison needs no clock and no counter: a new
invocation that starts after a failure reads that failure's generation first, finds it
unchanged under the lock, and may start a login of its own.

The file sits next to the lock (``locks/KEY.login``, 0600, written atomically under the lock).
It never carries a token, and nothing here makes anyone serve one: a result at most makes a
waiter fail, or look at the cache again. A file that is not a regular file owned by this user,
readable by others, too big, or not what :func:`publish` writes (a symlink, a FIFO, garbage, an
exit code bblogin does not use for a login) reads as "no result": the waiter goes on as if it
had been first. A holder that crashed (``kill -9``: the kernel drops the lock) publishes
nothing; the next holder runs its own login, and waiters take that one's result.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass

from bblogin import _files, _paths
from bblogin._errors import (
    EXIT_BROKEN_PIPE,
    EXIT_CHECK_FAILED,
    EXIT_CODES,
    EXIT_ERROR,
    EXIT_OK,
    BbloginError,
    Cancelled,
    LoginEnded,
    StorageError,
)

MAX_BYTES = 4096
MAX_TEXT = 600
# a login can end in any of these, but never in "internal error", "check failed" or a broken pipe
FAILURE_CODES = frozenset(code for code, *_ in EXIT_CODES) - {EXIT_OK, EXIT_ERROR, EXIT_CHECK_FAILED, EXIT_BROKEN_PIPE}


@dataclass(frozen=True)
class Result:
    generation: str
    ok: bool
    exit_code: int
    message: str
    hint: str
    pid: int
    ended_at: float

    def error(self) -> LoginEnded:
        """The waiter's error: the holder's message, hint and exit code."""
        return LoginEnded(self.message, hint=self.hint, exit_code=self.exit_code)


def _path(key: str) -> str:
    return _paths.join(_paths.locks_dir(), f"{key}.login")


def _text(value: object) -> str | None:
    if not isinstance(value, str) or len(value) > MAX_TEXT or not all(ch.isprintable() for ch in value):
        return None
    return value


def read(key: str) -> Result | None:
    """The published result for ``key``; None when there is none or it is not to be trusted."""
    try:
        fd = os.open(_path(key), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, ValueError):
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077 or info.st_size > MAX_BYTES:
            return None
        data = os.read(fd, MAX_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    return _parse(doc)


def _parse(doc: object) -> Result | None:
    if not isinstance(doc, dict) or doc.get("v") != 1:
        return None
    generation, ok, code, pid, ended_at = (doc.get(k) for k in ("generation", "ok", "exit_code", "pid", "ended_at"))
    message, hint = _text(doc.get("message")), _text(doc.get("hint"))
    if not (isinstance(generation, str) and 16 <= len(generation) <= 64 and generation.isalnum()):
        return None
    if not isinstance(ok, bool) or message is None or hint is None:
        return None
    if type(code) is not int or (ok and code != EXIT_OK) or (not ok and code not in FAILURE_CODES):
        return None
    if type(pid) is not int or not isinstance(ended_at, int | float) or isinstance(ended_at, bool):
        return None
    return Result(generation, ok, code, message, hint, pid, float(ended_at))


def generation(key: str) -> str | None:
    """What a process reads before it waits: the generation of the result there is now."""
    result = read(key)
    return result.generation if result is not None else None


def ended_since(key: str, seen: str | None) -> Result | None:
    """Under the lock: the result of a login that ended after ``seen`` was read, else None."""
    result = read(key)
    return result if result is not None and result.generation != seen else None


def publish(key: str, error: BbloginError | None) -> None:
    """Record a login's end (``error`` None: success). Called under the lock. A state directory
    that cannot take the file costs the waiters only their shortcut, never the login itself."""
    import secrets  # not at the top: random's import is a cost every full-path call would pay

    doc = {
        "v": 1,
        "generation": secrets.token_hex(16),
        "ok": error is None,
        "exit_code": EXIT_OK if error is None else error.exit_code,
        "message": "" if error is None else error.message[:MAX_TEXT],
        "hint": "" if error is None else error.hint[:MAX_TEXT],
        "pid": os.getpid(),
        "ended_at": time.time(),
    }
    if error is not None and (doc["exit_code"] not in FAILURE_CODES or _parse(doc) is None):
        return  # nothing a waiter could read back (a bug's exit code, unprintable text): no shortcut
    try:
        _files.atomic_write_bytes(_path(key), json.dumps(doc).encode())
    except StorageError:
        pass


@contextlib.contextmanager
def publishing(key: str) -> Iterator[None]:
    """Run a login and publish how it ended; the login's own exception goes on unchanged."""
    try:
        yield
    except BbloginError as exc:
        publish(key, exc)
        raise
    except KeyboardInterrupt:
        publish(key, Cancelled("the login was cancelled (Ctrl-C) where it ran"))
        raise
    publish(key, None)
