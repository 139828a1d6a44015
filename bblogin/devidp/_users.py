"""The fake Bitbucket Cloud accounts the dev IdP's Bitbucket double knows."""

from __future__ import annotations

from bblogin._record import record


@record(frozen=True)
class BitbucketUser:
    uuid: str  # Bitbucket's account uuid, braces included: dex's UserID for bitbucket-cloud
    username: str
    display_name: str
    email: str | None  # the primary, confirmed address; None: the account has none (dex refuses the login)
    workspaces: tuple[str, ...]  # slugs: dex's groups


USERS = {
    "alice": BitbucketUser("{0b6e2f6c-6d3b-4c58-9b1a-7a1f0e2a4c11}", "alice", "Alice Example", "alice@example.com", ("acme", "platform-team")),
    "bob": BitbucketUser("{5f0c1d2e-8a47-4e2b-a3c9-1d2e3f4a5b66}", "bob", "Bob Example", "bob@example.com", ("acme",)),
    "carol": BitbucketUser("{9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c66}", "carol", "Carol Example", "carol@example.com", ()),
    "dave": BitbucketUser("{2c4e6a8b-0d1f-4e3a-9b5c-7d9e1f3a5b77}", "dave", "Dave Unconfirmed", None, ("acme",)),
}
