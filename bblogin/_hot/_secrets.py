"""Hot-path secret reads, standard library only: the Secret Service over raw D-Bus, or the
plaintext file. Returns None on any miss or doubt — the slow path then decides properly."""

from __future__ import annotations

import os
import sys

from bblogin._store import _chunks


def _keyring_is_secret_service() -> bool:
    """Only when keyring would use the Secret Service do we read it directly."""
    chosen = os.environ.get("PYTHON_KEYRING_BACKEND")
    if chosen:
        return chosen == "keyring.backends.SecretService.Keyring"
    return sys.platform.startswith("linux") and not os.path.exists(
        os.path.join(os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config"), "python_keyring", "keyringrc.cfg")
    )


def read_secret(account_id: str, kind: str, storage: str = "keyring", timeout: float = 2.0) -> str | None:
    if storage == "plaintext":
        from bblogin._store import _plaintext

        return _plaintext.read_all(account_id).get(kind)
    if not _keyring_is_secret_service():
        return None
    from bblogin._hot._dbus import SecretReader, SecretServiceUnavailable

    try:
        with SecretReader(timeout) as reader:
            def get(name: str) -> str | None:
                raw = reader.read({"service": _chunks.SERVICE, "username": name})
                return raw.decode() if raw is not None else None

            stored = get(_chunks.entry_name(account_id, kind))
            header = _chunks.parse_header(stored) if stored is not None else None
            if header is None:
                return stored
            return _chunks.join(header, [get(_chunks.entry_name(account_id, kind, i)) for i in range(1, header[0] + 1)])
    except (SecretServiceUnavailable, UnicodeDecodeError):
        return None
