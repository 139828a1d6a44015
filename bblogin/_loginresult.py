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
    holder:  with lock: with publishing(key) as ending: … ending.token_set = save_login(…).id

The key is the login's (``_shape.login_key``: the request shape and storage), whoever starts it, so
a `bblogin login` typed while a kubectl's login runs takes that login's result too. A success
names the token set it made: a waiter of another profile of the same shape joins it, as its own
login would have.

Only what the login itself came to is published (:func:`shared`): denied, cancelled, timed out
at the profile's ``login_timeout``, the IdP refusing or failing, a token that failed
verification, tokens that could not be stored. Never a failure of the holder's own options (a
usage or config error, its own ``--timeout``): a waiter that had none of them goes on and logs
in itself. The waiter keeps the holder's message and exit code, with its own hint: the command
to run (``bblogin login --profile …``).

A generation is a random id per login, so the comparison needs no clock and no counter: a new
invocation that starts after a failure reads that failure's generation first, finds it
unchanged under the lock, and may start a login of its own.

The file sits next to the lock (``locks/KEY.login``, 0600, written atomically under the lock).
It never carries a token, and nothing here makes anyone serve one: a result at most makes a
waiter fail, or look at the cache again. A file that is not a regular file owned by this user,
readable by others, too big, or not what :func:`publish` writes (a symlink, a FIFO, garbage, an
exit code no shared failure has) — one check, :func:`_parse`, which :func:`publish` passes its own
bytes through before it writes them reads as "no result": the waiter goes on as if it
had been first. A holder that crashed (``kill -9``: the kernel drops the lock) publishes
nothing; the next holder runs its own login, and waiters take that one's result.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Iterator

from bblogin import _files, _paths
from bblogin._errors import (
    EXIT_OK,
    BbloginError,
    Cancelled,
    IdPError,
    LoginEnded,
    LoginFailed,
    LoginTimeout,
    StorageError,
    TokenVerificationError,
)
from bblogin._record import record

MAX_TEXT = 600
MAX_BYTES = 4096  # more than any document publish() writes: 600 printable characters of ≤ 4 bytes (UTF-8), plus ~150
SHARED = (LoginFailed, LoginTimeout, IdPError, TokenVerificationError, StorageError, Cancelled)  # what a login itself can come to
FAILURE_CODES = frozenset(cls.exit_code for cls in SHARED)


def shared(error: BbloginError, *, own_timeout: bool = False) -> bool:
    """Whether ``error`` is what the login came to, for everyone who waited for it (not a usage or
    config error; not a timeout the holder chose itself: ``own_timeout``)."""
    return isinstance(error, SHARED) and not (own_timeout and isinstance(error, LoginTimeout))


@record(frozen=True)
class Result:
    generation: str
    ok: bool
    exit_code: int
    message: str
    token_set: str  # the set a successful login made; "" for a failure

    def error(self, hint: str) -> LoginEnded:
        """The waiter's error: the holder's message and exit code, with the waiter's ``hint``."""
        return LoginEnded(self.message, hint=hint, exit_code=self.exit_code)


def _path(key: str) -> str:
    return _paths.join(_paths.locks_dir(), f"{key}.login")


def read(key: str) -> Result | None:
    """The published result for ``key``; None when there is none or it is not to be trusted."""
    try:
        fd = os.open(_path(key), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, ValueError):
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
            return None
        data = os.read(fd, MAX_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    return _parse(data)


def _parse(data: bytes) -> Result | None:
    if len(data) > MAX_BYTES:
        return None
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("v") != 2:
        return None
    generation, ok, code, message, token_set = (doc.get(k) for k in ("generation", "ok", "exit_code", "message", "token_set"))
    if not (isinstance(generation, str) and 16 <= len(generation) <= 64 and generation.isalnum()):
        return None
    if not isinstance(ok, bool) or not isinstance(message, str) or len(message) > MAX_TEXT or not message.isprintable():
        return None
    if type(code) is not int or (ok and code != EXIT_OK) or (not ok and code not in FAILURE_CODES):
        return None
    if not isinstance(token_set, str) or (ok and not (len(token_set) == 16 and token_set.isalnum())) or (not ok and token_set):
        return None
    return Result(generation, ok, code, message, token_set)


def generation(key: str) -> str | None:
    """What a process reads before it waits: the generation of the result there is now."""
    result = read(key)
    return result.generation if result is not None else None


def ended_since(key: str, seen: str | None) -> Result | None:
    """Under the lock: the result of a login that ended after ``seen`` was read, else None."""
    result = read(key)
    return result if result is not None and result.generation != seen else None


def publish(key: str, error: BbloginError | None, token_set: str = "") -> None:
    """Record a login's end (``error`` None: success, which made ``token_set``). Called under the
    lock. A state directory that cannot take the file costs the waiters only their shortcut,
    never the login itself."""
    import secrets  # not at the top: random's import is a cost every full-path call would pay

    doc = {
        "v": 2,
        "generation": secrets.token_hex(16),
        "ok": error is None,
        "exit_code": EXIT_OK if error is None else error.exit_code,
        "message": "" if error is None else error.message[:MAX_TEXT],
        "token_set": token_set if error is None else "",
    }
    data = json.dumps(doc, ensure_ascii=False).encode()
    if _parse(data) is None:
        return  # what a waiter would refuse to read (unprintable text, a code no shared failure has): no shortcut
    try:
        _files.atomic_write_bytes(_path(key), data)
    except StorageError:
        pass


class Ending:
    """What :func:`publishing` yields: the login sets ``token_set`` once its tokens are stored."""

    __slots__ = ("token_set",)

    def __init__(self) -> None:
        self.token_set = ""


@contextlib.contextmanager
def publishing(key: str, *, own_timeout: bool = False) -> Iterator[Ending]:
    """Run a login and publish how it ended, when that is the login's own outcome (:func:`shared`;
    ``own_timeout``: the holder set its own time limit); its exception goes on unchanged."""
    ending = Ending()
    try:
        yield ending
    except BbloginError as exc:
        if shared(exc, own_timeout=own_timeout):
            publish(key, exc)
        raise
    except KeyboardInterrupt:
        publish(key, Cancelled("the login was cancelled (Ctrl-C) where it ran"))
        raise
    publish(key, None, ending.token_set)
