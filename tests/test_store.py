from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time

import pytest

from bblogin import _paths
from bblogin._errors import KeyringTimeout, KeyringUnavailable
from bblogin._hot import _chunks
from bblogin._store import SecretStore
from bblogin._hot._answer import read_secret

LONG = secrets.token_urlsafe(2400)  # ~3.2 KB: a Bitbucket Cloud rotating refresh token is > 2.5 KB


# Named ids: a random value in a test id differs between pytest-xdist workers, which must collect the same tests.
@pytest.mark.parametrize("value", ["short-token", LONG, "x" * _chunks.CHUNK_SIZE, "x" * (_chunks.CHUNK_SIZE + 1)], ids=["short", "long-random", "one-chunk", "one-chunk-and-a-byte"])
def test_secret_service_round_trip_and_fast_read(keyring_secret_service, value: str) -> None:
    store = SecretStore("keyring")
    store.set("acct1", "refresh_token", value)
    assert store.get("acct1", "refresh_token") == value
    assert read_secret("acct1", "refresh_token") == value
    assert not store.is_plaintext and "OS keyring" in store.backend_description()


def test_long_to_short_leaves_no_orphans_and_delete_account(keyring_secret_service) -> None:
    store = SecretStore("keyring")
    store.set("acct1", "refresh_token", LONG)
    assert len(keyring_secret_service.bblogin_items()) == 1 + -(-len(LONG) // _chunks.CHUNK_SIZE)
    store.set("acct1", "refresh_token", "short")
    assert keyring_secret_service.bblogin_items() == ["acct1/refresh_token"]
    store.set("acct1", "id_token", LONG)
    store.delete_account("acct1")
    assert keyring_secret_service.bblogin_items() == []
    assert store.get("acct1", "id_token") is None and read_secret("acct1", "id_token") is None


def test_torn_chunked_value_reads_as_missing(keyring_secret_service) -> None:
    store = SecretStore("keyring")
    store.set("acct1", "id_token", LONG)
    store._kr_set(_chunks.entry_name("acct1", "id_token", 2), "tampered")
    assert store.get("acct1", "id_token") is None
    assert read_secret("acct1", "id_token") is None


def test_locked_keyring_fast_read_falls_back(keyring_secret_service) -> None:
    store = SecretStore("keyring")
    store.set("acct1", "id_token", "value")
    keyring_secret_service.lock()
    assert read_secret("acct1", "id_token") is None  # the slow path will ask for an unlock
    keyring_secret_service.unlock()
    assert read_secret("acct1", "id_token") == "value"


@pytest.mark.parametrize("address", ["", "unix:path=/nonexistent/bus", "garbage", "tcp:host=127.0.0.1,port=1"])
def test_fast_read_without_a_bus_is_a_miss(monkeypatch: pytest.MonkeyPatch, address: str) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/nonexistent")
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.SecretService.Keyring")
    assert read_secret("acct1", "id_token") is None


def test_size_limited_backend_holds_a_5kb_token(size_limited_keyring) -> None:
    value = secrets.token_urlsafe(3800)
    store = SecretStore("keyring")
    store.set("acct1", "refresh_token", value)
    assert store.get("acct1", "refresh_token") == value
    assert all(len(v.encode("utf-16-le")) <= 2560 for v in size_limited_keyring.entries.values())


def test_hanging_keyring_times_out(hanging_keyring) -> None:
    store = SecretStore("keyring", timeout=0.5)
    start = time.monotonic()
    with pytest.raises(KeyringTimeout) as info:
        store.get("acct1", "id_token")
    assert time.monotonic() - start < 2
    assert info.value.exit_code == 6 and "unlock prompt" in info.value.hint


def test_missing_keyring_says_what_to_do(missing_keyring) -> None:
    with pytest.raises(KeyringUnavailable) as info:
        SecretStore("keyring").set("acct1", "id_token", "v")
    assert "--insecure-storage" in info.value.hint


def test_plaintext_store_modes_and_round_trip() -> None:
    store = SecretStore("plaintext")
    store.set("acct1", "refresh_token", LONG)
    store.set("acct1", "id_token", "idt")
    assert store.get("acct1", "refresh_token") == LONG and read_secret("acct1", "id_token", "plaintext") == "idt"
    path = os.path.join(_paths.plaintext_dir(), "acct1.json")
    assert os.stat(path).st_mode & 0o777 == 0o600 and os.stat(_paths.plaintext_dir()).st_mode & 0o777 == 0o700
    assert store.is_plaintext and "plaintext file" in store.backend_description()
    store.delete_account("acct1")
    assert not os.path.exists(path)


def test_fast_read_imports_stay_light() -> None:
    code = "import sys, bblogin._hot._answer as f, bblogin._hot._dbus; print(sorted(m for m in ('keyring','jeepney','secretstorage','typing','dataclasses','httpx','jwt','threading') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "[]", done.stderr
