"""Which proxy, if any, a request to a URL goes through, and where that choice came from.

In order, the first that names one wins:

1. the profile's ``proxy`` key: a proxy URL, or ``"direct"`` for none; it overrides the
   environment, NO_PROXY included (it is this profile's own setting);
2. the environment as curl 7.88 reads it: for https ``https_proxy``, then ``HTTPS_PROXY``, for
   http ``http_proxy``, then ``HTTP_PROXY`` (curl reads only the lower-case one there), then
   ``all_proxy``, then ``ALL_PROXY``; a variable set to the empty string counts as unset;
3. for the Bitbucket providers, where the IdP is the git host itself, git's own
   ``http.<url>.proxy``/``http.proxy`` for the issuer URL (``git config --get-urlmatch``).

``no_proxy``, else ``NO_PROXY`` (an empty one counts as unset), applies to 2 and 3 as curl 7.88
reads it: exactly ``*`` means every host; otherwise entries separated by commas or spaces, each a
host name (it also matches its subdomains; a leading or trailing dot and the case do not matter),
an IP address (IPv6 without brackets) or a CIDR block. An entry with a ``:port`` (or in brackets)
matches nothing, as in curl. Loopback (127.0.0.0/8, ::1, localhost) is never proxied: a proxy
elsewhere cannot reach this machine's loopback, and bblogin's own callback listener lives there.

A proxy URL may carry ``user:password@``; :meth:`ProxyChoice.shown` is what logs, errors and
doctor print: the scheme, host and port, the user name at most, never the password.

Config loading validates a profile's ``proxy`` with :func:`normalise` on every call of the full
path, so this module imports only ``os`` and ``_record`` (bblogin's records) at the top: ``urllib.parse``,
``ipaddress`` and ``subprocess`` are imported where a request is actually routed.
"""

from __future__ import annotations

import os

from bblogin._errors import ProxySettingError
from bblogin._record import record

TYPE_CHECKING = False
if TYPE_CHECKING:
    import urllib.parse
    from collections.abc import Mapping

SCHEMES = ("http", "https", "socks5", "socks5h")
DIRECT = "direct"  # a profile's proxy = "direct": no proxy for this profile, whatever the environment says
GIT_TIMEOUT = 5.0
PROFILE = "the profile's proxy"


@record(frozen=True)
class ProxyChoice:
    """A proxy to use: its URL (credentials included: never print it) and where it was set."""

    url: str
    source: str  # "the profile's proxy", "HTTPS_PROXY", "git's http.proxy"

    @property
    def parts(self) -> urllib.parse.SplitResult:
        import urllib.parse

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
            import urllib.parse

            user = f"{urllib.parse.unquote(parts.username or '')}:***@"
        return f"{parts.scheme}://{user}{self.address}"


def default_port(scheme: str) -> int:
    return {"https": 443, "socks5": 1080, "socks5h": 1080}.get(scheme, 80)


def normalise(value: str, source: str) -> str:
    """A proxy URL with a scheme (curl and git take ``host:port`` as ``http://host:port``);
    :class:`ProxySettingError` naming ``source`` (never the value: it may hold a password) when
    unusable. String operations only (config loading calls it): the authority ends at the first
    ``/``, ``?`` or ``#`` and the host follows the last ``@``, as ``urllib.parse`` splits it."""
    url = value.strip()
    if "://" not in url:
        url = "http://" + url
    scheme, _, rest = url.partition("://")
    authority = rest
    for stop in "/?#":
        authority = authority.split(stop, 1)[0]
    hostport = authority.rpartition("@")[2]
    if hostport.startswith("["):
        host, _, tail = hostport[1:].partition("]")
        port = tail[1:] if tail.startswith(":") else None if tail else ""
    else:
        host, _, port = hostport.partition(":")
    good_port = port == "" or (port is not None and port.isascii() and port.isdigit() and int(port) <= 65535)
    if scheme.lower() not in SCHEMES or not host or not good_port or any(c.isspace() or ord(c) < 32 for c in url):
        raise ProxySettingError(
            f"the proxy in {source} is not a proxy URL",
            hint="use http://[USER:PASSWORD@]HOST:PORT (or https://, socks5://, socks5h://); special characters in the password %-encoded",
        )
    return url


def is_loopback(host: str) -> bool:
    import ipaddress

    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bypassed(host: str, no_proxy: str) -> bool:
    """Whether curl's ``no_proxy`` list names ``host`` (see the module docstring)."""
    import ipaddress

    if no_proxy == "*":
        return True
    host = host.strip("[]").lower().rstrip(".")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for raw in no_proxy.replace(" ", ",").split(","):
        entry = raw.strip().lower().rstrip(".")
        if not entry:
            continue
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name = entry.lstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def _names(scheme: str) -> tuple[str, ...]:
    return (f"{scheme}_proxy", f"{scheme.upper()}_PROXY", "all_proxy", "ALL_PROXY")


def from_environment(url: str, environ: Mapping[str, str]) -> ProxyChoice | None:
    """The environment's proxy variable for ``url``'s scheme (None: none set, NO_PROXY aside);
    an empty variable counts as unset, as in curl."""
    import urllib.parse

    for name in _names(urllib.parse.urlsplit(url).scheme.lower()):
        value = environ.get(name, "").strip()
        if value:
            return ProxyChoice(normalise(value, name), name)
    return None


def no_proxy_of(environ: Mapping[str, str]) -> str:
    """``no_proxy``, else ``NO_PROXY``: the first that is set and not empty (curl)."""
    return environ.get("no_proxy", "").strip() or environ.get("NO_PROXY", "").strip()


@record(frozen=True)
class GitHTTP:
    """What git's configuration says for one URL: ``http.proxy`` and ``http.sslCAInfo``."""

    proxy: str | None = None  # "" when git says "no proxy" (http.proxy set to the empty string)
    ca_info: str | None = None


def git_http(url: str) -> GitHTTP:
    """git's ``http.<url>.proxy``/``http.proxy`` and ``GIT_SSL_CAINFO``/``http.<url>.sslCAInfo``/
    ``http.sslCAInfo`` for ``url``, as git itself would pick them (``--get-urlmatch``, in the
    current repository's configuration too). Nothing when git is not installed."""

    import subprocess

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
    import urllib.parse

    environ = os.environ if environ is None else environ
    host = urllib.parse.urlsplit(url).hostname or ""
    if is_loopback(host):
        return None
    if profile_proxy is not None:
        if profile_proxy.strip().lower() == DIRECT:
            return None
        return ProxyChoice(normalise(profile_proxy, PROFILE), PROFILE)
    if bypassed(host, no_proxy_of(environ)):
        return None
    found = from_environment(url, environ)
    if found is not None:
        return found
    if git_proxy:
        return ProxyChoice(normalise(git_proxy, "git's http.proxy"), "git's http.proxy")
    return None
