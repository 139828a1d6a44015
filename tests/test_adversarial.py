"""What bblogin survives: fuzzed input, killed processes, a crowd of callers, and a hunt for
tokens in every output and file."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bblogin import _config, _configedit, _gitcred, _kubectl
from bblogin._cli import launcher_command
from bblogin._errors import BbloginError, ConfigError, UsageError
from bblogin._oidc._loopback import LoopbackListener
from tests.test_git import HOSTS
from tests.test_session import bblogin, login, make_expiring, set_margin

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# -- fuzzing ------------------------------------------------------------------------------------
@FUZZ
@given(st.binary(max_size=4096))
def test_git_request_parser_never_raises(data: bytes) -> None:
    fields = _gitcred.parse_request(data)
    if fields is not None:
        _gitcred.match_host(fields, HOSTS)


@FUZZ
@given(st.text(max_size=300))
def test_git_request_text_never_matches_an_unconfigured_host(text: str) -> None:
    fields = _gitcred.parse_request(text.encode())
    match = _gitcred.match_host(fields, HOSTS) if fields else None
    if match is not None:  # only the configured hosts, exactly
        assert (fields.get("host") or [""])[-1].lower().split(":")[0] in ("bitbucket.org", "git.example.com", "127.0.0.1")


@FUZZ
@given(st.one_of(st.text(max_size=500), st.builds(lambda d: json.dumps(d), st.dictionaries(st.text(max_size=12), st.recursive(st.none() | st.booleans() | st.text(max_size=40), lambda c: st.lists(c) | st.dictionaries(st.text(max_size=8), c), max_leaves=8)))))
def test_exec_info_parsers_never_raise_unexpectedly(value: str) -> None:
    fast = _kubectl.exec_info_api_version(value)
    try:
        version, _interactive = _kubectl.parse_exec_info(value)
    except UsageError:
        return
    assert fast in (None, version)  # the hot path never disagrees with the full parser


@pytest.mark.parametrize(
    "value",
    [
        # an escaped key is the document's apiVersion; the literal one is nested: the full parser answers v1beta1
        '{"api\\u0056ersion":"client.authentication.k8s.io/v1beta1","spec":{"apiVersion":"client.authentication.k8s.io/v1"}}',
        '{"spec":{"apiVersion":"client.authentication.k8s.io/v1"}}',  # only nested: the full parser refuses it
        '{"spec":[{"apiVersion":"client.authentication.k8s.io/v1"}],"x":1}',
    ],
)
def test_exec_info_the_hot_path_reads_only_the_documents_own_api_version(value: str) -> None:
    """The hot path's reading of KUBERNETES_EXEC_INFO declines what it cannot read as the full parser
    does, instead of answering in another apiVersion (or where the full path refuses)."""
    try:
        version: str | None = _kubectl.parse_exec_info(value)[0]
    except UsageError:
        version = None
    assert _kubectl.exec_info_api_version(value) in ({None, version} if version else {None})
    assert _kubectl.exec_info_api_version('{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}') == _kubectl.V1


@FUZZ
@given(st.text(max_size=600))
def test_config_loader_only_raises_config_errors(text: str) -> None:
    path = pathlib.Path(os.environ["BBLOGIN_CONFIG_DIR"]) / "fuzz.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass") if "\ud800" not in text else path.write_bytes(b"\xff")
    with contextlib.suppress(ConfigError):
        _config.load(str(path))


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=200))
def test_loopback_callback_parser_completes_only_with_the_right_state(path: str) -> None:
    listener = LoopbackListener()
    try:
        listener._expected_state = "the-state"
        listener._armed.set()
        reply = listener._handle("/" + path)
        assert reply.status in (200, 400, 404)
        if listener._done.is_set():
            query = urllib.parse.urlsplit("/" + path).query
            assert urllib.parse.parse_qs(query, keep_blank_values=True).get("state") == ["the-state"]
    finally:
        listener.close()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(min_size=1, max_size=300))
def test_git_helper_process_prints_no_token_for_garbage(keyring_secret_service, data: bytes) -> None:
    done = subprocess.run([sys.executable, "-m", "bblogin", "git-credential", "get"], input=data, capture_output=True, timeout=60, env=os.environ.copy())
    assert done.stdout == b"" and b"Traceback" not in done.stderr
    assert done.returncode == 0 or (done.returncode == 2 and b"cannot read" in done.stderr)  # not ours, or a request git never sends (docs/exit-codes.md)


# -- killed mid-refresh -----------------------------------------------------------------------------
@pytest.mark.parametrize("reuse_interval", [0, 30])
def test_kill_9_during_refresh_leaves_a_usable_or_clearly_dead_account(keyring_secret_service, devidp_factory, reuse_interval: int) -> None:
    idp = devidp_factory(id_token_ttl=90, refresh_reuse_interval=reuse_interval)
    login(idp)
    make_expiring("dev")
    idp.delay_next("/token", 3.0)
    proc = subprocess.Popen([sys.executable, "-m", "bblogin", "token", "--profile", "dev", "--no-login"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy())
    for _ in range(100):  # wait until the refresh request is at the IdP
        if idp.count("/token", "refresh_token"):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    start = time.monotonic()
    after = bblogin("token", "--profile", "dev", "--no-login")
    assert time.monotonic() - start < 20  # no stale lock
    if reuse_interval:
        assert after.returncode == 0, after.stderr  # dex's reuse interval covers the lost answer
    else:
        assert after.returncode in (0, 4) and "Traceback" not in after.stderr
        if after.returncode == 4:
            assert "bblogin login --profile dev" in after.stderr
    status = json.loads(bblogin("status", "--json").stdout)["accounts"]
    assert len(status) == 1  # the index is intact


# -- a crowd of callers -------------------------------------------------------------------------------
@pytest.mark.slow
def test_64_kubectl_and_git_callers_with_an_expired_token_cause_one_refresh(keyring_secret_service, devidp_factory) -> None:
    idp = devidp_factory(id_token_ttl=2)
    login(idp)
    set_margin("dev", 0)
    _configedit.save_git_host(_config.GitHost(url="https://git.example.com", profile="dev", token="id_token", username="alice"))
    time.sleep(2.5)
    idp.id_token_ttl = 3600
    env = {**os.environ, "KUBERNETES_EXEC_INFO": '{"apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}'}
    kubectl = launcher_command("kubectl", "--profile", "dev")
    git = launcher_command("git-credential", "get")

    def call(i: int) -> subprocess.CompletedProcess[bytes]:
        if i % 2:
            return subprocess.run(kubectl, capture_output=True, timeout=120, env=env)
        return subprocess.run(git, input=b"protocol=https\nhost=git.example.com\n\n", capture_output=True, timeout=120, env=env)

    with ThreadPoolExecutor(64) as pool:
        results = list(pool.map(call, range(64)))
    assert [r.returncode for r in results] == [0] * 64, [r.stderr[-300:] for r in results if r.returncode]
    assert all(r.stdout for r in results)
    assert idp.count("/token", "refresh_token") == 1


@pytest.mark.slow
def test_1000_cache_hits_grow_nothing(keyring_secret_service, devidp) -> None:
    """1,000 kubectl calls in a row, each a new process as kubectl starts it: no refresh, no new
    or growing file, no new keyring entry."""
    login(devidp)
    home = [pathlib.Path(os.environ[v]) for v in ("BBLOGIN_CONFIG_DIR", "BBLOGIN_STATE_DIR", "BBLOGIN_CACHE_DIR")]

    def files() -> dict[str, int]:
        return {str(p): p.stat().st_size for d in home for p in d.rglob("*") if p.is_file()}

    before, items = files(), keyring_secret_service.bblogin_items()
    env = {**os.environ, "KUBERNETES_EXEC_INFO": '{"apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}'}
    command = launcher_command("kubectl", "--profile", "dev")
    for _ in range(1000):
        done = subprocess.run(command, capture_output=True, timeout=60, env=env)
        assert done.returncode == 0 and done.stdout.startswith(b'{"apiVersion":"client.authentication.k8s.io/v1"'), done.stderr[-300:]
    after = files()
    assert after == before, {k: (before.get(k), after.get(k)) for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert keyring_secret_service.bblogin_items() == items
    assert devidp.count("/token") == 1, devidp.requests  # the login only: not one refresh


# -- secrets hygiene -----------------------------------------------------------------------------------
def test_no_token_in_any_output_log_or_file(keyring_secret_service, devidp) -> None:
    logged_in = bblogin("-v", "login", "--profile", "dev", "--issuer", devidp.issuer, "--client-id", "bblogin", "--flow", "device", "--no-browser")
    tokens = {bblogin("token", "--profile", "dev", f"--{kind}").stdout.strip() for kind in ("id-token", "access-token")}
    make_expiring("dev")  # the next call refreshes, under -vv
    refreshed = bblogin("-vv", "token", "--profile", "dev", "--no-login")
    tokens.add(refreshed.stdout.strip())
    assert devidp.count("/token", "refresh_token") == 1
    reports = [bblogin(*args) for args in (["-v", "status"], ["-v", "accounts", "--json"], ["-v", "status", "--json"], ["-vv", "doctor"], ["-v", "setup", "kubectl", "--profile", "dev", "--print"])]
    texts = [logged_in.stderr, logged_in.stdout, refreshed.stderr] + [r.stdout + r.stderr for r in reports]
    assert all(tokens) and len(tokens) >= 2
    for text in texts:
        assert not any(token in text for token in tokens)
    for var in ("BBLOGIN_CONFIG_DIR", "BBLOGIN_STATE_DIR", "BBLOGIN_CACHE_DIR"):
        for path in pathlib.Path(os.environ[var]).rglob("*"):
            assert path.stat().st_mode & 0o077 == 0, path  # files 0600, dirs 0700
            if path.is_file():
                assert not any(token.encode() in path.read_bytes() for token in tokens), path


def test_errors_never_carry_a_token() -> None:
    from bblogin._oidc._grants import oauth_error

    error = oauth_error(400, {"error": "invalid_grant", "error_description": "bad token abc.def.ghi"}, "refreshing", ["abc.def.ghi"])
    assert "abc.def.ghi" not in str(error)
    assert isinstance(error, BbloginError)
