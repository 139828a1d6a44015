"""The IdP's signing keys (RFC 7517 JWKS): cached per Cache-Control, refetched on key rotation.

dex rotates its key every 6 hours, publishes the new key first and keeps retired keys for 24 h,
and sends ``Cache-Control: max-age=600, must-revalidate``: keys are reused for 10 minutes, never
used stale. A token whose kid is not in the cached set triggers one refetch (the key may be new),
at most once per :data:`REFETCH_INTERVAL` per process, so a flood of unknown kids cannot hammer
the IdP. Only public signing keys are usable: symmetric (``oct``) keys and keys marked for
encryption are skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt

from bblogin._errors import TokenVerificationError
from bblogin._oidc import _cache
from bblogin._record import record

log = logging.getLogger("bblogin.oidc")

JWKS_TTL = 600  # when the server sends no Cache-Control
REFETCH_INTERVAL = 60.0
_FAMILY = {"RS": "RSA", "PS": "RSA", "ES": "EC"}
_CURVE = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


@record(frozen=True)
class _Key:
    jwk: jwt.PyJWK
    kid: str | None
    kty: str
    alg: str | None
    crv: str | None

    def fits(self, alg: str) -> bool:
        """Usable to verify ``alg``: the right key type (and curve), and no other declared alg."""
        if self.kty != _FAMILY.get(alg[:2]) or self.alg not in (None, alg):
            return False
        return self.kty != "EC" or self.crv == _CURVE.get(alg)


def _parse(doc: dict[str, Any]) -> list[_Key]:
    keys: list[_Key] = []
    entries = doc.get("keys")
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or entry.get("kty") not in ("RSA", "EC"):
            continue
        if entry.get("use", "sig") != "sig" or ("key_ops" in entry and "verify" not in (entry.get("key_ops") or [])):
            continue
        try:
            jwk = jwt.PyJWK(entry)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            log.debug("skipping an unusable key in the JWKS (kid %r)", entry.get("kid"))
            continue
        kid, alg, crv = (entry.get(k) for k in ("kid", "alg", "crv"))
        keys.append(_Key(jwk, kid if isinstance(kid, str) else None, entry["kty"], alg if isinstance(alg, str) else None, crv if isinstance(crv, str) else None))
    return keys


class JWKSCache:
    """``JWKSCache(metadata.jwks_uri, http=client).key_for(kid, alg)``"""

    def __init__(self, jwks_uri: str, *, http: httpx.Client, refetch_interval: float = REFETCH_INTERVAL, clock: Callable[[], float] = time.monotonic) -> None:
        self.jwks_uri = jwks_uri
        self.http = http
        self.refetch_interval = refetch_interval
        self._clock = clock
        self._last_refetch: float | None = None

    def _load(self, *, force: bool) -> list[_Key]:
        """The key set: the disk cache's copy while fresh (a small file read), else the IdP's."""
        return _parse(_cache.get_json(self.http, self.jwks_uri, "the IdP's signing keys (JWKS)", default_ttl=JWKS_TTL, force=force))

    def key_for(self, kid: str | None, alg: str) -> jwt.PyJWK:
        """The one key that verifies ``alg`` with this ``kid``; with no kid, the only key that fits.

        An unknown kid refetches the key set once (rate-limited); ambiguity is refused."""
        hits = self._matching(self._load(force=False), kid, alg)
        if not hits and self._may_refetch():
            log.debug("no key for kid %r in the cached JWKS; refetching it (key rotation?)", kid)
            hits = self._matching(self._load(force=True), kid, alg)
        if not hits:
            which = f"the kid {kid!r}" if kid is not None else "no kid"
            raise TokenVerificationError(f"the ID token failed verification: it names {which} and the IdP's JWKS has no {alg} key for it")
        if len(hits) > 1:
            if kid is None:
                raise TokenVerificationError(f"the ID token failed verification: it names no kid and the IdP's JWKS has {len(hits)} {alg} keys: bblogin will not guess")
            raise TokenVerificationError(f"the ID token failed verification: the IdP's JWKS has {len(hits)} keys with the kid {kid!r}: bblogin will not guess")
        return hits[0].jwk

    @staticmethod
    def _matching(keys: list[_Key], kid: str | None, alg: str) -> list[_Key]:
        return [k for k in keys if k.fits(alg) and (kid is None or k.kid == kid)]

    def _may_refetch(self) -> bool:
        now = self._clock()
        if self._last_refetch is not None and now - self._last_refetch < self.refetch_interval:
            return False
        self._last_refetch = now
        return True
