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
import os
import sys
from typing import Any

from bblogin import _config, _kubeconfig
from bblogin._cli import launcher_command
from bblogin._commands._common import load_config, say
from bblogin._errors import ConfigError, UsageError



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
    config = load_config()
    profile = config.profile(args.profile)
    if profile.provider in _config.BITBUCKET_PROVIDERS:
        raise UsageError(
            f"profile {profile.name} is {profile.provider}: it has no ID token, and its access token is a Bitbucket credential that goes only to that Bitbucket "
            "and its git hosts, never to a Kubernetes API server (docs/security.md, Which token goes where); nothing was changed",
            hint="use a profile of an OIDC identity provider (dex with its Bitbucket connector) for kubectl",
        )
    if bool(args.context) != bool(args.cluster):
        raise UsageError("--context and --cluster go together")
    if args.set_current and not args.context:
        raise UsageError("--set-current needs --context NAME --cluster NAME")
    user = args.user or f"bblogin-{profile.name}"
    entry = exec_entry(profile.name, args.use_access_token)
    shown = kubeconfig_path(args.kubeconfig)
    if args.print_only:  # only what bblogin would write: never the rest of the file (other users' tokens)
        return _edit(args, shown, user, entry, profile.name)
    with _kubeconfig.edit_lock(shown):  # read, change and write with no kubectl (or bblogin) writing in between
        return _edit(args, shown, user, entry, profile.name)


def _edit(args: argparse.Namespace, shown: str, user: str, entry: dict[str, Any], profile: str) -> int:
    kube = _kubeconfig.load_for_edit(shown)
    doc, path = kube.doc, kube.path
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
    if args.print_only:
        kube.yaml.dump(wanted, sys.stdout)
        return 0
    if not changed:
        say(f"{shown} already runs bblogin for user {user}; nothing to change.")
    else:
        first_change = kube.original and not os.path.exists(path + _kubeconfig.ORIGINAL)
        kube.write()
        say(f"Wrote user {user} (bblogin kubectl --profile {profile}) to {shown}" + (f", with context {args.context}" if args.context else "") + ".")
        if kube.original:
            say(f"The previous file is saved as {path}{_kubeconfig.BACKUP}" + (f", and kept as {path}{_kubeconfig.ORIGINAL} (the file before bblogin first changed it)." if first_change else "."))
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
