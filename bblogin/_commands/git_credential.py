"""`git-credential-bblogin get|store|erase|capability`: the full git credential helper.

``_hot._answer`` answers a `get` from the cache (and a `store`) before this module loads; here the rest happens:
refresh under the account lock, a login when git can prompt, erase after a 401. A host that is
not configured gets no answer at all (exit 0, nothing printed), so git asks its next helper and
no token ever reaches a host the user did not name.

When git was given a user name (``https://bob@host/…``), only the account it names answers —
its user name, email or account id, among the logins of the profiles that serve the host — and
the answer carries that user name unchanged; no such account: no answer, the reason on stderr and its exit code
(:func:`_serving`; docs/git.md, "Several accounts on one host").
"""

from __future__ import annotations

import sys

from bblogin import _gitcred, _index, _record
from bblogin._commands._common import load_config
from bblogin._config import Config, GitHost, Profile
from bblogin._errors import AccountNotFound, ConfigError, LoginRequired, UsageError
from bblogin._index import Account
from bblogin._interactive import Gate
from bblogin._session import forget_cached, get_credential, serves, visible_account

TYPE_CHECKING = False  # argparse only for the annotations: a cached call never imports it (_cli._quick_args)
if TYPE_CHECKING:
    import argparse


def _request() -> dict[str, list[str]] | None:
    return _gitcred.parse_request(sys.stdin.buffer.read(_gitcred.MAX_REQUEST_BYTES + 1))


def _host(config: Config, fields: dict[str, list[str]]) -> GitHost | None:
    match = _gitcred.match_host(fields, [_record.asdict(h) for h in config.git_hosts])
    return next((h for h in config.git_hosts if h.url == match["url"]), None) if match else None


def _serving(config: Config, host: GitHost, fields: dict[str, list[str]]) -> tuple[GitHost, Profile, Account | None, bool]:
    """(host entry, profile, account, named by git's user name) that answers ``fields``. Without
    a user name from git: the host's pinned ``account``, else None (its profile's active one).
    With one: the account it names (``_gitcred.user_matches``) among the logins of the host's
    profile, then of the other profiles whose entries serve this host (longest prefix first),
    that each profile may use. Raises LoginRequired when no account matches, AccountNotFound when
    more than one in a profile does. ``_hot._answer.git_credential_get`` makes the same choice or declines."""
    profile = config.profiles[host.profile]
    index = _index.load()
    user = _gitcred.requested_user(fields)
    if user is None:
        return _pinned(host, profile, index)
    by_url = {h.url: h for h in config.git_hosts}
    tried: list[str] = []
    for match in _gitcred.matching_hosts(fields, list(map(_record.asdict, config.git_hosts))):
        entry = by_url[match["url"]]
        candidate = config.profiles.get(entry.profile)
        if candidate is None or candidate.name in tried:
            continue
        tried.append(candidate.name)
        hits = [a for a in index.for_profile(candidate.name) if serves(a, candidate) and _gitcred.user_matches(user, _record.asdict(a))]
        if len({a.identity for a in hits}) > 1:
            raise AccountNotFound(
                f"git's user name {user!r} matches {len(hits)} accounts of profile {candidate.name}; answering nothing for {host.url}",
                hint="use the account id from `bblogin accounts` as the URL's user name",
            )
        if hits:
            return entry, candidate, hits[0], True
    if _gitcred.is_default_user(user, _record.asdict(host), profile.provider):
        return _pinned(host, profile, index)  # the name the host's answers carry anyway, and no login's: no choice
    raise LoginRequired(f"no login of {user!r} serves {host.url} (profile {', '.join(tried)}); answering nothing", hint=f"log in as {user}: bblogin login --profile {host.profile}")


def _pinned(host: GitHost, profile: Profile, index: _index.Index) -> tuple[GitHost, Profile, Account | None, bool]:
    """The host's pinned ``account`` (None: the profile's active one). A pin naming a login of
    another profile only: say which, and how to fix the entry."""
    if not host.account:
        return host, profile, None, False
    try:
        return host, profile, index.find(host.account, profile.name), False
    except AccountNotFound as exc:
        elsewhere = sorted({p for a in index.accounts.values() if _gitcred.user_matches(host.account, _record.asdict(a)) for p in a.profiles})
        if not elsewhere:
            raise
        raise AccountNotFound(
            f"{exc.message}: the git host {host.url} is pinned to {host.account}, a login of profile {', '.join(elsewhere)}",
            hint=f"bblogin setup git --host {host.url} --profile {elsewhere[0]} --account {host.account} (or --account \"\" to drop the pin)",
        ) from None


def _get(config: Config, host: GitHost, fields: dict[str, list[str]]) -> int:
    host, profile, account, named = _serving(config, host, fields)
    try:
        # an account git's user name picked is never replaced by a login: whoever signs in may be someone else
        gate = Gate("git", said_no="git named the account by its user name, and a login could sign in someone else" if named else "")
        cred = get_credential(profile, kind=host.token, account=account, interactive=gate)
    except LoginRequired as exc:
        raise LoginRequired(f"no credential for {host.url}: {exc.message}", hint=exc.hint) from None
    sys.stdout.buffer.write(
        _gitcred.format_response(_gitcred.answer_fields(_record.asdict(host), _record.asdict(profile), _record.asdict(cred.account), cred.token, cred.expires_at, fields))
    )
    return 0


def _erase(config: Config, host: GitHost, fields: dict[str, list[str]]) -> int:
    """git got a 401 with our token: drop the cached access/ID token so the next get refreshes.
    A credential that is not the one we cached (another helper's, an old one) erases nothing."""
    from bblogin._store import SecretStore

    host, profile, account, _named = _serving(config, host, fields)
    account = account or visible_account(_index.load(), profile)
    if account is None:
        return 0
    rejected = (fields.get("password") or fields.get("credential") or [""])[-1]
    store = SecretStore(account.storage)
    if rejected and rejected in (store.get(account.id, host.token), store.get(account.id, "access_token")):
        forget_cached(profile, account)
    return 0


def run(args: argparse.Namespace) -> int:
    """One rule for every operation (docs/exit-codes.md): git reads only the answer and ignores
    the exit code, so the code is for people and scripts — 0 when bblogin did what was asked or
    the host is not one it serves (no answer: git asks its next helper), else the documented
    code of the reason it could not, with the message on stderr."""
    if args.operation == "capability":
        sys.stdout.write(_gitcred.capability_response())
        return 0
    fields = _request()
    if args.operation not in _gitcred.OPERATIONS:
        return 0  # an operation of a later git: ignored silently (gitcredentials(7)); its request drained
    if fields is None:
        raise UsageError("git sent a credential request bblogin cannot read; answering nothing")
    config = load_config()
    host = _host(config, fields)
    if host is None:
        return 0
    if host.problem:
        raise ConfigError(host.problem[0], hint=host.problem[1])
    if args.operation == "get":
        return _get(config, host, fields)
    if args.operation == "erase":
        return _erase(config, host, fields)
    return 0  # store: git offers back what we gave it; the keyring already has it
