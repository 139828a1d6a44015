from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time

import pytest

from bblogin import _index, _lock, _paths
from bblogin._errors import AccountNotFound, LockTimeout
from bblogin._index import Account
from bblogin._tokens import Identity, TokenSet, account_id


def make(profile: str, sub: str, email: str) -> Account:
    return Account(id=account_id("https://idp", "c", sub), profiles=[profile], shape="s", provider="oidc", issuer="https://idp", client_id="c", sub=sub, email=email)


def test_account_id_is_stable_and_ordered() -> None:
    assert account_id("https://idp", "c", "s") == account_id("https://idp", "c", "s")
    assert account_id("https://idp", "c", "s") != account_id("https://idp", "s", "c")
    assert len(account_id("https://idp", "c", "s")) == 16


def test_find_by_id_email_prefix_and_ambiguity() -> None:
    a, b, c = make("work", "1", "alice@example.com"), make("work", "2", "bob@example.com"), make("home", "3", "alice@example.com")
    with _index.transaction() as index:
        index.accounts.update({x.id: x for x in (a, b, c)})
    index = _index.load()
    assert index.find(a.id) == a
    assert index.find("BOB@example.com") == b
    assert index.find(b.id[:6]) == b
    assert index.find("alice@example.com", "home") == c
    with pytest.raises(AccountNotFound, match="matches 2 accounts"):
        index.find("alice@example.com")
    with pytest.raises(AccountNotFound):
        index.find("nobody")


def test_record_tokens_and_identity() -> None:
    a = make("work", "1", "alice@example.com")
    a.record_tokens(TokenSet(access_token="at", id_token="it", refresh_token="rt", id_expires_at=2000, access_expires_at=None))
    assert a.expires_at("id_token") == 2000
    assert a.expires_at("access_token") is not None  # the IdP named none: a default lifetime
    assert a.has("refresh_token") and a.expires_at("refresh_token") is None
    a.set_identity(Identity(sub="1", email="e", groups=("ws1", "ws2")))
    assert a.groups == ["ws1", "ws2"]
    assert "secret-value" not in repr(TokenSet(access_token="at-secret-value"))


def _add_account(n: int) -> None:
    with _index.transaction() as index:
        acct = make("p", str(n), f"u{n}@example.com")
        index.accounts[acct.id] = acct
        time.sleep(0.01)


def test_concurrent_transactions_lose_nothing() -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_add_account, args=(n,)) for n in range(12)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert len(_index.load().accounts) == 12
    assert os.stat(_paths.accounts_file()).st_mode & 0o777 == 0o600


def test_corrupt_index_reads_as_empty() -> None:
    os.makedirs(os.path.dirname(_paths.accounts_file()), exist_ok=True)
    with open(_paths.accounts_file(), "w") as fh:
        fh.write("{garbage")
    assert _index.load().accounts == {}


def test_lock_times_out_while_held_and_dies_with_its_holder() -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys,time; from bblogin._lock import account_lock\nwith account_lock('acct', 5):\n print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, env=os.environ.copy(),
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        start = time.monotonic()
        with pytest.raises(LockTimeout) as info:
            with _lock.account_lock("acct", 0.5):
                pass
        assert 0.4 < time.monotonic() - start < 3
        assert info.value.exit_code == 9
        holder.kill()  # kill -9: the kernel releases the lock, nothing stale remains
        holder.wait()
        with _lock.account_lock("acct", 2):
            pass
    finally:
        holder.kill()
        holder.wait()
