"""Hot-path secret reads, standard library only: the Secret Service over raw D-Bus (``_dbus``), or
the plaintext file. Returns None on any miss or doubt — the full path then decides properly."""

from __future__ import annotations

import os
import sys

from bblogin import _paths
from bblogin._store import _chunks

MAX_PLAINTEXT_BYTES = 1 << 20
MAX_PARTS = 64  # 64 KB of token: far beyond any IdP's, and a bound on what a bad header asks for


def _keyring_is_secret_service() -> bool:
    """Only when keyring would use the Secret Service do we read it directly."""
    chosen = os.environ.get("PYTHON_KEYRING_BACKEND")
    if chosen:
        return chosen == "keyring.backends.SecretService.Keyring"
    return sys.platform.startswith("linux") and not os.path.exists(
        os.path.join(os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config"), "python_keyring", "keyringrc.cfg")
    )


def _read_plaintext(account_id: str, kind: str) -> str | None:
    try:
        with open(_paths.plaintext_file(account_id), "rb") as fh:
            blob = fh.read(MAX_PLAINTEXT_BYTES + 1)
    except OSError:
        return None
    if len(blob) > MAX_PLAINTEXT_BYTES:
        return None
    import json  # only plaintext storage (an explicit choice) pays for it

    try:
        value = json.loads(blob).get(kind)
    except (ValueError, AttributeError, RecursionError):
        return None
    return value if isinstance(value, str) else None


def read_secret(account_id: str, kind: str, storage: str = "keyring", timeout: float = 2.0) -> str | None:
    if storage == "plaintext":
        return _read_plaintext(account_id, kind)
    if not _keyring_is_secret_service():
        return None
    from bblogin._hot._dbus import SecretReader, SecretServiceUnavailable

    def query(name: str) -> dict[str, str]:
        return {"service": _chunks.SERVICE, "username": name}

    try:
        with SecretReader(timeout) as reader:
            (raw,) = reader.read([query(_chunks.entry_name(account_id, kind))])
            stored = raw.decode() if raw is not None else None
            header = _chunks.parse_header(stored) if stored is not None else None
            if header is None:
                return stored
            if header[0] > MAX_PARTS:
                return None
            parts = reader.read([query(_chunks.entry_name(account_id, kind, i)) for i in range(1, header[0] + 1)])
            return _chunks.join(header, [p.decode() if p is not None else None for p in parts])
    except (SecretServiceUnavailable, UnicodeDecodeError):
        return None
