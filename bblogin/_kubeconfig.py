"""Kubeconfig files as kubectl reads them: which files (``$KUBECONFIG``, else ``~/.kube/config``),
and what their merge holds — kubectl's rule: the first file that names a user, context or
cluster wins, the first current-context set wins, a missing file adds nothing. What makes a file
unusable is collected as a problem (file, what is wrong, what to fix), never raised: ``bblogin
doctor`` reports them, ``bblogin setup kubectl`` refuses to edit such a file.

Editing (``setup kubectl``, ``setup --from``) goes through here too: :func:`edit_lock` (kubectl's
own ``FILE.lock``, so neither a kubectl nor another bblogin writes the file between our read and
our write), :func:`load_for_edit` (a ruamel.yaml round trip: comments and order kept) and
:meth:`Editable.write` (backup, the pre-bblogin original once, atomic, through a symlink).
:func:`normal` is an entry as kubectl means it, so that kubectl's re-serialising (``env: null``)
never looks like a change.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from bblogin._record import field, record

Problem = tuple[str, str, str]  # (file, what is wrong, what to fix)
BACKUP = ".bblogin-backup"  # the file as it was before the last bblogin edit
ORIGINAL = ".bblogin-original"  # the file as it was before bblogin first changed it: never overwritten
LOCK_TIMEOUT = 10.0  # seconds to wait for kubectl's (or another bblogin's) FILE.lock
MAX_BYTES = 4 * 1024 * 1024  # kubeconfigs are kilobytes; a bigger file is not read (the TUI's bound too)
MAX_DEPTH = 64  # a kubeconfig nests about six deep
MAX_EXPANSION = 10  # aliases may make the document at most this many times its own size (go-yaml refuses alias bombs too)
MAX_NODES = 100_000  # ... once it counts this many containers as expanded


@record
class Kubeconfig:
    files: list[str] = field(default_factory=list)
    users: dict[str, tuple[str, Any]] = field(default_factory=dict)  # name -> (file, its `user:`)
    contexts: dict[str, str] = field(default_factory=dict)  # context name -> user name
    clusters: list[str] = field(default_factory=list)
    current: str | None = None
    problems: list[Problem] = field(default_factory=list)
    entries: dict[str, dict[str, tuple[str, Any]]] = field(default_factory=lambda: {"users": {}, "contexts": {}, "clusters": {}})
    """``entries["contexts"][name] = (file, its context: mapping)``: what kubectl uses for each name."""


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


def hostile(doc: Any) -> str | None:
    """What makes a parsed document too costly to look at, or None: nesting deeper than
    ``MAX_DEPTH``, or aliases (shared or circular containers) that expand it more than
    ``MAX_EXPANSION`` times once ``MAX_NODES`` containers are counted — an alias bomb, which
    kubectl refuses as "excessive aliasing". One walk, stopped as soon as the bound is passed."""
    seen: set[int] = set()
    expanded = 0
    stack = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if not isinstance(value, (dict, list)):
            continue
        if depth > MAX_DEPTH:
            return f"nests deeper than {MAX_DEPTH} levels"
        expanded += 1
        seen.add(id(value))
        if expanded > MAX_NODES and expanded > MAX_EXPANSION * len(seen):
            return "contains excessive aliasing (YAML anchors that expand it many times over, or refer to themselves)"
        children = list(value.keys()) + list(value.values()) if isinstance(value, dict) else value
        stack.extend((child, depth + 1) for child in children)
    return None


def _text(path: str) -> str:
    """The file's text, at most ``MAX_BYTES`` (ValueError beyond)."""
    with open(path, "rb") as fh:
        data = fh.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise ValueError(f"is over {MAX_BYTES // (1024 * 1024)} MiB, far beyond a kubeconfig: bblogin does not read it")
    return data.decode("utf-8")


def parse_yaml(text: str, yaml: Any) -> Any:
    """``text`` loaded by ``yaml``; ValueError for what is too deep or costly to use."""
    try:
        doc = yaml.load(text)
    except RecursionError:
        raise ValueError(f"nests deeper than {MAX_DEPTH} levels") from None
    problem = hostile(doc)
    if problem is not None:
        raise ValueError(problem)
    return doc


def load(path: str) -> tuple[Any, Problem | None]:
    """The parsed document (None for a missing or empty file), or the problem that stops kubectl reading it."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        return parse_yaml(_text(path), YAML(typ="safe")), None
    except FileNotFoundError:
        return None, None
    except UnicodeDecodeError:
        return None, (path, "cannot be read (not UTF-8)", "make it a readable UTF-8 file, or remove it from $KUBECONFIG")
    except OSError as exc:
        return None, (path, f"cannot be read ({exc.strerror or type(exc).__name__})", "make it a readable UTF-8 file, or remove it from $KUBECONFIG")
    except ValueError as exc:
        return None, (path, f"{exc}; kubectl cannot use it either", "fix or replace the file (`kubectl config view` shows what kubectl reads), or remove it from $KUBECONFIG")
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

        for key in ("users", "contexts", "clusters"):
            for item in named(key):
                merged.entries[key].setdefault(item["name"], (path, item.get(key[:-1])))
        for item in named("users"):
            merged.users.setdefault(item["name"], (path, item.get("user")))
        for item in named("contexts"):
            body = item.get("context") if isinstance(item.get("context"), dict) else {}
            merged.contexts.setdefault(item["name"], body["user"] if isinstance(body.get("user"), str) else "")
        merged.clusters += [item["name"] for item in named("clusters") if item["name"] not in merged.clusters]
        if merged.current is None and isinstance(doc.get("current-context"), str) and doc["current-context"]:
            merged.current = doc["current-context"]
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


def normal(value: Any) -> Any:
    """A kubeconfig value as kubectl means it, in plain Python types: Go's zero values (null, "",
    false, 0, [], {}) are absent, since kubectl's own serialisation drops some of them and adds
    others (any `kubectl config` write adds ``env: null`` to every exec entry). Compare entries so."""
    if isinstance(value, dict):
        items = {str(k): normal(v) for k, v in value.items()}
        return {k: v for k, v in items.items() if v}
    if isinstance(value, (list, tuple)):
        return [normal(v) for v in value]
    for plain in (bool, int, float, str):  # ruamel's scalar subclasses (quoted strings, ScalarInt…)
        if isinstance(value, plain):
            return plain(value)
    return value


@contextlib.contextmanager
def edit_lock(path: str, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold ``path``'s write lock: bblogin's own (filelock: racing bblogin processes queue), then
    kubectl's — client-go creates ``FILE.lock`` exclusively while it modifies a kubeconfig, and
    fails while that file exists — so a kubectl write cannot fall between our read and our write."""
    import hashlib
    import time

    from bblogin import _files, _lock
    from bblogin._errors import ConfigError

    real = os.path.realpath(path)
    with _lock.account_lock("kubeconfig-" + hashlib.sha256(real.encode()).hexdigest()[:16], timeout):
        lock = path + ".lock"  # where kubectl puts it: beside the name it was given (a symlink's, not its target's)
        deadline = time.monotonic() + timeout
        while True:
            try:
                os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
                break
            except FileNotFoundError:
                _files.ensure_private_dir(os.path.dirname(os.path.abspath(path)))
            except FileExistsError:
                if time.monotonic() > deadline:
                    raise ConfigError(
                        f"{lock} exists: a kubectl is writing {path}, or one that was killed left the lock behind; nothing was changed",
                        hint=f"when no kubectl is running, remove {lock} and run this again",
                    ) from None
                time.sleep(0.1)
            except OSError as exc:
                raise ConfigError(f"cannot lock {path} ({lock}): {exc.strerror}; nothing was changed") from None
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.unlink(lock)


@record
class Editable:
    """One kubeconfig file, round-tripped with ruamel.yaml (comments, order and quoting kept)."""

    shown: str  # as the user names it ($KUBECONFIG's first file)
    path: str  # written through a symlink: the link's target
    original: str  # the text as read ("" for a missing file)
    doc: Any
    yaml: Any

    def get(self, key: str, name: str) -> Any:
        """``key`` (clusters, users, contexts) entry ``name``'s body (its cluster:/user:/context:), or None."""
        for item in self.doc[key]:
            if isinstance(item, dict) and item.get("name") == name:
                return item.get(key[:-1])
        return None

    def set(self, key: str, name: str, value: Any) -> None:
        for item in self.doc[key]:
            if isinstance(item, dict) and item.get("name") == name:
                item[key[:-1]] = value
                return
        self.doc[key].append({"name": name, key[:-1]: value})

    def remove(self, key: str, name: str) -> None:
        self.doc[key] = [i for i in self.doc[key] if not (isinstance(i, dict) and i.get("name") == name)]

    def text(self) -> str:
        import io

        out = io.StringIO()
        self.yaml.dump(self.doc, out)
        return out.getvalue()

    def write(self) -> list[str]:
        """Write the document when it changed: the previous file saved as ``BACKUP``, and the file
        before bblogin first changed it as ``ORIGINAL`` (only once). The files written, in order."""
        from bblogin import _files

        text = self.text()
        if text == self.original:
            return []
        written = []
        if self.original and not os.path.exists(self.path + ORIGINAL):
            _files.atomic_write_bytes(self.path + ORIGINAL, self.original.encode(), own_dir=False)
            written.append(self.path + ORIGINAL)
        if self.original:
            _files.atomic_write_bytes(self.path + BACKUP, self.original.encode(), own_dir=False)
            written.append(self.path + BACKUP)
        _files.atomic_write_bytes(self.path, text.encode(), own_dir=False)
        return [*written, self.path]


def load_for_edit(shown: str, edits: tuple[str, ...] = ("users", "contexts"), other: str = ", or name another file with --kubeconfig", reads: tuple[str, ...] = ("clusters",)) -> Editable:
    """``shown`` for editing; a file kubectl cannot read, or whose ``edits`` lists (or the
    ``reads`` lists the edit looks up) are malformed, is a ConfigError (nothing is changed;
    ``other`` ends its hint). A missing or empty file is an empty kubeconfig."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    from bblogin._errors import ConfigError

    yaml = YAML()
    yaml.preserve_quotes = True
    path = os.path.realpath(shown)  # write through a symlink (dotfile managers), never replace it
    try:
        original = _text(path)
    except FileNotFoundError:
        original = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {shown}: {getattr(exc, 'strerror', None) or type(exc).__name__}; nothing was changed") from None
    except ValueError as exc:
        raise ConfigError(f"{shown} {exc}; nothing was changed", hint=f"fix or move the file, then run this again{other}") from None
    try:
        parse_yaml(original, YAML(typ="safe"))  # the round trip hides what kubectl sees (a circular alias): judge that
        doc = parse_yaml(original, yaml) if original.strip() else None
    except YAMLError as exc:
        raise ConfigError(f"{shown} is not valid YAML ({type(exc).__name__}); nothing was changed", hint="fix or move the file, then run this again") from None
    except ValueError as exc:
        raise ConfigError(f"{shown} {exc}; kubectl cannot use it either, and nothing was changed", hint=f"fix or move the file, then run this again{other}") from None
    if doc is None:
        doc = yaml.load("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\npreferences: {}\n")
    if not isinstance(doc, dict):
        raise ConfigError(f"{shown} is not a kubeconfig (its top level is not a mapping); nothing was changed")
    prefixes = tuple(p for key in (*edits, *reads) for p in (f"`{key}:`", f"{key}["))
    problems = [what for _path, what, _fix in shape_problems(path, doc) if what.startswith(prefixes)]
    if problems:
        raise ConfigError(f"{shown}: {problems[0]}; nothing was changed", hint=f"fix that entry (kubectl cannot read it either){other}")
    for key in edits:
        if doc.get(key) is None:
            doc[key] = []
    return Editable(shown=shown, path=path, original=original, doc=doc, yaml=yaml)
