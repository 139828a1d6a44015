"""The output files `bblogin gcp` wrote: plaintext copies of an identity token (0600) that a
Google client library reuses without running bblogin until their ``expiration_time``.

So bblogin keeps a record of each one (``gcp-output-files.json`` in the state directory: path,
profile, account, SHA-256 of the bytes written, expiry) and removes a file as soon as its token is
no longer the one bblogin would hand out — its account logged out, or no longer the profile's
active one (``bblogin use``, a login of another account) — or when it has expired. A file that no
longer holds exactly the bytes bblogin wrote is someone else's now: bblogin forgets it and leaves
it alone. ``bblogin status`` lists the files (docs/security.md, "What is stored where").
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bblogin import _files, _paths
from bblogin._record import record

if TYPE_CHECKING:
    from bblogin._index import Index

RECORD = "gcp-output-files.json"
LOCK_SECONDS = 10.0


@record(frozen=True)
class OutputFile:
    path: str
    profile: str | None  # None: a Pipelines step token (no account, nothing to log out)
    account: str | None
    sha256: str
    expires_at: int


def _record_path() -> str:
    return os.path.join(_paths.state_dir(), RECORD)


def _load() -> dict[str, OutputFile]:
    """The record; anything odd in it is dropped (the worst outcome is a file bblogin forgets)."""
    data = _files.read_json(_record_path())
    files = data.get("files") if isinstance(data, dict) and data.get("version") == 1 else None
    out: dict[str, OutputFile] = {}
    for path, rec in (files or {}).items() if isinstance(files, dict) else ():
        try:
            entry = OutputFile(path, rec["profile"], rec["account"], rec["sha256"], rec["expires_at"])
        except (KeyError, TypeError):
            continue
        if isinstance(entry.sha256, str) and isinstance(entry.expires_at, int) and os.path.isabs(path):
            out[path] = entry
    return out


def _save(files: dict[str, OutputFile]) -> None:
    if not files:  # nothing left to look after: no record (reconcile is then one stat)
        try:
            os.unlink(_record_path())
        except FileNotFoundError:
            pass
        return
    record = {p: {"profile": f.profile, "account": f.account, "sha256": f.sha256, "expires_at": f.expires_at} for p, f in sorted(files.items())}
    _files.ensure_private_dir(_paths.state_dir())
    _files.atomic_write_json(_record_path(), {"version": 1, "files": record})


def _sha256(data: bytes) -> str:
    import hashlib  # not at module level: it loads OpenSSL, and login/logout import this module

    return hashlib.sha256(data).hexdigest()


def _digest(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            return _sha256(fh.read())
    except OSError:
        return None


def _stale(entry: OutputFile, index: Index, now: float) -> bool:
    if entry.expires_at <= now:
        return True
    if entry.account is None:
        return False
    account = index.accounts.get(entry.account)
    if account is None or entry.profile not in account.profiles:
        return True  # logged out (of this profile)
    return index.active.get(entry.profile or "") not in (None, entry.account)


def _reconcile(files: dict[str, OutputFile]) -> list[str]:
    """Remove stale files that are still exactly ours; forget files that are gone or changed."""
    from bblogin import _index

    index, now, removed = _index.load(), time.time(), []
    for path, entry in list(files.items()):
        if _digest(path) != entry.sha256:
            del files[path]  # gone, or rewritten by someone else: not ours to remove
        elif _stale(entry, index, now):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError:
                continue  # kept on record: the next reconcile tries again
            del files[path]
            removed.append(path)
    return removed


def _locked() -> Any:
    from bblogin._lock import account_lock

    return account_lock("gcp-output-files", LOCK_SECONDS)


def write(path: str, write_file: Callable[[], bytes], *, profile: str | None, account: str | None, expires_at: int) -> None:
    """Write a file (``write_file`` returns the bytes it wrote) and record it, under one lock: two
    calls racing for one path leave the record naming the bytes that are in the file. Then
    reconcile: should the account have changed while the token was fetched (a `bblogin use`
    racing this call), the file goes at once."""
    with _locked():
        data = write_file()
        files = _load()
        files[path] = OutputFile(path, profile, account, _sha256(data), expires_at)
        _reconcile(files)
        _save(files)


def reconcile() -> list[str]:
    """After a change of who is logged in or active: remove the files that no longer hold the
    token bblogin would hand out. Returns the paths removed. A no-op without a record."""
    if not os.path.exists(_record_path()):
        return []
    with _locked():
        files = _load()
        removed = _reconcile(files)
        _save(files)
    return removed


def listing() -> list[OutputFile]:
    """The files on record that still hold what bblogin wrote, for `bblogin status`."""
    return [f for f in _load().values() if _digest(f.path) == f.sha256]
