"""SecretStore: tokens in the OS keyring (default) or, only when asked, in a plaintext file.

    SecretStore("keyring").set(account_id, "refresh_token", value)

Keyring entries: service ``bblogin``, user ``<account id>/<kind>``; values over 1,000 characters
are chunked (see ``_chunks``). Every keyring call has a timeout (BBLOGIN_KEYRING_TIMEOUT, default
5 s). The hot path reads the same entries without this module (``_hot._dbus``); so does ``get``
when keyring would read them from the Secret Service (``_keyring.can_read_directly``): keyring,
secretstorage and cryptography load only when a read finds nothing there, and for writes.
"""

from __future__ import annotations

import os

from bblogin import _paths
from bblogin._hot import _chunks
from bblogin._store import _keyring, _plaintext
from bblogin._tokens import TOKEN_KINDS

DEFAULT_TIMEOUT = 5.0
PROBE = "bblogin-probe/storage-check"  # the entry ``check`` writes and removes


def _timeout_from_env() -> float:
    try:
        return float(os.environ.get("BBLOGIN_KEYRING_TIMEOUT", DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT


class SecretStore:
    """Token storage for one storage mode: ``keyring`` or ``plaintext``."""

    def __init__(self, storage: str = "keyring", *, timeout: float | None = None) -> None:
        if storage not in ("keyring", "plaintext"):
            raise ValueError(f"unknown storage {storage!r}")
        self.storage = storage
        self.timeout = _timeout_from_env() if timeout is None else timeout

    # -- keyring primitives, each bounded by the timeout -------------------------------------
    def _kr_get(self, name: str) -> str | None:
        return _keyring.call_with_timeout(lambda: _keyring.backend().get_password(_chunks.SERVICE, name), self.timeout, "read a token")

    def _kr_set(self, name: str, value: str) -> None:
        _keyring.call_with_timeout(lambda: _keyring.backend().set_password(_chunks.SERVICE, name, value), self.timeout, "store a token")

    def _kr_delete(self, name: str) -> None:
        def delete() -> None:
            import keyring.errors

            try:
                _keyring.backend().delete_password(_chunks.SERVICE, name)
            except keyring.errors.PasswordDeleteError:
                pass  # already gone

        _keyring.call_with_timeout(delete, self.timeout, "delete a token")

    @staticmethod
    def _parts_of(stored: str | None) -> int:
        header = _chunks.parse_header(stored) if stored else None
        return header[0] if header else 0

    # -- the interface -------------------------------------------------------------------------
    def _read_directly(self, account_id: str, kind: str) -> str | None:
        """What keyring's Secret Service backend would return, read with ``_hot._dbus`` from the
        default collection; None when that cannot tell (and keyring must look): nothing found, a
        locked collection (keyring asks to unlock it), a reply it cannot read."""
        from bblogin._hot._answer import read_keyring
        from bblogin._hot._dbus import DEFAULT_COLLECTION, SecretServiceTimeout, SecretServiceUnavailable

        try:
            return read_keyring(account_id, kind, self.timeout, DEFAULT_COLLECTION)
        except SecretServiceTimeout:
            raise _keyring.timed_out(self.timeout, "read a token") from None
        except (SecretServiceUnavailable, UnicodeDecodeError):
            return None

    def get(self, account_id: str, kind: str) -> str | None:
        """The token, or None when missing or torn."""
        if self.storage == "plaintext":
            return _plaintext.read_all(account_id).get(kind)
        if _keyring.can_read_directly():
            value = self._read_directly(account_id, kind)
            if value is not None:
                return value
        stored = self._kr_get(_chunks.entry_name(account_id, kind))
        if stored is None:
            return None
        header = _chunks.parse_header(stored)
        if header is None:
            return stored
        parts = [self._kr_get(_chunks.entry_name(account_id, kind, i)) for i in range(1, header[0] + 1)]
        return _chunks.join(header, parts)

    def set(self, account_id: str, kind: str, value: str) -> None:
        """Parts first, then the header, then leftovers of a longer old value: readers never see
        a header that points at parts not yet written."""
        if self.storage == "plaintext":
            values = _plaintext.read_all(account_id)
            values[kind] = value
            _plaintext.write_all(account_id, values)
            return
        name = _chunks.entry_name(account_id, kind)
        old_parts = self._parts_of(self._kr_get(name))
        head, parts = _chunks.split(value)
        for i, part in enumerate(parts, 1):
            self._kr_set(_chunks.entry_name(account_id, kind, i), part)
        self._kr_set(name, head)
        for i in range(len(parts) + 1, old_parts + 1):
            self._kr_delete(_chunks.entry_name(account_id, kind, i))

    def delete(self, account_id: str, kind: str) -> None:
        if self.storage == "plaintext":
            values = _plaintext.read_all(account_id)
            if values.pop(kind, None) is not None:
                _plaintext.write_all(account_id, values)
            return
        name = _chunks.entry_name(account_id, kind)
        parts = self._parts_of(self._kr_get(name))
        self._kr_delete(name)
        for i in range(1, parts + 1):
            self._kr_delete(_chunks.entry_name(account_id, kind, i))

    def delete_account(self, account_id: str) -> None:
        for kind in TOKEN_KINDS:
            self.delete(account_id, kind)

    def check(self) -> None:
        """Raise StorageError unless this store can keep tokens right now: a write, read and
        delete of a probe entry, each within the timeout (plaintext: its directory is writable).
        Checked before a login, so a browser sign-in never ends in "cannot store the tokens"."""
        if self.storage == "plaintext":
            from bblogin._files import ensure_private_dir

            ensure_private_dir(_paths.plaintext_dir())
            return
        self._kr_set(PROBE, "probe")
        try:
            readable = self._kr_get(PROBE) == "probe"
        finally:
            self._kr_delete(PROBE)
        if not readable:
            from bblogin._errors import StorageError

            raise StorageError(f"the keyring ({self.backend_description()}) does not give back what was stored in it", hint="check the keyring backend with `bblogin doctor`")

    @property
    def is_plaintext(self) -> bool:
        if self.storage == "plaintext":
            return True
        return _keyring.call_with_timeout(lambda: _keyring.backend_is_plaintext(_keyring.backend()), self.timeout, "inspect the backend")

    def backend_description(self) -> str:
        if self.storage == "plaintext":
            return f"plaintext file in {_paths.plaintext_dir()}"
        kr = _keyring.call_with_timeout(_keyring.backend, self.timeout, "find the backend")
        kind = "plaintext file via keyring" if _keyring.backend_is_plaintext(kr) else "OS keyring"
        return f"{kind} ({_keyring.backend_name(kr)})"
