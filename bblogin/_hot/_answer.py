"""The hot path's decisions: answer kubectl and git from the cache, or decline.

kubectl and git spawn bblogin on every call. When the account's token is cached and valid for
longer than the profile's margin, this module answers without argparse, json, tomllib, os,
platformdirs, keyring, httpx, authlib or jwt: it parses the command line (a strict subset of
argparse's grammar), reads the marshal mirrors of the config and the account index (``_mirror``),
reads the secret from the Secret Service (``_dbus``: three round trips) or the plaintext file,
checks that it is exactly the token that was verified when it was stored (``cached_token``: its
SHA-256, expiry, provider, issuer and client are in the index — and for a CI exchange the step
token's digest; the full path runs the same check), and prints. ``_mirrors`` on the full path
writes the mirrors.

Any doubt — unknown or repeated flags, a stale or damaged mirror, an expiring token, a locked,
hung or garbled keyring, an exception of any kind — is "decline" (None), and the full command
(``_cli.run`` → ``_session``) takes over with locking, refresh, login and proper error messages.
"""

import sys
import time

from bblogin import _paths
from bblogin._hot import _chunks, _mirror

TYPE_CHECKING = False  # typing/collections.abc cost the hot path more than its own code
if TYPE_CHECKING:
    from collections.abc import Callable

# --provider and --scope are not here: they change which profile the full path builds (and argparse
# checks --provider's choices), so the hot path leaves them to it.
PIPELINES_ENV = "BITBUCKET_STEP_OIDC_TOKEN"
_KUBECTL_VALUE_FLAGS = ("--profile", "-p", "--account", "-a", "--issuer", "--client-id", "--client-secret", "--connector-id", "--ca-file", "--scope", "--provider")
_REPEATABLE = ("--scope",)  # argparse's action="append": every value, in order
_CHOICES = {"--provider": ("oidc", "bitbucket-cloud", "bitbucket-dc")}  # argparse's choices= (_config.PROVIDERS)
_ALIASES = {"-p": "--profile", "-a": "--account"}
MAX_PLAINTEXT_BYTES = 1 << 20
MAX_PARTS = 64  # 64 KB of token: far beyond any IdP's, and a bound on what a bad header asks for


def _parse(argv: list[str], value_flags: tuple[str, ...], bool_flags: tuple[str, ...]) -> dict | None:
    """A strict subset of the argparse grammar, keyed by each flag's long name; None for anything
    else, and argparse will judge it. A repeatable flag (``_REPEATABLE``) gives the list of its
    values. Declined: any other flag given twice under any of its names
    (argparse keeps the last, a hand-written parser easily the first), a separate value that
    starts with "-" (argparse may read it as a flag), ``-x=value``, abbreviations."""
    out: dict = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if name in value_flags:
            if eq and not name.startswith("--"):
                return None
            if not eq:
                i += 1
                if i >= len(argv) or argv[i].startswith("-"):
                    return None
                value = argv[i]
        elif arg in bool_flags:
            name, value = arg, True
        else:
            return None
        name = _ALIASES.get(name, name)
        if value not in _CHOICES.get(name, (value,)):
            return None
        if name in _REPEATABLE:
            out.setdefault(name, []).append(value)
        elif name in out:
            return None
        else:
            out[name] = value
        i += 1
    return out


def _config() -> dict | None:
    snapshot = _mirror.read(_mirror.config_path())
    source = _paths.config_file()
    if snapshot is None or snapshot.get("source") != source or snapshot.get("fingerprint") != _mirror.stamp(source):
        return None
    return snapshot


def _party(entry: dict) -> tuple:
    """Who issued an account's tokens, or whom a profile names (docs/security.md)."""
    return (entry.get("provider", "oidc"), entry.get("issuer"), entry.get("client_id"))


def _serves(account: object, profile_name: str, profile: dict) -> bool:
    """``_session.serves``: the party that issued it, the profile a member, exactly its shape."""
    if not isinstance(account, dict):
        return False
    members = account.get("profiles")
    return _party(account) == _party(profile) and isinstance(members, list) and profile_name in members and account.get("shape") == profile.get("shape")


def _index() -> dict | None:
    """The account index as its current mirror holds it; None when the mirror is stale, damaged
    or of an older index version (the full path settles and mirrors it first)."""
    mirror = _mirror.read(_mirror.accounts_path())
    if mirror is None or mirror.get("source") != _mirror.stamp(_paths.accounts_file()):
        return None
    index = mirror.get("index") or {}
    return index if isinstance(index, dict) and index.get("version") == 2 else None  # _index.VERSION


def _account(profile_name: str, account_query: str | None, profile: dict) -> dict | None:
    """The token set ``_session.visible_account`` would choose (or one ``cached_token`` refuses)."""
    index = _index()
    if index is None:
        return None
    accounts = index.get("accounts") or {}
    pool = [a for a in accounts.values() if isinstance(a, dict) and profile_name in (a.get("profiles") or ())]
    if not account_query:  # the active account's own set of this shape, never another identity's
        active = accounts.get((index.get("active") or {}).get(profile_name))
        own = [a for a in pool if _serves(a, profile_name, profile)]
        if isinstance(active, dict) and profile_name in (active.get("profiles") or ()) and _party(active) == _party(profile):
            own = [a for a in own if a.get("identity") == active.get("identity")]
        elif active is not None and not isinstance(active, dict):
            return None
        account = own[0] if len(own) == 1 else None
    else:  # as _index.Index.find: an id, else an email or user name ignoring case; ambiguous or an id prefix: decline
        hits = [a for a in pool if account_query in (a.get("identity"), a.get("id"))]
        if not hits:
            query = account_query.lower()
            hits = [a for a in pool if query in ((a.get("email") or "").lower(), (a.get("username") or "").lower())]
        account = hits[0] if len(hits) == 1 else None
    return account if isinstance(account, dict) else None


def _named_sets(profile_name: str, profile: dict, user: str) -> list | None:
    """The token sets of ``profile_name`` that it may use and that git's user name names
    (``_gitcred.user_matches``) — what ``_commands.git_credential._serving`` looks for first;
    None for an index it cannot read."""
    from bblogin._gitcred import user_matches

    index = _index()
    if index is None:
        return None
    return [a for a in (index.get("accounts") or {}).values() if _serves(a, profile_name, profile) and user_matches(user, a)]


def _keyring_is_secret_service() -> bool:
    """Only when keyring would use the Secret Service do we read it directly."""
    chosen = _paths.getenv("PYTHON_KEYRING_BACKEND")
    if chosen:
        return chosen == "keyring.backends.SecretService.Keyring"
    return sys.platform.startswith("linux") and not _paths.exists(_paths.keyring_config_file())


def _read_plaintext(account_id: str, kind: str) -> str | None:
    try:
        with open(_paths.plaintext_file(account_id), "rb") as fh:
            blob = fh.read(MAX_PLAINTEXT_BYTES + 1)
    except OSError:
        return None
    if len(blob) > MAX_PLAINTEXT_BYTES:
        return None
    import json  # only plaintext storage (an explicit choice) pays for it

    try:
        value = json.loads(blob).get(kind)
    except (ValueError, AttributeError, RecursionError):
        return None
    return value if isinstance(value, str) else None


def read_keyring(account_id: str, kind: str, timeout: float, collection: str | None = None) -> str | None:
    """The ``kind`` token of ``account_id`` from the Secret Service over one plain session (three
    round trips; two more for a value stored in parts), None when there is none or its parts are
    torn. Raises ``_dbus.SecretServiceUnavailable`` when it cannot tell (no bus, a locked item,
    more than MAX_PARTS parts, a reply it cannot read) and UnicodeDecodeError."""
    from bblogin._hot._dbus import SecretReader, SecretServiceUnavailable

    def query(name: str) -> dict[str, str]:
        return {"service": _chunks.SERVICE, "username": name}

    with SecretReader(timeout, collection) as reader:
        (raw,) = reader.read([query(_chunks.entry_name(account_id, kind))])
        stored = raw.decode() if raw is not None else None
        header = _chunks.parse_header(stored) if stored is not None else None
        if header is None:
            return stored
        if header[0] > MAX_PARTS:
            raise SecretServiceUnavailable(f"a value in {header[0]} parts")
        parts = reader.read([query(_chunks.entry_name(account_id, kind, i)) for i in range(1, header[0] + 1)])
        return _chunks.join(header, [p.decode() if p is not None else None for p in parts])


def read_secret(account_id: str, kind: str, storage: str = "keyring", timeout: float = 2.0) -> str | None:
    if storage == "plaintext":
        return _read_plaintext(account_id, kind)
    if not _keyring_is_secret_service():
        return None
    from bblogin._hot._dbus import SecretServiceUnavailable

    try:
        return read_keyring(account_id, kind, timeout)
    except (SecretServiceUnavailable, UnicodeDecodeError):
        return None


_BOOTTIME = getattr(time, "CLOCK_BOOTTIME", None)


STEP_DOUBT = 30  # seconds of doubt added to IdP time when the clock was stepped since the offset was measured


def idp_offset(account: dict, stepped: bool = False) -> int | None:
    """Seconds to add to this machine's clock to get the IdP's, as last measured (``_clock``
    stores it in the index; 0 when never measured). None when this machine's clock has been
    stepped since (its boot epoch moved): the offset no longer holds, measure again first —
    unless ``stepped`` (the IdP cannot be asked: an outage fallback): then the latest IdP time
    any reading allows — this machine's clock as it is, the old offset, the old one corrected by
    the step (the boot clock never steps) — plus STEP_DOUBT, so a plainly valid token is still
    served and a doubtful one is not."""
    clock = account.get("clock")
    if clock is None:
        return 0
    offset = clock.get("offset") if isinstance(clock, dict) else None
    if not isinstance(offset, int) or isinstance(offset, bool) or not -86400 <= offset <= 86400:  # _clock.CAP
        return None
    epoch = clock.get("epoch")
    if isinstance(epoch, (int, float)) and _BOOTTIME is not None:
        moved = time.time() - time.clock_gettime(_BOOTTIME) - epoch  # the wall clock's step since the measurement
        if abs(moved) > 5.0:  # _clock.STEP_TOLERANCE
            if not stepped:
                return None
            readings = [0, offset] + ([offset - round(moved)] if abs(moved) <= 86400 else [])  # a step beyond a day: a boot clock not to trust
            return max(readings) + STEP_DOUBT
    return offset


MARGIN_FRACTION = 4  # a token is never "expiring" for more than a quarter of its lifetime
OUTAGE_FLOOR = 10  # during an outage a token is served while it lives this long (IdP time): it must not die in flight


def effective_margin(margin: int, info: dict) -> int:
    """The refresh margin for one token: the profile's, capped at a quarter of the token's
    lifetime (``issued_at`` to ``expires_at``), so a short-lived token is not refreshed on every call."""
    issued_at, expires_at = info.get("issued_at"), info.get("expires_at")
    if isinstance(issued_at, int) and isinstance(expires_at, int) and expires_at > issued_at:
        return min(margin, (expires_at - issued_at) // MARGIN_FRACTION)
    return margin


MAX_WINDOW = 2100  # _outage.RETRY_AFTER_CAP + CAP: a later retry_at is a damaged record, not a window


MAX_FAILURES = 100_000  # _outage counts failed attempts up to this (years of a failing IdP); more is damage
_BELIEVABLE = (946_684_800.0, 4_102_444_800.0)  # 2000 to 2100: an outage time outside is a damaged record


def _believable_time(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and _BELIEVABLE[0] <= value <= _BELIEVABLE[1]  # NaN, inf: False


def whole_outage(outage: object) -> "dict | None":
    """An account's recorded IdP outage (``_outage``) when it is whole — believable times, a
    count, a cause — else None: a damaged record (an edited or corrupt accounts.json: NaN,
    Infinity, 1e300, a string) is no record, never an exception."""
    if not isinstance(outage, dict):
        return None
    failures = outage.get("failures")
    if not (_believable_time(outage.get("since")) and _believable_time(outage.get("retry_at")) and isinstance(outage.get("cause"), str)):
        return None
    if not isinstance(failures, int) or isinstance(failures, bool) or not (0 if outage.get("in_flight") is True else 1) <= failures <= MAX_FAILURES:
        return None
    return outage


def in_backoff(outage: object, now: float) -> bool:
    """Whether an account's recorded IdP outage (``_outage``) says: do not try before a later time.
    Not when its first failure is still to come: this machine's clock stepped back (a resume, NTP)
    further than the outage is old, and its window would hold calls back by the step."""
    whole = whole_outage(outage)
    return whole is not None and now < whole["retry_at"] <= now + MAX_WINDOW and whole["since"] <= now


def _needed(profile: dict, account: dict, info: dict, floor: "int | None") -> "int | None":
    """Seconds ``info``'s token must still live to be served: the effective margin; during a
    backoff window at most OUTAGE_FLOOR; ``floor`` when the caller names one. None: serve nothing
    (the identity behind the tokens is to be checked, and the window that postponed it is over)."""
    if floor is not None:
        return floor
    outage = account.get("outage")
    waiting = in_backoff(outage, time.time())
    if isinstance(outage, dict) and outage.get("identity_pending") and (not waiting or whole_outage(outage) is None):
        return None
    margin = effective_margin(profile.get("refresh_margin", 60), info)
    return min(margin, OUTAGE_FLOOR) if waiting else margin


def cached_token(profile: dict, account: dict, kind: str, read: "Callable[[str, str, str], str | None] | None" = None, floor: "int | None" = None) -> tuple[str, int] | None:
    """(token, expiry on this machine's clock) when ``kind`` stays valid beyond the profile's
    effective margin (``effective_margin``; during a recorded IdP outage the smaller
    OUTAGE_FLOOR; ``floor`` when given) in the IdP's time (local time + the measured offset) and the stored value is the very
    token that was verified for this profile's provider, issuer and client, for a token set the
    profile is a member of and obtained with exactly its request shape — and, for a CI
    exchange, for this step's identity token (its SHA-256); else None. The expiry is handed out
    on the local clock because kubectl and git compare it with the local clock."""
    info = (account.get("tokens") or {}).get(kind) or {}
    expires_at = info.get("expires_at")
    offset = idp_offset(account, stepped=floor is not None or in_backoff(account.get("outage"), time.time()))  # serving through an outage
    needed = _needed(profile, account, info, floor)
    if offset is None or needed is None or not isinstance(expires_at, int) or expires_at <= time.time() + offset + needed:
        return None
    if not _serves(account, profile.get("name"), profile):
        return None  # issued for another party, or another profile or request shape (docs/security.md): never served here
    if profile.get("pipelines", True) or account.get("subject_sha256") is not None:  # unknown (an older mirror): check
        step_token = (_paths.getenv(PIPELINES_ENV) or "").strip()
        if not step_token or account.get("subject_sha256") != _mirror.token_digest(step_token):
            return None  # exchanged for another CI step's identity token: never this step's answer
    token = (read or read_secret)(account["id"], kind, account.get("storage", "keyring"))
    if not token or info.get("sha256") != _mirror.token_digest(token):
        return None
    return token, expires_at - offset


def _adhoc_profile(name: str) -> dict | None:
    """The ad-hoc profile ``--profile NAME`` names when config.toml has none of that name (as
    ``_config.Config.profile``): from the mirror of adhoc-profiles.json, when it describes the file."""
    mirror = _mirror.read(_mirror.adhoc_path())
    if mirror is None or mirror.get("source") != _mirror.stamp(_paths.adhoc_profiles_file()):
        return None
    profile = (mirror.get("profiles") or {}).get(name)
    return profile if isinstance(profile, dict) else None


def _clock_time(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


def outage_notice(profile: dict, account: dict, kind: str, expires_at: int) -> "str | None":
    """The one stderr line for a token served inside its refresh margin because the IdP is
    failing, or because a detached refresh (``_background``) has not answered yet (``expires_at`` on this machine's clock); None when the token is not inside its
    margin or no outage is recorded. The full path prints the same line (``_session``)."""
    outage = whole_outage(account.get("outage"))
    if outage is None:
        return None
    info = (account.get("tokens") or {}).get(kind) or {}
    now = time.time()
    if expires_at > now + effective_margin(profile.get("refresh_margin", 60), info):
        return None
    shown = kind.replace('_', ' ').replace('id ', 'ID ')
    retry_at = outage.get("retry_at")
    if outage.get("in_flight") is True:  # no failure (yet): a detached refresh still at work (past its window: it still holds the lock — a dead one's mark is settled by the next call)
        return (
            f"bblogin: a refresh is under way (the identity provider has not answered yet): serving the cached {shown}, "
            f"valid until {_clock_time(expires_at)} (`bblogin status`: how it ended)\n"
        )
    retry = f"; next try at {_clock_time(retry_at)}" if in_backoff(outage, now) else ""
    party = outage.get("party")
    who = party if isinstance(party, str) and party.isprintable() else "the identity provider"  # a proxy that failed is named
    return (
        f"bblogin: {who} is failing (since {_clock_time(outage['since'])}): serving the cached "
        f"{shown}, valid until {_clock_time(expires_at)}{retry} (-v: why; `bblogin refresh`: try now)\n"
    )


def adhoc_profile_name(shape: str) -> str:
    """The profile name for a ``kubectl --issuer … --client-id …`` entry (or flags that change a
    profile's request): named by the request's whole shape (``_shape.shape_of``: provider, issuer,
    client, scopes, connector, extra parameters), so two entries that ask for other tokens are two
    profiles with their own token sets, and reordering scopes never orphans a login."""
    return "adhoc-" + shape[:12]


def kubectl(argv: list[str]) -> bytes | None:
    """The ExecCredential for ``bblogin kubectl ARGV``, or None when the full command must answer."""
    opts = _parse(argv, _KUBECTL_VALUE_FLAGS, ("--use-access-token", "--no-login"))  # --no-login: nothing to a cached answer
    if opts is None:
        return None
    from bblogin import _kubectl

    api_version = _kubectl.exec_info_api_version(_paths.getenv("KUBERNETES_EXEC_INFO"))
    config = _config() if api_version else None
    if config is None or api_version is None:
        return None
    issuer, client_id = opts.get("--issuer"), opts.get("--client-id")
    name: str | None
    profile: dict | None
    scopes = opts.get("--scope")
    if opts.get("--provider", "oidc") != "oidc" or (scopes is not None and not all(s and " " not in s for s in scopes)):
        return None  # a Bitbucket provider, a scope config.toml could not hold: the full path says why
    if issuer or client_id:
        if not (issuer and client_id) or "--profile" in opts:
            return None
        from bblogin._shape import DEFAULT_OIDC_SCOPES, shape_of

        shape = shape_of("oidc", issuer, client_id, scopes or DEFAULT_OIDC_SCOPES, opts.get("--connector-id"))  # as _commands._common.profile_from_args builds it
        name = adhoc_profile_name(shape)
        profile = {"name": name, "shape": shape, "issuer": issuer, "client_id": client_id, "refresh_margin": 60, "use_access_token": False, "pipelines": False}
    else:
        name = opts.get("--profile") or config.get("default_profile")
        profile = (config.get("profiles") or {}).get(name) or (_adhoc_profile(name) if "--profile" in opts else None)
        if not profile or any(k in opts for k in ("--connector-id", "--scope", "--provider")):  # flags on a profile: the full path names their request's ad-hoc profile
            return None
    if profile.get("provider", "oidc") != "oidc":  # a Bitbucket token never goes to Kubernetes: the full path says why
        return None
    account = _account(name, opts.get("--account"), profile) if name else None
    if account is None:
        return None
    kind = "access_token" if opts.get("--use-access-token") or profile.get("use_access_token") else "id_token"
    hit = cached_token(profile, account, kind)
    if hit is None:
        return None
    _notify(outage_notice(profile, account, kind, hit[1]))
    return _kubectl.format_exec_credential(api_version, hit[0], hit[1]).encode()


def git_credential_get(request: bytes) -> bytes | None:
    """What ``git-credential get`` prints for this request (b"" when the host is not ours), or None
    when the full helper must answer."""
    from bblogin import _gitcred

    fields = _gitcred.parse_request(request)
    config = _config() if fields is not None else None
    if fields is None or config is None:
        return None
    host = _gitcred.match_host(fields, config.get("git_hosts") or [])
    if host is None:
        return b""  # not ours: no answer, so git asks the next helper
    if host.get("problem"):
        return None  # a deleted profile, a duplicate key: the full helper says what to fix
    profile = (config.get("profiles") or {}).get(host["profile"])
    if profile is None:
        return None
    user = _gitcred.requested_user(fields)
    named = _named_sets(host["profile"], profile, user) if user is not None else []
    if named is None or len(named) > 1:
        return None  # no index to read, or the name is ambiguous: the full helper says so
    account = named[0] if named else None  # the host's profile's one login git's user name names
    if account is None and user is not None:  # else the full helper decides, unless it is the host's own name and no one else's
        if not _gitcred.is_default_user(user, host, profile.get("provider")):
            return None
        if any(h.get("profile") != host["profile"] for h in _gitcred.matching_hosts(fields, config.get("git_hosts") or [])):
            return None  # another profile's entry serves this host: a login of that name may be there
    if account is None:
        account = _account(host["profile"], host.get("account"), profile)
    if account is None:
        return None
    kind = host.get("token") or "access_token"
    hit = cached_token(profile, account, kind)
    if hit is None:
        return None
    _notify(outage_notice(profile, account, kind, hit[1]))
    return _gitcred.format_response(_gitcred.answer_fields(host, profile, account, hit[0], hit[1], fields))


def _notify(notice: "str | None") -> None:
    if notice is not None and sys.stderr is not None:
        try:
            sys.stderr.write(notice)
            sys.stderr.flush()
        except (OSError, ValueError):
            pass  # nobody reads stderr: the answer still goes out


def git_credential_store(request: bytes) -> bytes | None:
    """``git-credential store``: git hands back a credential that worked. The full helper keeps
    nothing from it (the keyring already has the token) and prints nothing; with a readable
    request and a current config mirror it cannot fail either, so the hot path answers the same."""
    from bblogin import _gitcred

    if _gitcred.parse_request(request) is None or _config() is None:
        return None
    return b""


def answer(argv: list[str]) -> int | None:
    """Answer ``kubectl …`` or ``git-credential get|store`` from the cache: the exit code, or None when
    the full command must run (for git, the request it read from stdin is put back first).

    This is the hot path's boundary: whatever goes wrong below it — a damaged mirror, a Secret
    Service that hangs or answers nonsense, a bug — means "decline", never a traceback; the full
    command then does the same work carefully and reports any problem with its documented exit
    code. Only the final write is outside: by then the answer is complete, and it is flushed
    here, so a caller may leave at once.
    """
    if _paths.getenv("BBLOGIN_NO_FAST_PATH") or sys.stdout is None:
        return None  # no stdout (fd 1 closed): nothing to answer on; the full command reports it
    out: bytes | None = None
    if argv[:1] == ["kubectl"]:
        try:
            out = kubectl(argv[1:])
        except Exception:  # noqa: BLE001  # the boundary: any doubt means the full path
            out = None
    elif argv[:1] == ["git-credential"] and len(argv) == 2 and argv[1] not in ("erase", "capability") and not argv[1].startswith("-") and sys.stdin is not None:
        from bblogin import _gitcred

        request = _gitcred.read_stdin()
        try:
            if argv[1] == "get":
                out = git_credential_get(request)
            elif argv[1] == "store":
                out = git_credential_store(request)
            else:
                out = b""  # an operation of a later git: ignored silently, exit 0 (gitcredentials(7)); its request drained
        except Exception:  # noqa: BLE001  # the boundary: any doubt means the full path
            out = None
        if out is None:
            import io

            sys.stdin = io.TextIOWrapper(io.BytesIO(request))  # the full helper reads the same request
    if out is None:
        return None
    try:
        sys.stdout.buffer.write(out)
        sys.stdout.flush()
    except OSError:  # the reader went away (kubectl or git gave up): nobody to tell
        return 1
    return 0
