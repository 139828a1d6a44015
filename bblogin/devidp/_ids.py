"""dex's identifiers: random IDs and codes, and the protobuf-in-base64url strings it hands out
(the ``sub`` claim and refresh tokens), written and read exactly as dex does."""

from __future__ import annotations

import base64
import re
import secrets

USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
_RAW_URL_BASE64 = re.compile(r"^[A-Za-z0-9_-]*$")


def _secure_id(size: int) -> str:
    """storage.newSecureID: a letter, then lower-case unpadded base32 of the other random bytes."""
    raw = secrets.token_bytes(size)
    return chr(ord("a") + raw[0] % 26) + base64.b32encode(raw[1:]).decode().lower().rstrip("=")


def new_id() -> str:
    """storage.NewID: 25 characters. Auth codes, auth request IDs, refresh token IDs and secrets."""
    return _secure_id(16)


def new_device_code() -> str:
    return _secure_id(32)


def new_hmac_key() -> bytes:
    """storage.NewHMACKey(crypto.SHA256): newSecureID(32) as bytes."""
    return _secure_id(32).encode()


def new_user_code() -> str:
    code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8))
    return f"{code[:4]}-{code[4:]}"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def marshal(first: str, second: str) -> str:
    """internal.Marshal of a message with two string fields (proto3: empty fields are left out)."""
    message = b""
    for number, value in ((1, first), (2, second)):
        if value:
            data = value.encode()
            message += _varint(number << 3 | 2) + _varint(len(data)) + data
    return raw_url_b64encode(message)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(data) and shift < 64:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return value, pos
    raise ValueError("truncated varint")


def raw_url_b64encode(data: bytes) -> str:
    """base64.RawURLEncoding.EncodeToString."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_url_b64decode(text: str) -> bytes:
    """base64.RawURLEncoding.DecodeString: no padding, no stray characters."""
    if not _RAW_URL_BASE64.match(text) or len(text) % 4 == 1:
        raise ValueError("not unpadded base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def unmarshal(text: str) -> tuple[str, str]:
    """internal.Unmarshal into {1: string, 2: string}; ValueError where Go's decoder fails."""
    data = raw_url_b64decode(text)
    fields = {1: "", 2: ""}
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        if wire == 0:
            _, pos = _read_varint(data, pos)
        elif wire == 1 or wire == 5:
            pos += 8 if wire == 1 else 4
        elif wire == 2:
            size, pos = _read_varint(data, pos)
            chunk, pos = data[pos : pos + size], pos + size
            if number in fields:
                fields[number] = chunk.decode()  # proto3 strings must be UTF-8
        else:
            raise ValueError(f"wire type {wire}")
        if pos > len(data):
            raise ValueError("truncated field")
    return fields[1], fields[2]


def dex_subject(user_id: str, connector_id: str) -> str:
    """dex's ``sub``: base64url (no padding) of the protobuf message {1: user_id, 2: connector_id}."""
    return marshal(user_id, connector_id)
