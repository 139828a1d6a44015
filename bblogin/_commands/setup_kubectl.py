"""`bblogin setup kubectl`: write the kubeconfig exec entry that runs `bblogin kubectl`.

A round trip through ruamel.yaml keeps the rest of the file as it was (comments, order, other
users); an existing file is backed up first; the write is atomic; a second run changes nothing.
A symlinked kubeconfig is written through the link (the link stays), and the directory keeps its
mode. ``--context`` must name a cluster the kubeconfig has; ``--set-current`` makes it current.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from typing import Any

from bblogin import _files
from bblogin._cli import launcher_command
from bblogin._commands._common import load_config, say
from bblogin._errors import ConfigError, UsageError


def kubeconfig_path(explicit: str | None) -> str:
    if explicit:
        return explicit
    env = os.environ.get("KUBECONFIG", "")
    first = next((p for p in env.split(os.pathsep) if p), "")
    return first or os.path.join(os.path.expanduser("~"), ".kube", "config")


def _merged_with(doc: dict[str, Any], explicit: str | None, yaml: Any) -> tuple[list[Any], Any]:
    """The cluster names and the current-context kubectl sees: ``doc`` (the file written) merged
    with $KUBECONFIG's other files, as kubectl merges them (the first current-context set wins).
    Those files are only read; one that cannot be read or parsed adds nothing."""
    from ruamel.yaml.error import YAMLError

    docs: list[Any] = [doc]
    if not explicit:
        for other in [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p][1:]:
            try:
                with open(other, encoding="utf-8") as fh:
                    docs.append(yaml.load(fh.read()))
            except (OSError, UnicodeDecodeError, YAMLError):  # kubectl will say what is wrong with it
                continue
    docs = [d for d in docs if isinstance(d, dict)]
    clusters = [c.get("name") for d in docs for c in (d.get("clusters") or []) if isinstance(c, dict)]
    current = next((d.get("current-context") for d in docs if d.get("current-context")), None)
    return list(dict.fromkeys(clusters)), current


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
    for key in ("users", "contexts"):
        if not isinstance(doc.get(key), list):
            doc[key] = []
    changed = _upsert(doc["users"], user, "user", entry)
    if args.context:
        clusters, _ = _merged_with(doc, args.kubeconfig, yaml)
        if args.cluster not in clusters:
            raise UsageError(
                f"{shown} has no cluster {args.cluster!r}" + (f" (it has: {', '.join(map(str, clusters))})" if clusters else " (it has no clusters)") + "; nothing was changed",
                hint=f"add it first (`kubectl config set-cluster {args.cluster} --server URL`), or name one of its clusters with --cluster",
            )
        changed |= _upsert(doc["contexts"], args.context, "context", {"cluster": args.cluster, "user": user})
        if args.set_current and doc.get("current-context") != args.context:
            doc["current-context"] = args.context
            changed = True
    out = io.StringIO()
    yaml.dump(doc, out)
    if args.print_only:
        sys.stdout.write(out.getvalue())
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
