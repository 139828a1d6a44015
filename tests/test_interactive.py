"""When a login may start (bblogin._interactive), and how the processes that waited for one take
its result (bblogin._loginresult): real processes on real pseudo-terminals, the real kubectl and
git, the dev IdP, and a $BROWSER that records every launch."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import threading
import time

import pytest

from bblogin import _configedit, _loginresult, _paths
from bblogin._config import Profile
from bblogin._errors import EXIT_LOGIN_FAILED, EXIT_TIMEOUT, LoginFailed
from tests.test_git import dex_token_validator, git_env  # noqa: F401 (git_env: a fixture)
from tests.test_kubectl import exec_user

TOOLS = pathlib.Path(__file__).parent / "tools"
PTY = TOOLS / "pty_session.py"
PERSON = TOOLS / "browser_person.py"


class Terminal:
    """A command on a pseudo-terminal of its own (its controlling terminal): everything it writes
    is read as it comes; :meth:`wait` gives its exit code and that text."""

    def __init__(self, argv: list[str], env: dict[str, str], *, background: bool = False, cwd: pathlib.Path | None = None, typed: bytes = b"") -> None:
        """``typed``: what the person has typed ahead (b"\\x04": Ctrl-D at the first prompt)."""
        master, slave = os.openpty()
        os.write(master, typed)
        flags = ["--background"] if background else []
        self.proc = subprocess.Popen([sys.executable, str(PTY), *flags, "--", *argv], stdin=slave, stdout=slave, stderr=slave, start_new_session=True, env=env, cwd=cwd)
        os.close(slave)
        self._master, self._chunks = master, []  # type: ignore[var-annotated]
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self._master, 4096)
            except OSError:  # EIO: every slave side is closed
                return
            if not data:
                return
            self._chunks.append(data)

    def type(self, keys: bytes) -> None:
        os.write(self._master, keys)

    def output(self) -> str:
        return b"".join(self._chunks).decode(errors="replace")

    def wait(self, timeout: float = 120) -> tuple[int, str]:
        try:
            code = self.proc.wait(timeout)
        finally:
            self.proc.kill() if self.proc.poll() is None else None
        self._reader.join(10)
        os.close(self._master)
        return code, b"".join(self._chunks).decode(errors="replace").replace("\r\n", "\n")


DECIDE = "from bblogin._interactive import decide; import sys; d = decide(sys.argv[1]); print('DECISION', d.allowed, d.reason)"


def decision_on_terminal(caller: str, env: dict[str, str], *, background: bool = False, stdin_null: bool = False) -> tuple[bool, str]:
    code = ("import os; os.dup2(os.open(os.devnull, os.O_RDONLY), 0); " if stdin_null else "") + DECIDE
    rc, text = Terminal([sys.executable, "-c", code, caller], env, background=background).wait(60)
    assert rc == 0, text
    line = next(line for line in text.splitlines() if line.startswith("DECISION "))
    _, allowed, reason = line.split(" ", 2)
    return allowed == "True", reason


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("BBLOGIN_NO_LOGIN", "GIT_ASKPASS", "SSH_ASKPASS", "SSH_ASKPASS_REQUIRE", "GIT_TERMINAL_PROMPT", "BITBUCKET_BUILD_NUMBER", "BITBUCKET_STEP_OIDC_TOKEN", "TMUX", "TMUX_PANE")}
    return {**env, **extra}


@pytest.mark.parametrize(
    ("caller", "env", "background", "stdin_null", "allowed", "reason"),
    [
        ("cli", {}, False, False, True, ""),
        ("kubectl", {}, False, False, True, ""),
        ("git", {}, False, False, True, ""),  # git's helper reads git's pipe: the controlling terminal counts
        ("cli", {}, True, False, False, "background"),
        ("git", {}, True, False, False, "background"),
        ("cli", {}, False, True, False, "standard input is not a terminal"),
        ("git", {"GIT_ASKPASS": "/usr/bin/true"}, False, False, False, "GIT_ASKPASS"),
        ("git", {"GIT_TERMINAL_PROMPT": "0"}, False, False, False, "GIT_TERMINAL_PROMPT=0"),
        ("git", {"GIT_CONFIG_PARAMETERS": "'core.askpass'='/opt/ide/askpass.sh'"}, False, True, False, "core.askPass"),  # git -c core.askPass=…
        ("git", {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "core.askPass", "GIT_CONFIG_VALUE_0": "/opt/ide/askpass.sh"}, False, True, False, "core.askPass"),
        ("git", {"GIT_CONFIG_PARAMETERS": "'core.askpass'=''"}, False, False, True, ""),  # empty: none, as for git
        ("git", {"SSH_ASKPASS": "/usr/bin/ksshaskpass"}, False, True, False, "SSH_ASKPASS"),  # git asks through it: so would we
        ("cli", {"GIT_ASKPASS": "/usr/bin/true"}, False, False, True, ""),  # a person at a terminal (VS Code's sets it too)
        ("cli", {"SSH_ASKPASS": "/usr/bin/true", "SSH_ASKPASS_REQUIRE": "force"}, False, False, False, "SSH_ASKPASS"),
        ("cli", {"SSH_ASKPASS": "/usr/bin/true"}, False, False, True, ""),  # ssh uses it only without a terminal
        ("kubectl", {"BITBUCKET_BUILD_NUMBER": "7"}, False, False, False, "Pipelines"),
        ("cli", {"BBLOGIN_NO_LOGIN": "1"}, False, False, False, "BBLOGIN_NO_LOGIN=1"),
    ],
)
def test_decision_in_real_terminals(caller: str, env: dict[str, str], background: bool, stdin_null: bool, allowed: bool, reason: str) -> None:
    got_allowed, got_reason = decision_on_terminal(caller, clean_env(**env), background=background, stdin_null=stdin_null)
    assert (got_allowed, reason in got_reason) == (allowed, True), got_reason


def test_no_controlling_terminal_and_no_terminal_at_all() -> None:
    """A terminal on stdin and stderr that is not the controlling one (a new session never took
    it), and plain pipes: no login either way."""
    master, slave = os.openpty()
    try:
        done = subprocess.run([sys.executable, "-c", DECIDE, "cli"], stdin=slave, stdout=subprocess.PIPE, stderr=slave, start_new_session=True, env=clean_env(), timeout=60, text=True)
    finally:
        os.close(slave)
        os.close(master)
    assert "DECISION False the process has no controlling terminal" in done.stdout
    piped = subprocess.run([sys.executable, "-c", DECIDE, "cli"], capture_output=True, stdin=subprocess.DEVNULL, env=clean_env(), timeout=60, text=True)
    assert "DECISION False standard error is not a terminal" in piped.stdout


# -- the published result --------------------------------------------------------------------
def test_a_new_failure_is_taken_an_old_one_is_not() -> None:
    seen = _loginresult.generation("acct")
    assert seen is None
    _loginresult.publish("acct", LoginFailed("the identity provider ended the sign-in: access_denied", hint="start again"))
    ended = _loginresult.ended_since("acct", seen)
    assert ended is not None and not ended.ok and ended.exit_code == EXIT_LOGIN_FAILED
    error = ended.error("run `bblogin login --profile dev`")  # the waiter's hint: the command to run, not the holder's "start again"
    assert (error.message, error.hint, error.exit_code) == ("the identity provider ended the sign-in: access_denied", "run `bblogin login --profile dev`", EXIT_LOGIN_FAILED)
    later = _loginresult.generation("acct")  # a new invocation, after the failure
    assert _loginresult.ended_since("acct", later) is None
    assert _loginresult.ended_since("other-profile", None) is None  # another lock, another result
    path = pathlib.Path(_paths.locks_dir()) / "acct.login"
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "spoil",
    [
        "symlink",
        "loose mode",
        "fifo",
        "garbage",
        "huge",
        "wrong exit code",
        "ok with a failure code",
        "control characters",
    ],
)
def test_a_result_file_that_is_not_ours_is_no_result(spoil: str, tmp_path: pathlib.Path) -> None:
    _loginresult.publish("acct", LoginFailed("denied"))
    path = pathlib.Path(_paths.locks_dir()) / "acct.login"
    doc = json.loads(path.read_text())
    if spoil == "symlink":
        target = tmp_path / "elsewhere.json"
        target.write_text(json.dumps(doc))
        target.chmod(0o600)
        path.unlink()
        path.symlink_to(target)
    elif spoil == "loose mode":
        path.chmod(0o644)
    elif spoil == "fifo":
        path.unlink()
        os.mkfifo(path, 0o600)
    elif spoil == "garbage":
        path.write_bytes(b"\x00{not json")
    elif spoil == "huge":
        path.write_text(json.dumps({**doc, "message": "x" * 10000}))
    elif spoil == "wrong exit code":
        path.write_text(json.dumps({**doc, "exit_code": 1}))
    elif spoil == "ok with a failure code":
        path.write_text(json.dumps({**doc, "ok": True}))
    elif spoil == "control characters":
        path.write_text(json.dumps({**doc, "message": "denied\x1b]0;owned\x07"}))
    assert _loginresult.read("acct") is None
    assert _loginresult.ended_since("acct", None) is None  # the waiter goes on as if it had been first


def test_a_file_owned_by_someone_else_is_no_result() -> None:
    """Owner check: what another user could plant (here: root's file, when the tests run as
    another user; as root, the same check through a foreign uid)."""
    _loginresult.publish("acct", LoginFailed("denied"))
    path = pathlib.Path(_paths.locks_dir()) / "acct.login"
    if os.geteuid() != 0:
        pytest.skip("needs root to give the file another owner")  # covered when the suite runs as root (CI)
    os.chown(path, 12345, 12345)
    assert _loginresult.read("acct") is None


def test_publish_never_writes_what_read_refuses() -> None:
    """The longest message there can be, all of it non-ASCII: written and read back; a result
    read refuses (a code no login ends in) is not written at all."""
    from bblogin._errors import UsageError

    message = "é" * 200 + "\u20ac" * 200 + "\U0001f512" * 300
    _loginresult.publish("acct", LoginFailed(message))
    ended = _loginresult.read("acct")
    assert ended is not None and ended.message == message[: _loginresult.MAX_TEXT]
    before = _loginresult.generation("acct")
    _loginresult.publish("acct", UsageError("--listen 1234 does not match the callback URL"))
    assert _loginresult.generation("acct") == before  # not a login's outcome: nothing published


@pytest.mark.parametrize(
    ("error", "own_timeout", "is_shared"),
    [
        ("denied", False, True),
        ("timeout", False, True),  # the profile's login_timeout: the person did not finish
        ("timeout", True, False),  # the holder's own --timeout 5: not the waiters' business
        ("usage", False, False),  # --flow device at an IdP without one, --listen that does not match
        ("config", False, False),
        ("idp", False, True),
        ("cancelled", False, True),
    ],
)
def test_waiters_take_only_what_the_login_came_to(error: str, own_timeout: bool, is_shared: bool) -> None:
    from bblogin._errors import Cancelled, ConfigError, IdPError, LoginTimeout, UsageError

    errors = {"denied": LoginFailed("denied"), "timeout": LoginTimeout("no callback"), "usage": UsageError("--listen 1 does not match"),
              "config": ConfigError("bad"), "idp": IdPError("the IdP answered 500"), "cancelled": Cancelled("cancelled")}
    seen = _loginresult.generation("acct")
    with pytest.raises(type(errors[error])), _loginresult.publishing("acct", own_timeout=own_timeout):
        raise errors[error]
    assert (_loginresult.ended_since("acct", seen) is not None) == is_shared


# -- the storm: three kubectl, three git fetches ---------------------------------------------
def _profile(idp, login_timeout: int) -> None:  # type: ignore[no-untyped-def]
    _configedit.save_profile(Profile(name="dev", issuer=idp.issuer, client_id="bblogin", connector_id="bitbucket-cloud", login_timeout=login_timeout), make_default=True)


def _person(tmp_path: pathlib.Path, act: str, delay: float = 2) -> tuple[dict[str, str], pathlib.Path]:
    record = tmp_path / "browser-launches"
    record.touch()
    env = clean_env(BROWSER=f"{sys.executable} {PERSON} %s", BBLOGIN_TEST_BROWSER_RECORD=str(record), BBLOGIN_TEST_BROWSER_ACT=act, BBLOGIN_TEST_BROWSER_DELAY=str(delay))
    return env, record


def _launches(record: pathlib.Path) -> int:
    return len(record.read_text().splitlines())


def _bblogin_lines(text: str) -> list[str]:
    """What bblogin said, without kubectl's or git's own words around it."""
    return [line[line.index("bblogin: ") :] for line in text.splitlines() if "bblogin: " in line and "waiting up to" not in line]


@pytest.mark.parametrize(
    ("act", "login_timeout", "exit_code", "says"),
    [
        ("deny", 60, EXIT_LOGIN_FAILED, "access_denied"),  # an OP that redirects the denial back
        ("cancel", 5, EXIT_TIMEOUT, "did not come back"),  # dex: a 500 page, the login times out
    ],
)
def test_three_kubectl_one_browser_tab_and_one_result(
    act: str, login_timeout: int, exit_code: int, says: str, keyring_secret_service, devidp_factory, kube_apiserver, kubectl_bin, tmp_path: pathlib.Path
) -> None:
    idp = devidp_factory(auto_approve=False)
    _profile(idp, login_timeout)
    kubeconfig = kube_apiserver(issuer=idp.issuer, client_id="bblogin").kubeconfig(exec_user("IfAvailable"))
    env, record = _person(tmp_path, act)
    runs = [Terminal([str(kubectl_bin), "--kubeconfig", str(kubeconfig), "get", "--raw", "/version"], env) for _ in range(3)]
    results = [run.wait(login_timeout + 90) for run in runs]
    assert _launches(record) == 1, results
    said = set()
    for code, text in results:
        assert code != 0 and f"exit code {exit_code}" in text, text
        assert "Traceback" not in text
        said.add(tuple(line for line in _bblogin_lines(text) if not line.startswith("bblogin: Opened")))
    assert len(said) == 1, said  # the same message, word for word
    assert says in "\n".join(next(iter(said)))

    idp.settings.auto_approve = True  # a later, new invocation starts a login of its own and succeeds
    env["BBLOGIN_TEST_BROWSER_ACT"], env["BBLOGIN_TEST_BROWSER_DELAY"] = "approve", "0"
    code, text = Terminal([str(kubectl_bin), "--kubeconfig", str(kubeconfig), "get", "--raw", "/version"], env).wait(120)
    assert code == 0, text
    assert "v1.35.0-bblogin-test" in text
    assert _launches(record) == 2


def _until(condition, what: str, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


TOKEN = [sys.executable, "-m", "bblogin", "token", "--profile"]


def test_a_holder_killed_mid_login_publishes_nothing_and_the_next_waiter_logs_in(keyring_secret_service, devidp_factory, tmp_path: pathlib.Path) -> None:
    """kill -9 of the process running the login: the kernel drops its lock, no result is left,
    so a waiter is not failed by a login that never ended — it runs the one next login."""
    idp = devidp_factory(auto_approve=False)
    _profile(idp, 60)
    env, record = _person(tmp_path, "ignore,deny", delay=0)
    first = Terminal([*TOKEN, "dev"], env)
    _until(lambda: _launches(record) == 1, "the first browser launch")
    second = Terminal([*TOKEN, "dev"], env)
    _until(lambda: "waiting up to" in second.output(), "the second to wait")
    holder = int(record.read_text().split()[1])  # the browser's parent: the bblogin running the login
    os.kill(holder, 9)
    code, _ = first.wait(60)
    assert code == 128 + 9
    code, text = second.wait(90)
    assert code == EXIT_LOGIN_FAILED and "access_denied" in text, text
    assert _launches(record) == 2


def test_two_explicit_logins_at_once_share_the_first_ones_failure(keyring_secret_service, devidp_factory, tmp_path: pathlib.Path) -> None:
    """`bblogin login` in two terminals at once (the TUI logs in the same way): one browser tab;
    the second, which waited, fails with the first one's denial."""
    idp = devidp_factory(auto_approve=False)
    _profile(idp, 60)
    env, record = _person(tmp_path, "deny", delay=2)
    runs = [Terminal([sys.executable, "-m", "bblogin", "login", "--profile", "dev", "--flow", "loopback"], env) for _ in range(2)]
    results = [run.wait(90) for run in runs]
    assert _launches(record) == 1, results
    assert [code for code, _ in results] == [EXIT_LOGIN_FAILED] * 2, results
    assert len({tuple(line for line in _bblogin_lines(text) if "access_denied" in line) for _, text in results}) == 1


def test_ctrl_c_in_the_login_is_the_waiters_result_too(keyring_secret_service, devidp_factory, tmp_path: pathlib.Path) -> None:
    """The person presses Ctrl-C in the terminal whose bblogin runs the login: the one waiting in
    another terminal ends with the same cancellation (exit 130), and opens nothing."""
    from bblogin._errors import EXIT_CANCELLED

    idp = devidp_factory(auto_approve=False)
    _profile(idp, 60)
    env, record = _person(tmp_path, "ignore", delay=0)
    first = Terminal([*TOKEN, "dev"], env)
    _until(lambda: "Waiting up to" in first.output(), "the login to wait for the browser")
    second = Terminal([*TOKEN, "dev"], env)
    _until(lambda: "waiting up to" in second.output(), "the second to wait")
    first.type(b"\x03")  # Ctrl-C: SIGINT to the terminal's foreground process group
    (code1, text1), (code2, text2) = first.wait(60), second.wait(60)
    assert (code1, code2) == (EXIT_CANCELLED, EXIT_CANCELLED), (text1, text2)
    assert "cancelled" in text2
    assert _launches(record) == 1


def test_logins_for_two_profiles_do_not_wait_for_each_other(keyring_secret_service, devidp_factory, tmp_path: pathlib.Path) -> None:
    idp = devidp_factory(auto_approve=False)
    _profile(idp, 60)
    _configedit.save_profile(Profile(name="ops", issuer=idp.issuer, client_id="bblogin", connector_id="bitbucket-cloud", scopes=("openid", "email", "offline_access")))
    env, record = _person(tmp_path, "deny", delay=3)
    runs = [Terminal([*TOKEN, name], env) for name in ("dev", "ops")]
    results = [run.wait(90) for run in runs]
    assert _launches(record) == 2  # one login per profile, at the same time
    assert all(code == EXIT_LOGIN_FAILED and "waiting up to" not in text for code, text in results), results


def test_the_waiting_note_goes_to_a_terminal_only(capsys: pytest.CaptureFixture[str]) -> None:
    """google-auth reads an executable's stderr as part of its JSON: a waiter says nothing there."""
    from bblogin._session import note_waiting

    note_waiting(Profile(name="p", issuer="https://idp.example", client_id="c"), 210)()
    assert capsys.readouterr().err == ""


def test_a_cached_token_never_asks_the_question(keyring_secret_service, devidp) -> None:
    """The decision is taken only when a login would be the next step: a cached answer (full
    path included) makes no terminal system call for it."""
    from bblogin import _config
    from bblogin._interactive import Gate
    from bblogin._session import get_credential
    from tests.test_session import login

    login(devidp)
    gate = Gate("kubectl")
    assert get_credential(_config.load().profile("dev"), interactive=gate).token
    assert repr(gate) == "Gate('kubectl', None)"  # never evaluated


def test_lock_waits_follow_the_login_timeout() -> None:
    from bblogin._session import LOGIN_WAIT_MARGIN, NON_INTERACTIVE_LOCK_TIMEOUT, lock_wait

    profile = Profile(name="p", issuer="https://idp.example", client_id="c")  # login_timeout 180, lock_timeout 240
    assert lock_wait(profile, True) == profile.login_timeout + LOGIN_WAIT_MARGIN < profile.lock_timeout
    assert lock_wait(profile, False) == NON_INTERACTIVE_LOCK_TIMEOUT
    short = Profile(name="p", issuer="https://idp.example", client_id="c", lock_timeout=20)
    assert lock_wait(short, True) == 20


def test_kubectl_no_login_flag_on_a_terminal(keyring_secret_service, devidp_factory, kube_apiserver, kubectl_bin, tmp_path: pathlib.Path) -> None:
    """`--no-login` in the kubeconfig entry: no browser even in the foreground of a terminal with
    kubectl saying interactive; once logged in, the hot path still answers such an entry."""
    from tests.test_hot import _hot_imports
    from tests.test_session import login

    idp = devidp_factory()
    _profile(idp, 60)
    user = exec_user("IfAvailable")
    user["exec"]["args"] = [*user["exec"]["args"], "--no-login"]
    kubeconfig = kube_apiserver(issuer=idp.issuer, client_id="bblogin").kubeconfig(user)
    env, record = _person(tmp_path, "approve", 0)
    code, text = Terminal([str(kubectl_bin), "--kubeconfig", str(kubeconfig), "get", "--raw", "/version"], env).wait(60)
    assert code != 0 and "exit code 4" in text and "no login started: --no-login was given" in text, text
    assert _launches(record) == 0
    login(idp)
    assert _hot_imports(["kubectl", "--profile", "dev", "--no-login"])[0] == 0  # answered from the cache, no full path


def test_three_kubectl_after_the_refresh_token_was_refused_open_one_tab(keyring_secret_service, devidp_factory, kube_apiserver, kubectl_bin, tmp_path: pathlib.Path) -> None:
    """The other way into a login: an account whose refresh token the IdP refuses (all three
    wait on the account's lock, not the profile's)."""
    from tests.test_session import login, make_expiring

    idp = devidp_factory()
    login(idp)  # device flow, auto-approved: profile dev with a live account
    _profile(idp, 60)
    idp.settings.auto_approve = False
    idp.revoke_refresh_tokens()
    make_expiring("dev", seconds_left=-30)
    kubeconfig = kube_apiserver(issuer=idp.issuer, client_id="bblogin").kubeconfig(exec_user("IfAvailable"))
    env, record = _person(tmp_path, "deny")
    runs = [Terminal([str(kubectl_bin), "--kubeconfig", str(kubeconfig), "get", "--raw", "/version"], env) for _ in range(3)]
    results = [run.wait(120) for run in runs]
    assert _launches(record) == 1, results
    assert all(f"exit code {EXIT_LOGIN_FAILED}" in text and "access_denied" in text for _, text in results), results
    assert idp.count("/token", "refresh_token") == 1  # one refused refresh; the others did not try it again


@pytest.fixture
def git_wired(keyring_secret_service, devidp_factory, git_server, git_env, tmp_path: pathlib.Path):  # type: ignore[no-untyped-def]
    """A git host served by profile dev, no tokens yet, and a clone to fetch in."""
    from tests.test_session import bblogin

    idp = devidp_factory(auto_approve=False)
    _profile(idp, 60)
    server = git_server(dex_token_validator(idp, set()))
    done = bblogin("setup", "git", "--host", server.url, "--profile", "dev")
    assert done.returncode == 0, done.stderr
    clone = tmp_path / "clone"
    seeded = subprocess.run(["git", "clone", "-q", str(server.root / "repo.git"), str(clone)], capture_output=True, text=True, timeout=60)
    assert seeded.returncode == 0, seeded.stderr
    assert subprocess.run(["git", "-C", str(clone), "remote", "set-url", "origin", f"{server.url}/repo.git"], timeout=60).returncode == 0
    return idp, server, clone


def _git_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k != "GIT_TERMINAL_PROMPT"}  # git may prompt: the question is whether bblogin does


@pytest.mark.parametrize("context", ["askpass", "background"])
def test_ide_and_background_git_open_no_browser(context: str, git_wired, tmp_path: pathlib.Path) -> None:
    """An IDE started from a shell: a controlling terminal, git's stdin not a terminal and
    GIT_ASKPASS set; or git as a background job of the terminal. No browser, a hint at once."""
    idp, server, clone = git_wired
    env, record = _person(tmp_path, "approve", 0)
    env = _git_env(env)
    if context == "askpass":
        env["GIT_ASKPASS"] = "/bin/false"  # the IDE's dialog, which fails: git falls back to the terminal (Ctrl-D there)
        argv = ["sh", "-c", "exec git fetch -q origin </dev/null"]
    else:
        argv = ["git", "fetch", "-q", "origin"]
    started = time.monotonic()
    code, text = Terminal(argv, env, background=context == "background", cwd=clone, typed=b"\x04").wait(120)
    assert code != 0
    assert time.monotonic() - started < 30  # no 180 s wait for a browser nobody sees
    assert _launches(record) == 0
    assert "bblogin login --profile dev" in text
    assert ("GIT_ASKPASS" if context == "askpass" else "background") in text
    assert server.attempts == []


def test_three_parallel_git_fetches_open_at_most_one_browser(git_wired, tmp_path: pathlib.Path) -> None:
    idp, server, clone = git_wired
    env, record = _person(tmp_path, "deny")
    env = _git_env(env)
    runs = [Terminal(["git", "fetch", "-q", "origin"], env, cwd=clone, typed=b"\x04") for _ in range(3)]  # Ctrl-D at git's own prompt after bblogin
    results = [run.wait(150) for run in runs]
    assert _launches(record) == 1, results
    said = set()
    for code, text in results:
        assert code != 0, text
        said.add(tuple(line for line in _bblogin_lines(text) if "access_denied" in line))
    assert len(said) == 1 and next(iter(said)), said  # each fetch reports the one denial
    assert server.attempts == []


# -- one lock for a login, whoever starts it ---------------------------------------------------
LOGIN = [sys.executable, "-m", "bblogin", "login", "--flow", "loopback", "--profile"]


@pytest.mark.parametrize("act", ["deny", "approve"])
def test_bblogin_login_beside_a_token_call_whose_refresh_token_died_opens_one_tab(act: str, keyring_secret_service, devidp_factory, tmp_path: pathlib.Path) -> None:
    """A returning user: the refresh token is dead, `bblogin token` starts a login, and the person
    also types `bblogin login` in another terminal. One login, one tab; the second takes its
    result — the denial, or the token set it made."""
    from tests.test_session import login, make_expiring

    idp = devidp_factory()
    login(idp)
    _profile(idp, 60)
    idp.settings.auto_approve = act == "approve"
    idp.revoke_refresh_tokens()
    make_expiring("dev", seconds_left=-30)
    env, record = _person(tmp_path, act, delay=4)
    first = Terminal([*TOKEN, "dev"], env)
    _until(lambda: _launches(record) == 1, "the first browser launch")
    second = Terminal([*LOGIN, "dev"], env)
    (code1, text1), (code2, text2) = first.wait(90), second.wait(90)
    assert _launches(record) == 1, (text1, text2)
    assert "waiting up to" in text2
    if act == "deny":
        assert (code1, code2) == (EXIT_LOGIN_FAILED, EXIT_LOGIN_FAILED), (text1, text2)
        assert "access_denied" in text2 and "hint: run `bblogin login --profile dev` to try again" in text2
    else:
        assert (code1, code2) == (0, 0), (text1, text2)
        assert "Logged in as" in text2, text2


def test_two_profiles_asking_for_the_same_tokens_open_one_tab(keyring_secret_service, devidp_factory, tmp_path: pathlib.Path) -> None:
    """work and staging ask one IdP for exactly the same (one request shape) and have no tokens:
    one login serves both — the one that waited joins the token set it made."""
    from bblogin import _index

    idp = devidp_factory(auto_approve=True)
    for name in ("work", "staging"):
        _configedit.save_profile(Profile(name=name, issuer=idp.issuer, client_id="bblogin", connector_id="bitbucket-cloud", login_timeout=60))
    env, record = _person(tmp_path, "approve", delay=3)
    first = Terminal([*TOKEN, "work"], env)
    _until(lambda: _launches(record) == 1, "the first browser launch")
    second = Terminal([*TOKEN, "staging"], env)
    results = [first.wait(90), second.wait(90)]
    assert _launches(record) == 1, results
    assert [code for code, _ in results] == [0, 0], results
    sets = list(_index.load().accounts.values())
    assert len(sets) == 1 and sorted(sets[0].profiles) == ["staging", "work"]


def test_a_lock_timeout_names_the_profile(keyring_secret_service) -> None:
    """Waiting too long behind another login says whose login it is, not a lock's hash."""
    from bblogin._errors import LockTimeout
    from bblogin._session import get_credential, login_key

    profile = Profile(name="dev", issuer="https://idp.example", client_id="c", lock_timeout=1)
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import sys,time; from bblogin._lock import account_lock\nwith account_lock({login_key(profile)!r}, 5):\n print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LockTimeout, match="the login for profile dev for more than 1 s"):
            get_credential(profile, interactive=True)
    finally:
        holder.kill()
        holder.wait()


# -- a login that needs a typed line: the paste flow ---------------------------------------------
@pytest.mark.parametrize("typed", ["the address", "ctrl-d"])
def test_git_on_a_terminal_pastes_into_the_terminal_not_gits_pipe(typed: str, keyring_secret_service, bitbucket_dc, tmp_path: pathlib.Path) -> None:
    """Bitbucket (no device flow), no browser: `flow = auto` is the paste flow. git's helper has
    git's request pipe on stdin, so the address is read from the terminal, as git's own prompts
    read it; Ctrl-D there is a clear LoginFailed (exit 8), never an internal error."""
    from bblogin import _record
    import re

    from tests.test_bitbucket import browse, dc_profile
    from tests.test_session import bblogin

    fake = bitbucket_dc
    _configedit.save_profile(_record.replace(dc_profile(fake), flow="auto"), make_default=True)
    done = bblogin("setup", "git", "--host", "https://git.example.com", "--profile", "dc")
    assert done.returncode == 0, done.stderr
    env = {k: v for k, v in clean_env().items() if k not in ("BROWSER", "DISPLAY", "WAYLAND_DISPLAY")}
    request = "printf 'protocol=https\\nhost=git.example.com\\n\\n' | exec " + sys.executable + " -m bblogin git-credential get"
    git = Terminal(["sh", "-c", request], env)
    _until(lambda: "Redirect URL: " in git.output(), "the paste prompt")
    if typed == "ctrl-d":
        git.type(b"\x04")
    else:
        url = re.search(r"\n  (http\S+)", git.output().replace("\r", ""))
        assert url is not None, git.output()
        git.type(browse(fake, url.group(1)).encode() + b"\n")
    code, text = git.wait(60)
    assert "internal error" not in text and "Traceback" not in text, text
    if typed == "ctrl-d":
        assert code == EXIT_LOGIN_FAILED and "no redirect address was pasted" in text, text
    else:
        assert code == 0 and "password=" in text, text


def test_a_paste_login_without_any_terminal_stops_before_showing_the_url(keyring_secret_service, bitbucket_dc) -> None:
    from bblogin import _record

    from tests.test_bitbucket import dc_profile

    _configedit.save_profile(_record.replace(dc_profile(bitbucket_dc), flow="auto"), make_default=True)
    env = {k: v for k, v in clean_env().items() if k not in ("BROWSER", "DISPLAY", "WAYLAND_DISPLAY")}
    done = subprocess.run([sys.executable, "-m", "bblogin", "login", "--profile", "dc"], capture_output=True, text=True, stdin=subprocess.DEVNULL, env=env, timeout=60, start_new_session=True)
    assert done.returncode == EXIT_LOGIN_FAILED, done.stderr
    assert "pasted into a terminal, and there is none here" in done.stderr and "Open this URL" not in done.stderr


def test_core_askpass_in_gits_config_file_is_an_ide_context(tmp_path: pathlib.Path) -> None:
    """core.askPass in git's global config (an IDE's installer writes it): git asks through it,
    so no login; the same config with an empty value is none, as for git."""
    from bblogin._interactive import decide

    config = tmp_path / "gitconfig"
    config.write_text("[core]\n\taskPass = /opt/ide/askpass.sh\n")
    env = clean_env(GIT_CONFIG_GLOBAL=str(config), GIT_CONFIG_NOSYSTEM="1")
    assert decide("git", env=env).reason == "git asks through core.askPass (an IDE or a GUI), not a terminal"
    assert "askPass" not in decide("cli", env=env).reason  # only git asks through it


def test_a_detached_tmux_session_opens_no_login_an_attached_one_may(tmp_path: pathlib.Path) -> None:
    """A loop left running in a detached tmux session is in its pane's foreground, yet nobody
    sees it: no login. Attached (a client on a terminal), the same pane may log in."""
    socket, out = tmp_path / "tmux.sock", tmp_path / "decision"
    env = clean_env()
    script = f"{sys.executable} -c {DECIDE!r} cli > {out}.tmp; mv {out}.tmp {out}; sleep 60"
    tmux = ["tmux", "-S", str(socket), "-f", "/dev/null"]
    try:
        assert subprocess.run([*tmux, "new-session", "-d", "-s", "t", "-x", "80", "-y", "24", "sh", "-c", f"sleep 1; {script}"], env=env, timeout=30).returncode == 0
        _until(out.exists, "the decision in the detached pane")
        assert out.read_text().strip() == "DECISION False the tmux session is detached: nobody sees this terminal"
        out.unlink()
        client = Terminal([*tmux, "attach", "-t", "t"], {**env, "TERM": "xterm"})
        subprocess.run([*tmux, "new-window", "-t", "t", "sh", "-c", f"sleep 1; {script}"], env=env, timeout=30)
        _until(out.exists, "the decision in the attached pane")
        assert out.read_text().strip() == "DECISION True"
        client.proc.kill()
        client.wait(10)
    finally:
        subprocess.run([*tmux, "kill-server"], env=env, timeout=30, capture_output=True)
