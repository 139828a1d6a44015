"""The OS keyring through `keyring`, with a timeout on every call and errors that say what to do.

keyring is imported here only, on the slow path (it costs about five Python start-ups to import).
A Secret Service waiting on an unlock prompt, or a D-Bus that never answers, would otherwise hang
kubectl and git forever: each call runs in a daemon thread and is abandoned after the timeout.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from bblogin._errors import (
    KeyringLocked,
    KeyringTimeout,
    KeyringUnavailable,
    StorageError,
)

T = TypeVar("T")


def call_with_timeout(fn: Callable[[], T], timeout: float, what: str) -> T:
    """Run ``fn`` in a daemon thread; raise KeyringTimeout if it has not returned in time."""
    result: list[Any] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # handed to the caller's thread below
            failure.append(exc)

    thread = threading.Thread(target=target, name=f"bblogin-keyring-{what}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise KeyringTimeout(f"the keyring did not answer within {timeout:g} s ({what})")
    if failure:
        raise _translate(failure[0], what) from failure[0]
    return result[0]


def _translate(exc: BaseException, what: str) -> BaseException:
    if isinstance(exc, StorageError):
        return exc
    import keyring.errors as ke

    if isinstance(exc, ke.KeyringLocked) or "locked" in str(exc).lower() or "dismissed" in str(exc).lower():
        return KeyringLocked(f"the keyring is locked ({what})")
    if isinstance(exc, ke.NoKeyringError | ke.InitError):
        return KeyringUnavailable(f"no usable OS keyring ({type(exc).__name__}: {exc})")
    return StorageError(
        f"the keyring failed to {what} ({type(exc).__name__})",
        hint="check the keyring backend with `bblogin doctor`; the tokens already stored are untouched",
    )


def backend() -> Any:
    """The user's keyring backend (keyringrc / PYTHON_KEYRING_BACKEND honoured)."""
    import keyring
    from keyring.backends import fail

    kr = keyring.get_keyring()
    if isinstance(kr, fail.Keyring):
        raise KeyringUnavailable("no OS keyring backend is available")
    return kr


def backend_is_plaintext(kr: Any) -> bool:
    """keyrings.alt's file backends and friends keep secrets readable on disk."""
    chain = getattr(kr, "backends", None) or [kr]
    return any("plaintext" in type(b).__name__.lower() or type(b).__module__.startswith("keyrings.alt.file") for b in chain)


def backend_name(kr: Any) -> str:
    chain = getattr(kr, "backends", None) or [kr]
    return " + ".join(str(getattr(b, "name", type(b).__name__)) for b in chain)
