"""The hot path (bblogin/_hot) declines instead of failing: any doubt means the full path, never
a traceback. A Secret Service that hangs or answers nonsense (a fake peer on a unix socket: the
real one cannot be made to misbehave like this), mirrors of the right format but the wrong shape,
and a mirror with a corrupted length."""

from __future__ import annotations

import contextlib
import os
import pathlib
import resource
import socket
import subprocess
import sys
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bblogin import _paths
from bblogin._cli import launcher_command
from bblogin._hot import _mirror
from bblogin._hot._answer import read_secret
from tests.test_session import login
from tests.tools.fake_dbus import fake_bus

EXEC_INFO = '{"apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}'


def kubectl(*args: str, env: dict[str, str] | None = None, limit_memory: int | None = None) -> subprocess.CompletedProcess[bytes]:
    """`bblogin kubectl` as kubectl starts it (the launcher), not interactive."""

    def limit() -> None:
        if limit_memory:
            resource.setrlimit(resource.RLIMIT_AS, (limit_memory, limit_memory))

    return subprocess.run(
        launcher_command("kubectl", *args), capture_output=True, timeout=90, env={**os.environ, "KUBERNETES_EXEC_INFO": EXEC_INFO, **(env or {})}, preexec_fn=limit
    )


def full_path_answer(*args: str) -> bytes:
    done = kubectl(*args, env={"BBLOGIN_NO_FAST_PATH": "1"})
    assert done.returncode == 0, done.stderr
    return done.stdout


# -- a Secret Service that misbehaves ------------------------------------------------------------------
@pytest.mark.parametrize("behaviour", ["hang", "empty", "huge", "trickle"])
def test_fast_read_declines_a_misbehaving_secret_service_in_time(monkeypatch: pytest.MonkeyPatch, behaviour: str) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.SecretService.Keyring")
    with fake_bus(behaviour) as address:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
        start = time.monotonic()
        assert read_secret("acct1", "id_token", timeout=1.0) is None
        assert time.monotonic() - start < 5  # one deadline for the whole read, however the peer stalls


@pytest.mark.parametrize("behaviour", ["hang", "empty"])
def test_kubectl_with_a_misbehaving_secret_service_gets_the_full_paths_error(keyring_secret_service, devidp, behaviour: str) -> None:
    login(devidp)
    with fake_bus(behaviour) as address:
        done = kubectl("--profile", "dev", env={"DBUS_SESSION_BUS_ADDRESS": address, "BBLOGIN_KEYRING_TIMEOUT": "2"})
    stderr = done.stderr.decode()
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    assert done.returncode == 6 and done.stdout == b"", stderr  # exit 6: the keyring (docs/exit-codes.md)


# -- mirrors that are not what they should be -----------------------------------------------------------
def _accounts_mirror() -> dict:
    mirror = _mirror.read(_mirror.accounts_path())
    assert mirror is not None
    return mirror


def _config_mirror() -> dict:
    mirror = _mirror.read(_mirror.config_path())
    assert mirror is not None
    return mirror


WRONG_SHAPES = {
    "index is a list": lambda m: {**m, "index": []},
    "accounts is a list": lambda m: {**m, "index": {**m["index"], "accounts": ["x"]}},
    "active is a string": lambda m: {**m, "index": {**m["index"], "active": "dev"}},
    "an account is a list": lambda m: {**m, "index": {**m["index"], "accounts": {k: [1] for k in m["index"]["accounts"]}}},
    "tokens is a string": lambda m: {**m, "index": {**m["index"], "accounts": {k: {**a, "tokens": "x"} for k, a in m["index"]["accounts"].items()}}},
    "an id is an int": lambda m: {**m, "index": {**m["index"], "accounts": {k: {**a, "id": 5} for k, a in m["index"]["accounts"].items()}}},
}
WRONG_CONFIG_SHAPES = {
    "profiles is a list": lambda m: {**m, "profiles": ["dev"]},
    "a profile is a string": lambda m: {**m, "profiles": {"dev": "x"}},
    "refresh_margin is a string": lambda m: {**m, "profiles": {"dev": {**m["profiles"]["dev"], "refresh_margin": "60"}}},
    "git_hosts is a dict": lambda m: {**m, "git_hosts": {"x": 1}},
}


@pytest.mark.parametrize("shape", sorted(WRONG_SHAPES) + sorted(WRONG_CONFIG_SHAPES))
def test_a_mirror_of_the_wrong_shape_means_the_full_path(keyring_secret_service, devidp, shape: str) -> None:
    login(devidp)
    want = full_path_answer("--profile", "dev")
    if shape in WRONG_SHAPES:
        _mirror.write(_mirror.accounts_path(), WRONG_SHAPES[shape](_accounts_mirror()))
    else:
        _mirror.write(_mirror.config_path(), WRONG_CONFIG_SHAPES[shape](_config_mirror()))
    done = kubectl("--profile", "dev")
    assert "Traceback" not in done.stderr.decode(), done.stderr.decode()
    assert done.returncode == 0 and done.stdout == want


def test_a_corrupted_length_in_a_mirror_allocates_nothing(keyring_secret_service, devidp) -> None:
    """A marshal list whose length says 2**31-1: marshal.loads would ask for 16 GiB before it
    noticed the data is short. Under a 1 GiB address-space limit the call still answers."""
    login(devidp)
    want = full_path_answer("--profile", "dev")
    path = pathlib.Path(_mirror.accounts_path())
    blob = bytearray(path.read_bytes())
    at = blob.index(b"groups") + len(b"groups")
    assert blob[at] & 0x7F == ord("["), "the account's groups should follow their key as a marshal list"
    blob[at + 1 : at + 5] = (2**31 - 1).to_bytes(4, "little")
    path.write_bytes(bytes(blob))
    done = kubectl("--profile", "dev", limit_memory=1 << 30)
    stderr = done.stderr.decode()
    assert "Traceback" not in stderr and "MemoryError" not in stderr, stderr
    assert done.returncode == 0 and done.stdout == want


def test_an_oversized_mirror_is_not_read(keyring_secret_service, devidp) -> None:
    login(devidp)
    want = full_path_answer("--profile", "dev")
    path = pathlib.Path(_mirror.accounts_path())
    path.write_bytes(path.read_bytes() + b"\0" * (_mirror.MAX_BYTES + 1))
    assert _mirror.read(str(path)) is None
    done = kubectl("--profile", "dev")
    assert done.returncode == 0 and done.stdout == want and b"Traceback" not in done.stderr


def test_a_mirror_in_a_foreign_format_is_a_miss(tmp_path: pathlib.Path) -> None:
    import marshal

    path = tmp_path / "m"
    path.write_bytes(marshal.dumps({"v": 1, "data": {}}))  # what bblogin before the digest wrote
    assert _mirror.read(str(path)) is None
    _mirror.write(str(path), {"a": [1, 2]})
    assert _mirror.read(str(path)) == {"a": [1, 2]}
    assert _paths.cache_dir()  # the mirror helpers resolve under the test's private home


# -- flags -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [["--profile", "a", "-p", "b"], ["-p", "b", "--profile=a"], ["--profile", "b", "--profile", "a"]])
def test_a_repeated_flag_gets_the_full_paths_answer(keyring_secret_service, devidp_factory, argv: list[str]) -> None:
    """argparse keeps the last of a repeated flag; the hot path declines rather than guess."""
    login(devidp_factory(default_user="alice"), "a")
    login(devidp_factory(default_user="bob"), "b")
    done = kubectl(*argv)
    assert full_path_answer("--profile", "a") != full_path_answer("--profile", "b")
    assert done.returncode == 0 and done.stdout == full_path_answer(*argv) == full_path_answer("--profile", argv[-1].removeprefix("--profile="))


# -- the unit and what it may import -----------------------------------------------------------------
ROOT = pathlib.Path(__file__).resolve().parents[1]
# What the hot path may load beyond what `python -S -c pass` has already loaded: its own package,
# the stdlib-only protocol and path modules it shares with the full path, and a few C modules.
# Plaintext storage (an explicit choice) may add json and what json brings.
ALLOWED = {
    "bblogin", "bblogin._hot", "bblogin._hot._answer", "bblogin._hot._mirror", "bblogin._hot._dbus", "bblogin._hot._chunks",
    "bblogin._paths", "bblogin._kubectl", "bblogin._gitcred", "bblogin._timefmt",
    "marshal", "_socket", "time", "_sha256", "_sha2", "pwd",  # not even os: see bblogin/_paths.py
}  # fmt: skip
PLAINTEXT_ALSO = {"os", "os.path", "posixpath", "genericpath", "stat", "_stat", "_collections_abc", "json", "json.decoder", "json.scanner", "json.encoder", "_json", "re", "enum", "functools", "operator", "keyword", "reprlib", "collections", "itertools", "_collections", "_functools", "_operator", "types", "sre_compile", "sre_parse", "sre_constants", "_sre", "copyreg", "re._casefix", "re._compiler", "re._constants", "re._parser"}  # fmt: skip


def _hot_imports(argv: list[str], stdin: bytes = b"") -> tuple[int | None, set[str]]:
    """Run the hot path's entry (as the launcher does, on the bare interpreter) in a fresh process;
    its exit code (None: declined) and every module it loaded."""
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); before = set(sys.modules)\n"
        "from bblogin._hot._answer import answer\n"
        "code = answer(sys.argv[2:]); sys.stdout.flush()\n"
        "sys.stderr.write(repr((code, sorted(set(sys.modules) - before))))\n"
    )
    done = subprocess.run([sys.executable, "-S", "-c", probe, str(ROOT), *argv], input=stdin, capture_output=True, timeout=60, env={**os.environ, "KUBERNETES_EXEC_INFO": EXEC_INFO})
    code, modules = eval(done.stderr.decode().splitlines()[-1])  # noqa: S307  # our own probe's repr
    return code, set(modules)


def test_the_hot_path_imports_only_its_allow_list(keyring_secret_service, devidp, tmp_path: pathlib.Path) -> None:
    login(devidp)
    done = subprocess.run([sys.executable, "-m", "bblogin", "setup", "git", "--host", "http://127.0.0.1:9", "--profile", "dev", "--file", str(tmp_path / "gitconfig")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    cases = {
        "kubectl hit": (["kubectl", "--profile", "dev"], b"", 0),
        "git hit": (["git-credential", "get"], b"protocol=http\nhost=127.0.0.1:9\n\n", 0),
        "git, not our host": (["git-credential", "get"], b"protocol=https\nhost=elsewhere.example\n\n", 0),
        "git store": (["git-credential", "store"], b"protocol=http\nhost=127.0.0.1:9\nusername=u\npassword=p\n\n", 0),
        "git store, unreadable request": (["git-credential", "store"], b"\0", None),
        "kubectl decline (no such account)": (["kubectl", "--profile", "dev", "--account", "nobody"], b"", None),
        "kubectl decline (unknown flag)": (["kubectl", "--bogus"], b"", None),
    }
    for name, (argv, stdin, want) in cases.items():
        code, modules = _hot_imports(argv, stdin)
        assert code == want, name
        assert modules <= ALLOWED, (name, sorted(modules - ALLOWED), sorted(modules))


def test_a_chunked_token_is_read_within_the_allow_list(keyring_secret_service, devidp, monkeypatch: pytest.MonkeyPatch) -> None:
    """ID tokens with a few groups pass CHUNK_SIZE (1000 characters) and are stored in parts on every
    backend, the Secret Service included: reading them back must not load hashlib (OpenSSL)."""
    from bblogin import _index
    from bblogin._hot import _chunks
    from bblogin._store import SecretStore

    login(devidp)
    account = next(iter(_index.load().accounts.values()))
    store = SecretStore(account.storage)
    token = store.get(account.id, "id_token")
    assert token is not None
    with monkeypatch.context() as patch:
        patch.setattr(_chunks, "CHUNK_SIZE", 100)  # the dev IdP's token is short: store it as a long one is
        store.set(account.id, "id_token", token)
    assert _chunks.parse_header(store._kr_get(_chunks.entry_name(account.id, "id_token"))) is not None
    code, modules = _hot_imports(["kubectl", "--profile", "dev"])
    assert code == 0
    assert modules <= ALLOWED, sorted(modules - ALLOWED)


def test_a_keyring_value_that_is_not_the_verified_token_is_never_served(keyring_secret_service, devidp) -> None:
    """Whatever the Secret Service returns for the account's entry (another item with the same
    attributes, a value written by someone else), the hot path serves only the token whose SHA-256
    the index recorded when it was verified."""
    from bblogin import _index
    from bblogin._store import SecretStore

    login(devidp)
    account = next(iter(_index.load().accounts.values()))
    store = SecretStore(account.storage)
    token = store.get(account.id, "id_token")
    assert token is not None
    assert _hot_imports(["kubectl", "--profile", "dev"])[0] == 0
    store.set(account.id, "id_token", token[:-4] + "AAAA")
    assert _hot_imports(["kubectl", "--profile", "dev"])[0] is None


def test_the_hot_path_with_plaintext_storage_adds_only_json(devidp) -> None:
    login(devidp, "dev", "--insecure-storage")
    code, modules = _hot_imports(["kubectl", "--profile", "dev"])
    assert code == 0
    assert modules <= ALLOWED | PLAINTEXT_ALSO, sorted(modules - ALLOWED - PLAINTEXT_ALSO)


def test_git_store_gets_the_full_paths_answer(keyring_secret_service, devidp, tmp_path: pathlib.Path) -> None:
    """git runs `store` after every authenticated request; the hot path answers it (nothing to keep,
    nothing to say) exactly as the full helper does, and declines what the full helper would
    report on."""
    login(devidp)
    done = subprocess.run([sys.executable, "-m", "bblogin", "setup", "git", "--host", "http://127.0.0.1:9", "--profile", "dev", "--file", str(tmp_path / "gitconfig")], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for request in (b"protocol=http\nhost=127.0.0.1:9\nusername=u\npassword=p\n\n", b"protocol=https\nhost=elsewhere.example\n\n", b"\xff\n", b""):
        hot, full = (
            subprocess.run(launcher_command("git-credential", "store"), input=request, capture_output=True, timeout=60, env={**os.environ, **extra})
            for extra in ({}, {"BBLOGIN_NO_FAST_PATH": "1"})
        )
        assert (hot.returncode, hot.stdout, hot.stderr) == (full.returncode, full.stdout, full.stderr), request


def test_a_reader_that_went_away_gets_no_traceback(keyring_secret_service, devidp) -> None:
    """kubectl gave up and closed the pipe: the answer cannot be written; exit 1, say nothing."""
    login(devidp)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(launcher_command("kubectl", "--profile", "dev"), stdout=write_end, stderr=subprocess.PIPE, timeout=60, env={**os.environ, "KUBERNETES_EXEC_INFO": EXEC_INFO})
    finally:
        os.close(write_end)
    assert done.returncode == 1 and done.stderr == b""


def test_configs_written_before_the_hot_package_still_work(keyring_secret_service, devidp) -> None:
    """Kubeconfigs and git configs from before name bblogin/_launcher.py; it hands over."""
    login(devidp)
    old = [sys.executable, "-S", str(ROOT / "bblogin" / "_launcher.py"), "kubectl", "--profile", "dev"]
    done = subprocess.run(old, capture_output=True, timeout=60, env={**os.environ, "KUBERNETES_EXEC_INFO": EXEC_INFO}, cwd="/")
    assert done.returncode == 0 and done.stdout == full_path_answer("--profile", "dev"), done.stderr


# -- whatever the bus sends ----------------------------------------------------------------------------
SIGNATURES = ["", "s", "vo", "ao", "aoao", "a{o(oayays)}", "a(yv)", "v", "a{sv}", "(ss)"]


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600), st.integers(0, 4), st.sampled_from(SIGNATURES), st.booleans())
def test_the_secret_reader_turns_any_reply_into_a_value_or_its_own_error(body: bytes, serial: int, signature: str, error: bool) -> None:
    """After a successful AUTH, replies with random bodies under any signature, to any of our calls
    (or raw random bytes: serial 0) give a value or SecretServiceUnavailable — nothing else, and
    never a hang."""
    from bblogin._hot import _dbus

    if serial:
        fields = _dbus._Writer()
        fields.buf += b"l" + bytes([3 if error else 2, 1, 1]) + len(body).to_bytes(4, "little") + (1000 + serial).to_bytes(4, "little")
        fields.put("a(yv)", [(5, ("u", serial)), (8, ("g", signature))] if signature else [(5, ("u", serial))])
        fields.pad(8)
        stream = bytes(fields.buf) + body
    else:
        stream = body
    ours, theirs = socket.socketpair()
    theirs.sendall(b"OK 0123\r\n" + stream)
    theirs.shutdown(socket.SHUT_WR)
    reader = _dbus.SecretReader.__new__(_dbus.SecretReader)
    bus = _dbus.Connection.__new__(_dbus.Connection)
    bus.deadline, bus.sock, bus.serial, bus.pending, bus.replies = time.monotonic() + 2, ours, 0, b"", {}
    bus.outbox, bus.authenticated = bytearray(), False
    bus.send(_dbus.BUS, "Hello")
    reader.bus, reader.session, reader.search = bus, "", _dbus.SECRETS
    reader.greeting = bus.send((_dbus.SECRETS[0], _dbus.SECRETS[1], "org.freedesktop.DBus.Properties"), "Get", "ss", _dbus.SECRETS[2], "Collections")
    try:
        result = reader.read([{"service": "bblogin", "username": "x/id_token"}])
        assert isinstance(result, list) and all(r is None or isinstance(r, bytes) for r in result)
    except _dbus.SecretServiceUnavailable:
        pass
    finally:
        ours.close()
        theirs.close()


def test_open_session_goes_out_only_after_the_secret_service_has_answered_a_call(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    """gnome-keyring 42 aborts on an OpenSession it dispatches before it has registered the caller,
    and the bus then starts a new daemon with the login keyring locked (one connection in ~3,000
    when OpenSession was the first call; see ``_dbus.SecretReader``): the reader's first call is a
    property Get, and OpenSession is written only once that call has been answered."""
    from jeepney import new_method_return
    from jeepney.low_level import HeaderFields, Parser

    from bblogin._hot import _dbus

    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(tmp_path / "bus"))
    server.listen(1)
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path / 'bus'}")
    batches: list[list[str]] = []
    answers = {"Hello": ("s", (":1.7",)), "Get": ("v", (("ao", ["/org/freedesktop/secrets/collection/login"]),)), "OpenSession": ("vo", (("s", ""), "/org/freedesktop/secrets/session/s1")), "SearchItems": ("aoao", ([], []))}

    def peer() -> None:  # answers each batch of calls only once the client has gone quiet
        conn, _ = server.accept()
        with conn:
            parser, pending = Parser(), b""
            conn.settimeout(5)
            while b"BEGIN\r\n" not in pending:
                pending += conn.recv(65536)
            conn.sendall(b"OK 0123456789abcdef\r\n")
            parser.add_data(pending.partition(b"BEGIN\r\n")[2])
            serial = 100
            while True:
                conn.settimeout(0.3)
                with contextlib.suppress(TimeoutError):
                    while data := conn.recv(65536):
                        parser.add_data(data)
                calls = list(iter(parser.get_next_message, None))
                if not calls:
                    return
                batches.append([call.header.fields[HeaderFields.member] for call in calls])
                for call in calls:
                    serial += 1
                    conn.sendall(new_method_return(call, *answers[call.header.fields[HeaderFields.member]]).serialise(serial))

    thread = threading.Thread(target=peer, daemon=True)
    thread.start()
    try:
        with _dbus.SecretReader(5.0) as reader:
            assert reader.read([{"service": "bblogin", "username": "x/id_token"}]) == [None]
    finally:
        thread.join(5)
        server.close()
    assert batches == [["Hello", "Get"], ["OpenSession", "SearchItems"]]


@pytest.mark.parametrize("closed", ["stdout", "stdin"])
def test_a_closed_standard_stream_gets_no_traceback_from_the_hot_path(keyring_secret_service, devidp, tmp_path: pathlib.Path, closed: str) -> None:
    """kubectl or git started with fd 1 (or, for git, fd 0) closed: Python makes sys.stdout /
    sys.stdin None. The hot path declines (the full command reports it its own way), never a traceback."""
    login(devidp)
    done = subprocess.run([sys.executable, "-m", "bblogin", "setup", "git", "--host", "http://127.0.0.1:9", "--profile", "dev", "--file", str(tmp_path / "gitconfig")], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    fd = 1 if closed == "stdout" else 0
    argv = launcher_command("kubectl", "--profile", "dev") if closed == "stdout" else launcher_command("git-credential", "get")
    done = subprocess.run(argv, stderr=subprocess.PIPE, timeout=60, env={**os.environ, "KUBERNETES_EXEC_INFO": EXEC_INFO}, preexec_fn=lambda: os.close(fd))
    assert b"Traceback" not in done.stderr and b"_hot" not in done.stderr, done.stderr.decode()


def test_a_bus_address_with_escapes_is_read_by_the_hot_path(devidp, monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    """A socket path with bytes the D-Bus address syntax must escape (space , = ; %): dbus-daemon
    listens there and prints the escaped address; the hot path unescapes it and answers."""
    from tests.tools.secret_service import private_secret_service

    sock_dir = tmp_path / "a b,c=d;e%f"
    sock_dir.mkdir()
    escaped = "".join(c if c.isalnum() or c in "-_/.\\*" else f"%{ord(c):02x}" for c in str(sock_dir / "bus"))
    with private_secret_service(f"unix:path={escaped}") as address:
        assert "%20" in address and "%2c" in address.lower()
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
        monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.SecretService.Keyring")
        login(devidp)
        code, modules = _hot_imports(["kubectl", "--profile", "dev"])
        assert code == 0, "the hot path declined an escaped bus address"
        assert modules <= ALLOWED
