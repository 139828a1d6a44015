"""Kubeconfig files as kubectl reads them: which files (``$KUBECONFIG``, else ``~/.kube/config``),
and what their merge holds — kubectl's rule: the first file that names a user, context or
cluster wins, the first current-context set wins, a missing file adds nothing. What makes a file
unusable is collected as a problem (file, what is wrong, what to fix), never raised: ``bblogin
doctor`` reports them, ``bblogin setup kubectl`` refuses to edit such a file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

Problem = tuple[str, str, str]  # (file, what is wrong, what to fix)


@dataclass
class Kubeconfig:
    files: list[str] = field(default_factory=list)
    users: dict[str, tuple[str, Any]] = field(default_factory=dict)  # name -> (file, its `user:`)
    contexts: dict[str, str] = field(default_factory=dict)  # context name -> user name
    clusters: list[str] = field(default_factory=list)
    current: str | None = None
    problems: list[Problem] = field(default_factory=list)


def files() -> list[str]:
    """The files kubectl reads: ``$KUBECONFIG``'s (in order, each once), else ``~/.kube/config``."""
    env = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    return list(dict.fromkeys(env)) or [os.path.join(os.path.expanduser("~"), ".kube", "config")]


def bblogin_argv(command: str, args: list[str]) -> list[str] | None:
    """The arguments bblogin itself gets when the exec entry starts it — its console script, the
    kubectl plugin script, its launcher, or ``python -m bblogin`` — else None."""
    name = os.path.basename(command)
    if name == "kubectl-bblogin":  # only options: the exec credential plugin (_cli.kubectl_main)
        return args if args and not args[0].startswith("-") else ["kubectl", *args]
    if name.startswith("bblogin"):
        return args
    for i, arg in enumerate(args):
        if os.path.basename(arg) == "_launcher.py" and "bblogin" in arg:
            return args[i + 1 :]
        if arg == "-m" and args[i + 1 : i + 2] == ["bblogin"]:
            return args[i + 2 :]
    return None


def kind(value: Any) -> str:
    """A YAML value's kind, as a person calls it."""
    kinds = ((bool, "boolean"), (dict, "mapping"), (list, "list"), (str, "string"), (int, "number"), (float, "number"), (type(None), "null"))
    return next((name for t, name in kinds if isinstance(value, t)), type(value).__name__)


def load(path: str) -> tuple[Any, Problem | None]:
    """The parsed document (None for a missing or empty file), or the problem that stops kubectl reading it."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        with open(path, encoding="utf-8") as fh:
            return YAML(typ="safe").load(fh), None
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as exc:
        return None, (path, f"cannot be read ({getattr(exc, 'strerror', None) or type(exc).__name__})", "make it a readable UTF-8 file, or remove it from $KUBECONFIG")
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) if isinstance(exc, MarkedYAMLError) else None
        where = f" at line {mark.line + 1}" if mark is not None else ""
        return None, (path, f"is not valid YAML{where} ({getattr(exc, 'problem', None) or type(exc).__name__}); kubectl cannot use it", "fix the YAML at the line shown (`kubectl config view` shows what kubectl reads)")


def shape_problems(path: str, doc: Any) -> list[Problem]:
    """What in ``doc``'s shape kubectl would refuse: a top level that is not a mapping, `users:` or
    `contexts:` that are not lists, entries that are not named mappings."""
    if not isinstance(doc, dict):
        return [(path, f"its top level is a {kind(doc)}, not a mapping (kind: Config)", "make it a kubeconfig: apiVersion, kind: Config, clusters, contexts, users")]
    problems = []
    for key in ("users", "contexts", "clusters"):
        items = doc.get(key)
        if items is not None and not isinstance(items, list):
            problems.append((path, f"`{key}:` is a {kind(items)}, not a list", f"make `{key}:` a list of entries (`- name: …`)"))
            continue
        for i, item in enumerate(items or []):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                what = f"a {kind(item)}" if not isinstance(item, dict) else "an entry without a name"
                problems.append((path, f"{key}[{i}] is {what}", f"make each of `{key}:` an entry with `name:` and `{key[:-1]}:`"))
    return problems


def merge(docs: list[tuple[str, Any]]) -> Kubeconfig:
    """``docs`` (file, parsed document) merged as kubectl merges them; malformed parts are problems and add nothing."""
    merged = Kubeconfig(files=[path for path, _ in docs])
    for path, doc in docs:
        if doc is None:
            continue
        merged.problems += shape_problems(path, doc)
        if not isinstance(doc, dict):
            continue

        def named(key: str) -> list[dict[str, Any]]:
            items = doc.get(key)
            return [i for i in items if isinstance(i, dict) and isinstance(i.get("name"), str)] if isinstance(items, list) else []

        for item in named("users"):
            merged.users.setdefault(item["name"], (path, item.get("user")))
        for item in named("contexts"):
            body = item.get("context") if isinstance(item.get("context"), dict) else {}
            merged.contexts.setdefault(item["name"], str(body.get("user") or ""))
        merged.clusters += [item["name"] for item in named("clusters") if item["name"] not in merged.clusters]
        if merged.current is None and doc.get("current-context"):
            merged.current = str(doc["current-context"])
    return merged


def read(paths: list[str]) -> Kubeconfig:
    """The merge of the files at ``paths``; one that cannot be read or parsed is a problem."""
    docs, problems = [], []
    for path in paths:
        doc, problem = load(path)
        if problem is not None:
            problems.append(problem)
        docs.append((path, doc))
    merged = merge(docs)
    merged.problems = problems + merged.problems
    return merged
