"""Team bundles: one TOML file a platform team publishes, describing the profiles, Kubernetes
clusters and git hosts every member needs (docs/team.md has the schema and an example).

This module reads a bundle (an https URL or a file, size-capped), validates it — the same checks
config.toml gets, plus what a file from someone else must never carry: client secrets, plaintext
storage, local paths, a Bitbucket token sent to another host (docs/security.md) — and exports one
from a working set-up. Applying it is ``_commands.setup_team``'s job.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import tomllib
from typing import Any

from bblogin import __version__, _config, _kubeconfig
from bblogin._config import Profile
from bblogin._errors import ConfigError, UsageError, printable, unprintable
from bblogin._record import field, record

SCHEMA = 1
MAX_BYTES = 256 * 1024  # a bundle for a large team is a few KiB; anything near this is not one
FETCH_DEADLINE = 30.0  # seconds for the whole download, however slowly the server trickles it

# What a bundle may say about a profile: how to reach the IdP and run the flow. Never a client
# secret (it would travel to every laptop), never storage (plaintext is each user's own, explicit
# choice), never a local path (ca_file: the OS trust store holds a company CA), never timeouts.
PROFILE_KEYS = frozenset({
    "issuer", "client_id", "provider", "connector_id", "scopes", "flow", "extra_auth_params",
    "listen_port", "redirect_uri", "refresh_margin", "use_access_token", "pipelines", "exchange_connector_id",
})
REFUSED_PROFILE_KEYS = {
    "client_secret": "a client secret in a published file reaches everyone who fetches it; give confidential clients' secrets out another way",
    "storage": "where tokens are stored is each user's own choice (plaintext only when they ask for it)",
    "ca_file": "a bundle carries no local paths; install the company CA in the OS trust store (bblogin uses it)",
    "proxy": "a proxy URL may carry its password, and which proxy applies is each network's own (HTTPS_PROXY/NO_PROXY, or each user's profile)",
}
CLUSTER_KEYS = frozenset({"server", "certificate_authority_data", "certificate_authority", "profile", "use_access_token", "contexts"})
CONTEXT_KEYS = frozenset({"name", "namespace"})
GIT_KEYS = frozenset({"profile", "username", "token", "authtype"})
TOP_KEYS = frozenset({"bundle", "name", "min_bblogin", "default_profile", "profiles", "clusters", "git"})
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,252}$")  # kubeconfig names as people write them, no spaces or controls
_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----\s+[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----")


@record(frozen=True)
class Context:
    name: str
    namespace: str | None = None


@record(frozen=True)
class Cluster:
    name: str
    server: str
    ca_data: str  # base64 of the PEM bundle, as kubeconfig's certificate-authority-data
    profile: str
    use_access_token: bool = False
    contexts: tuple[Context, ...] = ()

    @property
    def user(self) -> str:
        """The kubeconfig user entry that runs bblogin for this cluster's profile (``parse``
        refuses a bundle in which two different entries get one name)."""
        return f"bblogin-{self.profile}" + ("-access-token" if self.use_access_token else "")


def fingerprint(ca_data: Any) -> str:
    """A CA (kubeconfig's base64 certificate-authority-data) as a short SHA-256, for the plan."""
    if not ca_data:
        return "none"
    return "sha256:" + hashlib.sha256(str(ca_data).encode()).hexdigest()[:16]


@record(frozen=True)
class Bundle:
    source: str
    name: str | None = None
    default_profile: str | None = None
    profiles: dict[str, Profile] = field(default_factory=dict)
    clusters: tuple[Cluster, ...] = ()
    git_hosts: tuple[_config.GitHost, ...] = ()


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def fetch(source: str) -> str:
    """The bundle's text: from an https URL (the OS trust store and proxies, as for an IdP; no
    redirects), or from a file. Larger than MAX_BYTES or not UTF-8: refused."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", source):
        if not source.lower().startswith("https://"):
            raise UsageError(f"--from {printable(source)}: a bundle URL must be https:// (or give a file path)", hint="publish the bundle over https, or download it and pass the file")
        data = _download(source)
    else:
        try:
            with open(source, "rb") as fh:
                data = fh.read(MAX_BYTES + 1)
        except OSError as exc:
            raise UsageError(f"--from {printable(source)}: cannot read it: {exc.strerror}") from None
    if data is None or len(data) > MAX_BYTES:
        raise ConfigError(f"{_shown(source)}: larger than {MAX_BYTES // 1024} KiB, so not a bundle; nothing was changed", hint="check the URL; a team bundle is a few KiB of TOML")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")  # an editor's byte order mark is no content
    except UnicodeDecodeError:
        raise ConfigError(f"{_shown(source)}: not UTF-8 text, so not a bundle; nothing was changed") from None


def shown_source(source: str) -> str:
    """The source as it is shown and recorded: a URL without user name, password, query or
    fragment (a presigned or token URL's secret part); a file as its absolute path."""
    if "://" not in source:
        return os.path.abspath(source)
    from urllib.parse import urlsplit

    parts = urlsplit(source)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    host = parts.hostname or ""
    return f"{parts.scheme.lower()}://{f'[{host}]' if ':' in host else host}{port}{parts.path}"


def _shown(source: str) -> str:
    return printable(shown_source(source))


def _download(url: str) -> bytes | None:
    """The body (None: larger than MAX_BYTES), fetched as bblogin reaches an IdP (``_http``)."""
    from bblogin import _http

    with _http.client_for_url(url) as client:
        status, body = _http.download(client, url, limit=MAX_BYTES, deadline=FETCH_DEADLINE, what="fetching the team bundle")
    if status != 200:
        raise ConfigError(f"fetching the team bundle: {_shown(url)} answered HTTP {status}; nothing was changed", hint="check the URL with your platform team")
    return body


def parse(source: str, text: str) -> Bundle:
    """Validate a bundle. Every problem names the file, line and key, and nothing is written:
    a bundle is applied whole or not at all."""
    check = _Checker(source, text)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{_shown(source)}: not valid TOML: {exc}; nothing was changed", hint="ask your platform team for a fixed bundle") from None
    except RecursionError:
        raise ConfigError(f"{_shown(source)}: not a bundle: its values are nested too deeply; nothing was changed", hint="ask your platform team for a fixed bundle") from None
    check.printable((), data)
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise check.fail(None, sorted(unknown)[0], f"unknown key (a bundle has: {', '.join(sorted(TOP_KEYS))})")
    if type(data.get("bundle")) is not int or data["bundle"] != SCHEMA:
        raise check.fail(None, "bundle", f"must be {SCHEMA} (this bblogin reads bundle schema {SCHEMA})")
    minimum = data.get("min_bblogin")
    if minimum is not None:
        if not isinstance(minimum, str) or not _version(minimum):
            raise check.fail(None, "min_bblogin", 'must be a version string, e.g. "0.2.0"')
        if _version(__version__) < _version(minimum):
            raise UsageError(
                f"{source} needs bblogin {minimum} or later; this is {__version__}; nothing was changed",
                hint="upgrade bblogin (pipx upgrade bblogin, or install the newer wheel), then run this again",
            )
    profiles = {name: check.profile(name, raw) for name, raw in _table(check, data, "profiles").items()}
    default = data.get("default_profile")
    if default is not None and default not in profiles:
        raise check.fail(None, "default_profile", f"names no profile of this bundle ({', '.join(sorted(profiles)) or 'it has none'})")
    clusters = tuple(check.cluster(name, raw, profiles) for name, raw in _table(check, data, "clusters").items())
    users: dict[str, Cluster] = {}
    for cluster in clusters:
        other = users.setdefault(cluster.user, cluster)
        if (other.profile, other.use_access_token) != (cluster.profile, cluster.use_access_token):
            raise check.fail(
                ("clusters", cluster.name), "profile",
                f"its kubeconfig user would be {cluster.user}, the name cluster {other.name}'s user (profile {other.profile}"
                + (", access token" if other.use_access_token else "") + ") gets too: rename one of the profiles",
            )
    seen: dict[str, str] = {}
    for cluster in clusters:
        for ctx in cluster.contexts:
            if ctx.name in seen:
                raise check.fail(("clusters", cluster.name), "contexts", f"context {ctx.name!r} is named twice (also by cluster {seen[ctx.name]})")
            seen[ctx.name] = cluster.name
    hosts: dict[str, _config.GitHost] = {}
    for url, raw in _table(check, data, "git").items():
        host = check.git_host(url, raw, profiles)
        key = _config.normalize_git_url(host.url)
        if key in hosts:
            raise check.fail(("git", url), None, f"the same git host as {hosts[key].url!r}")
        hosts[key] = host
    name = data.get("name")
    if name is not None and (not isinstance(name, str) or len(name) > 100):
        raise check.fail(None, "name", "must be a string of at most 100 characters")
    return Bundle(source=source, name=name, default_profile=default, profiles=profiles, clusters=clusters, git_hosts=tuple(hosts.values()))


def _table(check: _Checker, data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise check.fail(None, key, "must be a table")
    return value


def _host_of(url: str) -> str:
    return _config.normalize_git_url(url).split("://", 1)[1].split("/", 1)[0]


class _Checker:
    """Validation with config.toml's messages (file:line: key: problem), for a bundle."""

    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.config = _config._Validator(source, text)

    def fail(self, table: tuple[str, ...] | None, key: str | None, problem: str) -> ConfigError:
        error = self.config.fail(table, key, problem)
        return ConfigError(f"{printable(error.message)}; nothing was changed", hint="ask your platform team to fix the bundle (docs/team.md has the schema)")

    def printable(self, table: tuple[str, ...], value: Any) -> None:
        """Refuse control characters (ESC, CR, newlines, NUL, bidi overrides…) in any key or string:
        printed in the plan they could draw fake lines over the real ones; written to config files
        they could add entries the plan never showed."""
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, item in items:
            path = (*table, str(key)) if isinstance(value, dict) else table
            if isinstance(key, str) and any(unprintable(c) for c in key):
                raise self.fail(table or None, key, "has a control character in its name: refused (it could rewrite what the plan shows)")
            if isinstance(item, str) and any(unprintable(c) for c in item):
                raise self.fail(table or None, str(key) if isinstance(value, dict) else None, "holds a control character (an escape sequence, a newline…): refused, it could rewrite what the plan shows")
            self.printable(path, item)

    def url(self, table: tuple[str, ...], key: str, value: Any, what: str) -> str:
        """An https:// URL (http:// only on loopback) with a host, a valid port, no user name,
        query, fragment or space: where a token will be sent."""
        from urllib.parse import urlsplit

        problem = None if isinstance(value, str) and _config.is_allowed_issuer(value) else "must be an https:// URL (http:// only for 127.0.0.1/localhost)"
        if problem is None:
            try:
                parts = urlsplit(value)
                parts.port  # noqa: B018 - raises on a port out of range
            except ValueError as exc:
                problem = f"is not a URL ({exc})"
            else:
                if "@" in parts.netloc:
                    problem = "has a user name (…@): a token would go to the host after the @"
                elif not parts.hostname or re.search(r"\s", value):
                    problem = "has no host, or a space"
                elif parts.query or parts.fragment or value.endswith(("?", "#")):
                    problem = "has a query or fragment"
        if problem:
            raise self.fail(table, key, f"{what} {problem}")
        return value

    def profile(self, name: str, raw: Any) -> Profile:
        if not isinstance(raw, dict):
            raise self.fail(("profiles",), name, "must be a table")
        if not _NAME.match(name):
            raise self.fail(("profiles", name), None, "a profile name is letters, digits and . _ @ : -")
        for key in raw:
            if key in REFUSED_PROFILE_KEYS:
                raise self.fail(("profiles", name), key, f"not allowed in a bundle: {REFUSED_PROFILE_KEYS[key]}")
            if key not in PROFILE_KEYS:
                raise self.fail(("profiles", name), key, f"unknown key (a bundle's profile has: {', '.join(sorted(PROFILE_KEYS))})")
        if "issuer" in raw:
            self.url(("profiles", name), "issuer", raw["issuer"], "the issuer")
        try:
            return self.config.profile(name, raw)
        except ConfigError as exc:
            raise ConfigError(f"{printable(exc.message)}; nothing was changed", hint="ask your platform team to fix the bundle (docs/team.md has the schema)") from None

    def cluster(self, name: str, raw: Any, profiles: dict[str, Profile]) -> Cluster:
        table = ("clusters", name)
        if not isinstance(raw, dict):
            raise self.fail(("clusters",), name, "must be a table")
        if not _NAME.match(name):
            raise self.fail(table, None, "a cluster name is letters, digits and . _ @ : -")
        for key in raw:
            if key not in CLUSTER_KEYS:
                raise self.fail(table, key, f"unknown key (a cluster has: {', '.join(sorted(CLUSTER_KEYS))})")
        server = self.url(table, "server", raw.get("server"), "the API server's URL")
        profile = raw.get("profile")
        if profile not in profiles:
            raise self.fail(table, "profile", f"must name a profile of this bundle ({', '.join(sorted(profiles)) or 'it has none'})")
        if profiles[profile].provider in _config.BITBUCKET_PROVIDERS:
            raise self.fail(
                table, "profile",
                f"profile {profile} is {profiles[profile].provider}: it has no ID token, and its access token is a Bitbucket credential that goes only to "
                f"{_host_of(profiles[profile].issuer)} and its git host, never to a Kubernetes API server (docs/security.md, Which token goes where)",
            )
        ca_data = self._ca(table, raw)
        use_access_token = raw.get("use_access_token", False)
        if not isinstance(use_access_token, bool):
            raise self.fail(table, "use_access_token", "must be true or false")
        contexts_raw = raw.get("contexts", [{"name": name}])
        if not isinstance(contexts_raw, list) or not contexts_raw:
            raise self.fail(table, "contexts", 'must be a list of {name = "…", namespace = "…"}')
        contexts = []
        for item in contexts_raw:
            if not isinstance(item, dict) or set(item) - CONTEXT_KEYS or not isinstance(item.get("name"), str) or not _NAME.match(item["name"]):
                raise self.fail(table, "contexts", 'each context is {name = "…"} with an optional namespace (letters, digits and . _ @ : -)')
            namespace = item.get("namespace")
            if namespace is not None and (not isinstance(namespace, str) or not re.match(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", namespace)):
                raise self.fail(table, "contexts", f"namespace {namespace!r} is not a Kubernetes namespace name")
            contexts.append(Context(item["name"], namespace))
        if len({c.name for c in contexts}) != len(contexts):
            raise self.fail(table, "contexts", "a context is named twice")
        return Cluster(name=name, server=server.rstrip("/"), ca_data=ca_data, profile=profile, use_access_token=use_access_token, contexts=tuple(contexts))

    def _ca(self, table: tuple[str, ...], raw: dict[str, Any]) -> str:
        """certificate_authority_data (base64 PEM), or — in a bundle file only — certificate_authority,
        a PEM file beside the bundle; either way inlined into the kubeconfig."""
        data, path = raw.get("certificate_authority_data"), raw.get("certificate_authority")
        if data is not None and path is not None:
            raise self.fail(table, "certificate_authority", "give certificate_authority_data or certificate_authority, not both")
        if path is not None:
            if "://" in self.source:
                raise self.fail(table, "certificate_authority", "a bundle fetched from a URL carries no local paths: use certificate_authority_data")
            if not isinstance(path, str):
                raise self.fail(table, "certificate_authority", "must be a path")
            full = os.path.join(os.path.dirname(os.path.abspath(self.source)), os.path.expanduser(path))
            try:
                with open(full, "rb") as fh:
                    pem = fh.read(MAX_BYTES)
            except OSError as exc:
                raise self.fail(table, "certificate_authority", f"cannot read {full}: {exc.strerror}") from None
        elif data is not None:
            if not isinstance(data, str):
                raise self.fail(table, "certificate_authority_data", "must be base64 text")
            try:
                pem = base64.b64decode("".join(data.split()), validate=True)
            except (binascii.Error, ValueError):
                raise self.fail(table, "certificate_authority_data", "is not base64 (kubeconfig's certificate-authority-data: base64 of the PEM file)") from None
        else:
            return ""  # the OS trust store verifies the API server (a public CA)
        if not _PEM_CERT.search(pem):
            raise self.fail(table, "certificate_authority" if path is not None else "certificate_authority_data", "holds no PEM certificate")
        return base64.b64encode(pem).decode()

    def git_host(self, url: str, raw: Any, profiles: dict[str, Profile]) -> _config.GitHost:
        table = ("git", url)
        if not isinstance(raw, dict):
            raise self.fail(("git",), url, "must be a table")
        for key in raw:
            if key not in GIT_KEYS:
                raise self.fail(table, key, f"unknown key (a git host has: {', '.join(sorted(GIT_KEYS))})")
        normalized = _config.normalize_git_url(url)
        problem = _config.git_url_problem(normalized)
        if problem:
            raise self.fail(table, None, problem)
        if raw.get("profile") not in profiles:
            raise self.fail(table, "profile", f"must name a profile of this bundle ({', '.join(sorted(profiles)) or 'it has none'})")
        profile = profiles[raw["profile"]]
        if re.search(r"\s", url):
            raise self.fail(table, None, "a git URL has no spaces")
        if profile.provider in _config.BITBUCKET_PROVIDERS and raw.get("token") == "id_token":
            raise self.fail(table, "token", f"profile {profile.name} is {profile.provider}, which issues no ID token: git gets its access token (leave token out)")
        if profile.provider in _config.BITBUCKET_PROVIDERS and _host_of(normalized) != _host_of(profile.issuer):
            raise self.fail(
                table, None,
                f"profile {profile.name} is {profile.provider} at {_host_of(profile.issuer)}: its access token is a Bitbucket credential and goes only to that host, not {_host_of(normalized)} (docs/security.md)",
            )
        try:
            return self.config.git_host(normalized, raw, profiles)
        except ConfigError as exc:
            raise ConfigError(f"{printable(exc.message)}; nothing was changed", hint="ask your platform team to fix the bundle (docs/team.md has the schema)") from None


# -- export -----------------------------------------------------------------------------------
def export(config: _config.Config, kube: list[tuple[str, dict[str, Any]]]) -> tuple[str, list[str]]:
    """A bundle of this working set-up, and what was left out of it (one line each, for stderr):
    the profiles (no secrets, no storage, no local paths), the kubeconfig clusters whose users run
    bblogin (from ``kube``: (file, document) as kubectl merges them), the git hosts (no personal
    user names). What a team's first engineer publishes."""
    import tomlkit

    from bblogin._configedit import _profile_table

    left_out: list[str] = []
    doc = tomlkit.document()
    doc.add(tomlkit.comment("bblogin team bundle (docs/team.md); made by `bblogin setup --export`"))
    doc["bundle"] = SCHEMA
    doc["min_bblogin"] = __version__
    if config.default_profile in config.profiles:
        doc["default_profile"] = config.default_profile
    profiles = tomlkit.table(is_super_table=True)
    for name, profile in config.profiles.items():
        table = tomlkit.table()
        for key, value in _profile_table(profile).items():
            if key in PROFILE_KEYS:
                table[key] = value
            elif key in REFUSED_PROFILE_KEYS:
                left_out.append(f"profile {name}: {key} ({REFUSED_PROFILE_KEYS[key]})")
        profiles[name] = table
    doc["profiles"] = profiles
    clusters = _exported_clusters(config, kube, left_out)
    if clusters:
        doc["clusters"] = clusters
    hosts = tomlkit.table(is_super_table=True)
    for host in config.git_hosts:
        if host.problem:
            continue  # a deleted profile, a duplicate key: nothing a team can apply
        table = tomlkit.table()
        table["profile"] = host.profile
        for key, default in (("token", "access_token"), ("authtype", "basic")):
            if getattr(host, key) != default:
                table[key] = getattr(host, key)
        if host.username:
            left_out.append(f"git host {host.url}: username {host.username!r} (each member's own user name)")
        hosts[host.url] = table
    if hosts:
        doc["git"] = hosts
    return tomlkit.dumps(doc), left_out


def bblogin_profile_of(user: Any) -> tuple[str, bool] | None:
    """(profile, use access token) when a kubeconfig user entry runs `bblogin kubectl --profile P`
    (any way ``_kubeconfig.bblogin_argv`` recognises), else None."""
    exec_ = user.get("exec") if isinstance(user, dict) else None
    if not isinstance(exec_, dict) or not isinstance(exec_.get("args") or [], list):
        return None
    argv = _kubeconfig.bblogin_argv(str(exec_.get("command") or ""), [str(a) for a in exec_.get("args") or []])
    if not argv or argv[0] != "kubectl":
        return None
    profile = None
    for i, word in enumerate(argv):
        if word in ("--profile", "-p") and i + 1 < len(argv):
            profile = argv[i + 1]
        elif word.startswith("--profile="):
            profile = word.split("=", 1)[1]
    return (profile, "--use-access-token" in argv) if profile else None


def _exported_clusters(config: _config.Config, kube: list[tuple[str, dict[str, Any]]], left_out: list[str]) -> Any:
    import tomlkit

    merged = _kubeconfig.merge(kube).entries
    found: dict[str, Any] = {}
    for ctx_name, (_file, spec) in merged["contexts"].items():
        spec = spec if isinstance(spec, dict) else {}
        served = bblogin_profile_of((merged["users"].get(str(spec.get("user"))) or ("", None))[1])
        where, cluster = merged["clusters"].get(str(spec.get("cluster"))) or ("", None)
        if served is None or served[0] not in config.profiles or not isinstance(cluster, dict) or not cluster.get("server"):
            continue
        entry = found.get(spec["cluster"])
        if entry is None:
            entry = found[spec["cluster"]] = tomlkit.table()
            entry["server"] = cluster["server"]
            ca = cluster.get("certificate-authority-data")
            if not ca and cluster.get("certificate-authority"):
                path = os.path.join(os.path.dirname(os.path.abspath(where)), os.path.expanduser(str(cluster["certificate-authority"])))  # as kubectl: beside the kubeconfig
                try:
                    with open(path, "rb") as fh:
                        ca = base64.b64encode(fh.read(MAX_BYTES)).decode()
                except OSError as exc:
                    left_out.append(f"cluster {spec['cluster']}: its CA file {path} cannot be read ({exc.strerror}); add certificate_authority_data by hand")
            if ca:
                entry["certificate_authority_data"] = ca
            entry["profile"] = served[0]
            if served[1]:
                entry["use_access_token"] = True
            entry["contexts"] = tomlkit.array()
        item = tomlkit.inline_table()
        item["name"] = ctx_name
        if spec.get("namespace"):
            item["namespace"] = spec["namespace"]
        entry["contexts"].append(item)
    table = tomlkit.table(is_super_table=True)
    for name, entry in found.items():
        table[name] = entry
    return table if found else None
