"""The git credential helper protocol (gitcredentials(7), git-credential(1)). Stdlib only.

Requests are ``key=value`` lines ending at a blank line or EOF; ``key[]`` repeats. The request is
read defensively (size cap, strict UTF-8, no NUL, CRLF tolerated) and anything odd is "no answer".

Host matching decides who may receive a token, so it compares parsed parts exactly — scheme, host
(ASCII only: a Unicode look-alike never matches), port with defaults normalised, and a configured
path only on segment boundaries — and never uses substrings.
"""

import sys

MAX_REQUEST_BYTES = 64 * 1024
OPERATIONS = ("get", "store", "erase", "capability")  # any other is one of a later git's: ignored, exit 0 (gitcredentials(7))
DEFAULT_PORTS = {"https": 443, "http": 80}
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-")


def read_stdin() -> bytes:
    return sys.stdin.buffer.read(MAX_REQUEST_BYTES + 1)


def parse_request(data: bytes) -> dict[str, list[str]] | None:
    """The request's fields (every value a list), or None for input git would never send."""
    if len(data) > MAX_REQUEST_BYTES or b"\0" in data:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    fields: dict[str, list[str]] = {}
    for line in text.split("\n"):
        line = line.removesuffix("\r")
        if not line:
            break
        key, sep, value = line.partition("=")
        if not sep or not key or "\r" in value:
            return None
        if key.endswith("[]"):
            fields.setdefault(key, []).append(value)
        else:
            fields[key] = [value]
    return fields


def format_response(fields: list[tuple[str, str]]) -> bytes:
    """``key=value`` lines; a value git could misread (newline, NUL) is refused outright."""
    out = []
    for key, value in fields:
        if any(c in key + value for c in "\n\r\0") or "=" in key:
            raise ValueError(f"refusing to send a malformed credential field {key!r}")
        out.append(f"{key}={value}\n")
    return "".join(out).encode()


def split_host(host: str, scheme: str) -> tuple[str, int] | None:
    """(lower-case ASCII host, port) from ``host[:port]`` / ``[v6][:port]``; None if malformed."""
    host = host.lower()
    port = DEFAULT_PORTS.get(scheme)
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            return None
        name, rest = host[: end + 1], host[end + 1 :]
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                return None
            port = int(rest[1:])
        return (name, port) if name == "[::1]" and port is not None else None
    name, sep, port_text = host.partition(":")
    if sep:
        if not port_text.isdigit() or not port_text.isascii():
            return None
        port = int(port_text)
    if not name or not set(name) <= _HOST_CHARS or name.startswith((".", "-")) or ".." in name:
        return None
    return (name, port) if port is not None and 0 < port < 65536 else None


def _parse_url(url: str) -> tuple[str, str, int, str] | None:
    scheme, sep, rest = url.partition("://")
    if not sep:
        return None
    host, _, path = rest.partition("/")
    parsed = split_host(host, scheme.lower())
    return (scheme.lower(), parsed[0], parsed[1], path.strip("/")) if parsed else None


def matching_hosts(fields: dict[str, list[str]], hosts: list[dict]) -> list[dict]:
    """Every configured git host (dicts with GitHost's fields) this request is for, the longest
    matching path prefix first (the one that answers; the others serve the same host too)."""
    scheme = (fields.get("protocol") or [""])[-1].lower()
    host = (fields.get("host") or [""])[-1]
    if scheme not in DEFAULT_PORTS or not host:
        return []
    asked = split_host(host, scheme)
    if asked is None:
        return []
    path = (fields.get("path") or [""])[-1].strip("/")
    found: list[tuple[int, dict]] = []
    for entry in hosts:
        want = _parse_url(str(entry.get("url", "")))
        if want is None or (want[0], want[1], want[2]) != (scheme, asked[0], asked[1]):
            continue
        if want[0] == "http" and want[1] not in ("127.0.0.1", "localhost", "[::1]"):
            continue
        prefix = _decoded(want[3])
        if prefix and not (path == prefix or path.startswith(prefix + "/")):
            continue
        found.append((len(prefix), entry))
    return [entry for _length, entry in sorted(found, key=lambda item: -item[0])]


def _decoded(path: str) -> str:
    """A key's path as git sends paths to helpers: percent-decoded (credential_from_url)."""
    if "%" not in path:
        return path
    from urllib.parse import unquote  # only for a key with an escape: not on every call

    return unquote(path)


def match_host(fields: dict[str, list[str]], hosts: list[dict]) -> dict | None:
    """The configured git host (a dict with GitHost's fields) this request is for, or None."""
    found = matching_hosts(fields, hosts)
    return found[0] if found else None


def requested_user(fields: dict[str, list[str]]) -> str | None:
    """The user name git was given (``https://bob@host/…``, ``credential.username``); None when
    it sent none. Whether it names an account is :func:`user_matches`'s to say, first: only a
    name that names no login and is the one the host's answers carry anyway
    (:func:`is_default_user`) is no choice of account (docs/git.md)."""
    return (fields.get("username") or [""])[-1] or None


def is_default_user(user: str, host: dict, provider: str | None) -> bool:
    """Whether ``user`` is the user name this host's answers carry anyway: its ``username``, or
    ``x-token-auth`` on Bitbucket Cloud when it has none."""
    return user == host.get("username") or (not host.get("username") and provider == "bitbucket-cloud" and user == "x-token-auth")


def _folded(name: str) -> bytes:
    """``name`` with ASCII letters in lower case and nothing else changed: a Unicode look-alike
    (KELVIN SIGN for K, fullwidth letters) never folds into another user's name."""
    return name.encode("utf-8", "surrogatepass").lower()


def user_matches(user: str, account: dict) -> bool:
    """Does git's user name name this account (a dict with ``_index.Account``'s fields): its user
    name or email (ignoring the case of ASCII letters only), or its account id."""
    asked = _folded(user)
    return user == account.get("identity") or asked in (_folded(account.get("username") or ""), _folded(account.get("email") or ""))


def answer_fields(host: dict, profile: dict, account: dict, token: str, expires_at: int, request: dict[str, list[str]]) -> list[tuple[str, str]]:
    """What git gets: user name + token as password, or a Bearer credential when git and the
    host configuration both allow it; plus the expiry so git does not reuse a stale token. The
    user name is the one git sent, else the host's, else the account's (``x-token-auth`` on
    Bitbucket Cloud)."""
    expiry = ("password_expiry_utc", str(int(expires_at)))
    if host.get("authtype") == "bearer" and "authtype" in request.get("capability[]", []):
        return [("capability[]", "authtype"), ("authtype", "Bearer"), ("credential", token), ("ephemeral", "1"), expiry]
    username = (request.get("username") or [""])[-1] or username_for(host, profile, account)  # the user name git was given is never rewritten
    return [("username", username), ("password", token), expiry]


def username_for(host: dict, profile: dict, account: dict) -> str:
    """The user name an answer carries when git sent none: the host's ``username``, else
    x-token-auth for Bitbucket Cloud, else the account's own."""
    username = host.get("username")
    if not username:
        provider = account.get("provider") or profile.get("provider")
        username = "x-token-auth" if provider == "bitbucket-cloud" else (account.get("username") or account.get("email") or "oauth2")
    return str(username)


def capability_response() -> str:
    return "version 0\ncapability authtype\n"
