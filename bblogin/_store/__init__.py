"""Where tokens live: the OS keyring (default) or, only when asked, a plaintext file.

``SecretStore`` (in ``_secrets``) reads and writes through `keyring` with timeouts and chunking;
``_fastread`` reads the same entries on the hot path with the standard library only. This package
module stays empty of imports so that importing ``bblogin._store._fastread`` loads nothing heavy.
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
