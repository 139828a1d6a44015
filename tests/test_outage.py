"""When the IdP is down (issue #24): serve what is still valid, fail fast, never storm.

The dev IdP sits behind a fault injector (tests/fixtures/faults.py) that refuses, resets, hangs or
answers 503 and counts the connections that reach it; kubectl is the real binary, the keyring the
real Secret Service. ID tokens live 200 s, so the refresh margin is 50 s (a quarter of it); the
token is made to look 45 s from its end — inside the margin, still valid.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from bblogin._record import asdict

import pytest

from bblogin import _index
from bblogin._hot._answer import cached_token
from tests.fixtures.background_refresh import background_children, killed_after_the_post
from tests.test_kubectl import exec_user, kubectl
from tests.test_session import bblogin, login, make_expiring

pytestmark = pytest.mark.usefixtures("keyring_secret_service")

FAULTS = ("refuse", "reset", "hang", "503")
NOTICE = "the identity provider is failing"
UNDERWAY = "a refresh is under way (the identity provider has not answered yet)"


@pytest.fixture
def outage_cluster(outage_idp, kube_apiserver, kubectl_bin):  # type: ignore[no-untyped-def]
    """(idp, proxy, kubeconfig): logged in, the API server's JWKS already fetched (so during an
    outage only bblogin would reach the IdP), the counts reset, the ID token 45 s from its end."""
    idp, proxy = outage_idp(id_token_ttl=200)
    login(idp)
    server = kube_apiserver(issuer=idp.issuer, client_id="bblogin")
    config = server.kubeconfig(exec_user("Never"))
    assert kubectl(kubectl_bin, config, "get", "--raw", "/version").returncode == 0  # warms the API server's key cache
    make_expiring("dev", seconds_left=45, lifetime=200)
    proxy.reset_counts()
    return idp, proxy, config


def outage() -> dict | None:
    return _index.load().active_account("dev").outage


def settled() -> dict | None:
    """The outage record once the attempt's own failure is recorded (not the provisional window of
    a refresh still under way in its detached child: ``_outage.record_in_flight``)."""
    recorded = outage()
    return recorded if recorded is not None and not recorded.get("in_flight") else None


def wait_for(what, seconds: float):  # type: ignore[no-untyped-def]
    """``what()`` once it is truthy (a background refresh finished), within ``seconds``."""
    deadline = time.monotonic() + seconds
    while not (found := what()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert found, f"nothing after {seconds} s"
    return found


def end_the_window() -> None:
    """The backoff window passes (without waiting 15 s): its end is moved to now."""
    with _index.transaction() as index:
        for account in index.accounts.values():
            if account.outage:
                account.outage["retry_at"] = time.time() - 1


@pytest.mark.parametrize("fault", FAULTS)
def test_inside_the_margin_kubectl_is_served_through_an_outage_with_one_attempt(outage_cluster, kubectl_bin, fault: str) -> None:
    idp, proxy, config = outage_cluster
    proxy.mode = fault
    took = []
    for _ in range(9):
        start = time.monotonic()
        done = kubectl(kubectl_bin, config, "get", "--raw", "/version")
        took.append(time.monotonic() - start)
        assert done.returncode == 0, done.stderr
        assert done.stderr.count(NOTICE) + done.stderr.count(UNDERWAY) == 1 and "Traceback" not in done.stderr, done.stderr
    # a hanging IdP: the first call's refresh goes on in a detached child, which awaits the sent POST's answer
    # (the full 10 s: it may carry a rotated refresh token) and then records the outage
    assert max(took) < 2.5, took
    recorded = wait_for(settled, 15)
    assert proxy.connections <= 1, proxy.by_mode  # one attempt, then the backoff window (refused: the kernel answers)
    assert NOTICE in kubectl(kubectl_bin, config, "get", "--raw", "/version").stderr
    assert recorded is not None and recorded["failures"] == 1 and recorded["retry_at"] > time.time() + 5
    status = bblogin("status")
    assert "served from the cache while the identity provider is failing" in status.stdout and "outage" in status.stdout
    view = json.loads(bblogin("status", "--json").stdout)["accounts"][0]
    assert view["outage"]["waiting"] and view["outage"]["failures"] == 1
    proxy.mode = "up"
    end_the_window()
    idp_refreshes = idp.count("/token", "refresh_token")
    for _ in range(3):
        assert kubectl(kubectl_bin, config, "get", "--raw", "/version").returncode == 0
    assert idp.count("/token", "refresh_token") == idp_refreshes + 1  # the first call after the IdP is back refreshes once
    assert outage() is None


def test_verbose_names_the_cause(outage_cluster) -> None:
    _idp, proxy, _config = outage_cluster
    proxy.mode = "503"
    done = bblogin("-v", "token", "--profile", "dev", "--no-login")
    assert done.returncode == 0 and done.stderr.count(NOTICE) == 1
    assert "failed with HTTP 503" in done.stderr  # -v: why
    quiet = bblogin("token", "--profile", "dev", "--no-login")
    assert quiet.returncode == 0 and "HTTP 503" not in quiet.stderr and quiet.stderr.count(NOTICE) == 1


def test_a_503_is_not_retried_and_retry_after_is_honoured(outage_cluster) -> None:
    _idp, proxy, _config = outage_cluster
    proxy.mode, proxy.retry_after = "503", 120
    for _ in range(9):
        assert bblogin("token", "--profile", "dev", "--no-login").returncode == 0
    assert proxy.connections == 1  # before: 15 connections for 9 calls
    assert outage()["retry_at"] >= time.time() + 100  # Retry-After: 120 outlasts the first 15 s step


@pytest.mark.parametrize("fault", ["hang", "503"])
def test_parallel_callers_make_one_attempt_per_window(outage_cluster, fault: str) -> None:
    _idp, proxy, _config = outage_cluster
    proxy.mode = fault
    env = {**os.environ, "KUBERNETES_EXEC_INFO": '{"apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}'}

    def call(_: int) -> tuple[subprocess.CompletedProcess[str], float]:
        start = time.monotonic()
        done = subprocess.run(launcher(), capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
        return done, time.monotonic() - start

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, range(8)))
    for done, _took in results:
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["status"]["token"]
    took = sorted(took for _d, took in results)
    # one caller's child makes the attempt (a hanging IdP: it awaits the answer, the caller does not); the
    # others wait _outage.EARLY_LOCK_WAIT (0.25 s) for its lock and serve the cache, never the attempt
    assert took[-1] < 4, took  # 8 parallel Python start-ups on a shared 2-core machine
    wait_for(settled, 15)
    assert proxy.connections <= 1, proxy.by_mode


def launcher() -> list[str]:
    from bblogin import _cli

    return _cli.launcher_command("kubectl", "--profile", "dev")


def test_after_true_expiry_with_the_idp_down_fail_at_once_and_no_browser(outage_cluster, kubectl_bin) -> None:
    idp, proxy, config = outage_cluster
    make_expiring("dev", seconds_left=5, lifetime=200)  # below the 10 s floor: nothing is served
    proxy.mode = "503"
    first = kubectl(kubectl_bin, config, "get", "--raw", "/version")
    assert first.returncode != 0 and "503" in first.stderr and "tries again after" in first.stderr
    attempts = proxy.connections
    assert attempts == 3  # nothing to fall back on and no outage known yet: the full retries (two), this once
    start = time.monotonic()
    again = bblogin("token", "--profile", "dev", "--no-login")
    assert again.returncode == 5 and "the identity provider is failing since" in again.stderr and "next try at" in again.stderr
    assert time.monotonic() - start < 5 and proxy.connections == attempts  # inside the window: not even tried
    assert idp.count("/device/code") == 1 and idp.count("/auth") == 0  # never a browser
    end_the_window()  # the window ends, the IdP still answers 503
    after = bblogin("token", "--profile", "dev", "--no-login")
    assert after.returncode == 5 and "503" in after.stderr
    assert proxy.connections == attempts + 1  # a known outage: one attempt (_outage.KNOWN_OUTAGE_BUDGET), no retries
    proxy.mode = "up"
    end_the_window()
    assert kubectl(kubectl_bin, config, "get", "--raw", "/version").returncode == 0
    assert kubectl(kubectl_bin, config, "get", "--raw", "/version").returncode == 0
    assert idp.count("/token", "refresh_token") == 1  # refreshed once when back
    assert outage() is None


def test_a_refused_grant_is_not_an_outage(outage_cluster) -> None:
    idp, _proxy, _config = outage_cluster
    idp.revoke_refresh_tokens()
    done = bblogin("token", "--profile", "dev", "--no-login")
    assert done.returncode == 4 and "refused the refresh token" in done.stderr  # the login ends, as before
    assert outage() is None


@pytest.mark.parametrize(("status", "error", "hint"), [
    (401, "invalid_client", "check client_id and client_secret in the profile"),
    (400, "unauthorized_client", "check the client's registration"),
    (400, "invalid_scope", "check the profile's scopes"),
])
def test_an_oauth_refusal_is_not_an_outage(outage_idp, status: int, error: str, hint: str) -> None:
    """M4: a well-formed OAuth error other than a dead grant is the IdP's decision, not its
    failure: the call ends with the error's own hint, no window opens, nothing is recorded (and
    never the IdP's error_description), the next call asks again."""
    idp, _proxy = outage_idp(id_token_ttl=200)
    login(idp)
    make_expiring("dev", seconds_left=45, lifetime=200)
    body = json.dumps({"error": error, "error_description": "Invalid client credentials \x1b[31m."})
    idp.fail_next("/token", status, body, content_type="application/json", count=100)
    for attempt in (1, 2):
        done = bblogin("token", "--profile", "dev", "--no-login")
        assert done.returncode == 5 and error in done.stderr and hint in done.stderr, done.stderr
        assert NOTICE not in done.stderr and "next try" not in done.stderr and "tries again after" not in done.stderr
        assert outage() is None and idp.count("/token", "refresh_token") == attempt  # no backoff window: asked again
        assert "\x1b" not in done.stderr and "\\x1b[31m" in done.stderr, done.stderr  # the IdP's text shown, never obeyed
    assert "outage" not in bblogin("status").stdout


@pytest.mark.parametrize(("status", "body", "ctype"), [
    (200, "<html><body>captive portal</body></html>", "text/html"),
    (400, json.dumps({"error": "temporarily_unavailable", "error_description": "\x1b[2J try later"}), "application/json"),
])
def test_an_answer_that_is_no_refusal_is_an_outage_and_keeps_no_idp_text(outage_idp, status: int, body: str, ctype: str) -> None:
    """A captive portal's page and the IdP's own "try later" are outages; the record keeps
    bblogin's words (hosts, statuses, codes), never the IdP's error_description (m2)."""
    idp, _proxy = outage_idp(id_token_ttl=200)
    login(idp)
    make_expiring("dev", seconds_left=45, lifetime=200)
    idp.fail_next("/token", status, body, content_type=ctype, count=100)
    done = bblogin("token", "--profile", "dev", "--no-login")
    assert done.returncode == 0 and NOTICE in done.stderr, done.stderr
    recorded = outage()
    assert recorded is not None and "try later" not in recorded["cause"] and "\x1b" not in recorded["cause"] and "portal" not in recorded["cause"]


def test_the_hot_path_serves_during_the_window_and_agrees_with_the_full_path(outage_cluster, capsys) -> None:
    from bblogin import _cli
    from bblogin._hot import _answer

    _idp, proxy, _config = outage_cluster
    os.environ["KUBERNETES_EXEC_INFO"] = '{"apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}'
    try:
        assert _answer.kubectl(["--profile", "dev"]) is None  # inside the margin, no outage known: the full path refreshes
        proxy.mode = "reset"
        assert bblogin("token", "--profile", "dev", "--no-login").returncode == 0
        capsys.readouterr()
        hot = _answer.kubectl(["--profile", "dev"])
        hot_err = capsys.readouterr().err
        assert hot is not None and hot_err.count(NOTICE) == 1
        assert _cli.run(["kubectl", "--profile", "dev"]) == 0  # the full path, in this process
        full = capsys.readouterr()
        assert full.out.encode() == hot and full.err == hot_err
        assert proxy.connections == 1
        make_expiring("dev", seconds_left=8, lifetime=200)  # below the floor: the hot path declines
        assert _answer.kubectl(["--profile", "dev"]) is None
    finally:
        del os.environ["KUBERNETES_EXEC_INFO"]


def test_token_refresh_forces_a_refresh_and_says_what_changed(outage_idp) -> None:
    idp, proxy = outage_idp(id_token_ttl=3600)
    login(idp)
    before = _index.load().active_account("dev")
    idp.bitbucket.update_user("alice", workspaces=(*idp.bitbucket.users["alice"].workspaces, "platform"))
    time.sleep(1.1)  # a new iat, a new expiry
    done = bblogin("token", "--refresh", "--profile", "dev", "--no-login")
    assert done.returncode == 0 and done.stdout.count(".") == 2  # the ID token on stdout
    assert "Refreshed alice@" in done.stderr and "groups +platform" in done.stderr and "(was valid" in done.stderr
    assert idp.count("/token", "refresh_token") == 1
    after = _index.load().active_account("dev")
    assert "platform" in after.groups and after.expires_at("id_token") > before.expires_at("id_token")
    proxy.mode = "503"
    bblogin("refresh", "--profile", "dev")  # fails: records the outage
    proxy.mode = "up"
    forced = bblogin("refresh", "--profile", "dev", "--json")  # bypasses the window it opened
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["groups_added"] == [] and outage() is None


# -- Bitbucket: a refresh whose identity calls fail keeps the refreshed tokens -------------------
@pytest.mark.parametrize(("path", "status"), [("/bitbucket/plugins/servlet/applinks/whoami", 503), ("/bitbucket/rest/api/latest/users", 500)], ids=["whoami-503", "users-500"])
def test_data_center_identity_outage_keeps_the_refreshed_tokens(bitbucket_dc, path: str, status: int) -> None:
    from tests.fixtures.bitbucket_fakes import DC_ALICE
    from tests.test_bitbucket import dc_profile, login_in_process

    fake = bitbucket_dc
    login_in_process(fake, dc_profile(fake))
    make_expiring("dc", seconds_left=30)
    fake.fail[path] = status
    requests = len(fake.token_requests)
    tokens = set()
    for _ in range(5):  # git fetches while whoami is down
        done = bblogin("token", "--profile", "dc", "--access-token", "--no-login")
        assert done.returncode == 0, done.stderr
        tokens.add(done.stdout.strip())
    assert len(fake.token_requests) == requests + 1 and not fake.reused  # one rotation, not one per call
    assert len(tokens) == 1 and tokens <= set(fake.access_tokens)  # the refreshed token, kept and served
    assert _index.load().active_account("dc").outage["identity_pending"]
    del fake.fail[path]
    end_the_window()
    pending = asdict(_index.load().active_account("dc"))
    checks = {"provider": "bitbucket-dc", "issuer": fake.base, "client_id": fake.client_id, "refresh_margin": 60, "pipelines": False}
    assert cached_token(checks, pending, "access_token", read=lambda *_: "unused") is None  # the hot path leaves the check to the full path
    assert bblogin("token", "--profile", "dc", "--access-token", "--no-login").returncode == 0  # checks who the tokens are for
    account = _index.load().active_account("dc")
    assert account.outage is None and account.username == DC_ALICE["name"]
    assert len(fake.token_requests) == requests + 1  # the check needed no new rotation


@pytest.mark.parametrize(("path", "status"), [("/2.0/user", 502), ("/2.0/user/workspaces", 0)], ids=["user-502", "workspaces-dropped"])
def test_cloud_identity_outage_keeps_the_refreshed_tokens(bitbucket_cloud, path: str, status: int) -> None:
    from bblogin import _config
    from bblogin._session import get_credential
    from tests.test_bitbucket import cloud_profile, login_in_process

    fake = bitbucket_cloud
    login_in_process(fake, cloud_profile(fake))
    profile = _config.load().profile("cloud")
    make_expiring("cloud", seconds_left=30)
    fake.fail[path] = status
    requests = len(fake.token_requests)
    served = {get_credential(profile, kind="access_token").token for _ in range(4)}
    assert len(fake.token_requests) == requests + 1 and not fake.reused
    assert len(served) == 1 and served <= set(fake.access_tokens)
    del fake.fail[path]
    end_the_window()
    assert get_credential(profile, kind="access_token").token in served
    account = _index.load().active_account("cloud")
    assert account.outage is None and len(fake.token_requests) == requests + 1


# -- the backoff schedule and damaged records ----------------------------------------------------
def test_backoff_grows_jittered_to_its_cap_and_honours_retry_after() -> None:
    import random

    from bblogin import _outage

    rand = random.Random(24)
    for failures, nominal in ((1, 15), (2, 30), (3, 60), (5, 240), (6, 300), (40, 300)):
        waits = [_outage.delay(failures, rand=rand) for _ in range(200)]
        assert nominal * 0.8 <= min(waits) and max(waits) <= nominal * 1.2 and len(set(waits)) > 100  # jittered
    assert _outage.delay(1, retry_after=120, rand=rand) == 120
    assert _outage.delay(1, retry_after=86400, rand=rand) == _outage.RETRY_AFTER_CAP
    assert _outage.delay(1025, rand=rand) <= _outage.CAP * 1.2 and _outage.delay(10**9, rand=rand) <= _outage.CAP * 1.2  # no OverflowError


@pytest.mark.parametrize("damaged", ["soon", 7, [], {"retry_at": True}, {"retry_at": "1e12"}, {"retry_at": 1e12}, {"since": "x", "failures": None, "cause": 1, "retry_at": 1}])
def test_a_damaged_outage_record_is_no_window_and_no_traceback(damaged) -> None:
    from bblogin._hot._answer import in_backoff, outage_notice
    from bblogin._outage import Outage

    assert not in_backoff(damaged, time.time())
    assert Outage.from_json(damaged) is None or not Outage.from_json(damaged).waiting()
    account = {"id": "a", "outage": damaged, "tokens": {"id_token": {"expires_at": int(time.time()) + 30, "issued_at": int(time.time()) - 170}}}
    assert outage_notice({"refresh_margin": 60}, account, "id_token", int(time.time()) + 30) is None  # none has a usable "since"


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("damaged", [
    {"since": NAN, "failures": 1, "cause": "x", "retry_at": "now+60"},
    {"since": 1e300, "failures": 1, "cause": "x", "retry_at": "now+60"},
    {"since": -1e20, "failures": 1, "cause": "x", "retry_at": "now+60"},
    {"since": "now", "failures": INF, "cause": "x", "retry_at": "now+60"},
    {"since": "now", "failures": 1e300, "cause": "x", "retry_at": "now-1"},
    {"since": "now", "failures": 10**300, "cause": "x", "retry_at": "now-1"},
    {"since": "now", "failures": 1024, "cause": "x", "retry_at": "now-1"},  # a natural state: four days off the VPN
    {"since": "now", "failures": 1, "cause": "x", "retry_at": INF},
])
def test_a_damaged_or_long_outage_record_never_crashes_and_the_valid_token_is_served(outage_cluster, damaged) -> None:
    """M1: NaN, Infinity, 1e300 or a huge count in accounts.json (Python's json reads them) are no
    record; the 1025th failure in a row does not overflow the backoff."""
    _idp, proxy, _config = outage_cluster
    now = time.time()
    value = {k: (now if v == "now" else now + 60 if v == "now+60" else now - 1 if v == "now-1" else v) for k, v in damaged.items()}
    with _index.transaction() as index:
        index.active_account("dev").outage = value
    proxy.mode = "503"
    token = bblogin("token", "--profile", "dev", "--no-login")
    assert token.returncode == 0 and "internal error" not in token.stderr and "Traceback" not in token.stderr, token.stderr
    hot = subprocess.run(launcher(), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert hot.returncode == 0 and json.loads(hot.stdout)["status"]["token"], hot.stderr
    status = bblogin("status")
    assert status.returncode == 0 and "internal error" not in status.stderr, status.stderr
    recorded = outage()
    assert recorded is not None and 1 <= recorded["failures"] <= 1025 and len(status.stdout) < 4000
    assert bblogin("status", "--json").returncode == 0


def test_doctor_names_a_recorded_outage(outage_cluster) -> None:
    _idp, proxy, _config = outage_cluster
    proxy.mode = "503"
    assert bblogin("token", "--profile", "dev", "--no-login").returncode == 0
    proxy.mode = "up"
    done = bblogin("doctor")
    assert "outage:dev" in done.stdout and "the identity provider is failing since" in done.stdout and "bblogin refresh --profile dev" in done.stdout, done.stdout
    assert bblogin("refresh", "--profile", "dev").returncode == 0
    assert "outage:dev" not in bblogin("doctor").stdout


def test_a_ci_step_is_served_its_exchanged_token_through_an_outage(outage_idp) -> None:
    """Bitbucket Pipelines: the step's exchanged token, inside its margin, is served while the IdP
    answers 503 — once tried, then the window — and only to this step."""
    from bblogin import _config, _configedit

    idp, proxy = outage_idp(id_token_ttl=200)
    _configedit.save_profile(_config.Profile(
        name="ci", issuer=idp.issuer, client_id="bblogin-ci", client_secret="bblogin-ci-secret", pipelines=True,
        exchange_connector_id="bitbucket-pipelines", scopes=("openid", "groups"), storage="plaintext",
    ))
    step = idp.mint_pipelines_token(repository_uuid="{repo-1}", step_uuid="{step-1}")
    env = {**os.environ, "BITBUCKET_STEP_OIDC_TOKEN": step, "KUBERNETES_EXEC_INFO": '{"apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}'}

    def kubectl_ci(step_env: dict[str, str] = env) -> subprocess.CompletedProcess[str]:
        return subprocess.run(launcher_ci(), capture_output=True, text=True, timeout=60, env=step_env, stdin=subprocess.DEVNULL)

    first = kubectl_ci()
    assert first.returncode == 0, first.stderr
    make_expiring("ci", seconds_left=45, lifetime=200)
    proxy.mode, before = "503", proxy.connections
    for _ in range(4):
        done = kubectl_ci()
        assert done.returncode == 0 and done.stderr.count(NOTICE) == 1, done.stderr
        assert json.loads(done.stdout)["status"]["token"] == json.loads(first.stdout)["status"]["token"]
    assert proxy.connections - before == 1
    other = {**env, "BITBUCKET_STEP_OIDC_TOKEN": idp.mint_pipelines_token(repository_uuid="{repo-2}", step_uuid="{step-2}")}
    assert kubectl_ci(other).returncode == 5  # another step never gets this step's token


def launcher_ci() -> list[str]:
    from bblogin import _cli

    return _cli.launcher_command("kubectl", "--profile", "ci")


def test_a_slow_idp_keeps_the_rotated_refresh_token(outage_cluster) -> None:
    """B1: an IdP that is up but answers a refresh after more than the caller's wait has rotated
    the refresh token already. The caller serves its cached token at once; the detached child
    awaits the answer and stores it; the next call serves the new token without asking the IdP."""
    idp, proxy, _config = outage_cluster
    proxy.mode, proxy.hold = "slow", 4.0
    start = time.monotonic()
    done = bblogin("token", "--profile", "dev", "--no-login")
    assert time.monotonic() - start < 3.5  # the bblogin CLI's own start-up included; never the IdP's 4 s
    assert done.returncode == 0 and UNDERWAY in done.stderr and NOTICE not in done.stderr, done.stderr
    cached = done.stdout.strip()
    wait_for(lambda: not background_children(), 20)  # the child ends by itself
    assert idp.count("/token", "refresh_token") == 1 and outage() is None
    proxy.mode = "up"
    again = bblogin("token", "--profile", "dev", "--no-login")
    assert again.returncode == 0 and again.stderr == "", again.stderr
    assert again.stdout.strip() != cached  # the child's refreshed token, stored
    assert idp.count("/token", "refresh_token") == 1  # served from the store: no second request
    make_expiring("dev", seconds_left=45, lifetime=200)
    third = bblogin("token", "--profile", "dev", "--no-login")
    assert third.returncode == 0 and "refused" not in third.stderr, third.stderr  # the rotated refresh token was kept
    assert idp.count("/token", "refresh_token") == 2


def test_the_early_budget_is_one_deadline_before_sending_and_the_answer_of_a_sent_post_is_awaited(outage_idp) -> None:
    """M2 and B1 at the HTTP layer: under the early budget a trickling GET (nothing lost by
    dropping it) ends at the budget, not after a byte every read timeout; a POST that went out is
    awaited past the budget, as one deadline of the client's own timeout."""
    from bblogin import _http
    from bblogin._errors import IdPUnreachable

    idp, proxy = outage_idp()
    client = _http.make_client(timeout=3.0)
    proxy.mode, proxy.hold = "trickle", 0.2
    start = time.monotonic()
    with pytest.raises(IdPUnreachable, match="timed out after 1 s"), _http.budget(1.0):
        _http.request(client, "GET", f"{idp.issuer}/.well-known/openid-configuration")
    assert time.monotonic() - start < 1.8
    start = time.monotonic()
    with pytest.raises(IdPUnreachable, match="timed out after 3 s"), _http.budget(1.0):
        _http.request(client, "POST", f"{idp.issuer}/token", data={"grant_type": "refresh_token", "refresh_token": "x"})
    assert 2.5 < time.monotonic() - start < 4.5  # sent: its answer had the full 3 s, and not a read timeout per byte
    proxy.mode, proxy.hold = "slow", 1.5
    with _http.budget(1.0):
        answer = _http.request(client, "POST", f"{idp.issuer}/token", data={"grant_type": "refresh_token", "refresh_token": "x"})
    assert answer.status_code == 401  # the IdP's own answer (no client credentials), after 1.5 s > the budget


def test_a_stepped_wall_clock_does_not_stop_serving_a_plainly_valid_token_through_an_outage(outage_idp) -> None:
    """M3: after a wall-clock step (the measured offset no longer holds: the boot epoch moved)
    with the IdP down, a token valid for most of an hour is served, judged conservatively (the
    later IdP time of the two readings, plus STEP_DOUBT); one inside that doubt is not."""
    from tests.test_clock_skew import run, skewed

    idp, proxy = outage_idp(id_token_ttl=3600)
    login(idp)
    proxy.mode = "refuse"
    for skew in (30, 30, -30):  # bblogin now runs on a clock stepped 30 s ahead (then behind) of the login's
        done = run(skew, "token", "--profile", "dev", "--no-login")
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    hot = subprocess.run(launcher(), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env={**os.environ, **skewed(30)})
    assert hot.returncode == 0 and json.loads(hot.stdout)["status"]["token"], hot.stderr
    make_expiring("dev", seconds_left=25, lifetime=3600)  # 25 s: inside the doubt of a stepped clock
    assert run(30, "token", "--profile", "dev", "--no-login").returncode == 5


@pytest.mark.parametrize("executable", ["/bin/false", "/nonexistent/python"])
def test_a_background_refresh_that_cannot_run_is_no_refresh_under_way(outage_cluster, monkeypatch, capsys, executable: str) -> None:
    """Review of #24, 2: a child that ends without an answer (it could not start, or crashed) is
    not taken for one still at work — no provisional window, no under-way line: the call
    refreshes in-process, as it did before the child existed."""
    from bblogin import _cli

    idp, _proxy, _config = outage_cluster
    monkeypatch.setattr("sys.executable", executable)
    assert _cli.run(["token", "--profile", "dev", "--no-login"]) == 0
    err = capsys.readouterr().err
    assert UNDERWAY not in err and NOTICE not in err, err
    assert outage() is None and idp.count("/token", "refresh_token") == 1  # refreshed here, once


def test_after_a_window_ends_an_early_call_against_a_hanging_idp_prints_one_line(outage_cluster, capsys) -> None:
    """Review of #24, 3 and 4: the call after a backoff window ended, against an IdP that still
    hangs, prints one line — that a refresh is under way, not that the IdP fails as well — and the
    hot path and the full path print the same line while it is under way; status says so too."""
    from bblogin import _cli
    from bblogin._hot import _answer

    _idp, proxy, _config = outage_cluster
    proxy.mode = "hang"
    assert bblogin("token", "--profile", "dev", "--no-login").returncode == 0
    wait_for(settled, 15)
    wait_for(lambda: not background_children(), 20)
    end_the_window()
    done = bblogin("token", "--profile", "dev", "--no-login")
    assert done.returncode == 0 and done.stderr.count("\n") == 1 and UNDERWAY in done.stderr, done.stderr
    recorded = outage()
    assert recorded["in_flight"] and recorded["failures"] == 1  # the earlier failure, none for the refresh at work
    assert "a refresh is under way in the background" in bblogin("status").stdout
    os.environ["KUBERNETES_EXEC_INFO"] = '{"apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}'
    try:
        capsys.readouterr()
        hot = _answer.kubectl(["--profile", "dev"])
        hot_err = capsys.readouterr().err
        assert hot is not None and hot_err.count("\n") == 1 and UNDERWAY in hot_err, hot_err
        assert _cli.run(["kubectl", "--profile", "dev"]) == 0
        full = capsys.readouterr()
        assert full.out.encode() == hot and full.err == hot_err
    finally:
        del os.environ["KUBERNETES_EXEC_INFO"]
    wait_for(lambda: not background_children(), 20)
    assert outage()["failures"] == 2 and not outage().get("in_flight")  # the hung refresh's own failure replaced it


@pytest.mark.parametrize(("refusal", "code", "said"), [
    ("dead grant", 4, "refused the refresh token"),
    ("invalid_client with terminal commands", 5, "invalid_client: Invalid client \\x1b]0;pwned\\x07 \\x1b[31mred."),
])
def test_a_refusal_through_the_background_child_ends_as_in_process(outage_idp, monkeypatch, capsys, refusal: str, code: int, said: str) -> None:
    """Review of #24, 6, and of outage6, 3: a refusal inside the margin — a dead refresh token,
    or a client refused with a description that would drive the terminal — answered by the
    detached child in time, ends the call exactly as the in-process refresh does: the same exit
    code, the same text, the IdP's control characters shown escaped on both paths."""
    from bblogin import _background, _cli, _session

    idp, _proxy = outage_idp(id_token_ttl=200)
    monkeypatch.setattr(_background, "WAIT", 30.0)  # the child's answer arrives in time on a loaded machine too
    ended = []
    for in_child in (False, True):
        login(idp)
        make_expiring("dev", seconds_left=45, lifetime=200)
        if refusal == "dead grant":
            idp.revoke_refresh_tokens()
        else:
            idp.fail_next("/token", 401, json.dumps({"error": "invalid_client", "error_description": "Invalid client \x1b]0;pwned\x07 \x1b[31mred."}))
        capsys.readouterr()
        with monkeypatch.context() as patched:
            if not in_child:
                patched.setattr(_session, "_in_background", lambda _profile, _account: False)
            ended.append((_cli.run(["token", "--profile", "dev", "--no-login"]), capsys.readouterr().err))
    assert ended[0] == ended[1] and ended[0][0] == code and said in ended[0][1] and "\x1b" not in ended[0][1], ended


def test_the_childs_errors_are_rebuilt_with_their_class_fields_and_exit_code() -> None:
    from bblogin import _background, _errors, _outage

    refused = _background.rebuilt(json.loads(json.dumps(_background.error_fields(_errors.OAuthError("invalid_client", "no", hint="check it")))))
    assert type(refused) is _errors.OAuthError and refused.error == "invalid_client" and refused.hint == "check it" and refused.exit_code == 5
    assert str(refused) == "the identity provider answered invalid_client: no"
    waited = _background.rebuilt(_background.error_fields(_errors.LoginEnded("the login failed", hint="again", exit_code=9)))
    assert type(waited) is _errors.LoginEnded and waited.exit_code == 9 and waited.render() == "bblogin: the login failed\n  hint: again"
    slow = _errors.IdPResponseError("HTTP 503")
    slow.retry_after = 120.0
    assert _background.rebuilt(_background.error_fields(slow)).retry_after == 120.0
    assert _background.rebuilt({"type": "NoSuchError", "exit_code": 6, "fields": {"message": "x"}}).exit_code == 6
    bare = _background.rebuilt({"type": "OAuthError", "fields": {"message": "m\x1b[2J", "error": 3}})  # what its __init__ sets, never missing
    assert (bare.error, bare.description, bare.message, bare.render()) == ("", "", "m\\x1b[2J", "bblogin: m\\x1b[2J") and not _outage.is_outage(bare)


@pytest.mark.parametrize("hostile", [
    {"exit_code": 0, "fields": {"message": "m", "exit_code": 0, "render": "x", "__class__": "y", "hint": 5}},
    {"exit_code": 999, "fields": {"message": "m", "hint": ["a"], "retry_after": "soon", "party": {"x": 1}}},
    {"exit_code": True, "fields": {"message": "m", "retry_after": float("nan"), "error": 3}},
    {"exit_code": "4", "fields": {"message": "m", "retry_after": float("inf"), "description": None}},
])
def test_a_childs_hostile_answer_sets_only_known_plain_fields_and_a_documented_exit_code(hostile: dict) -> None:
    """Review of outage4, 3: what the child's answer says is parsed, never trusted — only the
    known attributes of their types, an exit code only when it is a documented one (and not 0)."""
    from bblogin import _background, _errors

    exc = _background.rebuilt(json.loads(json.dumps({"type": "IdPResponseError", **hostile})))
    assert type(exc) is _errors.IdPResponseError and exc.message == "m" and exc.exit_code == _errors.EXIT_IDP
    assert exc.hint == "" and exc.render() == "bblogin: m" and exc.retry_after is None and getattr(exc, "party", None) is None
    assert set(vars(exc)) <= {"message", "hint", "description"} and getattr(exc, "description", None) is None, vars(exc)


@pytest.mark.parametrize("failures", [0, 1])
def test_an_expired_token_is_refreshed_past_a_provisional_window_no_refresh_holds(outage_idp, failures: int) -> None:
    """Review of outage4, 4: an ``in_flight`` record left by a child that was killed before it
    replaced it (or written before the child took the lock) stands for no refresh at work: the
    caller with an expired token takes the lock and refreshes — one attempt, success — instead of
    failing with "a refresh is under way" until the provisional window ends."""
    idp, _proxy = outage_idp(id_token_ttl=200)
    login(idp)
    make_expiring("dev", seconds_left=-5, lifetime=200)
    at = time.time()
    with _index.transaction() as index:
        index.active_account("dev").outage = {"since": at - 30, "failures": failures, "cause": "no answer within 1.2 s", "retry_at": at + 15, "in_flight": True}
    done = bblogin("token", "--profile", "dev", "--no-login")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert idp.count("/token", "refresh_token") == 1 and outage() is None


LOST = "the background refresh is failing"  # the line of a lost answer's window (``_outage.ANSWER_LOST_BY``)


def assert_the_lost_answer_holds(idp, code: int, err: str, valid: bool) -> None:
    """After a detached refresh lost the answer to its POST: the refresh token went to the IdP
    once, never again; the loss is one failed attempt with its backoff window; a token that lives
    the floor is served with the one line naming the background refresh, else exit 5 with the
    cause and the next try; inside the window nothing more is sent — by the hot path or the full
    path, with a valid token or an expired one."""
    from bblogin import _outage

    assert idp.count("/token", "refresh_token") == 1, err  # never again with the (maybe rotated) refresh token
    recorded = settled()
    assert recorded is not None and recorded["failures"] == 1 and recorded["cause"] == _outage.ANSWER_LOST and recorded["party"] == _outage.ANSWER_LOST_BY, recorded
    assert recorded["retry_at"] > time.time(), recorded  # its window (counted from the POST) still open
    assert "Traceback" not in err, err
    if valid:
        assert code == 0 and err.count("\n") == 1 and f"bblogin: {LOST}" in err, err
    else:
        assert code == 5 and _outage.ANSWER_LOST in err and "next try at" in err, err
    make_expiring("dev", seconds_left=45, lifetime=200)
    served = bblogin("token", "--profile", "dev", "--no-login")  # inside the window: served, nothing sent
    assert served.returncode == 0 and LOST in served.stderr, served.stderr
    make_expiring("dev", seconds_left=-5, lifetime=200)
    failed = bblogin("token", "--profile", "dev", "--no-login")
    assert failed.returncode == 5 and _outage.ANSWER_LOST in failed.stderr, failed.stderr
    assert idp.count("/token", "refresh_token") == 1 and settled() is not None


@pytest.mark.parametrize("caller", ["waits-valid", "waits-below-the-floor", "left"])
def test_a_background_refresh_killed_after_its_post_is_not_sent_again_before_a_window(outage_cluster, monkeypatch, capsys, caller: str) -> None:
    """Review of outage4, 1 and 2, and of outage5, 1: the detached child is killed (kill -9: an
    OOM killer, a crash between the answer and the store) after its refresh POST reached the IdP,
    which rotated the refresh token. Its mark (``sent``, written before the POST) is settled into
    a failed attempt by whoever takes the lock next: the caller still waiting for it (its token
    valid, or fallen below the floor meanwhile), or, once that caller has left with its cached
    token, the next call that needs a new token (a valid one is served meanwhile, nothing sent).
    Nobody sends the old refresh token before the window ends; after it, the stored (spent) one
    is sent once and dex ends the login (``reuseInterval`` 0) — exit 4, no browser."""
    from bblogin import _background, _cli, _outage

    idp, proxy, _config = outage_cluster
    proxy.mode, proxy.hold = "slow", 20.0  # the IdP acts on the POST at once; its answer is held back
    if caller != "left":
        valid = caller == "waits-valid"
        monkeypatch.setattr(_background, "WAIT", 30.0)  # the caller still waits when its child dies
        make_expiring("dev", seconds_left=45 if valid else 13, lifetime=200)
        below_floor = None if valid else time.time() + 13 - _outage.FLOOR + 1
        with killed_after_the_post(lambda: idp.count("/token", "refresh_token"), below_floor) as killed:
            code = _cli.run(["token", "--profile", "dev", "--no-login"])
        err = capsys.readouterr().err
    else:
        valid = False
        with killed_after_the_post(lambda: idp.count("/token", "refresh_token"), time.time() + _background.WAIT + 1.0) as killed:
            left = _cli.run(["token", "--profile", "dev", "--no-login"])  # 1.2 s, then the cached token; the kill comes after
            assert left == 0 and UNDERWAY in capsys.readouterr().err
            wait_for(lambda: killed, 10)
        assert outage()["in_flight"] and outage()["sent"], outage()  # the mark the killed child left
        served = bblogin("token", "--profile", "dev", "--no-login")  # a valid token: served at once, nothing sent, the mark kept
        assert served.returncode == 0 and UNDERWAY in served.stderr and idp.count("/token", "refresh_token") == 1, served.stderr
        assert "a refresh is under way in the background" in bblogin("status").stdout
        make_expiring("dev", seconds_left=-5, lifetime=200)
        done = bblogin("token", "--profile", "dev", "--no-login")  # needs a new token: takes the lock, settles the mark
        code, err = done.returncode, done.stderr
    assert killed, "no background refresh to kill"
    assert_the_lost_answer_holds(idp, code, err, valid)
    proxy.mode = "up"
    end_the_window()
    after = bblogin("token", "--profile", "dev", "--no-login")  # the stored refresh token, once: dex rotated it for the lost answer
    assert after.returncode == 4 and "refused the refresh token" in after.stderr, after.stderr
    assert idp.count("/token", "refresh_token") == 2


def test_a_mark_found_after_its_window_holds_no_call_back(outage_idp) -> None:
    """Review of outage6, 5: a lost answer's window runs from when the request went out, as any
    failure's does. A mark found an hour later (the laptop slept; the child was killed) is
    counted as the failed attempt it was, and the call that finds it — its token long expired,
    the IdP up — refreshes at once instead of failing for another window. ``status`` says
    what the next use will do with such a mark."""
    from bblogin import _outage

    idp, _proxy = outage_idp(id_token_ttl=200)
    login(idp)
    _outage.record_sent(_index.load().active_account("dev").id)
    with _index.transaction() as index:
        for key in ("since", "retry_at"):
            index.active_account("dev").outage[key] -= 3600
    assert "has not recorded its answer; if it has ended, the next use that needs a new token counts it" in bblogin("status").stdout
    make_expiring("dev", seconds_left=-5, lifetime=200)
    done = bblogin("token", "--profile", "dev", "--no-login")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert idp.count("/token", "refresh_token") == 1 and outage() is None


def child_interpreter(tmp_path, name: str, patch: str) -> str:  # type: ignore[no-untyped-def]
    """An interpreter for the detached refresh that runs ``patch`` (Python) before the child's
    ``-c`` code: a child whose refresh fails in a chosen way. Its path, for ``sys.executable``."""
    import sys
    import textwrap

    wrapper = tmp_path / name
    wrapper.write_text(f"#!{sys.executable}\nimport sys\n{textwrap.dedent(patch)}\nsys.argv = sys.argv[1:]\nexec(compile(sys.argv[1], '<child>', 'exec'))\n")
    wrapper.chmod(0o755)
    return str(wrapper)


CRASH_AFTER_THE_POST = """
    import httpx

    send = httpx.Client.send


    def crashing(self, request, **kwargs):  # the crash between the answer and the store that a Python exception makes
        response = send(self, request, **kwargs)
        if request.method == "POST":
            raise RuntimeError("a bug after the answer")
        return response


    httpx.Client.send = crashing
"""

STORE_FAILS_AFTER_THE_POST = """
    from bblogin import _errors, _store

    set_secret = _store.SecretStore.set


    def failing(self, account, kind, value):  # the keyring failing between the answer and its store
        if kind == "refresh_token":
            raise _errors.KeyringUnavailable("the keyring is locked")
        return set_secret(self, account, kind, value)


    _store.SecretStore.set = failing
"""


@pytest.mark.parametrize("failure", ["crash", "store"])
@pytest.mark.parametrize("caller", ["waits", "left"])
def test_a_background_refresh_that_fails_after_its_post_opens_a_window(outage_cluster, monkeypatch, capsys, tmp_path, caller: str, failure: str) -> None:
    """Review of outage5, 1 and 6, and of outage6, 4: the detached child raises after its POST
    has its answer, before storing it — a bug (a Python exception), or the keyring failing the
    rotated refresh token's write (a StorageError: the answer is lost, not had). Its own
    ``finally`` settles its mark into a failed attempt, so the caller still waiting for it, and
    every call after a caller that left, serve the valid token inside that window and send
    nothing — never one rotation per call."""
    from bblogin import _background, _cli

    idp, proxy, _config = outage_cluster
    patch = CRASH_AFTER_THE_POST if failure == "crash" else STORE_FAILS_AFTER_THE_POST
    if caller == "waits":
        monkeypatch.setattr(_background, "WAIT", 30.0)
    else:
        proxy.mode, proxy.hold = "slow", 3.0  # the answer comes after the caller left
    with monkeypatch.context() as patched:
        patched.setattr("sys.executable", child_interpreter(tmp_path, f"python-{failure}", patch))  # bblogin() below runs the real one
        code = _cli.run(["token", "--profile", "dev", "--no-login"])
    err = capsys.readouterr().err
    if caller == "left":
        assert code == 0 and UNDERWAY in err, err
        wait_for(settled, 15)  # settled by the child itself: no call has taken the lock since
        done = bblogin("token", "--profile", "dev", "--no-login")
        code, err = done.returncode, done.stderr
    elif failure == "store":
        assert code == 6 and "the keyring is locked" in err, err  # the child's error, as in-process: the token could not be stored
        code, err = 0, bblogin("token", "--profile", "dev", "--no-login").stderr
    assert_the_lost_answer_holds(idp, code, err, valid=True)

def test_a_background_refresh_never_runs_another_bblogin_found_first(outage_cluster, monkeypatch, capsys, tmp_path) -> None:
    """Review of outage5, 5: the child appends its caller's package directory to ``sys.path``
    (never ahead of the standard library), so another bblogin on the path — an older install,
    a checkout on PYTHONPATH — would be found first. The child checks where the bblogin it
    imported lives and, when it is not its caller's, ends without running any of it: the caller
    refreshes in-process, once, and the other bblogin's code never runs."""
    idp, _proxy, _config = outage_cluster
    other = tmp_path / "elsewhere" / "bblogin"
    other.mkdir(parents=True)
    ran = tmp_path / "the other bblogin ran"
    (other / "__init__.py").write_text(f"open({str(ran)!r}, 'w').close()\n")  # importing it runs this
    (other / "_background.py").write_text(f"def main():\n    open({str(ran)!r}, 'w').close()\n")
    monkeypatch.setenv("PYTHONPATH", str(other.parent))
    from bblogin import _cli

    assert _cli.run(["token", "--profile", "dev", "--no-login"]) == 0
    err = capsys.readouterr().err
    assert UNDERWAY not in err and NOTICE not in err and LOST not in err, err
    assert not ran.exists() and outage() is None and idp.count("/token", "refresh_token") == 1


def test_a_refresh_still_at_work_past_its_provisional_window_is_no_failure(outage_cluster) -> None:
    """Review of outage6, 6: a detached refresh that holds the lock past its mark's 15 s (the
    POST answered, then Bitbucket's user API slow) has failed at nothing: a call that finds the
    lock held and serves its cached token says a refresh is under way, never that the IdP fails."""
    from bblogin import _outage
    from bblogin._hot import _answer
    from bblogin._lock import account_lock
    from bblogin._record import asdict as record_asdict

    account = _index.load().active_account("dev")
    _outage.record_sent(account.id)
    with _index.transaction() as index:
        index.active_account("dev").outage["retry_at"] = time.time() - 1  # its 15 s over, the child still at work
    account = _index.load().active_account("dev")
    notice = _answer.outage_notice({"refresh_margin": 60}, record_asdict(account), "id_token", account.tokens["id_token"]["expires_at"])
    assert notice is not None and UNDERWAY in notice, notice
    with account_lock(account.id, 5):  # the child at work, as far as the call can tell
        done = bblogin("token", "--profile", "dev", "--no-login")
    assert done.returncode == 0 and done.stderr.count("\n") == 1 and UNDERWAY in done.stderr, done.stderr


def test_a_dead_childs_mark_is_kept_by_a_caller_and_never_dated_in_the_future(outage_idp) -> None:
    """Review of outage7, 1 and 2: a caller that stops waiting for a child slow to start never
    replaces a dead child's ``sent`` mark with a provisional window of its own (the new child
    would take it for no request and send the maybe-rotated refresh token at once); and a mark
    dated in the future — the clock stepped back, an edit — opens a window of the usual length
    from now at the latest, with a ``since`` that is not in the future."""
    from bblogin import _outage

    idp, _proxy = outage_idp(id_token_ttl=200)
    login(idp)
    account = _index.load().active_account("dev")
    _outage.record_sent(account.id)
    with _index.transaction() as index:
        index.active_account("dev").outage["retry_at"] = time.time() - 1  # its provisional window over
    marked = _index.load().active_account("dev")
    _outage.record_in_flight(marked, 1.2)  # the caller of the next child, which has not taken the lock yet
    assert _index.load().active_account("dev").outage == marked.outage
    with _index.transaction() as index:
        for key in ("since", "retry_at"):
            index.active_account("dev").outage[key] += 1200  # the clock stepped back by 20 minutes since the mark
    at = time.time()
    lost = _outage.settle_in_flight(_index.load().active_account("dev"))
    assert lost is not None and lost.since <= time.time() and lost.retry_at <= at + _outage.BASE * (1 + _outage.JITTER) + 1, lost  # one failure's window, from now


def test_a_clock_stepped_back_holds_no_call_back_and_settling_keeps_the_count(outage_idp) -> None:
    """Review of outage8, 2 and 3: a failure recorded before this machine's clock stepped back
    (a resume, NTP) further than the outage is old — its first failure now in the future — is no
    window: the call with an expired token refreshes at once, the IdP being up. And a provisional
    window settled under the lock keeps the failures before it (their window over), so the next
    failure doubles the wait instead of starting again at 15 s."""
    from bblogin import _outage

    idp, _proxy = outage_idp(id_token_ttl=200)
    login(idp)
    make_expiring("dev", seconds_left=-5, lifetime=200)
    at = time.time()
    with _index.transaction() as index:
        index.active_account("dev").outage = {"since": at + 1195, "failures": 1, "cause": "x did not answer", "retry_at": at + 1210}
    done = bblogin("token", "--profile", "dev", "--no-login")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert idp.count("/token", "refresh_token") == 1 and outage() is None
    with _index.transaction() as index:
        index.active_account("dev").outage = {"since": at - 100, "failures": 3, "cause": "x did not answer", "retry_at": at - 1, "party": "the proxy p:1"}
    _outage.record_in_flight(_index.load().active_account("dev"), 1.2)
    assert outage()["in_flight"] and outage()["failures"] == 3 and outage()["party"] == "the proxy p:1", outage()
    assert _outage.settle_in_flight(_index.load().active_account("dev")) is None
    kept = _outage.of(_index.load().active_account("dev"))
    assert kept is not None and not kept.in_flight and not kept.waiting() and (kept.failures, kept.party) == (3, "the proxy p:1"), kept


def test_the_ad_hoc_profiles_parse_is_kept_apart_from_the_hot_paths_secret_free_mirror(outage_idp) -> None:
    """Review of outage8, 1: the full path reads adhoc-profiles.json as parsed before (no json on
    a cached call), client secret included — from a file of its own, so adhoc.marshal, which the
    hot path reads, still holds no secret (docs/security.md)."""
    from bblogin import _adhoc, _mirrors
    from bblogin._hot import _mirror

    idp, _proxy = outage_idp(id_token_ttl=200)
    flags = ["--issuer", idp.issuer, "--client-id", "bblogin", "--connector-id", "bitbucket-cloud", "--client-secret", "s3cr3t-value"]
    done = bblogin("kubectl", *flags)  # no login yet: the call remembers the ad-hoc profile and fails
    assert "s3cr3t-value" not in done.stderr
    assert bblogin("profiles").returncode == 0 and _adhoc.load()  # a read brings both files up to date
    hot = pathlib.Path(_mirror.adhoc_path()).read_bytes()
    kept = pathlib.Path(_mirrors.parsed_adhoc_path())
    assert b"s3cr3t-value" not in hot and b"s3cr3t-value" in kept.read_bytes() and kept.stat().st_mode & 0o777 == 0o600
    assert [p.client_secret for p in _adhoc.load().values()] == ["s3cr3t-value"]


def test_kept_unchecked_tokens_and_their_pending_check_are_one_write(bitbucket_dc, monkeypatch) -> None:
    """Review of outage6 (noted there): the tokens of a refresh whose identity calls failed and
    the record that their identity is still to be checked are written in one transaction, so a
    process that dies right after storing them (here: no further accounts.json write succeeds)
    never leaves new tokens unchecked with nothing saying so."""
    from bblogin import _cli, _outage
    from tests.test_bitbucket import dc_profile, login_in_process

    fake = bitbucket_dc
    login_in_process(fake, dc_profile(fake))
    make_expiring("dc", seconds_left=-5)  # in-process: the refresh the call cannot do without
    fake.fail["/bitbucket/plugins/servlet/applinks/whoami"] = 503
    before = _index.load().active_account("dc").tokens["access_token"]["sha256"]

    def dies(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise SystemExit(137)  # the process ends here, as a kill would

    monkeypatch.setattr(_outage, "record_failure", dies)
    try:
        _cli.run(["token", "--profile", "dc", "--access-token", "--no-login"])
    except SystemExit:
        pass
    account = _index.load().active_account("dc")
    assert account.tokens["access_token"]["sha256"] != before  # the refreshed tokens, kept
    assert account.outage is not None and account.outage["identity_pending"], account.outage
