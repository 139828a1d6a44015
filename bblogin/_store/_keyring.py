"""The OS keyring through `keyring`, with a timeout on every call and errors that say what to do.

Which backend: the one ``PYTHON_KEYRING_BACKEND`` or keyring's ``keyringrc.cfg`` names (read by
keyring's own ``load_env``/``load_config``), else this platform's — Secret Service, macOS
Keychain, Windows Credential Manager — instantiated directly. keyring's own detection imports
every backend it ships (the macOS one loads a framework through ctypes, on Linux too) and scans
the installed packages' entry points for more: a few Python start-ups. It runs only when this
platform's backend is not usable here (then it picks what keyring always picked). A backend set
with ``keyring.set_keyring`` wins, as it does for keyring itself.

keyring is imported here only, and only when a call needs it: a cached read from the Secret
Service goes through bblogin's own D-Bus client (``can_read_directly``). A Secret Service waiting
on an unlock prompt, or a D-Bus that never answers, would otherwise hang kubectl and git
forever: each call runs in a daemon thread and is abandoned after the timeout.
"""

from __future__ import annotations

import os
import sys

from bblogin import _paths

from bblogin._errors import (
    KeyringLocked,
    KeyringTimeout,
    KeyringUnavailable,
    StorageError,
)

TYPE_CHECKING = False  # not `from typing import …` at run time: typing costs a cached call a fifth of a Python start-up
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    T = TypeVar("T")


def call_with_timeout(fn: Callable[[], T], timeout: float, what: str) -> T:
    """Run ``fn`` in a daemon thread; raise KeyringTimeout if it has not returned in time."""
    import threading  # not at the top: a read that bblogin makes itself (can_read_directly) needs no thread

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
        raise timed_out(timeout, what)
    if failure:
        raise _translate(failure[0], what) from failure[0]
    return result[0]


def timed_out(timeout: float, what: str) -> KeyringTimeout:
    return KeyringTimeout(f"the keyring did not answer within {timeout:g} s ({what})")


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


SECRET_SERVICE = "keyring.backends.SecretService.Keyring"
PLATFORM_BACKENDS = {"darwin": "keyring.backends.macOS.Keyring", "win32": "keyring.backends.Windows.WinVaultKeyring"}


def platform_backend() -> str:
    """This platform's keyring backend class: the Secret Service but on macOS and Windows."""
    return PLATFORM_BACKENDS.get(sys.platform, SECRET_SERVICE)


def _installed() -> Any:
    """The backend keyring already holds (``keyring.set_keyring``, or an earlier ``backend()``),
    without importing keyring. (keyring has no public "is one set?": its module global says.)"""
    return getattr(sys.modules.get("keyring.core"), "_keyring_backend", None)


def _configured() -> str | None:
    """The backend keyringrc.cfg names, read as ``keyring.core.load_config`` reads it; None when
    there is no such file or it names none. "" for what only keyring itself should read: a
    ``keyring-path`` (keyring puts it on sys.path first) or a file configparser refuses."""
    path = _paths.keyring_config_file()
    if not os.path.exists(path):
        return None
    import configparser

    config = configparser.RawConfigParser()
    try:
        config.read(path, encoding="utf-8")
        if config.has_option("backend", "keyring-path"):
            return ""
        return config.get("backend", "default-keyring").strip() if config.has_section("backend") else None
    except (configparser.Error, UnicodeDecodeError):
        return ""


def can_read_directly() -> bool:
    """Whether the backend in use is keyring's Secret Service one exactly as keyring would set it
    up — no ``KEYRING_PROPERTY_*`` (another collection, another attribute scheme) — so bblogin's
    own D-Bus client (``_hot._dbus``) reads what keyring would read, without importing keyring."""
    installed = _installed()
    if installed is not None:
        return f"{type(installed).__module__}.{type(installed).__name__}" == SECRET_SERVICE and not vars(installed)
    if any("KEYRING_PROPERTY_" in name for name in os.environ):  # keyring's set_properties_from_env
        return False
    chosen = os.environ.get("PYTHON_KEYRING_BACKEND")
    if chosen is None:
        chosen = _configured()
    return (platform_backend() if chosen is None else chosen) == SECRET_SERVICE


def backend() -> Any:
    """The keyring backend in use: the one ``PYTHON_KEYRING_BACKEND`` or keyringrc.cfg names, else
    this platform's (keyring's detection only when that is not usable here). Installed with
    ``keyring.set_keyring``, so the next call, and keyring's own API, use the same."""
    installed = _installed()
    if installed is not None:
        return _usable(_greeting(installed))
    import keyring.core

    kr = keyring.core.load_env() or keyring.core.load_config()
    if kr is None:
        try:
            kr = keyring.core.load_keyring(platform_backend())  # checks it is usable here (its priority)
        except Exception:  # noqa: BLE001  # not usable (no daemon, a missing module): keyring's own choice
            kr = keyring.core.get_keyring()
    keyring.core.set_keyring(kr)
    return _usable(_greeting(kr))


def _greeting(kr: Any) -> Any:
    """``kr``, with secretstorage's connections made to greet first when it uses them."""
    chain = getattr(kr, "backends", None) or [kr]
    if any(type(b).__module__ == "keyring.backends.SecretService" for b in chain):
        greet_first()
    return kr


def greet_first() -> None:
    """Make every connection secretstorage opens ask the Secret Service for its Collections first,
    and wait for the answer, before anything else.

    gnome-keyring-daemon 42 registers a caller in an idle callback that its message filter
    schedules, and GLib may dispatch the caller's first message before it. A property of a
    collection or an item needs the registered caller; without it the daemon aborts
    (``gkd_secret_service_get_pkcs11_session: assertion 'client' failed``, then GLib's
    ``invoke_get_property_in_idle_cb``) and the bus starts a new daemon with the login keyring
    locked. secretstorage's first message is exactly such a Get (the collection's Label), on a new
    connection for every keyring call. The service's Collections needs no registered caller, and
    once it is answered the callback scheduled before it has run: the order the hot path's
    SecretReader keeps (``_hot/_dbus.py``). keyring offers no hook on the connection it opens, so
    ``secretstorage.dbus_init`` is wrapped, once per process. An error answer (no service) is an
    answer too: keyring's own call then says what is wrong."""
    import secretstorage

    if getattr(secretstorage.dbus_init, "greets_first", False):
        return
    from jeepney import DBusAddress, Properties
    from secretstorage.defines import SS_PATH
    from secretstorage.util import BUS_NAME, SERVICE_IFACE

    opened = secretstorage.dbus_init
    collections = Properties(DBusAddress(SS_PATH, BUS_NAME, SERVICE_IFACE)).get("Collections")

    def dbus_init() -> Any:
        connection = opened()
        connection.send_and_get_reply(collections)
        return connection

    dbus_init.greets_first = True  # type: ignore[attr-defined]
    secretstorage.dbus_init = dbus_init


def _usable(kr: Any) -> Any:
    from keyring.backends import fail

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
