"""`bblogin setup --from URL|FILE`: a team's whole set-up from its bundle (``_team``), in one
command — the profiles into config.toml, the clusters, users and contexts into the kubeconfig,
the git hosts into git's config — after a plan that says which host will receive which token,
then one login per distinct request and `doctor`'s checks. `--export` prints a bundle.

What it adds is recorded (state dir, ``team/<source digest>.json``) so that a rerun is a no-op,
a changed bundle shows what changes, and ``--undo`` removes exactly what it added. An entry it
did not add, or one changed since, is never overwritten or removed: it is reported and kept.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bblogin import _configedit, _files, _paths, _team
from bblogin._commands._common import load_config, say
from bblogin._errors import EXIT_OK, BbloginError, UsageError

ADD, UPDATE, SAME, CONFLICT, REMOVE, KEPT = "add", "update", "same", "conflict", "remove", "kept"
_MARKS = {ADD: "+", UPDATE: "~", SAME: "=", CONFLICT: "!", REMOVE: "-", KEPT: "!"}


@dataclass
class Change:
    """One entry the bundle asks for (or asked for before): what is there, what it will be."""

    where: str  # config.toml | kubeconfig | git
    kind: str  # profile, cluster, user, context, git host, default_profile
    name: str
    action: str
    detail: str = ""
    desired: Any = None  # what is written (ADD/UPDATE) and recorded


@dataclass
class Record:
    """What an earlier run of this bundle wrote, per entry: the value it wrote."""

    source: str
    kubeconfig: str | None = None
    entries: dict[str, Any] = field(default_factory=dict)  # "where|kind|name" -> value written

    @staticmethod
    def path(source: str) -> str:
        key = source if "://" in source else os.path.abspath(source)
        return _paths.join(_paths.state_dir(), "team", hashlib.sha256(key.encode()).hexdigest()[:16] + ".json")

    @classmethod
    def load(cls, source: str) -> Record:
        data = _files.read_json(cls.path(source))
        if isinstance(data, dict) and isinstance(data.get("entries"), dict):
            return cls(source=source, kubeconfig=data.get("kubeconfig"), entries=data["entries"])
        return cls(source=source)  # none, or unreadable: nothing is known to be ours

    def save(self) -> None:
        path = self.path(self.source)
        _files.ensure_private_dir(os.path.dirname(path))
        if self.entries:
            _files.atomic_write_json(path, {"source": self.source, "kubeconfig": self.kubeconfig, "entries": self.entries})
        elif os.path.exists(path):
            os.unlink(path)


def _key(where: str, kind: str, name: str) -> str:
    return f"{where}|{kind}|{name}"


def _plain(value: Any) -> Any:
    """ruamel/tomlkit containers as plain dicts and lists, for comparison and the record."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _decide(where: str, kind: str, name: str, current: Any, desired: Any, record: Record, detail: str = "") -> Change:
    recorded = record.entries.get(_key(where, kind, name))
    current, desired = _plain(current), _plain(desired)
    if current is None:
        return Change(where, kind, name, ADD, detail, desired)
    if current == desired:
        return Change(where, kind, name, SAME, detail, desired)
    if recorded is not None and current == recorded:
        return Change(where, kind, name, UPDATE, _diff(current, desired) or detail, desired)
    return Change(where, kind, name, CONFLICT, "exists and differs (" + (_diff(current, desired) or "another value") + "); kept as it is")


def _diff(old: Any, new: Any) -> str:
    if isinstance(old, dict) and isinstance(new, dict):
        parts = [f"{k}: {old.get(k)!r} → {new.get(k)!r}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k) and k != "exec"]
        if old.get("exec") != new.get("exec"):
            parts.append("exec: runs another bblogin command")
        return ", ".join(parts)
    return f"{old!r} → {new!r}"


# -- the kubeconfig --------------------------------------------------------------------------
class _Kubeconfig:
    """The kubeconfig file setup kubectl writes, round-tripped with ruamel.yaml (comments kept)."""

    def __init__(self) -> None:
        from ruamel.yaml import YAML
        from ruamel.yaml.error import YAMLError

        from bblogin._commands.setup_kubectl import kubeconfig_path
        from bblogin._errors import ConfigError

        self.yaml = YAML()
        self.yaml.preserve_quotes = True
        self.shown = kubeconfig_path(None)
        self.path = os.path.realpath(self.shown)
        try:
            with open(self.path, encoding="utf-8") as fh:
                self.original = fh.read()
        except FileNotFoundError:
            self.original = ""
        except OSError as exc:
            raise ConfigError(f"cannot read {self.path}: {exc.strerror}; nothing was changed") from None
        try:
            doc = self.yaml.load(self.original) if self.original.strip() else None
        except YAMLError as exc:
            raise ConfigError(f"{self.path} is not valid YAML ({type(exc).__name__}); nothing was changed", hint="fix or move the file, then run this again") from None
        if doc is None:
            doc = {"apiVersion": "v1", "kind": "Config", "clusters": [], "contexts": [], "users": [], "preferences": {}}
        if not isinstance(doc, dict):
            raise ConfigError(f"{self.path} is not a kubeconfig (its top level is not a mapping); nothing was changed")
        for key in ("clusters", "users", "contexts"):
            if doc.get(key) is None:
                doc[key] = []
            if not isinstance(doc[key], list):
                raise ConfigError(f"{self.path}: {key} is not a list; nothing was changed", hint="fix the file (kubectl would refuse it too), then run this again")
        self.doc = doc

    def get(self, key: str, name: str) -> Any:
        field_ = key[:-1]  # clusters -> cluster, users -> user, contexts -> context
        for item in self.doc[key]:
            if isinstance(item, dict) and item.get("name") == name:
                return item.get(field_)
        return None

    def set(self, key: str, name: str, value: Any) -> None:
        field_ = key[:-1]
        for item in self.doc[key]:
            if isinstance(item, dict) and item.get("name") == name:
                item[field_] = value
                return
        self.doc[key].append({"name": name, field_: value})

    def remove(self, key: str, name: str) -> None:
        self.doc[key] = [i for i in self.doc[key] if not (isinstance(i, dict) and i.get("name") == name)]

    def write(self) -> None:
        out = io.StringIO()
        self.yaml.dump(self.doc, out)
        if out.getvalue() == self.original:
            return
        if self.original:
            _files.atomic_write_bytes(self.path + ".bblogin-backup", self.original.encode(), own_dir=False)
        _files.atomic_write_bytes(self.path, out.getvalue().encode(), own_dir=False)


_KUBE_KEYS = {"cluster": "clusters", "user": "users", "context": "contexts"}


def _kube_wanted(bundle: _team.Bundle) -> list[tuple[str, str, dict[str, Any], str]]:
    """(kind, name, value, what it is) of every kubeconfig entry the bundle asks for."""
    from bblogin._commands.setup_kubectl import exec_entry

    wanted: list[tuple[str, str, dict[str, Any], str]] = []
    users: dict[str, tuple[dict[str, Any], str]] = {}
    for cluster in bundle.clusters:
        spec: dict[str, Any] = {"server": cluster.server}
        if cluster.ca_data:
            spec["certificate-authority-data"] = cluster.ca_data
        wanted.append(("cluster", cluster.name, spec, cluster.server))
        users[cluster.user] = (exec_entry(cluster.profile, cluster.use_access_token), f"runs bblogin kubectl --profile {cluster.profile}")
        for ctx in cluster.contexts:
            value = {"cluster": cluster.name, "user": cluster.user, **({"namespace": ctx.namespace} if ctx.namespace else {})}
            wanted.append(("context", ctx.name, value, f"cluster {cluster.name}" + (f", namespace {ctx.namespace}" if ctx.namespace else "")))
    wanted += [("user", name, entry, what) for name, (entry, what) in users.items()]
    return wanted


# -- git --------------------------------------------------------------------------------------
def _git_current(url: str) -> dict[str, Any] | None:
    from bblogin._commands.setup_git import _git_config

    helpers = _git_config(["--global"], "--get-all", f"credential.{url}.helper", check=False).stdout.splitlines()
    use_path = _git_config(["--global"], "--get", f"credential.{url}.useHttpPath", check=False).stdout.strip()
    return {"helpers": helpers, "useHttpPath": use_path or None} if helpers or use_path else None


def _git_wanted(url: str) -> dict[str, Any]:
    from bblogin._commands.setup_git import helper_value

    has_path = "/" in url.split("://", 1)[1]
    return {"helpers": ["", helper_value()], "useHttpPath": "true" if has_path else None}


def _git_write(url: str, value: dict[str, Any] | None) -> None:
    """Set (or, with None, remove) the scoped helper entries exactly as `bblogin setup git` does."""
    from bblogin._commands.setup_git import _git_config

    key = f"credential.{url}.helper"
    _git_config(["--global"], "--unset-all", key)
    _git_config(["--global"], "--unset-all", f"credential.{url}.useHttpPath")
    if value is None:
        return
    for helper in value["helpers"]:
        _git_config(["--global"], "--add", key, helper)
    if value.get("useHttpPath"):
        _git_config(["--global"], f"credential.{url}.useHttpPath", value["useHttpPath"])


def _host_table(host: Any) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(host).items() if k != "url" and v is not None and (k == "profile" or v != getattr(type(host)(url="", profile=""), k))}


# -- the plan -----------------------------------------------------------------------------------
def plan(bundle: _team.Bundle, record: Record, kube: _Kubeconfig) -> list[Change]:
    config = load_config(compile=False)
    changes: list[Change] = []
    for name, profile in bundle.profiles.items():
        current = config.profiles.get(name)
        changes.append(_decide("config.toml", "profile", name, _configedit._profile_table(current) if current else None, _configedit._profile_table(profile), record, profile.issuer))
    if bundle.default_profile:
        current_default = config.default_profile
        change = _decide("config.toml", "default_profile", "", current_default, bundle.default_profile, record, bundle.default_profile)
        if change.action == CONFLICT and current_default not in bundle.profiles:
            change = Change("config.toml", "default_profile", "", CONFLICT, f"is {current_default!r}; kept (bblogin default_profile is yours to choose)")
        changes.append(change)
    for kind, name, value, what in _kube_wanted(bundle):
        changes.append(_decide("kubeconfig", kind, name, kube.get(_KUBE_KEYS[kind], name), value, record, what))
    hosts = {h.url: h for h in config.git_hosts}
    for host in bundle.git_hosts:
        changes.append(_decide("config.toml", "git host", host.url, _host_table(hosts[host.url]) if host.url in hosts else None, _host_table(host), record, f"profile {host.profile}"))
        changes.append(_decide("git", "credential helper", host.url, _git_current(host.url), _git_wanted(host.url), record))
    wanted = {_key(c.where, c.kind, c.name) for c in changes}
    for key, value in record.entries.items():  # what this bundle added before and no longer names
        if key in wanted:
            continue
        where, kind, name = key.split("|", 2)
        current = _current(where, kind, name, config, kube)
        changes.append(Change(where, kind, name, REMOVE if _plain(current) == value else KEPT, "no longer in the bundle" + ("" if _plain(current) == value else "; changed since, kept"), None))
    return changes


def _current(where: str, kind: str, name: str, config: Any, kube: _Kubeconfig) -> Any:
    if where == "kubeconfig":
        return kube.get(_KUBE_KEYS[kind], name)
    if where == "git":
        return _git_current(name)
    if kind == "profile":
        return _configedit._profile_table(config.profiles[name]) if name in config.profiles else None
    if kind == "default_profile":
        return config.default_profile
    hosts = {h.url: h for h in config.git_hosts}
    return _host_table(hosts[name]) if name in hosts else None


def token_routes(bundle: _team.Bundle) -> list[str]:
    """Which host receives which token: the line a user must be able to check before saying yes."""
    lines = []
    for cluster in bundle.clusters:
        profile = bundle.profiles[cluster.profile]
        kind = "access token" if cluster.use_access_token or profile.use_access_token else "ID token"
        contexts = ", ".join(c.name for c in cluster.contexts)
        lines.append(f"{kind} of profile {profile.name} (from {profile.issuer}) → Kubernetes API {cluster.server} (contexts {contexts})")
    for host in bundle.git_hosts:
        profile = bundle.profiles[host.profile]
        lines.append(f"{host.token.replace('_', ' ')} of profile {profile.name} (from {profile.issuer}) → git {host.url}")
    return lines


def _show(bundle: _team.Bundle, changes: list[Change], kube: _Kubeconfig) -> None:
    say(f"Team bundle {bundle.name or ''} from {bundle.source}".replace("  ", " "))
    files = {"config.toml": load_config(compile=False).path, "kubeconfig": kube.shown, "git": "git config --global"}
    for where in ("config.toml", "kubeconfig", "git"):
        items = [c for c in changes if c.where == where]
        if items:
            say(f"  {files[where]}:")
            for c in items:
                label = f"{c.kind} {c.name}".strip()
                say(f"    {_MARKS[c.action]} {label}: {c.action}" + (f" — {c.detail}" if c.detail else ""))
    routes = token_routes(bundle)
    if routes:
        say("  Tokens will go only here:")
        for line in routes:
            say(f"    {line}")


# -- the command ------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    if args.export:
        if args.source or args.undo:
            raise UsageError("--export prints a bundle of this set-up; it takes no --from or --undo")
        return _export()
    if not args.source:
        raise UsageError("say what to set up: bblogin setup kubectl|git …, or bblogin setup --from URL|FILE (a team bundle)", hint="bblogin setup --help")
    record = Record.load(args.source)
    if args.undo:
        return _undo(record, args)
    bundle = _team.parse(args.source, _team.fetch(args.source))
    kube = _Kubeconfig()
    changes = plan(bundle, record, kube)
    _show(bundle, changes, kube)
    todo = [c for c in changes if c.action in (ADD, UPDATE, REMOVE)]
    if not todo:
        say("Nothing to change: this machine already has the whole bundle.")
    elif args.dry_run:
        say(f"--dry-run: {len(todo)} change(s) shown, nothing written.")
        return EXIT_OK
    else:
        if not args.yes and not _confirm(len(todo)):
            say("Nothing was changed.")
            return EXIT_OK
        _apply(changes, record, kube)
        record.save()
        say(f"Applied {len(todo)} change(s). Undo with: bblogin setup --from {args.source} --undo")
    conflicts = [c for c in changes if c.action in (CONFLICT, KEPT)]
    if conflicts:
        say(f"{len(conflicts)} entr{'y was' if len(conflicts) == 1 else 'ies were'} kept as they are (marked !): change or remove them yourself, then run this again.")
    if args.dry_run:
        return EXIT_OK
    if not args.no_login:
        _logins(bundle)
    from bblogin._commands import doctor

    return int(doctor.run(argparse.Namespace(json=False)))


def _confirm(count: int) -> bool:
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise UsageError("not applied: confirm the plan above on a terminal, or pass --yes", hint="--dry-run shows the plan and changes nothing")
    print(f"Apply these {count} change(s)? [y/N] ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _apply(changes: list[Change], record: Record, kube: _Kubeconfig) -> None:
    """Write in the order that keeps every file valid at every step: profiles before the git hosts
    that name them; removals of hosts before the profiles they name."""
    from bblogin import _config

    def config_edit(mutate: Callable[[Any, Any], None]) -> None:
        _configedit._edit(None, mutate)

    order = {("config.toml", "profile"): 0, ("config.toml", "default_profile"): 1, ("config.toml", "git host"): 2}
    ordered = sorted(changes, key=lambda c: (c.action == REMOVE, order.get((c.where, c.kind), 3) * (-1 if c.action == REMOVE else 1)))
    kube_changed = False
    for c in ordered:
        if c.action not in (ADD, UPDATE, REMOVE):
            continue
        key = _key(c.where, c.kind, c.name)
        value = c.desired
        if c.where == "config.toml" and c.kind == "profile":
            if value is None:
                config_edit(lambda doc, _t, n=c.name: doc.get("profiles", {}).pop(n, None))
            else:
                table = dict(value)
                config_edit(lambda doc, tomlkit, n=c.name, t=table: doc.setdefault("profiles", tomlkit.table(is_super_table=True)).__setitem__(n, _toml_table(tomlkit, t)))
        elif c.kind == "default_profile":
            if value is None:
                config_edit(lambda doc, _t: doc.pop("default_profile", None))
            else:
                config_edit(lambda doc, _t, v=value: doc.__setitem__("default_profile", v))
        elif c.where == "config.toml":
            if value is None:
                config_edit(lambda doc, _t, n=c.name: doc.get("git", {}).pop(n, None))
            else:
                _configedit.save_git_host(_config.GitHost(url=c.name, **value))
        elif c.where == "kubeconfig":
            kube_key = _KUBE_KEYS[c.kind]
            if value is None:
                kube.remove(kube_key, c.name)
            else:
                kube.set(kube_key, c.name, value)
            kube_changed = True
        else:
            _git_write(c.name, value)
        if value is None:
            record.entries.pop(key, None)
        else:
            record.entries[key] = value
    if kube_changed:
        kube.write()
        record.kubeconfig = kube.path


def _toml_table(tomlkit: Any, values: dict[str, Any]) -> Any:
    table = tomlkit.table()
    for k, v in values.items():
        table[k] = v
    return table


def _logins(bundle: _team.Bundle) -> None:
    """One login per distinct request (profiles asking for the same tokens share one), skipping
    those already logged in. A login that cannot run here is said, not fatal: doctor follows."""
    from bblogin import _index
    from bblogin._commands import login
    from bblogin._index import Account
    from bblogin._session import join, visible_account

    config = load_config(compile=False)
    done: dict[tuple[str, str], Account] = {}  # (shape, storage) -> the token set its login made
    for name in bundle.profiles:
        profile = config.profiles.get(name)
        if profile is None or profile.pipelines:
            continue
        account = visible_account(_index.load(), profile)
        if account is not None and not account.refresh_dead:
            done.setdefault((profile.shape, profile.storage), account)
            continue
        shared = done.get((profile.shape, profile.storage))
        if shared is not None:  # it asks for exactly what an earlier profile's login got
            join(profile, shared)
            say(f"Profile {name} uses the login of {shared.label}: it asks for exactly the same.")
            continue
        say(f"Logging in for profile {name} at {profile.issuer}…")
        try:
            login.run(argparse.Namespace(profile=name, flow=None, no_browser=False, listen=None, timeout=None, insecure_storage=False, default=False))
        except BbloginError as exc:
            say(f"  not logged in: {exc.message}")
            say(f"  later: bblogin login --profile {name}")
            continue
        made = visible_account(_index.load(), profile)
        if made is not None:
            done[(profile.shape, profile.storage)] = made


def _undo(record: Record, args: argparse.Namespace) -> int:
    if not record.entries:
        say(f"Nothing to undo: no set-up from {args.source} is recorded on this machine.")
        return EXIT_OK
    config = load_config(compile=False)
    kube = _Kubeconfig()
    if record.kubeconfig and os.path.realpath(record.kubeconfig) != kube.path:
        say(f"note: the kubeconfig entries were written to {record.kubeconfig}, not {kube.shown}; they are left there.")
    changes = []
    for key, value in record.entries.items():
        where, kind, name = key.split("|", 2)
        if where == "kubeconfig" and record.kubeconfig and os.path.realpath(record.kubeconfig) != kube.path:
            continue
        current = _plain(_current(where, kind, name, config, kube))
        changes.append(Change(where, kind, name, REMOVE if current == value or current is None else KEPT, "" if current == value or current is None else "changed since; kept", None))
    for c in changes:
        say(f"  {_MARKS[c.action]} {c.where}: {c.kind} {c.name}: {c.action}" + (f" — {c.detail}" if c.detail else ""))
    if args.dry_run:
        say("--dry-run: nothing removed.")
        return EXIT_OK
    _apply([c for c in changes if c.action == REMOVE], record, kube)
    for c in changes:
        if c.action == KEPT:
            record.entries.pop(_key(c.where, c.kind, c.name), None)  # not ours any more
    record.save()
    say("Removed what the bundle had added" + (" (entries changed since were kept)." if any(c.action == KEPT for c in changes) else "."))
    return EXIT_OK


def _export() -> int:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    docs = []
    for path in [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p] or [os.path.join(_paths.home(), ".kube", "config")]:
        try:
            with open(path, encoding="utf-8") as fh:
                doc = YAML(typ="safe").load(fh.read())
        except (OSError, UnicodeDecodeError, YAMLError):
            continue
        if isinstance(doc, dict):
            docs.append(doc)
    sys.stdout.write(_team.export(load_config(compile=False), docs))
    return EXIT_OK
