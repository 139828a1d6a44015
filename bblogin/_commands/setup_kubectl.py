"""`bblogin setup kubectl`: write the kubeconfig exec entry that runs `bblogin kubectl`.

A round trip through ruamel.yaml keeps the rest of the file as it was (comments, order, other
users); an existing file is backed up first (``.bblogin-backup``: the previous state; and, the
first time only, ``.bblogin-original``: the file before bblogin ever changed it); the write is
atomic; a second run changes nothing. ``--print`` shows only what would be written (the user
entry, and the context), never the rest of the file. A ``users:``/``contexts:`` kubectl cannot
read (a mapping, a plain string among the entries) is an error, and nothing is changed.
A symlinked kubeconfig is written through the link (the link stays), and the directory keeps its
mode. ``--context`` must name a cluster the kubeconfig has; ``--set-current`` makes it current.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from typing import Any

from bblogin import _files, _kubeconfig
from bblogin._cli import launcher_command
from bblogin._commands._common import load_config, say
from bblogin._errors import ConfigError, UsageError

BACKUP = ".bblogin-backup"  # the file as it was before this run
ORIGINAL = ".bblogin-original"  # the file as it was before bblogin first changed it: never overwritten


def kubeconfig_path(explicit: str | None) -> str:
    """The file to edit: ``--kubeconfig``, else the first file kubectl reads."""
    return explicit or _kubeconfig.files()[0]


def _merged_with(doc: dict[str, Any], path: str, explicit: str | None) -> _kubeconfig.Kubeconfig:
    """What kubectl sees: ``doc`` (the file written, at ``path``) merged with $KUBECONFIG's other
    files (only read; one that cannot be read or parsed adds nothing: kubectl will say what is
    wrong with it)."""
    others = [] if explicit else [(p, _kubeconfig.load(p)[0]) for p in _kubeconfig.files()[1:]]
    return _kubeconfig.merge([(path, doc), *others])


def exec_entry(profile: str, use_access_token: bool) -> dict[str, Any]:
    """Runs bblogin through the lean launcher (see ``_launcher``): kubectl pays the bare
    interpreter's start-up on every call, not pip's wrapper and `site` on top."""
    command, *launcher = launcher_command("kubectl", "--profile", profile, *(["--use-access-token"] if use_access_token else []))
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": command,
            "args": launcher,
            "interactiveMode": "IfAvailable",
            "provideClusterInfo": False,
        }
    }


def _upsert(items: Any, name: str, key: str, value: dict[str, Any]) -> bool:
    """Set ``items[name=name][key] = value``; True when something changed."""
    for item in items:
        if item.get("name") == name:
            if item.get(key) == value:
                return False
            item[key] = value
            return True
    items.append({"name": name, key: value})
    return True


def run(args: argparse.Namespace) -> int:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    config = load_config()
    profile = config.profile(args.profile)
    if bool(args.context) != bool(args.cluster):
        raise UsageError("--context and --cluster go together")
    if args.set_current and not args.context:
        raise UsageError("--set-current needs --context NAME --cluster NAME")
    user = args.user or f"bblogin-{profile.name}"
    entry = exec_entry(profile.name, args.use_access_token)
    yaml = YAML()
    yaml.preserve_quotes = True
    shown = kubeconfig_path(args.kubeconfig)
    path = os.path.realpath(shown)  # write through a symlink (dotfile managers), never replace it
    try:
        with open(path, encoding="utf-8") as fh:
            original = fh.read()
    except FileNotFoundError:
        original = ""
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        doc = yaml.load(original) if original.strip() else None
    except YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML ({type(exc).__name__}); nothing was changed") from None
    if doc is None:
        doc = {"apiVersion": "v1", "kind": "Config", "clusters": [], "contexts": [], "users": [], "preferences": {}}
    if not isinstance(doc, dict):
        raise ConfigError(f"{path} is not a kubeconfig (its top level is not a mapping)")
    problems = [what for _path, what, _fix in _kubeconfig.shape_problems(path, doc) if what.startswith(("`users:`", "`contexts:`", "users[", "contexts["))]
    if problems:
        raise ConfigError(f"{shown}: {problems[0]}; nothing was changed", hint="fix that entry (kubectl cannot read it either), or name another file with --kubeconfig")
    for key in ("users", "contexts"):
        if doc.get(key) is None:
            doc[key] = []
    changed = _upsert(doc["users"], user, "user", entry)
    wanted: dict[str, Any] = {"users": [{"name": user, "user": entry}]}
    if args.context:
        clusters = _merged_with(doc, path, args.kubeconfig).clusters
        if args.cluster not in clusters:
            raise ConfigError(
                f"{shown} has no cluster {args.cluster!r}" + (f" (it has: {', '.join(map(str, clusters))})" if clusters else " (it has no clusters)") + "; nothing was changed",
                hint=f"add it first (`kubectl config set-cluster {args.cluster} --server URL`), or name one of its clusters with --cluster",
            )
        context = {"cluster": args.cluster, "user": user}
        changed |= _upsert(doc["contexts"], args.context, "context", context)
        wanted["contexts"] = [{"name": args.context, "context": context}]
        if args.set_current:
            wanted["current-context"] = args.context
            if doc.get("current-context") != args.context:
                doc["current-context"] = args.context
                changed = True
    if args.print_only:  # only what bblogin would write: never the rest of the file (other users' tokens)
        yaml.dump(wanted, sys.stdout)
        return 0
    out = io.StringIO()
    yaml.dump(doc, out)
    if not changed:
        say(f"{shown} already runs bblogin for user {user}; nothing to change.")
    else:
        first_change = original and not os.path.exists(path + ORIGINAL)
        if first_change:
            _files.atomic_write_bytes(path + ORIGINAL, original.encode(), own_dir=False)
        if original:
            _files.atomic_write_bytes(path + BACKUP, original.encode(), own_dir=False)
        _files.atomic_write_bytes(path, out.getvalue().encode(), own_dir=False)
        say(f"Wrote user {user} (bblogin kubectl --profile {profile.name}) to {shown}" + (f", with context {args.context}" if args.context else "") + ".")
        if original:
            say(f"The previous file is saved as {path}{BACKUP}" + (f", and kept as {path}{ORIGINAL} (the file before bblogin first changed it)." if first_change else "."))
    merged = _merged_with(doc, path, args.kubeconfig)
    current = merged.current
    if args.context and current != args.context:
        say(f"kubectl's current context is {current!r}, not {args.context}: pass --set-current, or run `kubectl config use-context {args.context}`." if current else f"kubectl has no current context: pass --set-current, or run `kubectl config use-context {args.context}`.")
    if user not in merged.contexts.values():
        say(
            f"No context uses user {user}, so kubectl does not run bblogin yet: rerun with --context NAME --cluster CLUSTER, "
            f"or run `kubectl config set-context NAME --cluster CLUSTER --user {user}`."
        )
    return 0
    if not changed:
        say(f"{shown} already runs bblogin for user {user}; nothing to change.")
    else:
        if original:
            _files.atomic_write_bytes(path + ".bblogin-backup", original.encode(), own_dir=False)
        _files.atomic_write_bytes(path, out.getvalue().encode(), own_dir=False)
        say(f"Wrote user {user} (bblogin kubectl --profile {profile.name}) to {shown}" + (f", with context {args.context}" if args.context else "") + ".")
        if original:
            say(f"The previous file is saved as {path}.bblogin-backup.")
    _, current = _merged_with(doc, args.kubeconfig, yaml)
    if args.context and current != args.context:
        say(f"kubectl's current context is {current!r}, not {args.context}: pass --set-current, or run `kubectl config use-context {args.context}`." if current else f"kubectl has no current context: pass --set-current, or run `kubectl config use-context {args.context}`.")
    return 0
