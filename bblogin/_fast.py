"""The hot path: answer kubectl and git from the cache with the standard library only.

kubectl and git spawn bblogin on every call. When the active account's token is cached and valid
for longer than the profile's margin, this module answers without importing argparse, json,
tomllib, platformdirs, keyring, httpx, authlib or jwt: it reads the marshal mirrors of the
config and the account index (``_hotcache``), reads the secret over one D-Bus connection, checks
that it is exactly the token that was verified when it was stored (its SHA-256 is in the index,
next to the expiry and the issuer/client it was verified against), and prints.

Any doubt — unknown flags, a stale mirror, an expiring token, a locked keyring — returns None,
and the full command (``_session``) takes over with locking, refresh and login.
"""

from __future__ import annotations

import os
import sys
import time

from bblogin import _hotcache, _paths

TYPE_CHECKING = False  # typing/collections.abc cost the hot path more than its own code
if TYPE_CHECKING:
    from collections.abc import Callable

_KUBECTL_VALUE_FLAGS = ("--profile", "-p", "--account", "-a", "--issuer", "--client-id", "--client-secret", "--provider", "--connector-id", "--scope", "--ca-file")


def _parse(argv: list[str], value_flags: tuple[str, ...], bool_flags: tuple[str, ...]) -> dict | None:
    """A strict subset of the argparse grammar; None for anything else (argparse will judge it)."""
    out: dict = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if name in value_flags:
            if not eq:
                i += 1
                if i >= len(argv):
                    return None
                value = argv[i]
            out[name] = value
        elif arg in bool_flags:
            out[arg] = True
        else:
            return None
        i += 1
    return out


def _config() -> dict | None:
    snapshot = _hotcache.read(_hotcache.config_path())
    source = _paths.config_file()
    if snapshot is None or snapshot.get("source") != source or snapshot.get("fingerprint") != _hotcache.fingerprint(source):
        return None
    return snapshot


def _account(profile_name: str, account_query: str | None) -> dict | None:
    mirror = _hotcache.read(_hotcache.accounts_path())
    if mirror is None or mirror.get("source") != _hotcache.fingerprint(_paths.accounts_file()):
        return None
    index = mirror.get("index") or {}
    accounts = index.get("accounts") or {}
    if account_query is None:
        account = accounts.get((index.get("active") or {}).get(profile_name))
    else:
        hits = [a for a in accounts.values() if a.get("profile") == profile_name and account_query in (a.get("id"), a.get("email"), a.get("username"))]
        account = hits[0] if len(hits) == 1 else None
    return account if isinstance(account, dict) else None


def _read_secret(account_id: str, kind: str, storage: str) -> str | None:
    from bblogin._store._fastread import read_secret

    return read_secret(account_id, kind, storage)


_BOOTTIME = getattr(time, "CLOCK_BOOTTIME", None)


def idp_offset(account: dict) -> int | None:
    """Seconds to add to this machine's clock to get the IdP's, as last measured (``_clock``
    stores it in the index; 0 when never measured). None when this machine's clock has been
    stepped since (its boot epoch moved): the offset no longer holds, measure again first."""
    clock = account.get("clock")
    if clock is None:
        return 0
    offset = clock.get("offset") if isinstance(clock, dict) else None
    if not isinstance(offset, int) or isinstance(offset, bool) or not -86400 <= offset <= 86400:  # _clock.CAP
        return None
    epoch = clock.get("epoch")
    if isinstance(epoch, (int, float)) and _BOOTTIME is not None and abs(time.time() - time.clock_gettime(_BOOTTIME) - epoch) > 5.0:  # _clock.STEP_TOLERANCE
        return None
    return offset


def cached_token(profile: dict, account: dict, kind: str, read: Callable[[str, str, str], str | None] = _read_secret) -> tuple[str, int] | None:
    """(token, expiry on this machine's clock) when ``kind`` stays valid beyond the profile's
    margin in the IdP's time (local time + the measured offset) and the stored value is the very
    token that was verified for this profile's issuer and client; else None. The expiry is
    handed out on the local clock because kubectl and git compare it with the local clock."""
    info = (account.get("tokens") or {}).get(kind) or {}
    expires_at = info.get("expires_at")
    offset = idp_offset(account)
    if offset is None or not isinstance(expires_at, int) or expires_at <= time.time() + offset + profile.get("refresh_margin", 60):
        return None
    if account.get("issuer") != profile.get("issuer") or account.get("client_id") != profile.get("client_id"):
        return None
    token = read(account["id"], kind, account.get("storage", "keyring"))
    if not token or info.get("sha256") != _hotcache.token_digest(token):
        return None
    return token, expires_at - offset


def adhoc_profile_name(issuer: str, client_id: str) -> str:
    """The profile name for a self-contained ``kubectl --issuer … --client-id …`` entry: stable
    in (issuer, client id) only, so changing scopes or flag order never orphans the cache."""
    import hashlib

    return "adhoc-" + hashlib.sha256(f"{issuer}\n{client_id}".encode()).hexdigest()[:12]


def kubectl(argv: list[str]) -> int | None:
    opts = _parse(argv, _KUBECTL_VALUE_FLAGS, ("--use-access-token",))
    if opts is None or "--scope" in opts:
        return None
    from bblogin import _kubectl

    api_version = _kubectl.exec_info_api_version(os.environ.get("KUBERNETES_EXEC_INFO"))
    config = _config() if api_version else None
    if config is None or api_version is None:
        return None
    issuer, client_id = opts.get("--issuer"), opts.get("--client-id")
    name: str | None
    profile: dict | None
    if issuer or client_id:
        if not (issuer and client_id) or "--profile" in opts or "-p" in opts:
            return None
        name = adhoc_profile_name(issuer, client_id)
        profile = {"issuer": issuer, "client_id": client_id, "refresh_margin": 60, "use_access_token": False}
    else:
        name = opts.get("--profile") or opts.get("-p") or config.get("default_profile")
        profile = (config.get("profiles") or {}).get(name)
        if not profile:
            return None
    account = _account(name, opts.get("--account") or opts.get("-a")) if name else None
    if account is None:
        return None
    kind = "access_token" if opts.get("--use-access-token") or profile.get("use_access_token") else "id_token"
    hit = cached_token(profile, account, kind)
    if hit is None:
        return None
    sys.stdout.write(_kubectl.format_exec_credential(api_version, hit[0], hit[1]))
    return 0


def git_credential_get(request: bytes) -> int | None:
    from bblogin import _gitcred

    fields = _gitcred.parse_request(request)
    config = _config() if fields is not None else None
    if fields is None or config is None:
        return None
    host = _gitcred.match_host(fields, config.get("git_hosts") or [])
    if host is None:
        return 0  # not ours: no answer, so git asks the next helper
    profile = (config.get("profiles") or {}).get(host["profile"])
    account = _account(host["profile"], host.get("account")) if profile else None
    if profile is None or account is None:
        return None
    hit = cached_token(profile, account, host.get("token") or "access_token")
    if hit is None:
        return None
    sys.stdout.buffer.write(_gitcred.format_response(_gitcred.answer_fields(host, profile, account, hit[0], hit[1], fields)))
    return 0
