"""`bblogin setup --from URL|FILE`: a team's whole set-up from its bundle (``_team``), in one
command — the profiles into config.toml, the clusters, users and contexts into the kubeconfig,
the git hosts into git's config — after a plan that says which host will receive which token,
then one login per distinct request and `doctor`'s checks. `--export` prints a bundle.

What it adds is recorded (state dir, ``team/<source digest>.json``) so that a rerun is a no-op,
a changed bundle shows what changes, and ``--undo`` removes exactly what it added. An entry it
did not add, or one changed since, is never overwritten or removed: it is reported and kept, and
so is everything of the bundle that would point at it (a context at a kept cluster, a git host at
a kept profile): a kept entry never reroutes a token. An entry that something staying still
points at is not removed either. The token routes shown are read from the files as they will be
after the writes.

Writing is all or nothing: the plan is made again under the locks (the kubeconfig's, kubectl's
own FILE.lock included, and config.toml's) and must be the one shown; the record of what will be
written is saved before the first write; a failing write rolls back the ones before it.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import hashlib
import os
import shlex
import sys
from collections.abc import Callable
from typing import Any

from bblogin import _config, _configedit, _files, _kubeconfig, _paths, _record, _team
from bblogin._commands._common import load_config, say
from bblogin._errors import EXIT_OK, BbloginError, ConfigError, UsageError
from bblogin._record import field, record

ADD, UPDATE, SAME, CONFLICT, SKIP = "add", "update", "same", "conflict", "left out"
REMOVE, KEPT, IN_USE, GONE = "remove", "kept", "in use", "gone"  # for what the bundle added before and names no more
_MARKS = {ADD: "+", UPDATE: "~", SAME: "=", CONFLICT: "!", SKIP: "!", REMOVE: "-", KEPT: "!", IN_USE: "!", GONE: "="}
_WRITES = (ADD, UPDATE, REMOVE)
_KINDS = {"config.toml": ("profile", "default_profile", "git host"), "kubeconfig": ("cluster", "user", "context"), "git": ("credential helper",)}
_KUBE_KEYS = {"cluster": "clusters", "user": "users", "context": "contexts"}


def _key(where: str, kind: str, name: str) -> str:
    return f"{where}|{kind}|{name}"


@record
class Change:
    """One entry the bundle asks for (or asked for before): what is there, what it will be."""

    where: str  # config.toml | kubeconfig | git
    kind: str  # profile, default_profile, git host | cluster, user, context | credential helper
    name: str
    action: str
    detail: str = ""
    desired: Any = None  # what is written (ADD/UPDATE) and recorded; None: removed
    before: Any = None  # what the plan saw there (the write checks it is still so)
    needs: tuple[str, ...] = ()  # the keys of the entries it points at

    @property
    def key(self) -> str:
        return _key(self.where, self.kind, self.name)


# -- the record -------------------------------------------------------------------------------
@record
class Record:
    """What earlier runs of this bundle wrote, per entry: the value written. ``pending``: what a
    run is writing right now (saved before its first write), so that a run cut short still leaves
    undo knowing every entry it may have written."""

    source: str
    kubeconfig: str | None = None
    entries: dict[str, Any] = field(default_factory=dict)  # "where|kind|name" -> value written
    pending: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def path(source: str) -> str:
        return _paths.join(_paths.state_dir(), "team", hashlib.sha256(_team.shown_source(source).encode()).hexdigest()[:16] + ".json")

    @classmethod
    def load(cls, source: str) -> Record:
        path = cls.path(source)
        try:
            with open(path, "rb") as fh:
                raw = fh.read()
        except FileNotFoundError:
            return cls(source=source)
        except OSError as exc:
            raise ConfigError(f"cannot read {path} (what setup --from {_team.shown_source(source)} wrote before): {exc.strerror}; nothing was changed") from None
        import json

        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        problem = _record_problem(data)
        if problem:
            raise ConfigError(
                f"{path} (what setup --from {_team.shown_source(source)} wrote before) is not a record bblogin can use: {problem}; nothing was changed",
                hint="restore the file from a backup; or delete it, and bblogin counts nothing as added by this bundle (undo removes nothing, a rerun reports its entries as conflicts)",
            )
        def plain(entries: dict[str, Any]) -> dict[str, Any]:  # kubeconfig values as kubectl means them (records of bblogin 0.x kept kubectl's defaults)
            return {k: _kubeconfig.normal(v) if k.startswith("kubeconfig|") else v for k, v in entries.items()}

        return cls(source=source, kubeconfig=data.get("kubeconfig"), entries=plain(data["entries"]), pending=plain(data.get("pending") or {}))

    def ours(self, key: str, current: Any) -> bool:
        """Whether ``current`` is what this bundle wrote there (so it may update or remove it)."""
        return current is not None and current in (self.entries.get(key), self.pending.get(key))

    def save(self) -> None:
        path = self.path(self.source)
        _files.ensure_private_dir(os.path.dirname(path))
        if self.entries or self.pending:
            _files.atomic_write_json(path, {"source": _team.shown_source(self.source), "kubeconfig": self.kubeconfig, "entries": self.entries, "pending": self.pending})
        elif os.path.exists(path):
            os.unlink(path)


def _record_problem(data: Any) -> str | None:
    if not isinstance(data, dict):
        return "not a JSON object"
    if not isinstance(data.get("kubeconfig"), (str, type(None))):
        return "its kubeconfig is not a path"
    for part in ("entries", "pending"):
        entries = data.get(part, {} if part == "pending" else None)
        if not isinstance(entries, dict):
            return f"its {part} are not a JSON object"
        for key, value in entries.items():
            where, _, rest = key.partition("|")
            kind, _, name = rest.partition("|")
            if kind not in _KINDS.get(where, ()) or (not name and kind != "default_profile"):
                return f"the entry {key!r} names nothing setup writes"
            if not isinstance(value, str if kind == "default_profile" else dict):
                return f"the entry {key!r} has a value of the wrong type"
    return None


# -- what is there ----------------------------------------------------------------------------
def _git_current(url: str) -> dict[str, Any] | None:
    from bblogin._commands.setup_git import _git_config

    helpers = _git_config(["--global"], "--get-all", f"credential.{url}.helper", check=False).stdout.splitlines()
    use_path = _git_config(["--global"], "--get", f"credential.{url}.useHttpPath", check=False).stdout.strip()
    return {"helpers": helpers, "useHttpPath": use_path or None} if helpers or use_path else None


def _git_wanted(url: str) -> dict[str, Any]:
    from bblogin._commands.setup_git import helper_value

    has_path = "/" in url.split("://", 1)[1]
    return {"helpers": ["", helper_value()], "useHttpPath": "true" if has_path else None}


def _git_write(url: str, value: dict[str, Any] | None) -> Callable[[], object] | None:
    """Write (or, with None, remove) bblogin's helper entries for ``url`` in git's global config
    with `setup git`'s own writers; the step that takes it back, when there is one (an update
    from an older bblogin helper to this one needs none: both run bblogin)."""
    from bblogin._commands.setup_git import remove_helper, write_helper

    scope = ["--global"]
    if value is None:
        remove_helper(url, scope)
        return functools.partial(write_helper, url, scope)
    added = _git_current(url) is None
    write_helper(url, scope)
    return functools.partial(remove_helper, url, scope) if added else None


def _host_table(host: _config.GitHost) -> dict[str, Any]:
    defaults = _config.GitHost(url="", profile="")
    return {k: v for k, v in _record.asdict(host).items() if k not in ("url", "problem") and v is not None and (k == "profile" or v != getattr(defaults, k))}


@record
class State:
    """config.toml, the kubeconfig (the file written: $KUBECONFIG's first; and the others, read
    only, for what kubectl merges) and git's global config, as they are now."""

    config: _config.Config
    kube: _kubeconfig.Editable
    others: list[tuple[str, Any]]
    git: dict[str, Any] = field(default_factory=dict)  # url -> helper entries, read when asked

    @classmethod
    def read(cls) -> State:
        files = _kubeconfig.files()
        kube = _kubeconfig.load_for_edit(files[0], edits=("clusters", "users", "contexts"), other=", or put another file first in $KUBECONFIG")
        return cls(config=load_config(compile=False), kube=kube, others=[(p, _kubeconfig.load(p)[0]) for p in files[1:]])

    def merged(self) -> _kubeconfig.Kubeconfig:
        return _kubeconfig.merge([(self.kube.path, self.kube.doc), *self.others])

    def git_helpers(self, url: str) -> Any:
        if url not in self.git:
            self.git[url] = _git_current(url)
        return self.git[url]

    def current(self, where: str, kind: str, name: str, merged: _kubeconfig.Kubeconfig | None = None) -> tuple[Any, str | None]:
        """The entry as it is now, plain (kubeconfig entries as kubectl means them), and the file
        of a kubeconfig entry that only another of $KUBECONFIG's files has (None: editable here)."""
        if where == "kubeconfig":
            found = (merged or self.merged()).entries[_KUBE_KEYS[kind]].get(name)
            if found is None:
                return None, None
            return _kubeconfig.normal(found[1]), (None if found[0] == self.kube.path else found[0])
        if where == "git":
            return self.git_helpers(name), None
        return _config_entry(self.config, kind, name), None


def _config_entry(config: _config.Config, kind: str, name: str) -> Any:
    if kind == "profile":
        profile = config.profiles.get(name)
        return _configedit._profile_table(profile) if profile else None
    if kind == "default_profile":
        return config.default_profile
    host = next((h for h in config.git_hosts if h.url == name), None)
    return _host_table(host) if host else None


# -- what the bundle wants --------------------------------------------------------------------
def _wanted(bundle: _team.Bundle) -> list[Change]:
    """Every entry the bundle asks for, each after the entries it points at (``needs``)."""
    from bblogin._commands.setup_kubectl import exec_entry

    def want(where: str, kind: str, name: str, value: Any, detail: str, needs: tuple[str, ...] = ()) -> Change:
        return Change(where, kind, name, ADD, detail, value, needs=needs)

    out = [want("config.toml", "profile", name, _configedit._profile_table(p), p.issuer) for name, p in bundle.profiles.items()]
    if bundle.default_profile:
        out.append(want("config.toml", "default_profile", "", bundle.default_profile, bundle.default_profile, (_key("config.toml", "profile", bundle.default_profile),)))
    users: dict[str, Change] = {}
    for cluster in bundle.clusters:
        spec = {"server": cluster.server, **({"certificate-authority-data": cluster.ca_data} if cluster.ca_data else {})}
        ca = f", CA {_team.fingerprint(cluster.ca_data)}" if cluster.ca_data else ", CA: the OS trust store"
        out.append(want("kubeconfig", "cluster", cluster.name, _kubeconfig.normal(spec), f"{cluster.server}{ca}"))
        flag = " --use-access-token" if cluster.use_access_token else ""
        users[cluster.user] = want("kubeconfig", "user", cluster.user, _kubeconfig.normal(exec_entry(cluster.profile, cluster.use_access_token)), f"runs bblogin kubectl --profile {cluster.profile}{flag}", (_key("config.toml", "profile", cluster.profile),))
    out += users.values()
    for cluster in bundle.clusters:
        for ctx in cluster.contexts:
            value = {"cluster": cluster.name, "user": cluster.user, **({"namespace": ctx.namespace} if ctx.namespace else {})}
            needs = (_key("kubeconfig", "cluster", cluster.name), _key("kubeconfig", "user", cluster.user))
            out.append(want("kubeconfig", "context", ctx.name, value, f"cluster {cluster.name}, user {cluster.user}" + (f", namespace {ctx.namespace}" if ctx.namespace else ""), needs))
    for host in bundle.git_hosts:
        out.append(want("config.toml", "git host", host.url, _host_table(host), f"profile {host.profile}", (_key("config.toml", "profile", host.profile),)))
        out.append(want("git", "credential helper", host.url, _git_wanted(host.url), "bblogin answers git for it", (_key("config.toml", "git host", host.url),)))
    return out


def _diff(old: Any, new: Any) -> str:
    """What differs, as a person reads it: values quoted and escaped, a CA by its fingerprint,
    an exec entry by the command line it runs."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return f"{old!r} → {new!r}"
    parts = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if a == b:
            continue
        if k == "certificate-authority-data":
            parts.append(f"CA {_team.fingerprint(a)} → {_team.fingerprint(b)}")
        elif k == "exec" and isinstance(a, dict) and isinstance(b, dict):
            run = lambda e: _team.printable(" ".join(str(w) for w in [e.get("command", ""), *(e.get("args") or [])]))  # noqa: E731
            parts.append(f"exec: {run(a)!r} → {run(b)!r}" if run(a) != run(b) else "exec: " + _diff(a, b))
        else:
            parts.append(f"{k}: {a!r} → {b!r}")
    return ", ".join(parts)


def _decide(want: Change, state: State, record: Record, merged: _kubeconfig.Kubeconfig) -> Change:
    current, elsewhere = state.current(want.where, want.kind, want.name, merged)
    change = _record.replace(want, before=current)
    if current is None:
        return change
    if current == want.desired:
        return _record.replace(change, action=SAME)
    if elsewhere:
        return _record.replace(change, action=CONFLICT, desired=None, detail=f"{elsewhere} has it, and kubectl uses that one; kept as it is")
    if record.ours(want.key, current):
        return _record.replace(change, action=UPDATE, detail=_diff(current, want.desired) or want.detail)
    if want.kind == "default_profile":
        return _record.replace(change, action=CONFLICT, desired=None, detail=f"is {current!r}; kept (bblogin's default profile is yours to choose)")
    return _record.replace(change, action=CONFLICT, desired=None, detail=f"exists and differs ({_diff(current, want.desired) or 'another value'}); kept as it is")


# -- the plan -----------------------------------------------------------------------------------
@record
class Plan:
    changes: list[Change]
    after: _config.Config  # config.toml as it will be
    kube_after: _kubeconfig.Kubeconfig  # what kubectl will read
    kube_doc: _kubeconfig.Editable  # the file written, as it will be
    git_after: dict[str, Any]  # url -> helper entries, for the bundle's hosts

    def todo(self) -> list[Change]:
        return [c for c in self.changes if c.action in _WRITES]

    def signature(self) -> list[tuple[str, str, Any]]:
        return [(c.key, c.action, c.desired) for c in self.changes]


def plan(bundle: _team.Bundle, record: Record, state: State, undo: bool = False) -> Plan:
    """What applying ``bundle`` changes (``undo``: what removing what it added changes)."""
    kube_recorded = any(k.startswith("kubeconfig|") for k in {**record.entries, **record.pending})
    if kube_recorded and record.kubeconfig and os.path.realpath(record.kubeconfig) != state.kube.path:
        raise UsageError(
            f"this bundle's kubeconfig entries were written to {record.kubeconfig}, and kubectl now reads {state.kube.shown}; nothing was changed",
            hint=f"run it with KUBECONFIG={shlex.quote(record.kubeconfig)} (a file that is gone counts as its entries removed)",
        )
    merged = state.merged()
    changes: list[Change] = []
    blocked: dict[str, Change] = {}
    for want in [] if undo else _wanted(bundle):
        change = _decide(want, state, record, merged)
        stop = next((blocked[k] for k in change.needs if k in blocked), None)
        if stop is not None and change.action in (ADD, UPDATE):  # never point at what the user keeps as theirs
            change = _record.replace(change, action=SKIP, desired=None, detail=f"it would use {stop.kind} {stop.name}, which is " + ("left out too" if stop.action == SKIP else "kept as it is"))
        if change.action in (CONFLICT, SKIP):
            blocked[change.key] = change
        changes.append(change)
    for helper in [c for c in changes if c.kind == "credential helper" and c.action == CONFLICT]:
        host = next(c for c in changes if c.key == _key("config.toml", "git host", helper.name))
        if host.action in (ADD, UPDATE):  # git would not ask bblogin: a host entry nothing uses
            changes[changes.index(host)] = _record.replace(host, action=SKIP, desired=None, detail="git's helper for it is kept as it is: git would not ask bblogin")
    named = {c.key for c in changes}
    why = "not added by this bundle any more" if undo else "no longer in the bundle"
    for key, value in {**record.entries, **record.pending}.items():
        if key in named:
            continue
        where, kind, name = key.split("|", 2)
        current, elsewhere = state.current(where, kind, name, merged)
        if current is None:
            changes.append(Change(where, kind, name, GONE, f"{why}; already removed"))
        elif elsewhere is None and record.ours(key, current):
            changes.append(Change(where, kind, name, REMOVE, why, None, before=current))
        else:
            changes.append(Change(where, kind, name, KEPT, f"{why}; changed since, so it is yours now: kept, and no longer counted as the bundle's", before=current))
    while True:  # what stays must not point at what goes
        config_doc, kube = _simulate(changes, state)
        pointers = _pointers(config_doc, kube, state.others)
        kept = [c for c in changes if c.action == REMOVE and c.key in pointers]
        if not kept:
            import tomlkit

            try:
                after = _config.parse(state.config.path, tomlkit.dumps(config_doc))  # invalid: it fails here, before any write
            except ConfigError as exc:
                raise ConfigError(f"this would leave config.toml invalid ({exc.message}); nothing was changed", hint="please report it: the plan should have kept what that needs") from None
            git_after = {**state.git, **{c.name: c.desired for c in changes if c.where == "git" and c.action in _WRITES}}
            return Plan(changes=changes, after=after, kube_after=_kubeconfig.merge([(kube.path, kube.doc), *state.others]), kube_doc=kube, git_after=git_after)
        for c in kept:
            changes[changes.index(c)] = _record.replace(c, action=IN_USE, detail=f"{why}; kept: {pointers[c.key]} still uses it (it stays recorded: undo removes it once nothing does)")


def _pointers(config_doc: Any, kube_doc: _kubeconfig.Editable, others: list[tuple[str, Any]]) -> dict[str, str]:
    """key of an entry -> what (that stays, in config.toml's document and the kubeconfig files) points at it."""
    raw = config_doc.unwrap()
    out: dict[str, str] = {}
    for url, host in (raw.get("git") or {}).items():
        if isinstance(host, dict):
            out.setdefault(_key("config.toml", "profile", str(host.get("profile"))), f"git host {_team.printable(url)}")
    if raw.get("default_profile"):
        out.setdefault(_key("config.toml", "profile", str(raw["default_profile"])), "default_profile")
    kube = _kubeconfig.merge([(kube_doc.path, kube_doc.doc), *others])
    for name, (_file, body) in kube.entries["users"].items():
        served = _team.bblogin_profile_of(body)
        if served:
            out.setdefault(_key("config.toml", "profile", served[0]), f"kubeconfig user {_team.printable(name)}")
    for name, (_file, ctx) in kube.entries["contexts"].items():
        if isinstance(ctx, dict):
            out.setdefault(_key("kubeconfig", "cluster", str(ctx.get("cluster"))), f"context {_team.printable(name)}")
            out.setdefault(_key("kubeconfig", "user", str(ctx.get("user"))), f"context {_team.printable(name)}")
    return out


def _config_mutation(changes: list[Change], check: Callable[[Change, Any], None] | None = None) -> Callable[[Any, Any], None]:
    """Apply the config.toml changes to a tomlkit document (``check``: first, that each entry
    is still what the plan saw)."""

    def mutate(doc: Any, tomlkit: Any) -> None:
        if check is not None:
            now = _config.parse("config.toml", tomlkit.dumps(doc))
            for c in changes:
                if c.where == "config.toml" and c.action in _WRITES:
                    check(c, _config_entry(now, c.kind, c.name))
        for c in changes:
            if c.where != "config.toml" or c.action not in _WRITES:
                continue
            if c.kind == "default_profile":
                if c.desired is None:
                    doc.pop("default_profile", None)
                else:
                    doc["default_profile"] = c.desired
                continue
            section = "profiles" if c.kind == "profile" else "git"
            for key in _configedit._git_keys(doc, c.name) if section == "git" else [c.name]:  # every spelling of a git host
                if key != c.name or c.desired is None:
                    doc.get(section, {}).pop(key, None)
            if c.desired is None:
                continue
            table = tomlkit.table()
            for k, v in c.desired.items():
                table[k] = v
            doc.setdefault(section, tomlkit.table(is_super_table=True))[c.name] = table

    return mutate


def _simulate(changes: list[Change], state: State) -> tuple[Any, _kubeconfig.Editable]:
    """config.toml's document and the kubeconfig file as they will be after ``changes``."""
    import tomlkit

    try:
        with open(state.config.path, encoding="utf-8") as fh:
            doc = tomlkit.parse(fh.read())
    except FileNotFoundError:
        doc = tomlkit.document()
    _config_mutation(changes)(doc, tomlkit)
    kube = _record.replace(state.kube, doc=copy.deepcopy(state.kube.doc))
    _kube_mutation(changes, kube)
    return doc, kube


def _kube_mutation(changes: list[Change], kube: _kubeconfig.Editable) -> None:
    for c in changes:
        if c.where == "kubeconfig" and c.action in _WRITES:
            if c.desired is None:
                kube.remove(_KUBE_KEYS[c.kind], c.name)
            else:
                kube.set(_KUBE_KEYS[c.kind], c.name, copy.deepcopy(c.desired))


def token_routes(bundle: _team.Bundle, result: Plan) -> list[str]:
    """Which host receives which token — read from the files as they will be after the writes,
    for the contexts and git hosts the bundle names: the lines a user checks before saying yes."""
    lines: dict[tuple[str, str, str], list[str]] = {}
    conflicts = {c.key for c in result.changes if c.action == CONFLICT}  # the user's own, untouched
    entries = result.kube_after.entries

    def body(key: str, name: Any) -> dict[str, Any]:
        found = entries[key].get(str(name))
        return found[1] if found is not None and isinstance(found[1], dict) else {}

    for cluster in bundle.clusters:
        for ctx in cluster.contexts:
            spec = body("contexts", ctx.name)
            served = _team.bblogin_profile_of(body("users", spec.get("user")))
            profile = result.after.profiles.get(served[0]) if served else None
            server = body("clusters", spec.get("cluster")).get("server")
            if _key("kubeconfig", "context", ctx.name) in conflicts or served is None or profile is None or not server:
                continue
            kind = "access token" if served[1] or profile.use_access_token else "ID token"
            lines.setdefault((kind, profile.name, str(server)), []).append(ctx.name)
    out = [
        f"{kind} of profile {name} (from {_team.printable(result.after.profiles[name].issuer)}) → Kubernetes API {_team.printable(server)} (contexts {', '.join(ctxs)})"
        for (kind, name, server), ctxs in lines.items()
    ]
    hosts = {h.url: h for h in result.after.git_hosts}
    for want in bundle.git_hosts:
        host = hosts.get(want.url)
        if host is None or result.git_after.get(want.url) != _git_wanted(want.url) or host.profile not in result.after.profiles:
            continue
        profile = result.after.profiles[host.profile]
        token = "ID token" if host.token == "id_token" else "access token"
        out.append(f"{token} of profile {profile.name} (from {_team.printable(profile.issuer)}) → git {host.url}" + (f" as {_team.printable(host.username)}" if host.username else ""))
    return out


def _show(title: str, result: Plan, state: State, routes: list[str] | None) -> None:
    say(title)
    files = {"config.toml": state.config.path, "kubeconfig": state.kube.shown, "git": "git config --global"}
    for where in ("config.toml", "kubeconfig", "git"):
        items = [c for c in result.changes if c.where == where]
        if items:
            say(f"  {files[where]}:")
            for c in items:
                label = f"{c.kind} {c.name}".strip()
                say(f"    {_MARKS[c.action]} {label}: {c.action}" + (f" — {c.detail}" if c.detail else ""))
    if routes is not None:
        say("  Tokens will go only here:" if routes else "  No token goes anywhere through what this bundle sets up.")
        for line in routes:
            say(f"    {line}")


def _writes_note(result: Plan, record_path: str, logins: bool) -> str:
    """Every file the run writes, said before it writes any."""
    wheres = {c.where for c in result.todo()}
    parts = [p for w, p in (("config.toml", "config.toml"), ("git", "git's global config")) if w in wheres]
    if "kubeconfig" in wheres:
        kube = result.kube_doc
        kept = [f"the previous file as {kube.path}{_kubeconfig.BACKUP}"] if kube.original else []
        if kube.original and not os.path.exists(kube.path + _kubeconfig.ORIGINAL):
            kept.append(f"the file before bblogin first changed it as {kube.path}{_kubeconfig.ORIGINAL}")
        parts.append(kube.shown + (f" (keeping {' and '.join(kept)})" if kept else ""))
    then = "; then it logs in once per identity provider (tokens into the keyring, the account into accounts.json) and runs doctor's checks" if logins else ""
    return f"  Writes: {', '.join(parts)}; and the record of what it added, {record_path}{then}."


# -- the command ------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    if args.export:
        if args.source or args.undo or args.dry_run or args.yes or args.no_login:
            raise UsageError("--export prints a bundle of this set-up and changes nothing; it takes no --from, --undo, --dry-run, --yes or --no-login")
        return _export()
    if not args.source:
        raise UsageError("say what to set up: bblogin setup kubectl|git …, or bblogin setup --from URL|FILE (a team bundle)", hint="bblogin setup --help")
    record = Record.load(args.source)
    if args.undo:
        return _undo(record, args)
    bundle = _team.parse(args.source, _team.fetch(args.source))
    state = State.read()
    result = plan(bundle, record, state)
    _show(f"Team bundle {bundle.name + ' ' if bundle.name else ''}from {_team.shown_source(args.source)}", result, state, token_routes(bundle, result))
    todo = result.todo()
    if not todo:
        say("Nothing to change: this machine already has the whole bundle.")
        if record.pending or any(c.action in (GONE, KEPT) for c in result.changes):
            _commit(args, bundle, record, result, undo=False)  # forget what is gone or the user's now; keep what a cut-short run wrote
    elif args.dry_run:
        say(_writes_note(result, Record.path(args.source), logins=not args.no_login))
        say(f"--dry-run: {len(todo)} change(s) shown, nothing written.")
        return EXIT_OK
    else:
        say(_writes_note(result, Record.path(args.source), logins=not args.no_login))
        if not args.yes and not _confirm(len(todo)):
            say("Nothing was changed.")
            return EXIT_OK
        _commit(args, bundle, record, result, undo=False)
        say(f"Applied {len(todo)} change(s). Undo with: bblogin setup --from {shlex.quote(_team.shown_source(args.source))} --undo")
    kept = [c for c in result.changes if c.action in (CONFLICT, SKIP, KEPT, IN_USE)]
    if kept:
        say(f"{len(kept)} entr{'y was' if len(kept) == 1 else 'ies were'} kept or left out (marked !, each says why): to get the bundle's, change or remove yours, then run this again.")
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


def _commit(args: argparse.Namespace, bundle: _team.Bundle, record: Record, shown: Plan, *, undo: bool) -> None:
    """Under the locks, make the plan again from the files as they are now; write it only when it
    is the plan that was shown (else nothing is written: a kubectl or another bblogin changed
    something meanwhile)."""
    from bblogin import _lock

    digest = os.path.basename(Record.path(args.source)).split(".")[0]
    kube = any(c.where == "kubeconfig" and c.action in _WRITES for c in shown.changes)
    with _lock.account_lock(f"team-{digest}", 30.0), (_kubeconfig.edit_lock(shown.kube_doc.shown) if kube else contextlib.nullcontext()):
        record = Record.load(args.source)
        state = State.read()
        result = plan(bundle, record, state, undo=undo)
        if result.signature() != shown.signature():
            raise ConfigError(
                "the files changed while the plan was shown (a kubectl, an editor or another bblogin wrote one); nothing was changed",
                hint="run it again to see the plan for the files as they are now",
            )
        _apply(result, state, record)


def _apply(result: Plan, state: State, record: Record) -> None:
    """Write everything or nothing: the record of what is about to be written first (so that undo
    knows it even if this process dies half-way), then git's config, the kubeconfig and config.toml;
    a failing write rolls back the writes before it."""
    todo = result.todo()
    earlier = dict(record.pending)  # what a run cut short may have written
    record.pending = {**earlier, **{c.key: c.desired for c in todo if c.desired is not None}}
    if any(c.where == "kubeconfig" for c in todo):
        record.kubeconfig = state.kube.path
    record.save()
    undo: list[Callable[[], object]] = []
    try:
        for c in todo:
            if c.where == "git":
                back = _git_write(c.name, c.desired)
                if back is not None:
                    undo.append(back)
        if any(c.where == "kubeconfig" for c in todo):
            written = result.kube_doc.write()
            if written:
                undo.append(lambda: _files.atomic_write_bytes(state.kube.path, state.kube.original.encode(), own_dir=False) if state.kube.original else os.unlink(state.kube.path))
        if any(c.where == "config.toml" for c in todo):

            def unchanged(c: Change, now: Any) -> None:
                if now != c.before:
                    raise ConfigError(f"{state.config.path} changed while the plan was shown ({c.kind} {c.name}); nothing was changed", hint="run it again to see the plan for the file as it is now")

            try:
                _configedit._edit(None, _config_mutation(todo, unchanged))
            except ConfigError as exc:
                raise ConfigError(f"{exc.message}; nothing was changed", hint=exc.hint if "changed while" in exc.message else "this is a bug in bblogin's plan: please report it") from None
    except BbloginError:
        for step in reversed(undo):
            with contextlib.suppress(BbloginError, OSError):
                step()
        record.pending = earlier
        record.save()
        raise
    for c in result.changes:
        if c.action in (REMOVE, GONE, KEPT):
            record.entries.pop(c.key, None)  # removed, gone, or the user's now
        elif c.action in (ADD, UPDATE):
            record.entries[c.key] = c.desired
        elif c.action == SAME and c.key in record.pending and c.before == record.pending[c.key]:
            record.entries[c.key] = c.before  # a run cut short after this write: it is ours
    record.pending = {}
    record.save()


def _logins(bundle: _team.Bundle) -> None:
    """One login per distinct request (profiles asking for the same tokens share one), skipping
    those already logged in. A login that cannot run here is said, not fatal: doctor follows.
    Only where a person can finish it (``_interactive``'s one rule, as for kubectl and git):
    `--yes` is also the script form (a devcontainer's postCreateCommand, provisioning, cron),
    and there no browser opens and no device code goes into a log; the commands to run later
    are said instead."""
    from bblogin import _index
    from bblogin._commands import login
    from bblogin._index import Account
    from bblogin._interactive import Gate
    from bblogin._session import join, visible_account

    gate = Gate("cli")

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
        if not gate:
            say(f"Profile {name}: not logged in; no login started: {gate.decision.reason}")
            say(f"  later: bblogin login --profile {name}")
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
    if not record.entries and not record.pending:
        say(f"Nothing to undo: no set-up from {_team.shown_source(args.source)} is recorded on this machine.")
        return EXIT_OK
    state = State.read()
    empty = _team.Bundle(source=args.source)
    result = plan(empty, record, state, undo=True)
    _show(f"Undo the team bundle from {_team.shown_source(args.source)}", result, state, None)
    if args.dry_run:
        say("--dry-run: nothing removed.")
        return EXIT_OK
    _commit(args, empty, record, result, undo=True)
    kept = [c for c in result.changes if c.action in (KEPT, IN_USE)]
    say("Removed what the bundle had added" + (f"; {len(kept)} entr{'y' if len(kept) == 1 else 'ies'} kept (marked !)." if kept else "."))
    if any(c.action == IN_USE for c in kept):
        say("What is kept because something still uses it stays recorded: remove (or change) what uses it, then run this again.")
    say("Logins stay: `bblogin logout --profile NAME` removes an account's tokens.")
    return EXIT_OK


def _export() -> int:
    docs = [(path, _kubeconfig.load(path)[0]) for path in _kubeconfig.files()]
    text, left_out = _team.export(load_config(compile=False), [(p, d) for p, d in docs if isinstance(d, dict)])
    sys.stdout.write(text)
    for line in left_out:
        say(f"left out: {line}")
    return EXIT_OK

