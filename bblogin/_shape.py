"""A token request's shape: everything in a login's request that decides what tokens come back. Stdlib only.

Two logins at one IdP, as one user, get different tokens when they ask for different things:
scopes (``groups`` brings the groups claim kubectl RBAC needs), dex's ``connector_id``, extra
authorization parameters (``audience``, ``resource``, ``acr_values``…), the exchange connector of
a CI profile. A token set is served only to a profile whose shape is exactly the one it was
obtained with (docs/security.md, "Accounts, token sets and profiles"); kubelogin keys its cache
the same way (issuer, client, scopes, extra parameters).

Not part of the shape: what does not change the tokens — flow, ports, timeouts, refresh margin,
proxy, CA file, client secret (the same client), where the tokens are stored.

The hot path imports this module (an ad-hoc kubectl profile's shape is computed from its flags),
so it uses the small C SHA-256 of ``_hot._mirror``, never hashlib.
"""

from bblogin._hot._mirror import _sha256

DEFAULT_OIDC_SCOPES = ("openid", "email", "profile", "groups", "offline_access")  # a profile's scopes when it names none
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping


def shape_of(
    provider: str,
    issuer: str,
    client_id: str,
    scopes: "Iterable[str]",
    connector_id: "str | None" = None,
    extra_auth_params: "Mapping[str, str] | None" = None,
    exchange_connector_id: "str | None" = None,
    pipelines: bool = False,
) -> str:
    """16 hex digits naming the request: scopes compare as a set (order and repeats do not
    matter; an OIDC request always carries ``openid``, as ``_providers._oidc`` sends it)."""
    wanted = set(scopes)
    if provider == "oidc":
        wanted.add("openid")
    canonical = (
        "bblogin-shape-1",
        provider,
        issuer,
        client_id,
        tuple(sorted(wanted)),
        connector_id or None,
        tuple(sorted((extra_auth_params or {}).items())),
        exchange_connector_id or None,
        bool(pipelines),
    )
    return str(_sha256()(repr(canonical).encode()).hexdigest()[:16])


def token_set_id(identity: str, shape: str, storage: str) -> str:
    """The id of an identity's token set for one shape and storage: the key of its secrets."""
    return str(_sha256()(f"{identity}\n{shape}\n{storage}".encode()).hexdigest()[:16])


def login_key(shape: str, storage: str) -> str:
    """The lock (and published result, ``_loginresult``) of a login asking for ``shape`` into
    ``storage``: one key whoever starts it — `bblogin login`, the TUI, kubectl, git, `token` — and
    for every profile of that shape (identity is known only after the login, and the login's
    tokens become that identity's one token set of this shape and storage)."""
    return "login-" + str(_sha256()(f"login\n{shape}\n{storage}".encode()).hexdigest()[:16])
