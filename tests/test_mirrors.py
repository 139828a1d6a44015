"""The hot path's mirrors describe exactly the bytes they were built from (issue #13, defect 2).

Each test lets another writer change the source between a slow-path read and the mirror write —
the interleaving that made the hot path serve bob's token while the full path served alice's, and
answer for a git host already removed from config.toml.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import subprocess
import sys
import tomllib
from typing import Any

import pytest

from bblogin import _config, _configedit, _index, _mirrors, _paths
from bblogin._hot import _answer as _fast
from bblogin._hot import _mirror as _hotcache
from bblogin._index import Account
from bblogin._tokens import account_id


def _account(sub: str, email: str) -> Account:
    return Account(id=account_id("https://idp.example", "c", sub), profiles=["work"], shape="s", provider="oidc", issuer="https://idp.example", client_id="c", sub=sub, email=email)


def _once_after(monkeypatch: pytest.MonkeyPatch, module: Any, name: str, when: Any, action: Any) -> None:
    """Run ``action`` right after the first ``module.name(...)`` call whose argument satisfies ``when``."""
    real = getattr(module, name)
    fired: list[bool] = []

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        if not fired and when(args[0]):
            fired.append(True)
            action()
        return result

    monkeypatch.setattr(module, name, wrapper)


def test_index_mirror_never_pairs_old_content_with_the_new_files_fingerprint(monkeypatch: pytest.MonkeyPatch) -> None:
    alice, bob = _account("1", "alice@example.com"), _account("2", "bob@example.com")
    with _index.transaction() as index:
        index.accounts.update({alice.id: alice, bob.id: bob})
        index.active["work"] = alice.id
    os.unlink(_hotcache.accounts_path())  # a lost mirror: the next load rebuilds it

    def other_process_runs_use() -> None:  # `bblogin use bob` lands between our read and our mirror write
        done = subprocess.run([sys.executable, "-m", "bblogin", "use", "bob@example.com"], capture_output=True, text=True, timeout=60, env=os.environ.copy())
        assert done.returncode == 0, done.stderr

    _once_after(monkeypatch, json, "loads", lambda raw: b'"accounts"' in (raw if isinstance(raw, bytes) else raw.encode()), other_process_runs_use)
    full = _index.load()  # the slow path read alice as active, then bob's `use` landed
    hot = _fast._account("work", None, {"issuer": "https://idp.example", "client_id": "c"})
    current = _index.load().active_account("work")
    assert current is not None and current.id == bob.id
    assert hot is None or hot["id"] == current.id, f"hot path serves {hot['email']}, the full path {current.email}"
    assert full.active_account("work") is not None


def test_config_mirror_never_keeps_a_removed_git_host(monkeypatch: pytest.MonkeyPatch) -> None:
    path = pathlib.Path(_paths.config_file())
    with_host = '[profiles.p]\nissuer = "https://idp.example"\nclient_id = "c"\n\n[git."https://git.example"]\nprofile = "p"\n'
    path.write_text(with_host)
    os.utime(path, ns=(1, 1))

    def user_removes_the_host() -> None:
        path.write_text(with_host.split("\n\n")[0] + "\n# the git host is gone\n")

    _once_after(monkeypatch, tomllib, "loads", lambda text: "git.example" in text, user_removes_the_host)
    _mirrors.load_config()
    snapshot = _fast._config()
    assert snapshot is None or snapshot["git_hosts"] == [], "the hot path still answers for a git host removed from config.toml"
    assert _config.load().git_hosts == ()


def test_mirrors_are_tagged_with_the_file_written() -> None:
    alice = _account("1", "alice@example.com")
    with _index.transaction() as index:
        index.accounts[alice.id] = alice
    mirror = _hotcache.read(_hotcache.accounts_path())
    assert mirror["source"] == _hotcache.fingerprint(_paths.accounts_file())
    parsed = json.loads(pathlib.Path(_paths.accounts_file()).read_text())
    assert mirror["index"] == parsed and list(mirror["index"]["accounts"][alice.id]) == list(parsed["accounts"][alice.id])  # as a read parses it, in its order
    _configedit.save_profile(_config.Profile(name="p", issuer="https://idp.example", client_id="c"))
    snapshot = _hotcache.read(_hotcache.config_path())
    assert snapshot["fingerprint"] == _hotcache.fingerprint(_paths.config_file()) == _config.load().stamp


def test_a_load_takes_the_index_from_its_mirror_until_the_file_differs(monkeypatch: pytest.MonkeyPatch) -> None:
    alice = _account("1", "alice@example.com")
    with _index.transaction() as index:
        index.accounts[alice.id] = alice
    parsed: list[object] = []
    real = json.loads
    monkeypatch.setattr(json, "loads", lambda raw, *a, **k: parsed.append(raw) or real(raw, *a, **k))
    assert _index.load().get(alice.id).email == "alice@example.com" and parsed == []  # the mirror is tagged with these bytes
    path = pathlib.Path(_paths.accounts_file())
    path.write_text(path.read_text().replace("alice@example.com", "alice@corp.example"))  # edited by hand
    assert _index.load().get(alice.id).email == "alice@corp.example" and parsed  # parsed, and mirrored again
    seen = len(parsed)
    assert _index.load().get(alice.id).email == "alice@corp.example" and len(parsed) == seen


def test_a_file_changing_while_it_is_read_is_not_mirrored(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"one")
    assert _mirrors.read_stamped(str(source)) == (b"one", _hotcache.fingerprint(str(source)))

    class EditedWhileRead(io.FileIO):
        def read(self, size: int = -1) -> bytes:  # an editor appends in place mid-read
            data = super().read(size)
            with open(source, "ab") as writer:
                writer.write(b" and two")
            return data

    monkeypatch.setattr(_mirrors, "open", lambda path, _mode: EditedWhileRead(path), raising=False)
    assert _mirrors.read_stamped(str(source)) == (b"one", None)  # read, but never the basis of a mirror


def test_a_config_mirror_from_an_older_bblogin_is_declined_then_rebuilt() -> None:
    """Version 1 mirrors do not say which profiles are Pipelines profiles: the hot path must not
    serve a cached exchange from one (it cannot check the step token), and the slow path rebuilds it."""
    _configedit.save_profile(_config.Profile(name="ci", issuer="https://idp.example", client_id="c", pipelines=True))
    snapshot = _hotcache.read(_hotcache.config_path())
    old = {**snapshot, "version": 1, "profiles": {name: {k: v for k, v in p.items() if k != "pipelines"} for name, p in snapshot["profiles"].items()}}
    _hotcache.write(_hotcache.config_path(), old)
    account = {"id": "x", "provider": "oidc", "issuer": "https://idp.example", "client_id": "c", "tokens": {"id_token": {"expires_at": 2**40, "sha256": _hotcache.token_digest("t")}}}
    assert _fast.cached_token(old["profiles"]["ci"], account, "id_token", read=lambda *_: "t") is None
    _mirrors.load_config()
    assert _hotcache.read(_hotcache.config_path())["profiles"]["ci"]["pipelines"] is True


@pytest.mark.parametrize("query", ["alice@example.com", "ALICE@example.com", "", "2"])
def test_the_hot_path_finds_an_account_as_the_full_path_does_or_declines(query: str) -> None:
    """``--account`` (and a git host's ``account``): the full path matches an id, then an email or
    user name ignoring case, and refuses an ambiguous query; "" means the active account. The hot
    path never picks an account the full path would not."""
    alice, alice2 = _account("1", "alice@example.com"), _account("2", "Alice@Example.com")
    with _index.transaction() as index:
        index.accounts.update({alice.id: alice, alice2.id: alice2})
        index.active["work"] = alice2.id
    _index.load()  # the mirror is current
    hot = _fast._account("work", query if query != "2" else alice2.id, {"provider": "oidc", "issuer": "https://idp.example", "client_id": "c"})
    full_index = _index.load()
    try:
        full = full_index.find(query if query != "2" else alice2.id, "work") if query else full_index.active_account("work")
    except Exception:  # noqa: BLE001  # the full path refuses (ambiguous): the hot path must decline
        full = None
    assert hot is None or (full is not None and hot["id"] == full.id), (hot and hot["email"], full and full.email)
