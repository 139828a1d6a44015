"""The IdP's signing keys (JWKS), cached per Cache-Control, refetched once on an unknown kid."""

from __future__ import annotations

import time

import httpx
import jwt

from bblogin._errors import TokenVerificationError
from bblogin._oidc import _cache

REFETCH_INTERVAL = 30.0  # at most one forced refetch per this many seconds: bad kids cannot hammer the IdP


class JWKSCache:
    def __init__(self, jwks_uri: str, client: httpx.Client) -> None:
        self.jwks_uri = jwks_uri
        self.client = client
        self._keys: list[tuple[jwt.PyJWK, str | None]] | None = None
        self._last_forced = 0.0

    def _load(self, force: bool) -> list[tuple[jwt.PyJWK, str | None]]:
        doc = _cache.get_json(self.client, self.jwks_uri, "JWKS", force=force, default_ttl=600)
        keys = []
        for entry in doc.get("keys", []) if isinstance(doc.get("keys"), list) else []:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            try:
                keys.append((jwt.PyJWK(entry), entry.get("alg")))
            except jwt.PyJWTError:
                continue  # an unusable key (unknown kty/alg) is skipped, not fatal
        self._keys = keys
        return keys

    @staticmethod
    def _match(keys: list[tuple[jwt.PyJWK, str | None]], kid: str | None, alg: str) -> list[jwt.PyJWK]:
        """Keys of the alg's family (RSA for RS/PS, EC for ES), whose declared alg, if any, is alg."""
        family = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}.get(alg[:2])
        usable = [k for k, declared in keys if k.key_type == family and declared in (None, alg)]
        return [k for k in usable if k.key_id == kid] if kid is not None else usable

    def key_for(self, kid: str | None, alg: str) -> jwt.PyJWK:
        """The key for this kid and alg; with no kid, the single key that fits the alg."""
        keys = self._keys if self._keys is not None else self._load(force=False)
        hits = self._match(keys, kid, alg)
        if not hits and time.monotonic() - self._last_forced > REFETCH_INTERVAL:
            self._last_forced = time.monotonic()  # key rotation: one refetch
            hits = self._match(self._load(force=True), kid, alg)
        if not hits:
            raise TokenVerificationError(f"no signing key {'with kid ' + repr(kid) if kid else 'for ' + alg} in the IdP's JWKS")
        if len(hits) > 1:
            raise TokenVerificationError("the token names no kid and the IdP's JWKS has several keys that fit")
        return hits[0]

