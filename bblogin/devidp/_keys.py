"""Signing keys like dex's local signer: RSA-2048, RS256, a 40-hex kid; rotated every 6 hours,
the retired key kept for verification for one ID-token lifetime; the JWKS lists the current key
first, then the retired ones, oldest first.

dex keeps its keys in its storage, so a restart of a dex with persistent storage (sqlite, etcd,
Kubernetes) still verifies the tokens it issued before. ``Keyring(path)`` does the same with a
0600 JSON file (``bblogin dev-idp`` uses one); without a path the keys live in memory, as with
dex's ``memory`` storage."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bblogin._record import field, record
from bblogin.devidp._ids import raw_url_b64encode

ROTATION_PERIOD = 6 * 3600


def _b64_uint(n: int) -> str:
    return raw_url_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def half_hash(value: str) -> str:
    """at_hash / c_hash for RS256: base64url of the left half of SHA-256."""
    digest = hashlib.sha256(value.encode()).digest()
    return raw_url_b64encode(digest[: len(digest) // 2])


@record
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey = field(repr=False)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(kid=secrets.token_hex(20), private=rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def to_json(self) -> dict[str, str]:
        pem = self.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        return {"kid": self.kid, "pem": pem.decode()}

    @classmethod
    def from_json(cls, data: dict[str, str]) -> SigningKey:
        private = serialization.load_pem_private_key(data["pem"].encode(), password=None)
        if not isinstance(private, rsa.RSAPrivateKey):
            raise ValueError("not an RSA key")
        return cls(kid=str(data["kid"]), private=private)

    def jwk(self) -> dict[str, Any]:
        """The public key as go-jose writes it (field order included)."""
        numbers = self.private.public_key().public_numbers()
        return {"use": "sig", "kty": "RSA", "kid": self.kid, "alg": "RS256", "n": _b64_uint(numbers.n), "e": _b64_uint(numbers.e)}

    def sign(self, payload: bytes) -> str:
        """A compact JWS over exactly these payload bytes; header {"alg":"RS256","kid":…} and no typ."""
        return jwt.api_jws.encode(payload, self.private, algorithm="RS256", headers={"kid": self.kid, "typ": None})

    def verify(self, token: str) -> bytes | None:
        try:
            return bytes(jwt.api_jws.decode(token, self.private.public_key(), algorithms=["RS256"]))
        except jwt.PyJWTError:
            return None


@record
class _Retired:
    key: SigningKey
    expires_at: float


class Keyring:
    """The current signing key and the retired ones still published. Callers hold the IdP lock."""

    def __init__(self, path: str | None = None) -> None:
        """``path``: a JSON file that keeps the keys across restarts (read when it holds usable
        keys, written 0600 whenever they change); None: in memory only."""
        self._path = path
        self.current = SigningKey.generate()
        self._retired: list[_Retired] = []
        self._next_rotation = time.time() + ROTATION_PERIOD
        if path is not None and not self._load(path):
            self._save()

    def _load(self, path: str) -> bool:
        """The keys kept in ``path``; False (and a fresh key) when it is missing or unusable."""
        try:
            with open(path, "rb") as fh:
                data = json.loads(fh.read())
            current = SigningKey.from_json(data["current"])
            retired = [_Retired(SigningKey.from_json(r["key"]), float(r["expires_at"])) for r in data["retired"]]
            next_rotation = float(data["next_rotation"])
        except (OSError, ValueError, KeyError, TypeError):
            return False
        self.current, self._retired, self._next_rotation = current, retired, next_rotation
        return True

    def _save(self) -> None:
        if self._path is None:
            return
        from bblogin._files import atomic_write_json

        atomic_write_json(self._path, {
            "current": self.current.to_json(),
            "retired": [{"key": r.key.to_json(), "expires_at": r.expires_at} for r in self._retired],
            "next_rotation": self._next_rotation,
        })

    def signing_key(self, id_token_ttl: int) -> SigningKey:
        if time.time() >= self._next_rotation:
            self.rotate(id_token_ttl)
        return self.current

    def rotate(self, id_token_ttl: int) -> None:
        """The current key retires (published until the tokens it signed have expired)."""
        now = time.time()
        self._retired = [r for r in self._retired if r.expires_at >= now]
        self._retired.append(_Retired(self.current, now + id_token_ttl))
        self.current = SigningKey.generate()
        self._next_rotation = now + ROTATION_PERIOD
        self._save()

    def validation_keys(self) -> list[SigningKey]:
        now = time.time()
        return [self.current, *(r.key for r in self._retired if r.expires_at >= now)]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.jwk() for k in self.validation_keys()]}

    def verify(self, token: str) -> bytes | None:
        """The payload of a JWS signed by a published key (kid matched when present), else None."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            return None
        for key in self.validation_keys():
            if kid in (None, "", key.kid):
                payload = key.verify(token)
                if payload is not None:
                    return payload
        return None
