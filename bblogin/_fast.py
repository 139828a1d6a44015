"""The hot path: answer kubectl and git from the cache with the standard library only.

kubectl and git spawn bblogin on every call. When the active account's token is cached and valid
for longer than the profile's margin, this module answers without importing argparse, tomllib,
platformdirs, keyring, httpx, authlib or jwt: it reads the compiled config snapshot and the account
index (JSON), checks the stored token's own claims (exp, and iss/aud for ID tokens: it was
signature-verified when it was stored), reads the secret over one D-Bus connection, and prints.

Any doubt — unknown flags, a stale snapshot, an expiring token, a locked keyring — returns None,
and the full command (``_session``) takes over with locking, refresh and login.
"""

from __future__ import annotations

import os
import sys
import time

from bblogin import _paths
from bblogin._claims import unverified_claims

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


def _compiled_config() -> dict | None:
    from bblogin._files import read_json

    snapshot = read_json(_paths.compiled_config_file())
    if not isinstance(snapshot, dict) or snapshot.get("version") != 1:
        return None
    source = _paths.config_file()
    try:
        st = os.stat(source)
        fingerprint = [st.st_mtime_ns, st.st_size, st.st_ino]
    except OSError:
        fingerprint = None
    if snapshot.get("source") != source or snapshot.get("fingerprint") != fingerprint:
        return None
    return snapshot


def _account(profile_name: str, account_query: str | None) -> dict | None:
    from bblogin._files import read_json

    index = read_json(_paths.accounts_file())
    if not isinstance(index, dict) or index.get("version") != 1:
        return None
    accounts = index.get("accounts") or {}
    if account_query is None:
        account = accounts.get((index.get("active") or {}).get(profile_name))
    else:
        hits = [a for a in accounts.values() if a.get("profile") == profile_name and account_query in (a.get("id"), a.get("email"), a.get("username"))]
        account = hits[0] if len(hits) == 1 else None
    return account if isinstance(account, dict) else None


def cached_token(profile: dict, account: dict, kind: str) -> tuple[str, int] | None:
    """(token, expires_at) when ``kind`` stays valid beyond the profile's margin; else None."""
    margin = profile.get("refresh_margin", 60)
    deadline = time.time() + margin
    expires_at = ((account.get("tokens") or {}).get(kind) or {}).get("expires_at")
    if not isinstance(expires_at, int) or expires_at <= deadline:
        return None
    if account.get("issuer") != profile.get("issuer") or account.get("client_id") != profile.get("client_id"):
        return None
    from bblogin._store._fastread import read_secret

    token = read_secret(account["id"], kind, account.get("storage", "keyring"))
    if not token:
        return None
    claims = unverified_claims(token)
    if claims is not None:
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp <= deadline:
            return None
        expires_at = exp
        if kind == "id_token":
            aud = claims.get("aud")
            if claims.get("iss") != profile["issuer"] or profile["client_id"] not in (aud if isinstance(aud, list) else [aud]):
                return None
    return token, expires_at


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

    try:
        api_version, _interactive = _kubectl.parse_exec_info(os.environ.get("KUBERNETES_EXEC_INFO"))
    except Exception:  # the full command reports it properly
        return None
    config = _compiled_config()
    if config is None:
        return None
    issuer, client_id = opts.get("--issuer"), opts.get("--client-id")
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
    account = _account(name, opts.get("--account") or opts.get("-a"))
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
    if fields is None:
        return None
    config = _compiled_config()
    if config is None:
        return None
    host = _gitcred.match_host(fields, config.get("git_hosts") or [])
    if host is None:
        return 0  # not ours: no answer, so git asks the next helper
    profile = (config.get("profiles") or {}).get(host["profile"])
    account = _account(host["profile"], host.get("account")) if profile else None
    if account is None:
        return None
    hit = cached_token(profile, account, host.get("token") or "access_token")
    if hit is None:
        return None
    sys.stdout.buffer.write(_gitcred.format_response(_gitcred.answer_fields(host, profile, account, hit[0], hit[1], fields)))
    return 0

