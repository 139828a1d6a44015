"""A machine whose clock is 10 minutes off the IdP's: login, the hot path, refresh, replays.

Only bblogin's processes run on the wrong clock: libfaketime (Debian's libfaketime, LD_PRELOAD)
shifts their wall clock; the dev IdP, the API server double and the git server run in this test
process on the true clock, as real servers keep NTP time. libfaketime shifts the boot-time clock
along (leaving it alone breaks every sleep: FAKETIME_DONT_FAKE_MONOTONIC turns Python's
clock_nanosleep into EINVAL in libfaketime 0.9.10), so to bblogin a switch between a shifted and
an unshifted process looks like a stepped wall clock, as when NTP sets it right. kubectl (a static
Go binary) cannot be shifted: it gets the skewed environment only for the bblogin it runs.
"""

from __future__ import annotations

import calendar
import email.utils
import http.server
import json
import os
import pathlib
import re
import subprocess
import sys
import time

import httpx
import pytest

from bblogin import _clock, _config, _configedit, _index
from bblogin._cli import launcher_command
from bblogin.devidp import _tokens as devidp_tokens
from tests.test_git import git_env  # noqa: F401 -- a fixture
from tests.test_kubectl import exec_user, kubectl
from tests.test_session import set_margin

pytestmark = pytest.mark.usefixtures("keyring_secret_service")

LIBFAKETIME = next(iter(sorted(pathlib.Path("/usr/lib").glob("*/faketime/libfaketimeMT.so.1"))), pathlib.Path("/usr/lib/faketime/libfaketimeMT.so.1"))
TTL = 45  # the dev IdP's ID-token lifetime here: short, so a test sees a token expire (40 s of cache for 5 calls on a loaded CI machine)
MARGIN = 5


def skewed(seconds: int) -> dict[str, str]:
    """The environment for a process whose wall clock is ``seconds`` off (negative: behind)."""
    assert LIBFAKETIME.exists(), "libfaketime is missing: apt-get install faketime libfaketime (.ci/run installs it)"
    return {
        "LD_PRELOAD": str(LIBFAKETIME),
        "FAKETIME": f"{seconds:+d}",
        "NO_FAKE_STAT": "1",
    }


def run(skew: int | None, *args: str) -> subprocess.CompletedProcess[str]:
    """bblogin on a clock ``skew`` seconds off; None: on the true clock, without libfaketime."""
    env = {**os.environ, **(skewed(skew) if skew is not None else {})}
    return subprocess.run([sys.executable, "-m", "bblogin", *args], capture_output=True, text=True, timeout=90, env=env, stdin=subprocess.DEVNULL)


def login(idp, skew: int) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    return run(skew, "login", "--profile", "dev", "--issuer", idp.issuer, "--client-id", "bblogin", "--connector-id", "bitbucket-cloud", "--flow", "device", "--no-browser")


def account() -> _index.Account:
    (only,) = _index.load().accounts.values()
    return only


def test_the_libfaketime_clock_is_really_off() -> None:
    """The premise of every test below: the child's wall clock is off and it can still sleep."""
    code = "import time; time.sleep(0.1); print(time.time())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **skewed(-600)}, check=True)
    assert abs(float(done.stdout) - (time.time() - 600)) < 5


@pytest.mark.parametrize("skew", [-600, 600], ids=["behind-10min", "ahead-10min"])
def test_kubectl_on_a_skewed_clock(skew: int, devidp_factory, kube_apiserver, kubectl_bin) -> None:  # type: ignore[no-untyped-def]
    idp = devidp_factory(id_token_ttl=TTL)
    done = login(idp, skew)
    assert done.returncode == 0, done.stderr  # before: "issued 600 s in the future (iat)" / "expired 570 s ago (exp)"
    clock = account().idp_clock
    assert abs(clock.offset + skew) <= 2, clock  # offset = IdP − local
    set_margin("dev", MARGIN)
    server = kube_apiserver(issuer=idp.issuer, client_id="bblogin")
    user = exec_user("Never")
    user["exec"]["env"] = [{"name": k, "value": v} for k, v in skewed(skew).items()]
    config = server.kubeconfig(user)

    # the hot path answers on the skewed clock (no HTTP client imported), with the expiry on it
    launcher = launcher_command("kubectl", "--profile", "dev")
    exec_info = '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}}'
    hot = subprocess.run([launcher[0], "-X", "importtime", *launcher[1:]], capture_output=True, text=True, timeout=60, env={**os.environ, **skewed(skew), "KUBERNETES_EXEC_INFO": exec_info})
    assert hot.returncode == 0 and "httpx" not in hot.stderr and "bblogin._session" not in hot.stderr, hot.stderr[-2000:]
    stamp = json.loads(hot.stdout)["status"]["expirationTimestamp"]
    local_expiry = calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))
    assert abs(local_expiry - ((account().expires_at("id_token") or 0) + skew)) <= 2

    for _ in range(5):
        call = kubectl(kubectl_bin, config, "get", "--raw", "/version")
        assert call.returncode == 0, call.stderr
    assert idp.count("/token", "refresh_token") <= 1  # served from the cache, no refresh storm

    expiry = account().expires_at("id_token")
    assert expiry is not None
    time.sleep(max(0.0, expiry - time.time()) + 1)  # the token has expired for the API server
    refreshes = idp.count("/token", "refresh_token")
    call = kubectl(kubectl_bin, config, "get", "--raw", "/version")
    assert call.returncode == 0, call.stderr
    assert idp.count("/token", "refresh_token") == refreshes + 1
    assert server.attempts and all(ok for _path, ok in server.attempts)  # never a 401 from a stale token


def test_status_and_json_expiry_on_a_skewed_clock(devidp_factory) -> None:  # type: ignore[no-untyped-def]
    """status says how far off the clock is; `token --json` gives the expiry on the local clock
    (scripts compare it with `date +%s` on this machine)."""
    idp = devidp_factory(id_token_ttl=3600)
    assert login(idp, -192).returncode == 0
    status = run(-192, "status")
    assert re.search(r"this machine's clock is 3 min 1[123] s behind the IdP's; bblogin compensates", status.stdout), status.stdout  # 192 s, ± a second of Date resolution
    view = json.loads(run(-192, "status", "--json").stdout)["accounts"][0]
    assert view["state"] == "valid" and abs(view["clock"]["offset"] - 192) <= 2
    token = json.loads(run(-192, "token", "--profile", "dev", "--no-login", "--json").stdout)
    assert abs((account().expires_at("id_token") or 0) - token["expires_at"] - 192) <= 2  # the IdP's exp, 192 s earlier here


class _HourAgo:
    """The dev IdP's `time` module, an hour in the past: it mints tokens that are an hour old."""

    @staticmethod
    def time() -> float:
        return time.time() - 3600


@pytest.mark.parametrize("hostile_date", [False, True], ids=["true-date", "date-an-hour-ago"])
def test_a_token_replayed_from_an_hour_ago_is_refused(hostile_date: bool, devidp_factory, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The clock is 10 minutes behind, so bblogin adds 10 minutes; an ID token from an hour ago
    stays refused — also when its answer's Date header claims it is an hour ago (one answer
    cannot move the measured offset to make its own token look fresh)."""
    idp = devidp_factory(id_token_ttl=8)
    assert login(idp, -600).returncode == 0
    before = account()
    time.sleep(max(0.0, (before.expires_at("id_token") or 0) - time.time()) + 1)  # expired: the next call refreshes
    monkeypatch.setattr(devidp_tokens, "time", _HourAgo)
    if hostile_date:
        monkeypatch.setattr(http.server.BaseHTTPRequestHandler, "date_time_string", lambda self, timestamp=None: email.utils.formatdate(time.time() - 3600, usegmt=True))
    done = run(-600, "token", "--profile", "dev", "--no-login")
    assert done.returncode == 7, done.stderr  # TokenVerificationError
    assert "expired" in done.stderr and "(exp)" in done.stderr and done.stdout == ""
    after = account()
    assert after.idp_clock.offset == before.idp_clock.offset  # the hostile Date moved nothing
    for kind in ("id_token", "access_token"):  # (dex's rotated refresh token is kept: _session stores it first)
        assert after.tokens[kind] == before.tokens[kind]


def test_a_clock_stepped_by_ntp_is_measured_again(devidp_factory) -> None:  # type: ignore[no-untyped-def]
    """Logged in while 10 minutes ahead; then NTP sets the clock right. The stored offset no
    longer holds (the boot epoch moved): the next call refreshes once, measures ~0, and from then
    on the cache serves again."""
    idp = devidp_factory(id_token_ttl=3600)
    assert login(idp, 600).returncode == 0
    assert abs(account().idp_clock.offset + 600) <= 2
    for _ in range(3):
        done = run(None, "token", "--profile", "dev", "--no-login")
        assert done.returncode == 0, done.stderr
    assert idp.count("/token", "refresh_token") == 1
    assert abs(account().idp_clock.offset) <= 2


def test_one_odd_sample_does_not_move_the_estimate() -> None:
    """Five answers agree on +192 s; a proxy's clock an hour off is outvoted, and anything beyond
    the 24 h cap is not believed at all (and said so)."""
    good = [_clock.bracket(1000.0 + 192, 1000.0, 1000.05) for _ in range(5)]
    odd = _clock.bracket(1000.0 - 3600, 1000.0, 1000.05)
    assert _clock.estimate([*good, odd]) == _clock.estimate(good) == 193
    assert _clock.estimate([_clock.bracket(1000.0 + 3 * 86400, 1000.0, 1000.1)]) is None
    far = _clock.Clock().updated([_clock.bracket(1000.0 + 3 * 86400, 1000.0, 1000.1)])
    assert far.offset == 0 and far.note() is not None and "fix this machine's clock" in far.note()


@pytest.mark.parametrize(("skew", "status", "words"), [(-192, "warn", r"3 min 1[123] s behind the IdP's; bblogin compensates"), (3 * 86400, "fail", r"more than bblogin compensates \(24 h\)"), (None, "ok", "in step")])
def test_doctor_measures_the_clock_and_suggests_fixing_it(skew: int | None, status: str, words: str, devidp) -> None:  # type: ignore[no-untyped-def]
    _configedit.save_profile(_config.Profile(name="dev", issuer=devidp.issuer, client_id="bblogin"))
    done = run(skew, "doctor", "--json")
    check = next(c for c in json.loads(done.stdout)["checks"] if c["name"] == "clock:dev")
    assert check["status"] == status and re.search(words, check["detail"]), check
    assert ("NTP" in check["fix"]) == (status != "ok")


@pytest.mark.parametrize("skew", [-600, 600], ids=["behind-10min", "ahead-10min"])
def test_bitbucket_expires_in_counts_from_the_answers_date(skew: int, bitbucket_dc, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Opaque tokens have no exp: `expires_in` (3600) counts from the token answer's Date, so the
    stored expiry is the server's, and git gets it on the local clock. Data Center, because a
    process under libfaketime cannot reach the Cloud fake (bitbucket.org is routed to it only in
    this process's transport); Cloud and DC share the token code (``_BitbucketOAuth2._token``)."""
    from tests.test_bitbucket import dc_profile
    from tests.test_login import BROWSER_STUB

    monkeypatch.setenv("BROWSER", f"env -u LD_PRELOAD -u FAKETIME {sys.executable} {BROWSER_STUB} %s")  # only bblogin's clock is off
    fake = bitbucket_dc
    dc_profile(fake)
    _configedit.save_git_host(_config.GitHost(url=fake.base, profile="dc"))
    started = time.time()
    # The loopback listener's waits stall under libfaketime's shifted monotonic clock (its
    # interposed timed waits); a drifted wall clock leaves the monotonic clock alone anyway. The
    # git helper below runs on the same clocks (else its boot epoch moved: a "stepped" clock).
    env = {**os.environ, **skewed(skew), "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    done = subprocess.run([sys.executable, "-m", "bblogin", "login", "--profile", "dc", "--timeout", "30"], capture_output=True, text=True, timeout=90, env=env, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    stored = account()
    assert abs(stored.idp_clock.offset + skew) <= 2
    assert started + 3600 - 2 <= (stored.expires_at("access_token") or 0) <= time.time() + 3600  # the server's clock
    host, _, path = fake.base.split("//")[1].partition("/")
    request = f"protocol=http\nhost={host}\npath={path}/scm/proj/repo.git\n\n"
    answer = subprocess.run([sys.executable, "-m", "bblogin", "git-credential", "get"], input=request, capture_output=True, text=True, timeout=60, env=env)
    fields = dict(line.split("=", 1) for line in answer.stdout.splitlines())
    assert fields["password"] in fake.access_tokens, answer.stderr
    assert abs(int(fields["password_expiry_utc"]) - ((stored.expires_at("access_token") or 0) + skew)) <= 2  # the local clock's
    assert not [r for r in fake.token_requests if r.get("grant_type") == "refresh_token"]


def _hit(clock: object, expires_in: float) -> tuple[str, int] | None:
    from bblogin._hot._answer import cached_token
    from bblogin._hot._mirror import token_digest

    account = {
        "id": "a", "provider": "oidc", "issuer": "i", "client_id": "c", "profiles": ["p"], "shape": "s",
        "tokens": {"id_token": {"expires_at": int(time.time() + expires_in), "sha256": token_digest("t")}}, "clock": clock,
    }
    profile = {"name": "p", "shape": "s", "provider": "oidc", "issuer": "i", "client_id": "c", "refresh_margin": 60, "pipelines": False}
    return cached_token(profile, account, "id_token", read=lambda *_: "t")


def test_the_shared_check_judges_in_idp_time_and_declines_on_doubt() -> None:
    """``_hot._answer.cached_token`` (hot and full path alike): the margin in the IdP's time, the expiry
    handed out on the local clock, and no answer when the stored offset cannot be trusted."""
    epoch = _clock.boot_epoch()
    assert _hit(None, 120) is not None  # never measured: the local clock, as before
    behind = _hit({"offset": 600, "epoch": epoch}, 650)  # IdP time is 600 s later: 50 s left < margin
    assert behind is None
    ahead = _hit({"offset": -600, "epoch": epoch}, -500)  # "expired" 500 s ago locally, 100 s left at the IdP
    assert ahead is not None and abs(ahead[1] - (time.time() + 100)) <= 2  # kubectl sees 100 s on its clock
    assert _hit({"offset": -600, "epoch": (epoch or 0) + 600}, -500) is None  # the wall clock was stepped since
    for corrupt in ({"offset": "600"}, {"offset": 10**9}, {"offset": True}, "garbage", {"offset": None}):
        assert _hit(corrupt, 3600) is None, corrupt


def test_git_on_a_clock_10_minutes_behind(devidp_factory, git_server, git_env) -> None:  # type: ignore[no-untyped-def]
    """Real git (on the skewed clock too) with bblogin as its credential helper: served from the
    cache, then refreshed once the access token has truly expired — never a stale token sent."""
    from tests.test_git import dex_token_validator

    idp = devidp_factory(id_token_ttl=TTL)
    assert login(idp, -600).returncode == 0
    set_margin("dev", MARGIN)
    server = git_server(dex_token_validator(idp, set()))
    assert run(-600, "setup", "git", "--host", server.url, "--profile", "dev").returncode == 0
    env = {**os.environ, **skewed(-600)}

    def ls_remote() -> None:
        done = subprocess.run(["git", "ls-remote", f"{server.url}/repo.git"], capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stderr

    for _ in range(5):
        ls_remote()
    assert idp.count("/token", "refresh_token") <= 1
    expiry = account().expires_at("access_token")
    assert expiry is not None
    time.sleep(max(0.0, expiry - time.time()) + 1)
    refreshes = idp.count("/token", "refresh_token")
    ls_remote()
    assert idp.count("/token", "refresh_token") == refreshes + 1
    assert server.attempts and all(accepted for _user, _token, accepted in server.attempts)


def test_date_and_iat_combine_and_a_backdated_iat_loses() -> None:
    """One answer: Date and iat agree → their intersection; an iat backdated
    by 5 minutes (as some IdPs do) disagrees → the Date alone."""
    url = "https://idp.test.invalid/token"
    sent, received = time.time(), time.time() + 0.2
    date = email.utils.formatdate(int(sent) + 100, usegmt=True)  # the IdP is ~100 s ahead
    _clock.observe(url, date, sent, received)
    _clock.refine_with_iat(url, int(sent) + 100)
    agreed = _clock.observed(url)[-1]
    assert agreed.hi - agreed.lo <= 1.25 and 99 <= agreed.mid <= 101
    _clock.observe(url, date, sent, received)
    _clock.refine_with_iat(url, int(sent) + 100 - 300)
    backdated = _clock.observed(url)[-1]
    assert 98 <= backdated.mid <= 101  # the Date's bracket, not the iat's


def test_a_clock_days_off_is_not_compensated_and_said_so(devidp) -> None:  # type: ignore[no-untyped-def]
    done = login(devidp, 3 * 86400)
    assert done.returncode == 7 and "(exp)" in done.stderr, done.stderr
    assert " d " in done.stderr and "ahead of the IdP's; that is more than bblogin compensates (24 h): fix this machine's clock" in done.stderr
    assert _index.load().accounts == {}


def test_a_token_minted_before_the_request_only_raises_the_lower_bound() -> None:
    """dex mints the device flow's tokens at approval, before the poll that returns them: their
    iat says nothing about the poll's window beyond "before it was received". The IdP is exactly
    100 s ahead; the sample must contain 100."""
    url = "https://idp.test.invalid/device-token"
    sent, received = 1000.3, 1000.35  # the IdP wrote its Date at 1100.32 (its clock)
    _clock.observe(url, email.utils.formatdate(1100, usegmt=True), sent, received)
    _clock.refine_with_iat(url, 1099)  # minted half a second before the poll was sent
    sample = _clock.observed(url)[-1]
    assert sample.lo <= 100 <= sample.hi


def test_an_expires_header_counts_from_the_servers_date() -> None:
    """RFC 9111 §4.2.1: a discovery/JWKS answer fresh for 600 s by Expires − Date stays fresh for
    600 s on a clock 10 minutes ahead (counted from local time it would be stale on arrival)."""
    from bblogin._oidc import _cache

    server_now = 1_000_000
    headers = httpx.Headers({"Date": email.utils.formatdate(server_now, usegmt=True), "Expires": email.utils.formatdate(server_now + 600, usegmt=True)})
    assert _cache.freshness(headers, 3600, server_now + 600).ttl == 600


def test_a_retry_after_date_counts_from_the_servers_date() -> None:
    """On a clock 10 minutes behind, "retry at 12:00:30" from a server whose Date is 12:00:00 means
    30 s, not 10 min 30 s (which would exceed the backoff budget and give up)."""
    from bblogin._http import retry_delay

    headers = {"Date": email.utils.formatdate(1_000_000, usegmt=True), "Retry-After": email.utils.formatdate(1_000_030, usegmt=True)}
    assert retry_delay(httpx.Response(503, headers=headers), 0, now=1_000_000 - 600) == pytest.approx(30)


def test_a_corrupt_stored_sample_is_not_believed() -> None:
    """accounts.json edited or damaged: a sample with bounds beyond the 24 h cap, infinite or far
    wider than one answer's round trip brackets nothing. Believed, it moved the offset beyond the
    cap (every fresh token then looked expired, and the refused login could never replace it)."""
    import json as _json

    good = _clock.bracket(1192.0, 1000.0, 1000.05)
    for lo, hi in ((-1e12, 1e12), (-86400.0, 86400.0), (-5.0, 3000.0)):
        assert _clock.estimate([_clock.Sample(lo, hi)]) is None, (lo, hi)
        clock = _clock.Clock.from_json({"offset": 0, "epoch": _clock.boot_epoch(), "samples": [[lo, hi]]}).updated([good])
        assert clock.offset == 193, (lo, hi)
    text = '{"offset": 0, "epoch": %r, "samples": [[-Infinity, Infinity], [0, NaN], [0, Infinity]]}' % _clock.boot_epoch()
    assert _clock.Clock.from_json(_json.loads(text)).samples == []


def test_exchange_json_expiry_is_on_the_local_clock(devidp) -> None:  # type: ignore[no-untyped-def]
    """`bblogin exchange --json` in a CI step whose clock is 10 minutes behind: like `token --json`,
    its expires_at is the moment the token expires on this machine's clock (the step's script
    compares it with `date +%s`), not the IdP's exp."""
    from bblogin._claims import unverified_claims

    _configedit.save_profile(
        _config.Profile(
            name="ci", issuer=devidp.issuer, client_id="bblogin-ci", client_secret="bblogin-ci-secret", pipelines=True,
            exchange_connector_id="bitbucket-pipelines", scopes=("openid", "groups"), storage="plaintext",
        )
    )
    env = {**os.environ, **skewed(-600), "BITBUCKET_STEP_OIDC_TOKEN": devidp.mint_pipelines_token()}
    done = subprocess.run([sys.executable, "-m", "bblogin", "exchange", "--profile", "ci", "--json"], capture_output=True, text=True, timeout=90, env=env, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    exp = unverified_claims(out["token"])["exp"]
    assert abs(exp - out["expires_at"] - 600) <= 2, (exp, out["expires_at"])


class _FiveMinutesLater:
    """The dev IdP's `time` module after its operator set its clock 5 minutes forward."""

    @staticmethod
    def time() -> float:
        return time.time() + 300


def test_the_idps_clock_set_forward_does_not_lock_the_login_out(devidp_factory, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The offset stored at login says 0; then the IdP's own clock is set 5 minutes forward (its
    operator fixed it). A fresh token's iat is 300 s ahead of the stored offset, but this
    process's answers from the IdP show the new time: the refresh is taken (an iat later than
    expected never helps a replay, which brings an old token) — not refused on every call until the
    account is deleted, since a refused token never gets its sample stored."""
    idp = devidp_factory(id_token_ttl=8)
    assert login(idp, 0).returncode == 0
    time.sleep(max(0.0, (account().expires_at("id_token") or 0) - time.time()) + 1)  # expired: the next call refreshes
    monkeypatch.setattr(devidp_tokens, "time", _FiveMinutesLater)
    monkeypatch.setattr(http.server.BaseHTTPRequestHandler, "date_time_string", lambda self, timestamp=None: email.utils.formatdate(time.time() + 300, usegmt=True))
    done = run(0, "token", "--profile", "dev", "--no-login")
    assert done.returncode == 0, done.stderr
    assert idp.count("/token", "refresh_token") == 1


def test_the_latest_time_judges_only_iat_and_nbf() -> None:
    """``latest`` (this process's answers) can only excuse an iat/nbf ahead of the stored offset;
    it never excuses an expired token, nor makes iat stricter when it is earlier than ``now``."""
    from bblogin._errors import TokenVerificationError
    from bblogin._oidc._verify import check_time_claims

    check_time_claims({"exp": 2000, "iat": 1300, "nbf": 1300}, now=1000, latest=1300)
    with pytest.raises(TokenVerificationError, match=r"\(iat\)"):
        check_time_claims({"exp": 2000, "iat": 1300}, now=1000)
    with pytest.raises(TokenVerificationError, match=r"\(exp\)"):
        check_time_claims({"exp": 900, "iat": 800}, now=1000, latest=-10**9)
    with pytest.raises(TokenVerificationError, match=r"\(exp\)"):
        check_time_claims({"exp": 900, "iat": 800}, now=1000, latest=500)
    check_time_claims({"exp": 2000, "iat": 1000}, now=1000, latest=0)
