"""The state one dex instance works with: settings, static clients, connectors, signing keys,
storage, and the upstream doubles (Bitbucket, Pipelines). No HTTP here."""

from __future__ import annotations

import threading

from bblogin._record import record
from bblogin.devidp._bitbucket import FakeBitbucket
from bblogin.devidp._connectors import Connector
from bblogin.devidp._keys import Keyring
from bblogin.devidp._pipelines import PipelinesIssuer
from bblogin.devidp._settings import Settings
from bblogin.devidp._store import Store


@record(frozen=True)
class Client:
    """A dex static client. No secret: a public client (``public: true``)."""

    id: str
    secret: str | None = None
    redirect_uris: tuple[str, ...] = ()
    name: str = ""
    trusted_peers: tuple[str, ...] = ()  # clients that may ask for audience:server:client_id:<this id>

    @property
    def public(self) -> bool:
        return self.secret is None


DEFAULT_CLIENTS = (
    Client("bblogin", name="bblogin"),
    Client("bblogin-ci", "bblogin-ci-secret", ("http://127.0.0.1:5555/callback",), "bblogin CI"),
)


class Provider:
    def __init__(
        self,
        settings: Settings,
        clients: dict[str, Client],
        connectors: dict[str, Connector],
        listed: list[str],
        bitbucket: FakeBitbucket,
        pipelines: PipelinesIssuer,
        key_file: str | None = None,
    ) -> None:
        self.settings = settings
        self.clients = clients
        self.connectors = connectors  # every configured connector, by id
        self.listed = listed  # the ones /auth offers (see DevIdP: the Pipelines connector is not)
        self.bitbucket = bitbucket
        self.pipelines = pipelines
        self.keys = Keyring(key_file)
        self.store = Store()
        self.lock = threading.RLock()

    @property
    def issuer(self) -> str:
        return self.settings.issuer

    def path(self, suffix: str) -> str:
        """dex's absPath: the issuer's path plus this suffix."""
        return self.settings.issuer_path + suffix

    def trusts(self, client_id: str, peer_id: str) -> bool:
        """validateCrossClientTrust: may client_id ask for tokens with peer_id in the audience?"""
        if peer_id == client_id:
            return True
        peer = self.clients.get(peer_id)
        return peer is not None and client_id in peer.trusted_peers
