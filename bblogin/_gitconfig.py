"""Which credential helpers git really runs for a URL, asked of git itself; and `git credential reject`.

git collects every ``credential.helper`` and every ``credential.<url>.helper`` whose URL matches
the request, in the order it reads its configuration (system, global, repository, worktree,
``-c``; includes where they stand), and an empty value empties the list gathered so far
(gitcredentials(7), git's credential.c and urlmatch.c). So the empty ``helper =`` that `setup git`
writes switches off only the helpers configured *before* it: a ``credential.helper store`` added
later — in a repository, in an included file, or GCM's ``configure`` — still runs.

The entries come from ``git config --show-origin --show-scope -z --get-regexp`` (git reads the
files, follows includes, knows the scopes and the repository of the working directory); this
module applies git's URL matching (scheme, user name, host with ``*`` labels, port, path prefix on
segment boundaries) and the reset rule to them, and finds each entry's line in its file (git
prints no line numbers). Stdlib only; no token ever passes through here except to git's stdin.
"""

from __future__ import annotations

import os
import re
import subprocess
from urllib.parse import quote, unquote, urlsplit

from bblogin._record import record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from bblogin._config import Config
    from bblogin._index import Account

_DEFAULT_PORTS = {"https": 443, "http": 80}
_SETUP_SHAPE = re.compile(r"^!f\(\) \{ if \[ \$1 = store \]; then while read -r _; do :; done; else exec (.+) git-credential \$1; fi; \}; f$")


@record(frozen=True)
class HelperEntry:
    """One ``helper`` line of git's configuration."""

    scope: str  # system | global | local | worktree | command
    origin: str  # the file git read it from, or "command line"
    line: int | None
    url: str | None  # the ``credential.<url>`` it is scoped to; None for plain ``credential.helper``
    value: str

    @property
    def where(self) -> str:
        return f"{self.origin}:{self.line}" if self.line else f"{self.origin} ({self.scope})"

    @property
    def is_bblogin(self) -> bool:
        return is_bblogin_helper(self.value)


def is_bblogin_helper(value: str) -> bool:
    """Is this helper value one that runs bblogin: what `setup git` writes (its shell function
    exec'ing bblogin's launcher), ``bblogin`` (git runs git-credential-bblogin), or a command whose
    program is git-credential-bblogin or ``bblogin git-credential``? Only the program counts — a
    ``cache --socket …/git-credential-bblogin/sock`` is cache. Whether it *works* is doctor's run."""
    value = value.strip()
    shape = _SETUP_SHAPE.match(value)
    if shape:
        return bool(re.search(r"_hot/_launcher\.py'?$", shape.group(1)))
    words = value[1:].split() if value.startswith("!") else value.split()
    program = os.path.basename(words[0].strip("'\"")) if words else ""
    return value == "bblogin" or program == "git-credential-bblogin" or (program == "bblogin" and words[1:2] == ["git-credential"])


def _git(args: list[str], cwd: str | None, stdin: str | None = None) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(["git", *args], input=stdin, capture_output=True, text=True, timeout=30, cwd=cwd, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None


class GitUnavailable(Exception):
    """git cannot say what its configuration is here (not installed, an unreadable config file)."""


def entries(cwd: str | None = None) -> list[HelperEntry]:
    """Every credential helper entry git reads in ``cwd`` (its repository too), in git's order.
    Raises GitUnavailable with git's own reason when it cannot tell."""
    done = _git(["config", "--show-origin", "--show-scope", "-z", "--get-regexp", r"^credential\..*helper$"], cwd)
    if done is None:
        raise GitUnavailable("git is not installed (or not on PATH)")
    if done.returncode not in (0, 1):  # 1: no such entries
        raise GitUnavailable(f"git cannot read its configuration here: {done.stderr.strip() or f'exit {done.returncode}'}")
    fields = done.stdout.split("\0")
    base = cwd or os.getcwd()
    if any(o.startswith("file:") and not os.path.isabs(o[5:]) for o in fields[1::3]):  # git names repository files from the top of the worktree
        top = _git(["rev-parse", "--show-toplevel"], cwd)
        base = top.stdout.strip() if top is not None and top.returncode == 0 and top.stdout.strip() else base
    out: list[HelperEntry] = []
    seen: dict[str, int] = {}
    lines: dict[str, list[int]] = {}
    for scope, origin, item in zip(fields[0::3], fields[1::3], fields[2::3]):
        key, _, value = item.partition("\n")
        if key != "credential.helper" and not (key.startswith("credential.") and key.endswith(".helper")):
            continue  # credential.<url>.somethinghelper: not a helper list
        url = None if key == "credential.helper" else key[len("credential.") : -len(".helper")]
        kind, _, path = origin.partition(":")
        line = None
        if kind == "file":
            path = os.path.abspath(os.path.join(base, path))
            if path not in lines:
                lines[path] = _helper_lines(path)
            nth = seen.get(path, 0)
            seen[path] = nth + 1
            line = lines[path][nth] if nth < len(lines[path]) else None
            origin = path
        else:
            origin = "command line (-c or GIT_CONFIG_*)" if kind == "command line" else origin
        out.append(HelperEntry(scope=scope, origin=origin, line=line, url=url, value=value))
    for path, count in seen.items():  # a file included twice, a line we misread: no line numbers rather than wrong ones
        if count != len(lines[path]):
            out = [HelperEntry(e.scope, e.origin, None, e.url, e.value) if e.origin == path else e for e in out]
    return out


_SECTION = re.compile(r'^\s*\[\s*([A-Za-z0-9.-]+)(?:\s+"((?:[^"\\]|\\.)*)")?\s*\]')
_HELPER_KEY = re.compile(r"^\s*helper\s*(=|$|[#;])", re.IGNORECASE)


def _helper_lines(path: str) -> list[int]:
    """The line numbers of the ``helper`` keys of ``[credential …]`` sections in one git config file."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return []
    found, in_credential = [], False
    continued = False
    for number, raw in enumerate(text.splitlines(), 1):
        if continued:  # a value continued with a trailing backslash
            continued = raw.rstrip().endswith("\\")
            continue
        section = _SECTION.match(raw)
        if section:
            name = section.group(1).lower()
            in_credential = name == "credential" or name.startswith("credential.")
            raw = raw[section.end() :]
        if in_credential and _HELPER_KEY.match(raw):
            found.append(number)
        continued = raw.rstrip().endswith("\\")
    return found


_PCT = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _pct_normal(path: str) -> str:
    """A path's percent-escapes as git's url_normalize leaves them: an escaped unreserved character
    decoded (``te%61m`` is ``team``), every other escape in upper case."""
    return _PCT.sub(lambda m: chr(int(m.group(1), 16)) if chr(int(m.group(1), 16)) in _UNRESERVED else "%" + m.group(1).upper(), path)


def _parts(url: str) -> tuple[str, str | None, str, int | None, str] | None:
    """(scheme, user, host, port, path) the way git's urlmatch normalises a URL; None when git's
    url_normalize would refuse it (no ``scheme://`` — a partial key, see _partial)."""
    if not re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", url):
        return None
    try:
        split = urlsplit(url)
        port = split.port
    except ValueError:
        return None
    if not split.hostname:
        return None
    scheme = split.scheme.lower()
    user = unquote(split.username) if split.username is not None else None
    return scheme, user, split.hostname.lower(), port or _DEFAULT_PORTS.get(scheme), _pct_normal(split.path).rstrip("/")


def _credential(url: str, partial: bool) -> dict[str, str]:
    """The fields git's credential_from_url_1 (credential.c) takes from a URL: protocol, host (with
    its port, as written), username (decoded) and path (decoded, no leading or trailing slash). With
    ``partial`` (a ``credential.<key>`` git's urlmatch refused) any of them may be missing."""
    proto_end = url.find("://")
    rest = url[proto_end + 3 :] if proto_end >= 0 else url
    slash = len(rest) - len(re.sub(r"^[^/?#]*", "", rest, count=1))
    at, colon = rest.find("@"), rest.find(":")
    out: dict[str, str] = {}
    host_start = 0
    if 0 <= at < slash:
        out["username"] = unquote(rest[: colon if 0 <= colon < at else at])
        host_start = at + 1
    if proto_end > 0:
        out["protocol"] = url[:proto_end]
    if not partial or slash > host_start:
        out["host"] = unquote(rest[host_start:slash])
    path = rest[slash:].lstrip("/")
    if path:
        out["path"] = unquote(path).rstrip("/") or unquote(path)[:1]
    return {k: v for k, v in out.items() if v or k == "host"}


def _partial_matches(key: str, url: str, username: str | None) -> bool:
    """git's match_partial_url: each field the key has equals the request's, exactly."""
    want, have = _credential(key, partial=True), _credential(url, partial=False)
    if username is not None:
        have["username"] = username
    return all(have.get(field) == value for field, value in want.items())


def _host_matches(pattern: str, host: str) -> bool:
    labels, want = host.split("."), pattern.split(".")
    return len(labels) == len(want) and all(w == "*" or w == label for w, label in zip(want, labels))


def url_matches(pattern: str | None, url: str, username: str | None = None) -> bool:
    """Does ``credential.<pattern>`` apply to a request for ``url`` (as ``username``)? As git's
    urlmatch: the same scheme; a user name only if the pattern has one; the host, ``*`` matching
    one label; the port; the pattern's path a prefix of the URL's on a segment boundary. A key git
    cannot normalise as a URL (``host``, ``host:port``, ``user@host/path``) is matched as git's
    credential.c does it: field by field, exactly, any scheme when it names none."""
    if pattern is None:
        return True
    want, asked = _parts(pattern), _parts(url)
    if asked is None:
        return False
    if want is None:
        return _partial_matches(pattern, url, username)
    if want[0] != asked[0] or (want[1] is not None and want[1] != username) or want[3] != asked[3] or not _host_matches(want[2], asked[2]):
        return False
    return not want[4] or asked[4] == want[4] or asked[4].startswith(want[4] + "/")


def chain(found: list[HelperEntry], url: str, username: str | None = None) -> list[HelperEntry]:
    """The helpers git runs for ``url``, in order: the matching entries, each empty value
    emptying the list gathered so far. The reset itself is kept (its ``value`` is ""), so a
    caller can name the line that switched bblogin off."""
    out: list[HelperEntry] = []
    for entry in found:
        if url_matches(entry.url, url, username):
            out = [entry] if not entry.value else [*out, entry]
    return out


def _under(pattern: str, url: str) -> bool:
    """Is ``credential.<pattern>`` scoped to a part of ``url`` (a repository below a host prefix)?"""
    want, base = _parts(pattern), _parts(url)
    return bool(want and base and want[0] == base[0] and want[3] == base[3] and _host_matches(want[2], base[2]) and want[4].startswith(base[4] + "/"))


@record(frozen=True)
class Finding:
    url: str  # the request URL this is about (the host prefix, or a repository below it)
    username: str | None
    runs: tuple[HelperEntry, ...]  # the helpers git runs there (the leading reset included)

    @property
    def bblogin(self) -> HelperEntry | None:
        return next((e for e in self.runs if e.value and e.is_bblogin), None)

    @property
    def others(self) -> list[tuple[str, HelperEntry]]:
        """Every other helper that runs, with "before" or "after" bblogin."""
        mine = self.bblogin
        position = "before"
        out = []
        for entry in self.runs:
            if entry is mine:
                position = "after"
            elif entry.value and not entry.is_bblogin:
                out.append((position, entry))
        return out


def findings(found: list[HelperEntry], host_url: str) -> list[Finding]:
    """What git runs for a configured host: for the prefix itself, and for each part of it that
    git's configuration scopes separately (``credential.https://host/team/repo.git.helper``, a
    ``https://bob@host`` entry)."""
    targets: dict[tuple[str, str | None], None] = {(host_url, None): None}
    base = host_url.split("/", 3)  # scheme:, "", authority[, path]
    prefix = _credential(host_url, partial=False)
    for entry in found:
        if not entry.url:
            continue
        parts = _parts(entry.url)
        if parts is None:  # a key with no scheme: git compares its fields exactly
            want = _credential(entry.url, partial=True)
            if any(want.get(f, prefix.get(f)) != prefix.get(f) for f in ("protocol", "host")):
                continue
            path, mine = want.get("path"), prefix.get("path")
            if path is not None and path != mine and (mine is None or path.startswith(mine + "/")):
                targets[(f"{base[0]}//{base[2]}/{quote(path)}", want.get("username"))] = None
            elif path is None and "username" in want:
                targets[(host_url, want["username"])] = None
        elif _under(entry.url, host_url):  # a repository below the prefix: this host, that path
            targets[(f"{base[0]}//{base[2]}{parts[4]}", parts[1])] = None
        elif parts[1] is not None and url_matches(re.sub(r"://[^/@]*@", "://", entry.url, count=1), host_url):
            targets[(host_url, parts[1])] = None
    return [Finding(url, user, tuple(chain(found, url, user))) for url, user in targets]


_RISKS = (
    (re.compile(r"^(git-credential-)?store\b|credential-store"), "store: writes the token git gets, in plaintext, to ~/.git-credentials"),
    (re.compile(r"^(git-credential-)?cache\b|credential-cache"), "cache: keeps the token in memory and serves it even after `bblogin logout`"),
    (re.compile(r"manager"), "Git Credential Manager: answers from its own store and keeps what git hands it"),
    (re.compile(r"osxkeychain|libsecret|wincred|gnome-keyring"), "an OS keychain helper: keeps the token and serves it after `bblogin logout`"),
)


def risk(value: str) -> str:
    """What another helper does to bblogin's tokens, in a few words."""
    name = value.strip().lstrip("!").strip()
    for pattern, said in _RISKS:
        if pattern.search(name.split()[0] if name else "") or pattern.search(name):
            return said
    return "another helper, which git hands the token to keep"


def shown(value: str) -> str:
    """A helper as doctor and setup show it: the program and ``…``. A shell helper (``!…``) may
    hold a password inline (``echo password=…``): it is named by its line, never printed."""
    words = value.strip().split()
    if not words or words[0].startswith("!"):
        return "!… (a shell command)"
    return words[0] + (" …" if len(words) > 1 else "")


def explain(position: str, entry: HelperEntry) -> str:
    """One line: where the helper is configured and why it matters."""
    when = {
        "before": "runs before bblogin (if it answers, git never asks bblogin)",
        "after": "runs after bblogin (git hands it bblogin's token on every `store`)",
        "instead": "git asks it instead of bblogin",
    }[position]
    return f"{entry.where}: helper = {shown(entry.value)} — {risk(entry.value)}; {when}"


def reject(url: str, usernames: list[str]) -> bool:
    """``git credential reject`` for ``url`` as each of ``usernames``: every helper git runs there
    — store, cache, a keychain — forgets what it kept for that user name on that host, under any
    path: store and cache erase the entries whose fields equal the request's (credential.c
    credential_match), and with ``useHttpPath`` off for this one call git sends no path (it still
    picks the helpers with the path, as for a request). False when git is not installed."""
    for username in usernames:
        request = f"url={url}\nusername={username}\n\n"
        if _git(["-c", f"credential.{url}.useHttpPath=false", "credential", "reject"], None, stdin=request) is None:
            return False
    return True


def reject_account(config: Config, account: Account, profiles: list[str] | None = None) -> list[str]:
    """After ``account`` logged out of ``profiles`` (default: every profile it served):
    ``git credential reject`` for each git host those profiles serve with it, under every user name
    git may have kept its token as — the one bblogin answers with when git sends none, and each
    name git may have been given that picks this account (user name, email, account id) — so no
    store, cache or keychain helper keeps serving it. The hosts told; [] when git is not installed.
    (`bblogin logout` and the TUI's logout call this per account.)"""
    from bblogin._record import asdict

    from bblogin import _gitcred

    leaving = account.profiles if profiles is None else profiles
    told = []
    for host in config.git_hosts:
        profile = config.profiles.get(host.profile)
        if host.problem or profile is None or host.profile not in leaving:
            continue
        if host.account and host.account not in (account.id, account.identity, account.username, account.email):
            continue
        answered = _gitcred.username_for(asdict(host), asdict(profile), asdict(account))
        names = dict.fromkeys(n for n in (answered, account.username, account.email, account.identity, account.id) if n)
        if not reject(host.url, list(names)):
            return told
        told.append(host.url)
    return told
