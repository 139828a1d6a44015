"""Where tokens live: the OS keyring (default) or, only when asked, a plaintext file.

``SecretStore`` (in ``_secrets``) reads and writes through `keyring` with timeouts and chunking;
the hot path reads the same entries with the standard library only (``bblogin._hot``), laid out
as ``bblogin._hot._chunks`` says. This package module stays empty of imports.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from bblogin._store._secrets import SecretStore


def __getattr__(name: str) -> object:
    if name == "SecretStore":
        from bblogin._store._secrets import SecretStore

        return SecretStore
    raise AttributeError(name)


__all__ = ["SecretStore"]
