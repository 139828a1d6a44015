"""Two bblogin callers on one token set at once (issue #22 §1 review F5): two member profiles
logging in, or the last member logging out while another logs in. ``save_login`` and
``logout`` take the set's lock, so the set never holds one login's tokens and another's record,
and a login that arrives during a logout is kept.

Threads in one process stand for processes (the lock is a flock per open file, so two threads
contend exactly as two processes do); the store is forced to be slow at the moment a race
would tear the set. Plaintext storage: the store is the file, no keyring needed.
"""

from __future__ import annotations

import threading
import time

import pytest

from bblogin import _config, _configedit, _index, _store
from bblogin._config import Profile
from bblogin._hot._mirror import token_digest
from bblogin._session import logout, profile_for, save_login
from bblogin._tokens import Identity, TokenSet

ALICE = Identity(sub="alice", email="alice@example.com")


@pytest.fixture
def shared_profiles() -> _config.Config:
    """work and staging: one request (one profile per cluster), so one token set."""
    for name in ("work", "staging"):
        _configedit.save_profile(Profile(name=name, issuer="https://idp.example", client_id="bblogin", storage="plaintext"))
    return _config.load()


def tokens(name: str) -> TokenSet:
    far = int(time.time()) + 3600
    return TokenSet(access_token=f"at-{name}", id_token=f"id-{name}", refresh_token=f"rt-{name}", access_expires_at=far, id_expires_at=far)


def run_together(*calls) -> None:  # type: ignore[no-untyped-def]
    errors: list[BaseException] = []

    def guarded(call) -> None:  # type: ignore[no-untyped-def]
        try:
            call()
        except BaseException as exc:  # noqa: BLE001  # re-raised in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(c,), name=getattr(c, "__name__", "call")) for c in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors


def test_two_members_logging_in_at_once_leave_one_login_whole(shared_profiles, monkeypatch: pytest.MonkeyPatch) -> None:
    real_set = _store.SecretStore.set

    def slow_set(self, account, kind, value):  # type: ignore[no-untyped-def]
        real_set(self, account, kind, value)
        if threading.current_thread().name == "work":
            time.sleep(0.08)  # work's secrets are half written when staging's login arrives

    monkeypatch.setattr(_store.SecretStore, "set", slow_set)

    def work() -> None:
        save_login(shared_profiles.profiles["work"], tokens("work"), ALICE)

    def staging() -> None:
        time.sleep(0.02)
        save_login(shared_profiles.profiles["staging"], tokens("staging"), ALICE)

    run_together(work, staging)
    (shared,) = _index.load().accounts.values()
    assert sorted(shared.profiles) == ["staging", "work"]
    store = _store.SecretStore("plaintext")
    stored = {kind: store.get(shared.id, kind) for kind in shared.tokens}
    assert all(info["sha256"] == token_digest(stored[kind] or "") for kind, info in shared.tokens.items()), f"a set of mixed logins: {stored}"
    assert len({value.split("-", 1)[1] for value in stored.values() if value}) == 1, stored


def test_a_login_that_arrives_while_the_last_member_logs_out_is_kept(shared_profiles, monkeypatch: pytest.MonkeyPatch) -> None:
    save_login(shared_profiles.profiles["work"], tokens("work"), ALICE)
    (account,) = _index.load().accounts.values()
    real_delete = _store.SecretStore.delete_account

    def slow_delete(self, account_id):  # type: ignore[no-untyped-def]
        time.sleep(0.3)  # the revocation request, the keyring: a logout takes a moment
        real_delete(self, account_id)

    monkeypatch.setattr(_store.SecretStore, "delete_account", slow_delete)

    def work_logs_out() -> None:
        logout(profile_for(account, shared_profiles, "work"), account, ["work"])

    def staging_logs_in() -> None:
        time.sleep(0.1)
        save_login(shared_profiles.profiles["staging"], tokens("staging"), ALICE)

    run_together(work_logs_out, staging_logs_in)
    index = _index.load()
    (kept,) = index.accounts.values()
    assert kept.profiles == ["staging"] and index.active == {"staging": kept.id}, "staging's fresh login was logged out with work"
    store = _store.SecretStore("plaintext")
    assert {kind: store.get(kept.id, kind) for kind in kept.tokens} == {"access_token": "at-staging", "id_token": "id-staging", "refresh_token": "rt-staging"}
