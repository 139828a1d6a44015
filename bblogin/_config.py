"""config.toml: profiles and git hosts, validated with errors that name the file, line and key.

    default_profile = "work"

    [profiles.work]
    issuer = "https://dex.example.com/dex"
    client_id = "bblogin"
    connector_id = "bitbucket-cloud"      # skip dex's connector chooser
    scopes = ["openid", "email", "profile", "groups", "offline_access"]
    flow = "auto"                         # auto | loopback | device

    [git."https://bitbucket.org"]
    profile = "cloud"

This module parses and validates the file (:func:`load`); ``_configedit`` edits it (``save_profile``,
``save_git_host``). The hot path never reads TOML (tomllib alone costs about a Python start-up
to import): it reads the mirror ``_mirrors`` compiles from exactly the bytes :func:`load` parsed.
"""

from __future__ import annotations

import os

from bblogin import _mirrors, _paths, _record
from bblogin._errors import ConfigError, ProfileNotFound
from bblogin._record import field, record
from bblogin._shape import DEFAULT_OIDC_SCOPES

TYPE_CHECKING = False  # not `from typing import …` at run time: typing costs a cached call a fifth of a Python start-up
if TYPE_CHECKING:
    from typing import Any
    import tomllib

PROVIDERS = ("oidc", "bitbucket-cloud", "bitbucket-dc")
FLOWS = ("auto", "loopback", "device")
STORAGES = ("keyring", "plaintext")
BITBUCKET_CLOUD_URL = "https://bitbucket.org"


@record(frozen=True)
class Profile:
    """One named way to log in: an IdP, a client, and how to run the flow."""

    name: str
    issuer: str
    client_id: str
    provider: str = "oidc"
    client_secret: str | None = None
    connector_id: str | None = None
    scopes: tuple[str, ...] = DEFAULT_OIDC_SCOPES
    flow: str = "auto"
    ca_file: str | None = None
    proxy: str | None = None  # a proxy URL (may hold a password: never shown), or "direct"; overrides HTTPS_PROXY & co.
    extra_auth_params: dict[str, str] = field(default_factory=dict)
    listen_port: int | None = None
    redirect_uri: str | None = None  # the loopback callback URL registered with the IdP (Bitbucket needs one)
    storage: str = "keyring"
    refresh_margin: int = 60
    login_timeout: int = 180
    lock_timeout: int = 240
    use_access_token: bool = False
    pipelines: bool = False
    exchange_connector_id: str | None = None

    @property
    def shape(self) -> str:
        """What this profile's token request asks for (``_shape``): a token set obtained with
        another shape is never served to it."""
        from bblogin._shape import shape_of

        return shape_of(self.provider, self.issuer, self.client_id, self.scopes, self.connector_id, self.extra_auth_params, self.exchange_connector_id, self.pipelines)

    def __repr__(self) -> str:  # the client secret never reaches a log or traceback
        secret = "set" if self.client_secret else "none"
        return f"Profile(name={self.name!r}, provider={self.provider!r}, issuer={self.issuer!r}, client_id={self.client_id!r}, client_secret={secret})"


@record(frozen=True)
class GitHost:
    """A git remote prefix (``https://host[:port][/path]``) served from a profile's account."""

    url: str
    profile: str
    account: str | None = None
    username: str | None = None  # None: x-token-auth for Bitbucket Cloud, the account's user name otherwise
    token: str = "access_token"  # access_token | id_token
    authtype: str = "basic"  # basic | bearer (bearer only when git advertises capability[]=authtype)
    problem: tuple[str, str] | None = field(default=None, compare=False)  # (message, hint): why bblogin cannot serve it (a deleted profile, a duplicate key); git gets this, never a token


@record(frozen=True)
class Config:
    path: str
    default_profile: str | None = None
    profiles: dict[str, Profile] = field(default_factory=dict)
    git_hosts: tuple[GitHost, ...] = ()
    stamp: list | None = field(default=None, compare=False)  # stamp of the bytes parsed (_hot._mirror.stamp_of)
    absent: bool = False  # there is no config.toml: the hot path's mirror says so (stamp None)
    adhoc: dict[str, Profile] = field(default_factory=dict, compare=False)  # ad-hoc profiles by name (_adhoc), for --profile NAME

    def profile(self, name: str | None) -> Profile:
        """The named profile, else the default one, else the only one."""
        chosen = name or self.default_profile or (next(iter(self.profiles)) if len(self.profiles) == 1 else None)
        if chosen is None:
            if not self.profiles:
                where = f"{self.path} has none" if os.path.exists(self.path) else f"there is no {self.path} yet"
                raise ProfileNotFound(f"no profile given, and no profiles: {where}", hint="create one: bblogin login --profile NAME --issuer URL --client-id ID --default")
            raise ProfileNotFound(
                f"no profile given, and {self.path} sets no default_profile among its {len(self.profiles)} profiles",
                hint=f"name one with --profile ({', '.join(sorted(self.profiles))}), or set default_profile in {self.path}",
            )
        found = self.profiles.get(chosen) or (self.adhoc.get(chosen) if name else None)
        if found is None and not name:  # default_profile names a deleted profile: only calls that rely on it fail
            raise ProfileNotFound(
                f"no profile given, and default_profile names {chosen!r}, which is not in {self.path} (any more)",
                hint=f"name one with --profile ({', '.join(sorted(self.profiles)) or 'there are none'}), or set default_profile in {self.path} to one of them",
            )
        if found is None:
            raise ProfileNotFound(f"no profile named {chosen!r} in {self.path}")
        return found


_PROFILE_TYPES: dict[str, type | tuple[type, ...]] = {
    "issuer": str,
    "client_id": str,
    "provider": str,
    "client_secret": str,
    "connector_id": str,
    "scopes": list,
    "flow": str,
    "ca_file": str,
    "proxy": str,
    "extra_auth_params": dict,
    "listen_port": int,
    "redirect_uri": str,
    "storage": str,
    "refresh_margin": int,
    "login_timeout": int,
    "lock_timeout": int,
    "use_access_token": bool,
    "pipelines": bool,
    "exchange_connector_id": str,
}
_GIT_TYPES: dict[str, type] = {"profile": str, "account": str, "username": str, "token": str, "authtype": str}


def _line_of(text: str, table: tuple[str, ...] | None, key: str | None) -> int | None:
    """Best-effort line number of ``key`` inside ``[table]`` (or of the table header)."""
    import re  # not at the top: only an error message looks for a line (re brings enum)

    lines = text.splitlines()
    start = 0
    if table is not None:
        header = re.compile(r"^\s*\[\s*" + r"\s*\.\s*".join(re.escape(p) for p in table) + r"\s*\]\s*(#.*)?$")
        for i, line in enumerate(lines):
            if header.match(line.replace('"', "")):
                start = i
                break
        else:
            return None
        if key is None:
            return start + 1
    pattern = re.compile(r"^\s*\"?" + re.escape(key or "") + r"\"?\s*=")
    for i in range(start, len(lines)):
        if i > start and lines[i].lstrip().startswith("[") and table is not None:
            break
        if pattern.match(lines[i]):
            return i + 1
    return None


DOCTOR_HINT = ", or run `bblogin doctor`"  # ends a config error's hint; doctor itself leaves it off

# TOML's names for the value types, for "must be …" messages
_TOML_TYPES = {str: "string", int: "integer", float: "float", bool: "boolean (true or false)", list: "array", dict: "table"}


def _toml_type(value: type) -> str:
    name = _TOML_TYPES.get(value, getattr(value, "__name__", str(value)))
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


class _Validator:
    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text

    def fail(self, table: tuple[str, ...] | None, key: str | None, problem: str) -> ConfigError:
        line = _line_of(self.text, table, key)
        where = f"{self.path}:{line}" if line else self.path
        name = ".".join([*(table or ()), *([key] if key else [])])
        return ConfigError(f"{where}: {name}: {problem}", hint=f"fix the value in the file{DOCTOR_HINT}")

    def typed(self, table: tuple[str, ...], raw: dict[str, Any], types: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in types:
                raise self.fail(table, key, f"unknown key (known: {', '.join(sorted(types))})")
            want = types[key]
            if want is int and isinstance(value, bool) or not isinstance(value, want):
                raise self.fail(table, key, f"must be {_toml_type(want)}, not {_toml_type(type(value))}")
            out[key] = value
        return out

    def profile(self, name: str, raw: Any) -> Profile:
        table = ("profiles", name)
        if not isinstance(raw, dict):
            raise self.fail(None, None, f"profiles.{name} must be a table")
        values = self.typed(table, raw, _PROFILE_TYPES)
        provider = values.get("provider", "oidc")
        if provider not in PROVIDERS:
            raise self.fail(table, "provider", f"must be one of {', '.join(PROVIDERS)}")
        if provider == "bitbucket-cloud":
            values.setdefault("issuer", BITBUCKET_CLOUD_URL)
        for required in ("issuer", "client_id"):
            if not values.get(required):
                raise self.fail(table, None, f"missing required key {required!r}")
        issuer = values["issuer"]
        if not is_allowed_issuer(issuer):
            raise self.fail(table, "issuer", "must be an https:// URL (http:// only for 127.0.0.1/localhost)")
        for key, allowed in (("flow", FLOWS), ("storage", STORAGES)):
            if key in values and values[key] not in allowed:
                raise self.fail(table, key, f"must be one of {', '.join(allowed)}")
        if "scopes" in values:
            if not all(isinstance(s, str) and s and " " not in s for s in values["scopes"]):
                raise self.fail(table, "scopes", "must be a list of scope names without spaces")
            values["scopes"] = tuple(values["scopes"])
        else:
            values["scopes"] = default_scopes(provider)
        if "extra_auth_params" in values and not all(isinstance(v, str) for v in values["extra_auth_params"].values()):
            raise self.fail(table, "extra_auth_params", "values must be strings")
        for key in ("listen_port",):
            if key in values and not 0 <= values[key] <= 65535:
                raise self.fail(table, key, "must be a port number (0-65535)")
        for key in ("refresh_margin", "login_timeout", "lock_timeout"):
            if key in values and values[key] < 0:
                raise self.fail(table, key, "must not be negative")
        if "proxy" in values and values["proxy"].strip().lower() != "direct":
            from bblogin import _proxy  # only for a profile that has one: config loading stays lean

            try:
                _proxy.normalise(values["proxy"], "the profile's proxy")
            except ConfigError:
                raise self.fail(table, "proxy", 'must be a proxy URL, http://[USER:PASSWORD@]HOST:PORT (or https://, socks5://, socks5h://), or "direct"') from None
        problem = redirect_problem(values.get("redirect_uri"), values.get("listen_port"))
        if problem:
            raise self.fail(table, "listen_port" if problem.startswith("listen_port") else "redirect_uri", problem)
        return Profile(name=name, **values)

    def git_host(self, url: str, raw: Any, profiles: dict[str, Profile]) -> GitHost:
        table = ("git", url)
        if not isinstance(raw, dict):
            raise self.fail(None, None, f'git."{url}" must be a table')
        values = self.typed(table, raw, _GIT_TYPES)
        problem = git_url_problem(url)
        if problem:  # a key an earlier bblogin wrote (or a hand edit): this host fails, every other command works
            import shlex  # only for such a key

            line = _line_of(self.text, table, None)
            said = (f"{self.path}{f':{line}' if line else ''}: git.\"{url}\" {problem}", f"remove it: bblogin setup git --remove --host {shlex.quote(url)}")
            return GitHost(url=url, profile=str(values.get("profile", "")), problem=said)
        if "profile" not in values:
            raise self.fail(table, None, "missing required key 'profile'")
        if values.get("token", "access_token") not in ("access_token", "id_token"):
            raise self.fail(table, "token", "must be access_token or id_token")
        if values.get("authtype", "basic") not in ("basic", "bearer"):
            raise self.fail(table, "authtype", "must be basic or bearer")
        problem = None
        if values["profile"] not in profiles:  # a deleted profile breaks this host only, not every command
            line = _line_of(self.text, table, "profile")
            problem = (
                f"{self.path}{f':{line}' if line else ''}: git.\"{url}\" names the profile {values['profile']!r}, which is not in config.toml (any more)",
                f"bind the host to a profile that exists (bblogin setup git --host {normalize_git_url(url)} --profile NAME) or remove it (bblogin setup git --remove --host {normalize_git_url(url)})",
            )
        return GitHost(url=normalize_git_url(url), **values, problem=problem)

    def git_hosts(self, raw: dict[str, Any], profiles: dict[str, Profile]) -> tuple[GitHost, ...]:
        """The git hosts by their normalised key (``normalize_git_url``). Keys written before keys
        were normalised keep working; two keys for one prefix that disagree (``https://h`` and
        ``https://H:443/``) serve neither: which one git would get is no guess bblogin makes."""
        by_url: dict[str, list[tuple[str, GitHost]]] = {}
        for key, body in raw.items():
            host = self.git_host(key, body, profiles)
            by_url.setdefault(host.url, []).append((key, host))
        hosts = []
        for url, entries in by_url.items():
            host = entries[-1][1]
            if len({e[1] for e in entries}) > 1:
                named = ", ".join(f'git."{key}" (line {_line_of(self.text, ("git", key), None) or "?"}, profile {h.profile})' for key, h in entries)
                host = _record.replace(
                    host,
                    problem=(f"{self.path}: {len(entries)} entries are the same git host {url}: {named}", f"keep one: bblogin setup git --host {url} --profile NAME rewrites them as one"),
                )
            hosts.append(host)
        return tuple(hosts)


BITBUCKET_PROVIDERS = ("bitbucket-cloud", "bitbucket-dc")
def _loopback_port(uri: str) -> int | None:
    """The port of a loopback callback URL, ``http://127.0.0.1:PORT/PATH`` (or localhost; PORT
    1 to 5 ASCII digits, PATH without ``?``, ``#`` or whitespace); None for anything else. String
    code, not a regular expression: every parse of a Bitbucket profile checks it, and ``re``
    costs a cached answer on the full path about a third of a Python start-up."""
    for prefix in ("http://127.0.0.1:", "http://localhost:"):
        if uri.startswith(prefix):
            port, slash, path = uri[len(prefix):].partition("/")
            if not (slash and 1 <= len(port) <= 5 and port.isascii() and port.isdigit()) or any(c in "?#" or c.isspace() for c in path):
                return None
            return int(port)
    return None


def redirect_problem(redirect_uri: str | None, listen_port: int | None) -> str | None:
    """Why a profile's registered loopback callback and its ``listen_port`` cannot work together.

    An IdP sends the browser back only to the callback URL registered for the client (a Bitbucket
    Cloud consumer's "Callback URL", a Data Center incoming link's "Redirect URL"), so bblogin
    must listen on exactly that URL's port."""
    if redirect_uri is None:
        return None
    port = _loopback_port(redirect_uri)
    if port is None or not 0 < port <= 65535:
        return "must be the callback URL registered with the IdP, http://127.0.0.1:PORT/PATH (or localhost) with a fixed port, e.g. http://127.0.0.1:8400/callback"
    if listen_port is not None and listen_port != port:
        return (
            f"listen_port {listen_port} does not match redirect_uri {redirect_uri}, the callback URL registered with the IdP, "
            f"which sends the browser only there: remove listen_port or set it to {port}"
        )
    return None


def registered_redirect(profile: Profile) -> tuple[int, str] | None:
    """(port, callback URL) the profile's IdP expects: its ``redirect_uri``; for Bitbucket, which
    has no other kind, http://127.0.0.1:``listen_port``/callback for a fixed port. None when any
    loopback port will do (dex and other IdPs that follow RFC 8252 §7.3)."""
    if profile.redirect_uri is not None:
        port = _loopback_port(profile.redirect_uri)
        if port is not None:
            return port, profile.redirect_uri
    if profile.provider in BITBUCKET_PROVIDERS and profile.listen_port:
        return profile.listen_port, f"http://127.0.0.1:{profile.listen_port}/callback"
    return None


def default_scopes(provider: str) -> tuple[str, ...]:
    return {
        "bitbucket-dc": ("REPO_READ", "REPO_WRITE"),
        "bitbucket-cloud": ("account", "email", "repository", "repository:write"),
    }.get(provider, DEFAULT_OIDC_SCOPES)


def is_allowed_issuer(url: str) -> bool:
    """https, or plain http only on loopback (the dev IdP, tests)."""
    if url.startswith("https://") and len(url) > len("https://"):
        return True
    # ^http://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?(/|$) by string checks: every profile's issuer
    # is checked on every call, and re (with enum) costs a cached answer a third of a Python start-up
    host = next((h for h in ("127.0.0.1", "localhost", "[::1]") if url.startswith("http://" + h)), None)
    if host is None:
        return False
    rest = url[len("http://" + host) :]
    if rest[:1] == ":":
        end = 1
        while end < len(rest) and rest[end].isdecimal():  # \d: Unicode category Nd, as str.isdecimal
            end += 1
        if end == 1:
            return False
        rest = rest[end:]
    return rest in ("", "\n") or rest.startswith("/")  # `$` matches before a final newline too


def normalize_git_url(url: str) -> str:
    """The one key for a git host prefix, as git itself compares URLs: scheme and host in lower
    case, no default port (443 for https, 80 for http), no trailing slash; the path as given.
    ``HTTPS://Git.Example.com:443/team/`` → ``https://git.example.com/team``. A URL that is no
    host prefix at all comes back unchanged (``git_url_problem`` says why)."""
    from bblogin import _gitcred  # the parser git requests are matched with: one reading of a URL

    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _gitcred.DEFAULT_PORTS or any(c in rest for c in "@?#"):
        return url
    authority, slash, path = rest.partition("/")
    parsed = _gitcred.split_host(authority, scheme)
    if parsed is None:
        return url
    host, port = parsed
    path = path.strip("/")
    return f"{scheme}://{host}{'' if port == _gitcred.DEFAULT_PORTS[scheme] else f':{port}'}{'/' + path if path else ''}"


def git_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a git host key, or None: https://host[:port][/path] (any case; see
    ``normalize_git_url``); plain http only on loopback. The message says what exactly is wrong."""
    scheme, sep, rest = url.partition("://")
    form = "https://host[:port][/path]"
    if not sep:
        return f"is not a URL: give {form}"
    if scheme.lower() not in ("https", "http"):
        return f"has the scheme {scheme}://, git credentials go over https:// (give {form})"
    authority = rest.split("/", 1)[0]
    if "@" in authority:
        return f"has a user name ({authority.split('@')[0]}@): give {form} without it"
    if "?" in rest or "#" in rest:
        return f"has a query or fragment: give {form} without it"
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return f"has a space or control character: give {form}, a space percent-encoded as %20 (as git writes the remote URL)"
    if not authority:
        return f"has no host: give {form}"
    from bblogin import _gitcred

    parsed = _gitcred.split_host(authority, scheme.lower())
    if parsed is None:
        return f"has a host or port bblogin cannot use ({authority}): ASCII letters, digits, dots and dashes, a port 1-65535"
    if scheme.lower() == "http" and parsed[0] not in ("127.0.0.1", "localhost", "[::1]"):
        return "is plain http://, which is allowed only for 127.0.0.1/localhost (a token must not cross the network unencrypted): use https://"
    return None


def load(path: str | None = None, *, cache: bool = True) -> Config:
    """Parse and validate config.toml. A missing file is an empty config. ``cache``: keep what
    tomllib made of a text not parsed before (``_mirrors.remember_toml``); False writes no file."""
    path = path or _paths.config_file()
    try:
        data, stamp = _mirrors.read_stamped(path)
    except FileNotFoundError:
        return Config(path=path, absent=True)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    return parse(path, text, stamp, cache=cache)


_SHOWABLE = r"\s*(\[\[?[^\]\n]*\]\]?|[A-Za-z0-9_.-]+(\s*=)?)"


def _masked(line: str) -> str:
    """What a syntax error may show of a config line: a table header, or a bare key (and its
    ``=``) with everything after it as ``…`` — a value may be a client secret, and a line that
    starts with neither may be a pasted one, so it is not shown at all."""
    import re  # only a syntax error shows a line

    m = re.match(_SHOWABLE, line)
    if not m or len(line) >= 200:
        return ""
    rest = line[m.end() :]
    return m.group(0) + (" …" if rest.strip() and not rest.lstrip().startswith("#") else "")


def _syntax_error(path: str, text: str, exc: tomllib.TOMLDecodeError) -> ConfigError:
    """``FILE:LINE:COLUMN: invalid TOML: what`` and the line itself with its value masked, from
    tomllib's message (Python 3.11–3.13 put the position only in the text: "… (at line 2, column 19)")."""
    import re

    message = str(exc)
    m = re.search(r" \(at line (\d+), column (\d+)\)$", message)
    if m:
        line, column = int(m.group(1)), int(m.group(2))
    else:  # "(at end of document)"
        lines = text.splitlines() or [""]
        line, column = len(lines), len(lines[-1]) + 1
    what = re.sub(r" \(at (line \d+, column \d+|end of document)\)$", "", message)
    lines = text.splitlines() or [""]
    shown = _masked(lines[line - 1]) if 0 < line <= len(lines) else ""
    caret = min(column - 1, len(shown) - 1)
    pointer = f"\n    {shown}\n    {' ' * caret}^" if shown.strip() else ""
    return ConfigError(f"{path}:{line}:{column}: invalid TOML: {what}{pointer}", hint=f"fix the syntax at line {line}, column {column}{DOCTOR_HINT}")


def parse(path: str, text: str, stamp: list | None = None, *, cache: bool = True) -> Config:
    """Validate config.toml's ``text`` (read from ``path``, or about to be written there)."""
    raw = _mirrors.parsed_toml(text)
    if raw is None:
        import tomllib  # only for a text not parsed before (``_mirrors.parsed_toml``)

        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise _syntax_error(path, text, exc) from None
        if cache:
            _mirrors.remember_toml(text, raw)
    v = _Validator(path, text)
    default = raw.pop("default_profile", None)
    profiles_raw = raw.pop("profiles", {})
    git_raw = raw.pop("git", {})
    for key in raw:
        raise v.fail(None, key, "unknown top-level key (known: default_profile, profiles, git)")
    if not isinstance(profiles_raw, dict) or not isinstance(git_raw, dict):
        raise v.fail(None, "profiles" if not isinstance(profiles_raw, dict) else "git", "must be a table")
    profiles = {name: v.profile(name, body) for name, body in profiles_raw.items()}
    if default is not None and not isinstance(default, str):
        raise v.fail(None, "default_profile", "must be a string, a profile's name")
    hosts = v.git_hosts(git_raw, profiles)
    return Config(path=path, default_profile=default, profiles=profiles, git_hosts=hosts, stamp=stamp)
