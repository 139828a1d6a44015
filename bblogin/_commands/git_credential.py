"""`git-credential-bblogin get|store|erase|capability`: the full git credential helper.

``_hot._answer`` answers a `get` from the cache (and a `store`) before this module loads; here the rest happens:
refresh under the account lock, a login when git can prompt, erase after a 401. A host that is
not configured gets no answer at all (exit 0, nothing printed), so git asks its next helper and
no token ever reaches a host the user did not name.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from bblogin import _gitcred, _index
from bblogin._commands._common import load_config, say
from bblogin._config import Config, GitHost
from bblogin._errors import BbloginError, LoginRequired
from bblogin._interactive import Gate
from bblogin._session import forget_cached, get_credential, visible_account


def _request() -> dict[str, list[str]] | None:
    return _gitcred.parse_request(sys.stdin.buffer.read(_gitcred.MAX_REQUEST_BYTES + 1))


def _host(config: Config, fields: dict[str, list[str]]) -> GitHost | None:
    match = _gitcred.match_host(fields, [dataclasses.asdict(h) for h in config.git_hosts])
    return next((h for h in config.git_hosts if h.url == match["url"]), None) if match else None


def _get(config: Config, host: GitHost, fields: dict[str, list[str]]) -> int:
    profile = config.profiles[host.profile]
    account = _index.load().find(host.account, profile.name) if host.account else None
    try:
        cred = get_credential(profile, kind=host.token, account=account, interactive=Gate("git"))
    except LoginRequired as exc:
        say(f"bblogin: no credential for {host.url}: {exc.message}\n  hint: {exc.hint}")
        return 0  # no answer: git goes on to its next helper or fails with its own message
    sys.stdout.buffer.write(
        _gitcred.format_response(_gitcred.answer_fields(dataclasses.asdict(host), dataclasses.asdict(profile), dataclasses.asdict(cred.account), cred.token, cred.expires_at, fields))
    )
    return 0


def _erase(config: Config, host: GitHost, fields: dict[str, list[str]]) -> int:
    """git got a 401 with our token: drop the cached access/ID token so the next get refreshes.
    A credential that is not the one we cached (another helper's, an old one) erases nothing."""
    from bblogin._store import SecretStore

    profile = config.profiles[host.profile]
    account = visible_account(_index.load(), profile, host.account)
    if account is None:
        return 0
    rejected = (fields.get("password") or fields.get("credential") or [""])[-1]
    store = SecretStore(account.storage)
    if rejected and rejected in (store.get(account.id, host.token), store.get(account.id, "access_token")):
        forget_cached(profile, account)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.operation == "capability":
        sys.stdout.write(_gitcred.capability_response())
        return 0
    fields = _request()
    if fields is None:
        say("bblogin: git sent a credential request bblogin cannot read; answering nothing")
        return 0
    try:
        config = load_config()
        host = _host(config, fields)
        if host is None:
            return 0
        if args.operation == "get":
            return _get(config, host, fields)
        if args.operation == "erase":
            return _erase(config, host, fields)
        return 0  # store: git offers back what we gave it; the keyring already has it
    except BbloginError as exc:
        say(exc.render())
        return 0 if args.operation != "get" else exc.exit_code
