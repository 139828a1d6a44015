"""What a login or a refresh yields: the token set and the identity behind it. Stdlib only."""

from __future__ import annotations

import time

from bblogin._record import field, record

TYPE_CHECKING = False  # not `from typing import …` at run time: typing costs a cached call a fifth of a Python start-up
if TYPE_CHECKING:
    from bblogin._clock import Sample

TOKEN_KINDS = ("id_token", "access_token", "refresh_token")


@record(frozen=True)
class TokenSet:
    """Tokens from one token-endpoint answer. ``*_expires_at`` are Unix seconds on the IdP's clock
    (None = unknown); ``clock`` is what that answer told about the IdP's clock (``_clock``)."""

    access_token: str
    id_token: str | None = None
    refresh_token: str | None = None
    access_expires_at: int | None = None
    id_expires_at: int | None = None
    scope: str | None = None
    clock: tuple[Sample, ...] = ()

    def values(self) -> dict[str, str]:
        """The non-empty tokens by kind (``id_token``, ``access_token``, ``refresh_token``)."""
        out = {"id_token": self.id_token, "access_token": self.access_token, "refresh_token": self.refresh_token}
        return {k: v for k, v in out.items() if v}

    def expires_at(self, kind: str) -> int | None:
        return {"id_token": self.id_expires_at, "access_token": self.access_expires_at}.get(kind)

    def __repr__(self) -> str:  # never show a token in a traceback or log
        return f"TokenSet(kinds={sorted(self.values())}, access_expires_at={self.access_expires_at}, id_expires_at={self.id_expires_at})"


@record(frozen=True)
class Identity:
    """Who logged in. ``sub`` is stable per (issuer, client): dex's sub, a Bitbucket uuid or DC user id."""

    sub: str
    email: str | None = None
    name: str | None = None
    username: str | None = None
    groups: tuple[str, ...] = field(default_factory=tuple)
    claims: dict[str, object] = field(default_factory=dict, compare=False)


def account_id(issuer: str, client_id: str, sub: str) -> str:
    """The stable account id: 16 hex digits of SHA-256 over issuer, client id and subject, in order."""
    import hashlib  # a login names accounts; a cached answer only reads them

    return hashlib.sha256(f"{issuer}\n{client_id}\n{sub}".encode()).hexdigest()[:16]


def now() -> int:
    return int(time.time())
