"""The stateful property test of issue #13: which token goes where, and do all paths agree.

One hypothesis ``RuleBasedStateMachine`` over real files (config.toml, accounts.json, the marshal
mirrors, each example in fresh directories), the real Secret Service (gnome-keyring on a private
bus) and two dev IdPs. Rules: log in (two profiles, two users, either IdP, through the TUI's
login: the loopback flow with a person signing in), Bitbucket Pipelines steps of two repositories
on one runner (a CI profile exchanging each step's token), ``use``, ``logout``, edit config.toml by hand
(issuer, client id, git hosts), tokens that come close to their end, a cleaned cache
(lost mirrors), a login result left next to a lock (an old failure, a symlink, garbage), kubectl with flag overrides (``--profile P --issuer … --client-id …``, ad-hoc ``--issuer … --client-id …``), and
kubectl callers racing a ``use`` through the real launcher.

After every step:

- for every profile and every git host, the hot path (``bblogin._hot._answer.kubectl`` /
  ``git_credential_get``) either declines or answers byte for byte what the full command
  (``_cli.run``, no fast path) answers right after it; every answer is a token of the profile's
  own issuer and client;
- every token each IdP ever received is one that IdP issued (the dev IdP's token accounting);
- nothing prints a traceback or an "internal error".

Examples are bounded (``SETTINGS``) so the test runs in CI in well under a minute.

It finds defect 1 when the binding is reverted: with ``_session`` and ``_fast.cached_token`` of
commit 4dfb3ef (before the fix) it fails within the first examples — an edited issuer or a
``--issuer`` override sends the account's refresh token to the other dev IdP, and
``idps_received_only_their_own_tokens`` reports ``[('/token', 'refresh_token')]``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule, run_state_machine_as_test

from bblogin import _cli, _files, _index, _loginresult, _paths
from bblogin._errors import LoginFailed
from bblogin._hot import _answer as _fast
from bblogin._claims import unverified_claims
from bblogin._hot._answer import PIPELINES_ENV
from bblogin.devidp import DevIdP, dex_subject
from tests.fixtures.devidp import sign_in
from tests.test_session import make_expiring

PROFILES = ("a", "b")
USERS = ("alice", "bob")
CLIENTS = ("bblogin", "bblogin-ci")
GIT_HOSTS = ("https://git-one.example", "https://git-two.example")
EXEC_INFO = '{"apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}'
SETTINGS = settings(
    max_examples=8,
    stateful_step_count=12,
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),  # no "explain": its tracer slows Python 3.11 tenfold
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)


@contextlib.contextmanager
def captured(stdin: bytes = b"") -> Iterator[tuple[io.TextIOWrapper, io.StringIO]]:
    """stdout as bytes (the git helper writes to its buffer), stderr as text, stdin from ``stdin``."""
    out, err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8"), io.StringIO()
    saved, sys.stdin = sys.stdin, io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            yield out, err
    finally:
        sys.stdin = saved


def output(out: io.TextIOWrapper) -> bytes:
    out.flush()
    return out.buffer.getvalue()  # type: ignore[attr-defined]


def toml_config(profiles: dict[str, dict[str, Any]], git_hosts: dict[str, str]) -> str:
    """config.toml as a person would write it (JSON scalars and string lists are valid TOML)."""
    lines = []
    for name, table in profiles.items():
        lines += [f"[profiles.{name}]", *(f"{key} = {json.dumps(value)}" for key, value in table.items()), ""]
    for url, profile in git_hosts.items():
        lines += [f'[git."{url}"]', f'profile = "{profile}"', ""]
    return "\n".join(lines)


class Bblogin(RuleBasedStateMachine):
    idps: tuple[DevIdP, ...] = ()
    keyring: Any = None

    def __init__(self) -> None:
        super().__init__()
        self.home = tempfile.TemporaryDirectory(prefix="bblogin-model-")
        for name, var in (("config", "BBLOGIN_CONFIG_DIR"), ("state", "BBLOGIN_STATE_DIR"), ("cache", "BBLOGIN_CACHE_DIR")):
            os.makedirs(os.path.join(self.home.name, name))
            os.environ[var] = os.path.join(self.home.name, name)
        self.keyring.clear()
        self.profiles: dict[str, dict[str, Any]] = {}
        self.git_hosts: dict[str, str] = {}
        self.http = httpx.Client(timeout=30)
        self.presented_before = [len(idp.presented_tokens) for idp in self.idps]  # the IdPs outlive an example
        self.step_tokens: dict[str, str] = {}
        self.step_repo: str | None = None
        os.environ.pop(PIPELINES_ENV, None)

    def teardown(self) -> None:
        os.environ.pop(PIPELINES_ENV, None)
        self.http.close()
        self.keyring.clear()
        self.home.cleanup()

    # -- helpers --------------------------------------------------------------------------------
    def write_config(self) -> None:
        """A hand edit: the editor writes a new file over config.toml."""
        path = _paths.config_file()
        with open(path + ".edit", "w", encoding="utf-8") as fh:
            fh.write(toml_config(self.profiles, self.git_hosts))
        os.replace(path + ".edit", path)

    def people_profiles(self) -> list[str]:
        """The profiles people log in with (the CI profile's IdP and client are fixed: its IdP
        must trust the step's issuer, and handing a step token to another IdP is the user's call)."""
        return [name for name in PROFILES if name in self.profiles]

    def accounts(self) -> list[_index.Account]:
        return sorted(_index.load().accounts.values(), key=lambda a: a.id)

    def full(self, argv: list[str], stdin: bytes = b"") -> tuple[int, bytes]:
        with captured(stdin) as (out, err):
            code = _cli.run(argv)
        assert "Traceback" not in err.getvalue() and "internal error" not in err.getvalue(), err.getvalue()
        assert code in (0, 4), f"{argv}: exit {code}: {err.getvalue()}"
        return code, output(out)

    def hot_kubectl(self, argv: list[str]) -> tuple[int | None, bytes]:
        with captured() as (out, err):
            answer = _fast.kubectl(argv)
        assert err.getvalue() == "" and output(out) == b""
        return (None, b"") if answer is None else (0, answer)

    def hot_git(self, request: bytes) -> tuple[int | None, bytes]:
        with captured() as (out, err):
            answer = _fast.git_credential_get(request)
        assert err.getvalue() == "" and output(out) == b""
        return (None, b"") if answer is None else (0, answer)

    def assert_agree(self, hot: tuple[int | None, bytes], full: tuple[int, bytes], what: str) -> None:
        if hot[0] is not None:
            assert hot == full, f"{what}: the hot path answered {hot!r}, the full path {full!r}"

    def assert_issued_for(self, token: str, issuer: str, client_id: str, what: str) -> None:
        claims = unverified_claims(token) or {}
        assert (claims.get("iss"), claims.get("aud")) == (issuer, client_id), f"{what}: served a token of {claims.get('iss')} for {claims.get('aud')}"

    def person_signs_in(self, user: str) -> Any:
        def on_url(url: str) -> None:
            def browse() -> None:
                response = sign_in(self.http, url, user=user)
                self.http.get(response.headers["Location"])  # the redirect back to bblogin's listener

            threading.Thread(target=browse, daemon=True).start()

        return on_url

    # -- rules ----------------------------------------------------------------------------------
    @initialize(idp=st.integers(0, 1), user=st.sampled_from(USERS), url=st.sampled_from(GIT_HOSTS))
    def first_login(self, idp: int, user: str, url: str) -> None:
        self.git_hosts[url] = "a"
        self.login(idp, "a", user)

    @rule(idp=st.integers(0, 1), name=st.sampled_from(PROFILES), user=st.sampled_from(USERS))
    def login(self, idp: int, name: str, user: str) -> None:
        from bblogin.tui.source import CoreSource

        self.profiles[name] = {"issuer": self.idps[idp].issuer, "client_id": "bblogin", "connector_id": "bitbucket-cloud", "flow": "loopback"}
        self.write_config()
        self.idps[idp].default_user = user  # who the Bitbucket double signs in
        with captured():
            label = CoreSource().login(name, on_prompt=lambda _prompt: None, on_url=self.person_signs_in(user))
        assert label.startswith(user + "@")

    @precondition(lambda self: self.accounts())
    @rule(data=st.data())
    def use(self, data: st.DataObject) -> None:
        account = data.draw(st.sampled_from(self.accounts()))
        assert self.full(["use", account.id])[0] == 0

    @precondition(lambda self: self.accounts())
    @rule(data=st.data())
    def logout(self, data: st.DataObject) -> None:
        account = data.draw(st.sampled_from(self.accounts()))
        assert self.full(["logout", account.id])[0] == 0

    @precondition(lambda self: self.profiles)
    @rule(data=st.data(), idp=st.integers(0, 1))
    def edit_issuer(self, data: st.DataObject, idp: int) -> None:
        self.profiles[data.draw(st.sampled_from(self.people_profiles()))]["issuer"] = self.idps[idp].issuer
        self.write_config()

    @precondition(lambda self: self.profiles)
    @rule(data=st.data(), client=st.sampled_from(CLIENTS))
    def edit_client_id(self, data: st.DataObject, client: str) -> None:
        self.profiles[data.draw(st.sampled_from(self.people_profiles()))]["client_id"] = client
        self.write_config()

    @precondition(lambda self: self.profiles)
    @rule(data=st.data())
    def token_expiry(self, data: st.DataObject) -> None:
        """A profile's cached tokens come within the refresh margin of their end: the next use refreshes."""
        make_expiring(data.draw(st.sampled_from(sorted(self.profiles))))

    @precondition(lambda self: self.profiles)
    @rule(url=st.sampled_from(GIT_HOSTS), data=st.data(), remove=st.booleans())
    def edit_git_host(self, url: str, data: st.DataObject, remove: bool) -> None:
        if remove:
            self.git_hosts.pop(url, None)
        else:
            self.git_hosts[url] = data.draw(st.sampled_from(self.people_profiles()))
        self.write_config()

    @rule(repo=st.sampled_from(("a", "b")))
    def ci_step(self, repo: str) -> None:
        """A Bitbucket Pipelines step of repository ``repo`` starts on a runner whose state dir
        survives across steps (``oidc: true``: BITBUCKET_STEP_OIDC_TOKEN is the step's token)."""
        self.profiles["ci"] = {
            "issuer": self.idps[0].issuer, "client_id": "bblogin-ci", "client_secret": "bblogin-ci-secret", "pipelines": True,
            "exchange_connector_id": "bitbucket-pipelines", "scopes": ["openid", "groups"],
        }
        self.write_config()
        if repo not in self.step_tokens:
            self.step_tokens[repo] = self.idps[0].mint_pipelines_token(repository_uuid=f"{{repo-{repo}}}", step_uuid=f"{{step-{repo}}}")
        os.environ[PIPELINES_ENV] = self.step_tokens[repo]
        self.step_repo = repo

    @rule(which=st.sampled_from(("config.marshal", "accounts.marshal")))
    def cache_cleaned(self, which: str) -> None:
        """Something empties ~/.cache (a cleaner, a full disk's victim): the next full-path call
        rebuilds the mirror, under the lock, from exactly the file it reads."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(_paths.cache_dir(), which))

    @precondition(lambda self: self.profiles)
    @rule(data=st.data(), idp=st.integers(0, 1), client=st.sampled_from(CLIENTS), adhoc=st.booleans())
    def kubectl_with_flag_overrides(self, data: st.DataObject, idp: int, client: str, adhoc: bool) -> None:
        name = data.draw(st.sampled_from(self.people_profiles()))
        argv = ["--issuer", self.idps[idp].issuer, "--client-id", client]
        if not adhoc:
            argv = ["--profile", name, *argv]
        hot = self.hot_kubectl(argv)
        full = self.full(["kubectl", *argv])
        self.assert_agree(hot, full, f"kubectl {' '.join(argv)}")
        if full[0] == 0:
            self.assert_issued_for(json.loads(full[1])["status"]["token"], self.idps[idp].issuer, client, f"kubectl {' '.join(argv)}")

    @precondition(lambda self: self.profiles)
    @rule(data=st.data())
    def kubectl_callers_race_a_use(self, data: st.DataObject) -> None:
        """Four kubectl processes through the real launcher while `use` switches the account."""
        name = data.draw(st.sampled_from(sorted(self.profiles)))
        candidates = [a for a in self.accounts() if a.profile == name]
        command = _cli.launcher_command("kubectl", "--profile", name)
        env = {**os.environ, "KUBERNETES_EXEC_INFO": EXEC_INFO}
        with ThreadPoolExecutor(4) as pool:
            calls = [pool.submit(subprocess.run, command, capture_output=True, timeout=60, env=env, stdin=subprocess.DEVNULL) for _ in range(4)]
            if candidates:
                self.use(data)
            results = [c.result() for c in calls]
        profile = self.profiles[name]
        for done in results:
            assert b"Traceback" not in done.stderr and b"internal error" not in done.stderr, done.stderr
            assert done.returncode in (0, 4), done.stderr
            if done.returncode == 0:
                self.assert_issued_for(json.loads(done.stdout)["status"]["token"], profile["issuer"], profile["client_id"], f"kubectl --profile {name}")

    @rule(data=st.data(), left=st.sampled_from(("failure", "symlink", "garbage")))
    def login_result_left_behind(self, data: st.DataObject, left: str) -> None:
        """What a login that failed under a lock long ago leaves next to it (or a file planted
        there): no later call may take it as its own result, nor be led by it to a token."""
        keys = [a.id for a in self.accounts()] + [f"profile-{name}" for name in PROFILES]
        key = data.draw(st.sampled_from(keys))
        path = os.path.join(_files.ensure_private_dir(_paths.locks_dir()), f"{key}.login")
        if left == "failure":
            _loginresult.publish(key, LoginFailed("the identity provider ended the sign-in: access_denied"))
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            if left == "symlink":
                os.symlink(_paths.accounts_file(), path)
            else:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                os.write(fd, b'{"v": 1, "generation": ')
                os.close(fd)
        for name in self.people_profiles():
            make_expiring(name)  # so the next calls take the lock (refresh) and meet what was left there

    # -- invariants -----------------------------------------------------------------------------
    @invariant()
    def hot_path_declines_or_answers_as_the_full_path(self) -> None:
        config = tomllib.loads(toml_config(self.profiles, self.git_hosts))
        for name, profile in config.get("profiles", {}).items():
            argv = ["--profile", name]
            hot = self.hot_kubectl(argv)
            full = self.full(["kubectl", *argv])
            self.assert_agree(hot, full, f"kubectl --profile {name}")
            if full[0] == 0:
                token = json.loads(full[1])["status"]["token"]
                self.assert_issued_for(token, profile["issuer"], profile["client_id"], f"kubectl --profile {name}")
                if profile.get("pipelines"):
                    step = f"{{repo-{self.step_repo}}}:{{step-{self.step_repo}}}"
                    assert unverified_claims(token)["sub"] == dex_subject(step, "bitbucket-pipelines"), f"step {step} got another step's exchanged token"
        for url in GIT_HOSTS:
            request = f"protocol=https\nhost={url.split('://')[1]}\n\n".encode()
            hot = self.hot_git(request)
            full = self.full(["git-credential", "get"], request)
            self.assert_agree(hot, full, f"git-credential get {url}")
            if url not in self.git_hosts:
                assert full == (0, b""), f"answered for {url}, which config.toml does not name"

    @invariant()
    def idps_received_only_their_own_tokens(self) -> None:
        for idp, since in zip(self.idps, self.presented_before, strict=True):
            foreign = idp.foreign_tokens(since)
            assert foreign == [], f"{idp.issuer} received tokens it never issued: {foreign}"


@pytest.mark.timeout(600)  # a failure is shrunk, which replays examples
@pytest.mark.usefixtures("bblogin_home")
def test_model(keyring_secret_service, devidp_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    for var, value in (("KUBERNETES_EXEC_INFO", EXEC_INFO), ("GIT_TERMINAL_PROMPT", "0"), ("BROWSER", "true")):
        monkeypatch.setenv(var, value)
    for var in ("BBLOGIN_CONFIG_DIR", "BBLOGIN_STATE_DIR", "BBLOGIN_CACHE_DIR"):
        monkeypatch.setenv(var, os.environ[var])  # restored after the examples replace them
    monkeypatch.setattr(Bblogin, "idps", (devidp_factory(), devidp_factory()))
    monkeypatch.setattr(Bblogin, "keyring", keyring_secret_service)
    run_state_machine_as_test(Bblogin, settings=SETTINGS)
