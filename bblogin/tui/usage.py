"""Where each account is used: the kubeconfig contexts whose user runs `bblogin kubectl` for its
profile, and the git hosts config.toml routes to it.

The kubeconfig is read, never written: every file of ``$KUBECONFIG`` (``~/.kube/config`` when
unset), merged as kubectl merges them (the first file to define a name wins). A context serves an
account when its user's exec entry runs bblogin's ``kubectl`` command with the account's profile
and either pins this account (``--account``) or pins none and the account is its profile's
active one — the same resolution ``bblogin kubectl`` makes; IdP flags in the entry are kept
(``Use.idp``) so that ``tui.source`` can drop the contexts whose profile, with those flags, no
longer names the account's issuer and client (``_session.issued_for``). ruamel.yaml is imported here only,
never on the hot path.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import os
import stat
from collections.abc import Iterable
from typing import Any

from bblogin._kubeconfig import bblogin_argv as _bblogin_argv
from bblogin._kubeconfig import MAX_BYTES as MAX_KUBECONFIG_BYTES
from bblogin._kubeconfig import files as kubeconfig_paths
from bblogin._kubeconfig import parse_yaml
from bblogin._record import field, record


@record(frozen=True)
class Use:
    """One place an identity goes: a kubeconfig context or a git host."""

    name: str
    profile: str | None  # None: the default profile (no --profile in the exec entry)
    account: str | None  # the pinned account (id, email or user name), None: the profile's active one
    idp: tuple[tuple[str, Any], ...] = ()  # IdP flags (--issuer, --client-id, …) that override the profile


@record
class KubeUses:
    contexts: list[Use] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # files that could not be read, said plainly


@functools.cache
def _parser() -> argparse.ArgumentParser:
    from bblogin._cli import build_parser

    return build_parser()


def _kubectl_options(argv: list[str]) -> tuple[str | None, str | None, tuple[tuple[str, Any], ...]] | None:
    """``(--profile, --account, IdP flags)`` when bblogin, given ``argv``, runs its ``kubectl``
    command (bblogin's own parser: abbreviations, ``=`` and short forms alike); None when it runs
    another command or would refuse the arguments."""
    from bblogin._commands._common import IDP_FLAGS

    with contextlib.redirect_stderr(io.StringIO()):  # argparse reports on stderr: not into the TUI
        try:
            args = _parser().parse_args(argv)
        except SystemExit:
            return None
    if getattr(args, "_module", None) != "kubectl":
        return None
    idp = tuple((k, tuple(v) if isinstance(v, list) else v) for k in IDP_FLAGS if (v := getattr(args, k, None)))
    return args.profile, args.account, idp


def exec_target(user: Any) -> tuple[str | None, str | None, tuple[tuple[str, Any], ...]] | None:
    """``(profile, account, IdP flags)`` when this kubeconfig user runs `bblogin kubectl`, else
    None. kubectl takes only strings for the command and its args: anything else (a number, a
    list — possibly a YAML alias bomb that ``str()`` would expand) means kubectl refuses the entry."""
    spec = (user or {}).get("user") if isinstance(user, dict) else None
    exec_ = spec.get("exec") if isinstance(spec, dict) else None
    if not isinstance(exec_, dict):
        return None
    command = exec_.get("command")
    args = exec_.get("args", [])
    if not isinstance(command, str) or not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        return None
    argv = _bblogin_argv(command, args)
    return None if argv is None else _kubectl_options(argv)


def _load(path: str) -> Any:
    from ruamel.yaml import YAML

    # O_NONBLOCK: a FIFO (or a device) given as $KUBECONFIG must not hang the TUI; only files are read
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise ValueError("not a regular file")
    # the TUI rereads the kubeconfigs on every action; parsing (pure Python) takes seconds for a big
    # one, so an unchanged file (same inode, size and mtime) is not parsed again
    key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    cached = _parsed.get(path)
    if cached is not None and cached[0] == key:
        os.close(fd)
        return cached[1]
    with open(fd, "rb") as fh:
        data = fh.read(MAX_KUBECONFIG_BYTES + 1)
    if len(data) > MAX_KUBECONFIG_BYTES:
        raise ValueError("larger than 4 MiB")
    doc = parse_yaml(data.decode("utf-8"), YAML(typ="safe")) or {}  # ValueError for an alias bomb, too deep, not UTF-8
    _parsed[path] = (key, doc)
    return doc


_parsed: dict[str, tuple[tuple[int, ...], Any]] = {}  # path -> (its stat key, its parsed document)


def _named(items: Any) -> Iterable[tuple[str, Any]]:
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            yield item["name"], item


def kube_uses(paths: list[str] | None = None) -> KubeUses:
    """Every context, across the kubeconfig files, whose user runs bblogin."""
    found = KubeUses()
    contexts: dict[str, str] = {}  # context -> user
    users: dict[str, Any] = {}
    for path in paths or kubeconfig_paths():
        try:
            doc = _load(path)
        except FileNotFoundError:
            continue
        except Exception as exc:  # a broken kubeconfig is shown, never raised: kubectl would complain itself
            first = (str(exc).strip().splitlines() or [""])[0]
            found.problems.append(f"{path} cannot be read ({type(exc).__name__}: {first})"[:200])
            continue
        if not isinstance(doc, dict):
            found.problems.append(f"{path} is not a kubeconfig")
            continue
        for name, item in _named(doc.get("contexts")):
            context = item.get("context")
            if name not in contexts and isinstance(context, dict) and isinstance(context.get("user"), str):
                contexts[name] = context["user"]
        for name, item in _named(doc.get("users")):
            users.setdefault(name, item)
    for context, user in contexts.items():
        target = exec_target(users.get(user))
        if target is not None:
            found.contexts.append(Use(context, *target))
    return found


def serves(use: Use, profile: str, default_profile: str | None, matches: Any, active: bool) -> bool:
    """Does ``use`` get this account's identity? ``matches(query)`` says whether a pinned account
    reference names this account (``_index.Index.find``'s rules)."""
    if (use.profile or default_profile) != profile:
        return False
    return matches(use.account) if use.account else active
