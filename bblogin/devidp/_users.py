"""The fake Bitbucket Cloud users the dev IdP logs in, and how dex turns them into claims."""

from __future__ import annotations

import base64
from dataclasses import dataclass


@dataclass(frozen=True)
class BitbucketUser:
    uuid: str  # Bitbucket's account uuid, braces included: dex's UserID for bitbucket-cloud
    username: str
    display_name: str
    email: str
    workspaces: tuple[str, ...]


USERS = {
    "alice": BitbucketUser("{0b6e2f6c-6d3b-4c58-9b1a-7a1f0e2a4c11}", "alice", "Alice Example", "alice@example.com", ("acme", "platform-team")),
    "bob": BitbucketUser("{5f0c1d2e-8a47-4e2b-a3c9-1d2e3f4a5b66}", "bob", "Bob Example", "bob@example.com", ("acme",)),
    "carol": BitbucketUser("{9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c66}", "carol", "Carol Example", "carol@example.com", ()),
}


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def dex_subject(user_id: str, connector_id: str) -> str:
    """dex's `sub`: base64url (no padding) of the protobuf message {1: user_id, 2: connector_id}."""
    message = b""
    for field_number, value in ((1, user_id), (2, connector_id)):
        data = value.encode()
        message += bytes([field_number << 3 | 2]) + _varint(len(data)) + data
    return base64.urlsafe_b64encode(message).rstrip(b"=").decode()


def claims_for(user: BitbucketUser, connector_id: str, scopes: list[str]) -> dict[str, object]:
    """The identity claims dex adds for these scopes (the bitbucket-cloud connector's view)."""
    claims: dict[str, object] = {"sub": dex_subject(user.uuid, connector_id)}
    if "email" in scopes:
        claims.update(email=user.email, email_verified=True)
    if "groups" in scopes and user.workspaces:
        claims["groups"] = list(user.workspaces)
    if "profile" in scopes:
        claims.update(name=user.username, preferred_username=user.username)
    if "federated:id" in scopes:
        claims["federated_claims"] = {"connector_id": connector_id, "user_id": user.uuid}
    return claims
