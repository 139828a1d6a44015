"""Which proxy, if any, a request to a URL goes through, and where that choice came from.

In order, the first that names one wins:

1. the profile's ``proxy`` key: a proxy URL, or ``"direct"`` for none; it overrides the
   environment, NO_PROXY included (it is this profile's own setting);
2. the environment as curl reads it: for https ``https_proxy``/``HTTPS_PROXY``, for http
   ``http_proxy``/``HTTP_PROXY``, then ``all_proxy``/``ALL_PROXY`` (lower case first);
3. for the Bitbucket providers, where the IdP is the git host itself, git's own
   ``http.<url>.proxy``/``http.proxy`` for the issuer URL (``git config --get-urlmatch``).

``no_proxy``/``NO_PROXY`` (2 and 3) is curl's list: ``*``, host names (a name also matches its
subdomains; a leading dot is allowed), IP addresses and CIDR blocks, each optionally with ``:port``.
Loopback (127.0.0.0/8, ::1, localhost) is never proxied: a proxy elsewhere cannot reach this
machine's loopback, and bblogin's own callback listener lives there.

A proxy URL may carry ``user:password@``; :meth:`ProxyChoice.shown` is what logs, errors and
doctor print: the scheme, host and port, the user name at most, never the password.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from bblogin._errors import ConfigError

SCHEMES = ("http", "https", "socks5", "socks5h")
DIRECT = "direct"  # a profile's proxy = "direct": no proxy for this profile, whatever the environment says
GIT_TIMEOUT = 5.0


@dataclass(frozen=True)
class ProxyChoice:
    """A proxy to use: its URL (credentials included: never print it) and where it was set."""

    url: str
    source: str  # "the profile's proxy", "HTTPS_PROXY", "git's http.proxy"

    @property
    def parts(self) -> urllib.parse.SplitResult:
        return urllib.parse.urlsplit(self.url)

    @property
    def address(self) -> str:
        """host:port of the proxy: what an error names."""
        parts = self.parts
        host = parts.hostname or "?"
        host = f"[{host}]" if ":" in host else host
        return f"{host}:{parts.port or default_port(parts.scheme)}"

    @property
    def has_credentials(self) -> bool:
        return bool(self.parts.username or self.parts.password)

    def shown(self) -> str:
        """scheme://[user:***@]host:port — the password masked, for logs, errors and doctor."""
        parts = self.parts
        user = ""
        if parts.username or parts.password:
            user = f"{urllib.parse.unquote(parts.username or '')}:***@"
        return f"{parts.scheme}://{user}{self.address}"


def default_port(scheme: str) -> int:
    return {"https": 443, "socks5": 1080, "socks5h": 1080}.get(scheme, 80)


def normalise(value: str, source: str) -> str:
    """A proxy URL with a scheme (curl and git take ``host:port`` as ``http://host:port``);
    ConfigError naming ``source`` (never the value: it may hold a password) when unusable."""
    url = value.strip()
    if "://" not in url:
        url = "http://" + url
    try:
        parts: urllib.parse.SplitResult | None = urllib.parse.urlsplit(url)
        _ = parts.port if parts else None  # a port that is no number raises here
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in SCHEMES or not parts.hostname:
        raise ConfigError(
            f"the proxy in {source} is not a proxy URL",
            hint="use http://[USER:PASSWORD@]HOST:PORT (or https://, socks5://, socks5h://); special characters in the password %-encoded",
        )
    return url


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bypassed(host: str, port: int, no_proxy: str) -> bool:
    """Whether curl's ``no_proxy`` list names ``host`` (see the module docstring)."""
    host = host.strip("[]").lower().rstrip(".")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for raw in no_proxy.replace(" ", ",").split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        entry_port = None
        if entry.startswith("["):  # [::1]:8080
            inside, _, rest = entry[1:].partition("]")
            entry, entry_port = inside, rest[1:] or None
        elif entry.count(":") == 1:
            entry, entry_port = entry.split(":")
        if entry_port is not None and entry_port != str(port):
            continue
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name = entry.lstrip(".").rstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def from_environment(url: str, environ: Mapping[str, str]) -> ProxyChoice | None:
    """The environment's proxy for ``url`` (None: none set, or NO_PROXY names the host)."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    names = [f"{scheme}_proxy", f"{scheme.upper()}_PROXY", "all_proxy", "ALL_PROXY"]
    for name in names:
        value = environ.get(name)
        if value is None:
            continue
        if not value.strip():
            return None  # set but empty: no proxy (curl)
        return ProxyChoice(normalise(value, name), name)
    return None


def no_proxy_of(environ: Mapping[str, str]) -> str:
    return environ.get("no_proxy", environ.get("NO_PROXY", ""))


def environment_names_one(url: str, environ: Mapping[str, str]) -> bool:
    """Whether the environment sets a proxy variable for ``url``'s scheme (even an empty one)."""
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    return any(n in environ for n in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY", "all_proxy", "ALL_PROXY"))


@dataclass(frozen=True)
class GitHTTP:
    """What git's configuration says for one URL: ``http.proxy`` and ``http.sslCAInfo``."""

    proxy: str | None = None  # "" when git says "no proxy" (http.proxy set to the empty string)
    ca_info: str | None = None


def git_http(url: str) -> GitHTTP:
    """git's ``http.<url>.proxy``/``http.proxy`` and ``GIT_SSL_CAINFO``/``http.<url>.sslCAInfo``/
    ``http.sslCAInfo`` for ``url``, as git itself would pick them (``--get-urlmatch``, in the
    current repository's configuration too). Nothing when git is not installed."""

    def get(key: str, *extra: str) -> str | None:
        try:
            done = subprocess.run(["git", "config", *extra, "--get-urlmatch", key, url], capture_output=True, text=True, timeout=GIT_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.rstrip("\n") if done.returncode == 0 else None

    ca_info = os.environ.get("GIT_SSL_CAINFO") or get("http.sslcainfo", "--type=path") or None
    return GitHTTP(proxy=get("http.proxy"), ca_info=ca_info)


def choose(url: str, *, profile_proxy: str | None = None, git_proxy: str | None = None, environ: Mapping[str, str] | None = None) -> ProxyChoice | None:
    """The proxy for a request to ``url`` (see the module docstring), or None to go direct."""
    environ = os.environ if environ is None else environ
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if is_loopback(host):
        return None
    if profile_proxy is not None:
        if profile_proxy.strip().lower() == DIRECT:
            return None
        return ProxyChoice(normalise(profile_proxy, "the profile's proxy"), "the profile's proxy")
    port = parts.port or default_port(parts.scheme)
    if bypassed(host, port, no_proxy_of(environ)):
        return None
    if environment_names_one(url, environ):
        return from_environment(url, environ)
    if git_proxy:
        return ProxyChoice(normalise(git_proxy, "git's http.proxy"), "git's http.proxy")
    return None
