"""The stateful property test of issue #13: which token goes where, and do all paths agree.

One hypothesis ``RuleBasedStateMachine`` over real files (config.toml, accounts.json, the marshal
mirrors, each example in fresh directories), the real Secret Service (gnome-keyring on a private
bus) and two dev IdPs. Rules: log in (two profiles, two users, either IdP, through the TUI's
login: the loopback flow with a person signing in), Bitbucket Pipelines steps of two repositories
on one runner (a CI profile exchanging each step's token), ``use``, ``logout`` (of an account, and
``--profile P``), edit config.toml by hand (issuer, client id, scopes, git hosts in any spelling, a
deleted profile), tokens that come close to their end, a cleaned cache
(lost mirrors), a login result left next to a lock (an old failure, a symlink, garbage), kubectl with flag overrides (``--profile P --issuer … --client-id …``, ad-hoc ``--issuer … --client-id …``), and
kubectl callers racing a ``use`` through the real launcher; and outages (issue #24): an IdP behind
the fault injector (tests/fixtures/faults.py) refuses, resets or answers 503 for a while, tokens
sit inside the margin, below the outage floor or past their end, backoff windows end, and
``bblogin refresh`` forces a refresh; and a Google client library running ``bblogin gcp`` with an
output_file (issue #26).

After every step:

- for every profile and every git host, the hot path (``bblogin._hot._answer.kubectl`` /
  ``git_credential_get``) either declines or answers byte for byte what the full command
  (``_cli.run``, no fast path) answers right after it; every answer is a token of the profile's
  own issuer and client;
- every token a profile is served was obtained with that profile's own scopes (the two profiles
  share an IdP and client, with the same scopes in another order or without ``groups``: issue #22);
- ``logout --profile P`` leaves every other profile that worked working;
- every token each IdP ever received is one that IdP issued (the dev IdP's token accounting);
- nothing prints a traceback or an "internal error";
- a Google output file the library would reuse holds a token of its profile's active account,
  whatever ``use``, ``logout`` and logins did since bblogin wrote it;
- outages: a token that is still valid (``_outage.FLOOR`` seconds beyond now) of a live grant is
  always served; a served token is never one that has expired (or lives less than the floor); and
  no call contacts an IdP for an account whose backoff window is open — one attempt (with the full
  retries only when nothing could be served) per window — while every failed attempt opens one.

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
import time
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule, run_state_machine_as_test

from bblogin import _cli, _config, _files, _index, _loginresult, _outage, _paths
from bblogin._errors import LoginFailed
from bblogin._hot import _answer as _fast
from bblogin._claims import unverified_claims
from bblogin._hot._answer import PIPELINES_ENV, adhoc_profile_name
from bblogin._shape import DEFAULT_OIDC_SCOPES, shape_of
from bblogin.devidp import DevIdP, dex_subject
from tests.fixtures.devidp import sign_in
from tests.fixtures.background_refresh import killed_after_the_post, settle_background_refreshes
from tests.fixtures.faults import FaultProxy
from tests.test_session import make_expiring

PROFILES = ("a", "b")
# what a profile asks for: None is the default (openid email profile groups offline_access); the
# second and third are one request in two orders (one profile per cluster); the last has no groups
SCOPE_SETS = (None, ("openid", "email", "groups", "offline_access"), ("offline_access", "groups", "email", "openid"), ("openid", "email", "offline_access"))
USERS = ("alice", "bob")
CLIENTS = ("bblogin", "bblogin-ci")
ADHOC_SCOPES = ((), ("openid", "email", "offline_access"))  # a flags entry's --scope values: the defaults, or fewer
GIT_HOSTS = ("https://git-one.example", "https://git-two.example")
FAULTS = ("refuse", "reset", "503")  # a hang costs a needed refresh the full timeout: the rule idp_hangs_during_an_early_refresh has it
MAX_BURST = 3  # one attempt, with the full retries (two) when no valid token can be served
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


def toml_config(profiles: dict[str, dict[str, Any]], git_hosts: dict[str, str], spellings: dict[str, str] | None = None) -> str:
    """config.toml as a person would write it (JSON scalars and string lists are valid TOML); a
    git host key spelled as the person wrote it (``spellings``: any case, a default port, a slash)."""
    lines = []
    for name, table in profiles.items():
        lines += [f"[profiles.{name}]", *(f"{key} = {json.dumps(value)}" for key, value in table.items()), ""]
    for url, profile in git_hosts.items():
        lines += [f'[git."{(spellings or {}).get(url, url)}"]', f'profile = "{profile}"', ""]
    return "\n".join(lines)


def spell(url: str, how: str) -> str:
    """``url`` as people also write it; _config.normalize_git_url makes each the same key."""
    scheme, host = url.split("://")
    return {"as is": url, "upper": f"{scheme.upper()}://{host.upper()}", "port": f"{url}:443", "slash": f"{url}/"}[how]


def rfc3339_seconds(value: str) -> float:
    import calendar

    return calendar.timegm(time.strptime(value, "%Y-%m-%dT%H:%M:%SZ"))


class Bblogin(RuleBasedStateMachine):
    idps: tuple[DevIdP, ...] = ()
    proxies: tuple[FaultProxy, ...] = ()
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
        self.spellings: dict[str, str] = {}
        self.http = httpx.Client(timeout=30)
        self.presented_before = [len(idp.presented_tokens) for idp in self.idps]  # the IdPs outlive an example
        self.step_tokens: dict[str, str] = {}
        self.step_repo: str | None = None
        self.last_err = ""
        for proxy in self.proxies:
            proxy.mode = "up"
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
            fh.write(toml_config(self.profiles, self.git_hosts, self.spellings))
        os.replace(path + ".edit", path)

    def people_profiles(self) -> list[str]:
        """The profiles people log in with (the CI profile's IdP and client are fixed: its IdP
        must trust the step's issuer, and handing a step token to another IdP is the user's call)."""
        return [name for name in PROFILES if name in self.profiles]

    def accounts(self) -> list[_index.Account]:
        return sorted(_index.load().accounts.values(), key=lambda a: a.id)

    def down(self) -> bool:
        """An IdP is down, or was when an account's last attempt failed (its window may still be open)."""
        return any(proxy.mode != "up" for proxy in self.proxies) or any(a.outage for a in self.accounts())

    def full(self, argv: list[str], stdin: bytes = b"", allowed: tuple[int, ...] | None = None) -> tuple[int, bytes]:
        with captured(stdin) as (out, err):
            code = _cli.run(argv)
        settle_background_refreshes()  # an early refresh the call left to its detached child is part of the call
        self.last_err = err.getvalue()
        assert "Traceback" not in err.getvalue() and "internal error" not in err.getvalue(), err.getvalue()
        if allowed is None:
            allowed = (0, 4, 5) if self.down() else (0, 4)  # 5: an IdP is down and nothing valid is cached
        assert code in allowed, f"{argv}: exit {code}: {err.getvalue()}"
        return code, output(out)

    def hot_kubectl(self, argv: list[str]) -> tuple[int | None, bytes]:
        with captured() as (out, err):
            answer = _fast.kubectl(argv)
        self.hot_err = err.getvalue()
        assert output(out) == b"" and (answer is not None or self.hot_err == "")
        return (None, b"") if answer is None else (0, answer)

    def hot_git(self, request: bytes) -> tuple[int | None, bytes]:
        with captured() as (out, err):
            answer = _fast.git_credential_get(request)
        self.hot_err = err.getvalue()
        assert output(out) == b"" and (answer is not None or self.hot_err == "")
        return (None, b"") if answer is None else (0, answer)

    def assert_agree(self, hot: tuple[int | None, bytes], full: tuple[int, bytes], what: str) -> None:
        if hot[0] is not None:
            assert hot == full, f"{what}: the hot path answered {hot!r}, the full path {full!r}"
            assert self.hot_err == self.last_err, f"{what}: the hot path said {self.hot_err!r}, the full path {self.last_err!r}"

    # -- outages ----------------------------------------------------------------------------------
    def idp_of(self, issuer: str) -> int | None:
        return next((i for i, idp in enumerate(self.idps) if idp.issuer == issuer), None)

    def account_for(self, name: str) -> _index.Account | None:
        """The account the full path would use for profile ``name`` (None: none, or a CI one)."""
        from bblogin._session import visible_account

        if name not in self.people_profiles():
            return None
        try:
            return visible_account(_index.load(), _config.load().profile(name))
        except Exception:  # noqa: BLE001  # a profile the config no longer has: no account to judge
            return None

    def contacted(self, account: _index.Account | None, call: Any, kind: str = "id_token") -> tuple[Any, int]:
        """``call()`` (which wants ``account``'s ``kind`` token) and how many connections it
        opened to ``account``'s IdP; asserts the outage rules: none while its backoff window is
        open, at most one burst otherwise, and a failed attempt opens a window."""
        if account is None or self.idp_of(account.issuer) is None:
            return call(), 0
        proxy = self.proxies[self.idp_of(account.issuer)]  # type: ignore[index]
        window = _outage.waiting(account)
        expires_at = account.expires_at(kind)
        needed = expires_at is None or expires_at - account.idp_now() < _outage.FLOOR + 2  # a new token, or one about to be (IdP time)
        # No detached refresh is at work between steps: a provisional window without ``sent`` lets
        # a call that needs a new token refresh past it; one with ``sent`` is a lost answer, whose
        # window holds for every call.
        provisional = window is not None and window.in_flight and not window.sent and needed
        known = _outage.of(account) is not None and proxy.mode != "up"  # a known outage that goes on
        open_for = window.retry_at - time.time() if window is not None else 0.0
        before = proxy.connections
        result = call()
        made = proxy.connections - before
        if open_for > 1.0 and not provisional:  # (a window about to close may close during the call)
            assert made == 0, f"{made} connection(s) to {account.issuer} inside the backoff window of {account.id}"
        assert made <= (1 if known else MAX_BURST), f"{made} connections to {account.issuer} in one call (known outage: {known})"
        after = _index.load().accounts.get(account.id)
        if made and proxy.mode != "up" and after is not None and not after.refresh_dead:
            assert _outage.waiting(after) is not None, f"a failed attempt for {account.id} opened no backoff window"
        return result, made

    def assert_valid_is_served(self, account: _index.Account | None, kind: str, code: int, what: str) -> None:
        """A live grant's token that lives beyond the outage floor is always served — unless the
        call itself found the grant refused (dex keeps one refresh token per user and client: a
        login of the same user elsewhere ends it), which ends the login, outage or not."""
        if account is None or account.refresh_dead or not account.has("refresh_token"):
            return
        now = _index.load().accounts.get(account.id)
        if now is None or now.refresh_dead:
            return
        expires_at = account.expires_at(kind)
        if expires_at is not None and expires_at - account.idp_now() > _outage.FLOOR + 2:
            assert code == 0, f"{what}: a token valid {expires_at - account.idp_now()} s more was not served: {self.last_err}"

    def assert_not_expired(self, expiration: float, what: str) -> None:
        assert expiration > time.time() + _outage.FLOOR - 2, f"{what}: served a token that ends at {expiration} (now {time.time()})"

    def assert_issued_for(self, token: str, issuer: str, client_id: str, what: str) -> None:
        claims = unverified_claims(token) or {}
        assert (claims.get("iss"), claims.get("aud")) == (issuer, client_id), f"{what}: served a token of {claims.get('iss')} for {claims.get('aud')}"

    def assert_shaped_for(self, token: str, profile: dict[str, Any], what: str) -> None:
        """The token was obtained with the profile's own scopes: the dev IdP puts ``groups`` and
        ``email`` in an ID token only when they were asked for."""
        claims = unverified_claims(token) or {}
        wanted = set(profile.get("scopes") or ("openid", "email", "profile", "groups", "offline_access"))
        for scope in ("groups", "email"):
            said = "without the {} scope it asks for" if scope in wanted else "with the {} scope it does not ask for"
            assert (scope in claims) == (scope in wanted), f"{what}: served a token obtained {said.format(scope)}"

    def assert_the_active_account_is_served(self, name: str, token: str) -> None:
        """The account `use` or the last login made active is the one served — never another
        account's set that happens to serve the profile (its own set may be of an older shape).
        Unless that account is of another party than the profile's now (config.toml's issuer was
        edited since, or `use` chose a login made at another IdP): then the profile's one serving
        set is served (``_session.visible_account``), and the invariants above judge it."""
        from bblogin._session import issued_for

        active = _index.load().active_account(name)
        if active is not None and not issued_for(active, _config.load().profile(name)):
            return
        sub = (unverified_claims(token) or {}).get("sub")
        assert active is not None and sub == active.sub, f"kubectl --profile {name}: served {sub}, the active account is {active and active.sub}"

    def kubectl_code(self, name: str) -> int:
        return self.full(["kubectl", "--profile", name])[0]

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

    @rule(idp=st.integers(0, 1), name=st.sampled_from(PROFILES), user=st.sampled_from(USERS), scopes=st.sampled_from(SCOPE_SETS))
    def login(self, idp: int, name: str, user: str, scopes: tuple[str, ...] | None = None) -> None:
        from bblogin.tui.source import CoreSource

        if self.proxies[idp].mode != "up":
            return  # a login needs the IdP (tests/test_outage.py: no browser is opened during an outage)
        self.profiles[name] = {"issuer": self.idps[idp].issuer, "client_id": "bblogin", "connector_id": "bitbucket-cloud", "flow": "loopback"}
        if scopes is not None:
            self.profiles[name]["scopes"] = list(scopes)
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

    @precondition(lambda self: self.people_profiles())
    @rule(data=st.data())
    def logout_profile(self, data: st.DataObject) -> None:
        """`logout --profile P`: P's active account leaves P; every other profile that worked
        still works — a profile sharing P's token set (the same request) keeps it."""
        self.logout_of_profile(data.draw(st.sampled_from(self.people_profiles())))

    def logout_of_profile(self, name: str) -> None:
        others = {other: self.kubectl_code(other) for other in self.people_profiles() if other != name}
        with captured() as (_out, err):
            code = _cli.run(["logout", "--profile", name])
        assert code in (0, 3) and "Traceback" not in err.getvalue(), err.getvalue()  # 3: no active account to log out
        for other, before in others.items():
            if before == 0:
                assert self.kubectl_code(other) == 0, f"`logout --profile {name}` logged {other} out too"

    @precondition(lambda self: self.people_profiles())
    @rule(data=st.data(), scopes=st.sampled_from(SCOPE_SETS))
    def edit_scopes(self, data: st.DataObject, scopes: tuple[str, ...] | None) -> None:
        table = self.profiles[data.draw(st.sampled_from(self.people_profiles()))]
        table.pop("scopes", None)
        if scopes is not None:
            table["scopes"] = list(scopes)
        self.write_config()

    @precondition(lambda self: self.people_profiles())
    @rule(data=st.data(), idp=st.integers(0, 1))
    def edit_issuer(self, data: st.DataObject, idp: int) -> None:
        self.profiles[data.draw(st.sampled_from(self.people_profiles()))]["issuer"] = self.idps[idp].issuer
        self.write_config()

    @precondition(lambda self: self.people_profiles())
    @rule(data=st.data(), client=st.sampled_from(CLIENTS))
    def edit_client_id(self, data: st.DataObject, client: str) -> None:
        self.profiles[data.draw(st.sampled_from(self.people_profiles()))]["client_id"] = client
        self.write_config()

    @precondition(lambda self: self.profiles)
    @rule(data=st.data())
    def token_expiry(self, data: st.DataObject) -> None:
        """A profile's cached tokens come within the refresh margin of their end: the next use refreshes."""
        make_expiring(data.draw(st.sampled_from(sorted(self.profiles))))

    @precondition(lambda self: self.people_profiles())
    @rule(url=st.sampled_from(GIT_HOSTS), data=st.data(), remove=st.booleans(), how=st.sampled_from(("as is", "upper", "port", "slash")))
    def edit_git_host(self, url: str, data: st.DataObject, remove: bool, how: str) -> None:
        if remove:
            self.git_hosts.pop(url, None)
        else:
            self.git_hosts[url] = data.draw(st.sampled_from(self.people_profiles()))
            self.spellings[url] = spell(url, how)
        self.write_config()

    @precondition(lambda self: self.people_profiles())
    @rule(data=st.data())
    def delete_profile(self, data: st.DataObject) -> None:
        """A hand edit deletes a profile that git hosts may still name: those hosts fail (exit 3,
        no answer), every other host and every other profile's kubectl go on (the invariant)."""
        del self.profiles[data.draw(st.sampled_from(self.people_profiles()))]
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

    @rule(which=st.sampled_from(("config.marshal", "accounts.marshal", "adhoc.marshal", "config-toml.marshal", "adhoc-json.marshal")))
    def cache_cleaned(self, which: str) -> None:
        """Something empties ~/.cache (a cleaner, a full disk's victim): the next full-path call
        rebuilds the mirror, under the lock, from exactly the file it reads."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(_paths.cache_dir(), which))

    @precondition(lambda self: self.people_profiles())
    @rule(data=st.data(), idp=st.integers(0, 1), client=st.sampled_from(CLIENTS), adhoc=st.booleans(), scopes=st.sampled_from(ADHOC_SCOPES))
    def kubectl_with_flag_overrides(self, data: st.DataObject, idp: int, client: str, adhoc: bool, scopes: tuple[str, ...]) -> None:
        name = data.draw(st.sampled_from(self.people_profiles()))
        argv = ["--issuer", self.idps[idp].issuer, "--client-id", client, *(a for s in scopes for a in ("--scope", s))]
        if not adhoc:
            argv = ["--profile", name, *argv]
        hot = self.hot_kubectl(argv)
        full = self.full(["kubectl", *argv])
        self.assert_agree(hot, full, f"kubectl {' '.join(argv)}")
        if full[0] == 0:
            self.assert_issued_for(json.loads(full[1])["status"]["token"], self.idps[idp].issuer, client, f"kubectl {' '.join(argv)}")

    @rule(idp=st.integers(0, 1), client=st.sampled_from(CLIENTS), scopes=st.sampled_from(ADHOC_SCOPES))
    def kubectl_by_adhoc_name(self, idp: int, client: str, scopes: tuple[str, ...]) -> None:
        """`--profile adhoc-…`, the name a flags-only entry's hint prints (one per request: two
        entries at one IdP asking for other scopes are two profiles): the hot path (from the
        mirror of adhoc-profiles.json) declines or answers as the full path, for that IdP only."""
        self.full(["kubectl", "--issuer", self.idps[idp].issuer, "--client-id", client, *(a for s in scopes for a in ("--scope", s))])  # the entry's own call records the name
        argv = ["--profile", adhoc_profile_name(shape_of("oidc", self.idps[idp].issuer, client, scopes or DEFAULT_OIDC_SCOPES))]
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
        candidates = [a for a in self.accounts() if name in a.profiles]
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
            assert done.returncode in ((0, 4, 5) if self.down() else (0, 4)), done.stderr
            if done.returncode == 0:
                token = json.loads(done.stdout)["status"]["token"]
                self.assert_issued_for(token, profile["issuer"], profile["client_id"], f"kubectl --profile {name}")
                if not profile.get("pipelines"):
                    self.assert_shaped_for(token, profile, f"kubectl --profile {name}")

    @rule(data=st.data(), left=st.sampled_from(("failure", "symlink", "garbage")))
    def login_result_left_behind(self, data: st.DataObject, left: str) -> None:
        """What a login that failed under a lock long ago leaves next to it (or a file planted
        there): no later call may take it as its own result, nor be led by it to a token."""
        keys = {a.id: tuple(a.profiles) for a in self.accounts()} | {f"profile-{name}": (name,) for name in PROFILES}
        key = data.draw(st.sampled_from(sorted(keys)))
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
        for name in sorted(set(keys[key]) & set(self.people_profiles())):
            make_expiring(name)  # so the next calls take the lock (refresh) and meet what was left there

    @rule(idp=st.integers(0, 1), fault=st.sampled_from(FAULTS))
    def idp_fails(self, idp: int, fault: str) -> None:
        """The IdP (or its load balancer) goes down: connections refused, reset, or 503."""
        self.proxies[idp].mode = fault

    @precondition(lambda self: self.people_profiles())
    @rule(data=st.data())
    def idp_hangs_during_an_early_refresh(self, data: st.DataObject) -> None:
        """The IdP takes the refresh request and never answers while the caller's token is inside
        its margin: kubectl is served the cached token at once (the refresh goes on in a detached
        child, which awaits the answer and records the outage), with one attempt."""
        name = data.draw(st.sampled_from(self.people_profiles()))
        make_expiring(name, seconds_left=45)
        account = self.account_for(name)
        if account is None or self.idp_of(account.issuer) is None:
            return
        proxy = self.proxies[self.idp_of(account.issuer)]  # type: ignore[index]
        mode, proxy.mode = proxy.mode, "hang"
        try:
            before, start = proxy.connections, time.monotonic()
            with captured() as (out, err):
                code = _cli.run(["kubectl", "--profile", name])
            took = time.monotonic() - start
            settle_background_refreshes()
            made = proxy.connections - before
        finally:
            proxy.mode = mode
        assert "Traceback" not in err.getvalue(), err.getvalue()
        self.last_err = err.getvalue()
        self.assert_valid_is_served(account, "id_token", code, f"kubectl --profile {name} with the IdP hanging")
        if code == 0:
            self.assert_not_expired(rfc3339_seconds(json.loads(output(out))["status"]["expirationTimestamp"]), f"kubectl --profile {name}")
        window = _outage.waiting(account)
        if window is not None and window.retry_at - time.time() > 1.0:
            assert made == 0, f"{made} connection(s) inside the backoff window of {account.id}"
        assert made <= 1, f"{made} connections for one early refresh against a hanging IdP"
        if code == 0 and account.has("refresh_token") and not account.refresh_dead and mode != "refuse":
            assert took < 3.0, f"kubectl waited {took:.1f} s for a hanging IdP although its token was valid"
        after = _index.load().accounts.get(account.id)
        if made and after is not None and not after.refresh_dead:
            assert _outage.waiting(after) is not None and not after.outage.get("in_flight"), f"the hung attempt for {account.id} opened no backoff window: {after.outage}"

    @precondition(lambda self: self.people_profiles())
    @rule(data=st.data(), caller_left=st.booleans())
    def background_refresh_killed_after_its_post(self, data: st.DataObject, caller_left: bool) -> None:
        """The IdP takes an early refresh's POST (it may rotate the refresh token) and the
        detached child is killed before the answer arrives — while kubectl still waits for it, or
        after kubectl left with its cached token: the cached token is served, the old refresh
        token is not sent a second time, and the loss opens a backoff window — at once for the
        waiting caller; for one that left, when the next call under the lock finds the child's
        mark (``sent``: until then the invariants' calls send nothing either)."""
        self.answer_lost_after_the_post(data.draw(st.sampled_from(self.people_profiles())), caller_left)

    def answer_lost_after_the_post(self, name: str, caller_left: bool = False) -> bool:
        """The rule for profile ``name``; whether a detached refresh was killed."""
        from bblogin import _background

        make_expiring(name, seconds_left=45)
        account = self.account_for(name)
        at = self.idp_of(account.issuer) if account is not None else None
        if account is None or at is None or self.proxies[at].mode != "up":
            return False
        idp, proxy = self.idps[at], self.proxies[at]
        posts = idp.count("/token", "refresh_token")
        wait, hold = _background.WAIT, proxy.hold
        _background.WAIT, proxy.mode, proxy.hold = wait if caller_left else 30.0, "slow", 20.0  # the answer held back; the caller waits, or leaves after WAIT
        try:
            after_it_left = time.time() + wait + 1.0 if caller_left else None  # killed once the caller has served its cached token and left
            with killed_after_the_post(lambda: idp.count("/token", "refresh_token"), after_it_left) as killed, captured() as (out, err):
                code = _cli.run(["kubectl", "--profile", name])
                deadline = time.monotonic() + 15
                while caller_left and not killed and time.monotonic() < deadline:  # the caller left; its child's POST is still to reach the IdP
                    time.sleep(0.05)
            settle_background_refreshes()
        finally:
            _background.WAIT, proxy.mode, proxy.hold = wait, "up", hold
        self.last_err = err.getvalue()
        assert "Traceback" not in self.last_err, self.last_err
        self.assert_valid_is_served(account, "id_token", code, f"kubectl --profile {name} with its background refresh killed")
        if code == 0:
            self.assert_not_expired(rfc3339_seconds(json.loads(output(out))["status"]["expirationTimestamp"]), f"kubectl --profile {name}")
        assert idp.count("/token", "refresh_token") <= posts + 1, f"the refresh token of {account.id} was sent again after its background refresh died"
        after = _index.load().accounts.get(account.id)
        if killed and after is not None and not after.refresh_dead:
            window = _outage.waiting(after)
            if caller_left:
                assert window is not None and window.in_flight and window.sent, f"the killed child of {account.id} left no mark of its sent request: {after.outage}"
            else:
                assert window is not None and window.cause == _outage.ANSWER_LOST, f"the lost answer for {account.id} opened no backoff window: {after.outage}"
        return bool(killed)

    def lost_answer_settled(self, name: str, refreshes: int) -> None:
        """After the next call found a killed child's mark: a backoff window of the lost answer,
        and still ``refreshes`` refresh requests at the IdP — none sent again."""
        account = self.account_for(name)
        assert account is not None
        window = _outage.waiting(account)
        assert window is not None and not window.in_flight and window.cause == _outage.ANSWER_LOST, f"the mark of {account.id} was not settled: {account.outage}"
        at = self.idp_of(account.issuer)
        assert at is not None and self.idps[at].count("/token", "refresh_token") == refreshes, "the refresh token was sent again after its answer was lost"

    @precondition(lambda self: self.people_profiles())
    @rule(data=st.data(), expired=st.booleans())
    def background_refresh_killed_midway(self, data: st.DataObject, expired: bool) -> None:
        """A detached refresh was killed (kill -9, OOM, its LIFETIME) after its caller recorded the
        provisional window and before it replaced it: the ``in_flight`` record is left, with no
        refresh at work. A valid token is served as before (the invariants); an expired one makes
        one attempt — and with the IdP up it is refreshed — instead of failing until the record ends."""
        self.provisional_window_left(data.draw(st.sampled_from(self.people_profiles())), expired)

    def provisional_window_left(self, name: str, expired: bool) -> None:
        account = self.account_for(name)
        if account is None:
            return
        now = time.time()
        with _index.transaction() as index:
            current = index.accounts.get(account.id)
            if current is None:
                return
            earlier = _outage.of(current)
            failures = earlier.failures if earlier is not None and not earlier.in_flight else 0
            current.outage = {"since": now - 5, "failures": failures, "cause": "no answer within 1.2 s", "retry_at": now + _outage.IN_FLIGHT, "in_flight": True}
        if not expired:
            return
        make_expiring(name, seconds_left=-30)
        account = self.account_for(name)
        if account is None:
            return
        at = self.idp_of(account.issuer)
        if at is None:
            return
        refreshes = self.idps[at].count("/token", "refresh_token")
        (code, _out), _made = self.contacted(account, lambda: self.full(["kubectl", "--profile", name]))
        after = _index.load().accounts.get(account.id)
        if self.proxies[at].mode == "up" and after is not None and not after.refresh_dead and after.has("refresh_token"):
            assert code == 0, f"kubectl --profile {name}: an expired token was not refreshed past a provisional window no refresh holds (exit {code}): {self.last_err}"
            assert self.idps[at].count("/token", "refresh_token") == refreshes + 1, "not one refresh past a provisional window"

    @rule(idp=st.integers(0, 1))
    def idp_recovers(self, idp: int) -> None:
        self.proxies[idp].mode = "up"

    @precondition(lambda self: self.people_profiles())
    @rule(data=st.data(), refusal=st.sampled_from(((401, "invalid_client"), (400, "unauthorized_client"), (400, "invalid_scope"))))
    def idp_refuses_the_client(self, data: st.DataObject, refusal: tuple[int, str]) -> None:
        """The IdP refuses this client (a rotated secret, a changed registration) on one refresh:
        not an outage — the call ends with the refusal, no window opens, the record is as before."""
        name = data.draw(st.sampled_from(self.people_profiles()))
        account = self.account_for(name)
        if account is None or account.refresh_dead or self.idp_of(account.issuer) is None or self.proxies[self.idp_of(account.issuer)].mode != "up":  # type: ignore[index]
            return
        idp = self.idps[self.idp_of(account.issuer)]  # type: ignore[index]
        make_expiring(name, seconds_left=45)
        before = _index.load().accounts[account.id].outage
        idp.fail_next("/token", refusal[0], json.dumps({"error": refusal[1], "error_description": "no \x1b[31m"}), count=1)
        try:
            with captured() as (_out, err):
                code = _cli.run(["token", "--profile", name, "--no-login"])
        finally:
            idp.fail_next("/token", 200, "", count=0)
        after = _index.load().accounts.get(account.id)
        assert "Traceback" not in err.getvalue() and code in (0, 4, 5), err.getvalue()  # 0: served inside a window; 4: no refresh token
        if code == 5:
            assert refusal[1] in err.getvalue() and "the identity provider is failing" not in err.getvalue(), err.getvalue()
        assert after is not None and after.outage == before, f"a refusal changed the outage record: {after.outage if after else None}"

    @precondition(lambda self: self.accounts())
    @rule(data=st.data(), damage=st.sampled_from(("nan", "inf", "huge", "string", "count")))
    def outage_record_damaged(self, data: st.DataObject, damage: str) -> None:
        """An edited or corrupt accounts.json: the outage field holds NaN, Infinity, 1e300, a
        string or an absurd count — no record, never a crash (the invariants then call both paths)."""
        target = data.draw(st.sampled_from(sorted(a.id for a in self.accounts())))
        now = time.time()
        value = {
            "nan": {"since": float("nan"), "failures": 1, "cause": "x", "retry_at": now + 60},
            "inf": {"since": now, "failures": float("inf"), "cause": "x", "retry_at": now + 60},
            "huge": {"since": 1e300, "failures": 1, "cause": "x", "retry_at": 1e300},
            "string": "soon",
            "count": {"since": now, "failures": 10**300, "cause": "x", "retry_at": now - 1},
        }[damage]
        with _index.transaction() as index:
            if target in index.accounts:
                index.accounts[target].outage = value

    @rule()
    def backoff_windows_end(self) -> None:
        """Time passes beyond every backoff window (their ends are moved to now)."""
        with _index.transaction() as index:
            for account in index.accounts.values():
                if isinstance(account.outage, dict):  # (a damaged record may be anything)
                    account.outage["retry_at"] = time.time() - 1

    @precondition(lambda self: self.profiles)
    @rule(data=st.data(), seconds_left=st.sampled_from((45, 5, -30)))
    def token_near_its_end(self, data: st.DataObject, seconds_left: int) -> None:
        """Inside the margin but valid (45 s), below the outage floor (5 s), or expired."""
        make_expiring(data.draw(st.sampled_from(sorted(self.profiles))), seconds_left=seconds_left)

    @precondition(lambda self: self.people_profiles())
    @rule(data=st.data())
    def forced_refresh(self, data: st.DataObject) -> None:
        """`bblogin refresh`: now, whatever the backoff window says (so not counted as a storm)."""
        name = data.draw(st.sampled_from(self.people_profiles()))
        with captured() as (_out, err):
            code = _cli.run(["refresh", "--profile", name])
        assert "Traceback" not in err.getvalue() and code in (0, 3, 4, 5, 7), err.getvalue()
        if code == 0:
            account = self.account_for(name)
            assert account is not None and account.outage is None, "a refresh that worked left the outage recorded"

    # -- invariants -----------------------------------------------------------------------------
    @invariant()
    def hot_path_declines_or_answers_as_the_full_path(self) -> None:
        config = tomllib.loads(toml_config(self.profiles, self.git_hosts))
        for name, profile in config.get("profiles", {}).items():
            argv = ["--profile", name]
            account = self.account_for(name)
            hot = self.hot_kubectl(argv)
            full, _made = self.contacted(account, lambda argv=argv: self.full(["kubectl", *argv]))
            self.assert_agree(hot, full, f"kubectl --profile {name}")
            self.assert_valid_is_served(account, "id_token", full[0], f"kubectl --profile {name}")
            if full[0] == 0:
                self.assert_not_expired(rfc3339_seconds(json.loads(full[1])["status"]["expirationTimestamp"]), f"kubectl --profile {name}")
                token = json.loads(full[1])["status"]["token"]
                self.assert_issued_for(token, profile["issuer"], profile["client_id"], f"kubectl --profile {name}")
                if not profile.get("pipelines"):
                    self.assert_shaped_for(token, profile, f"kubectl --profile {name}")
                    self.assert_the_active_account_is_served(name, token)
                if profile.get("pipelines"):
                    step = f"{{repo-{self.step_repo}}}:{{step-{self.step_repo}}}"
                    assert unverified_claims(token)["sub"] == dex_subject(step, "bitbucket-pipelines"), f"step {step} got another step's exchanged token"
        for url in GIT_HOSTS:
            request = f"protocol=https\nhost={url.split('://')[1]}\n\n".encode()
            hot = self.hot_git(request)
            gone = url in self.git_hosts and self.git_hosts[url] not in self.profiles
            account = self.account_for(self.git_hosts[url]) if url in self.git_hosts and not gone else None
            full, _made = self.contacted(account, lambda request=request, gone=gone: self.full(["git-credential", "get"], request, allowed=(3,) if gone else None), "access_token")
            self.assert_agree(hot, full, f"git-credential get {url}")
            self.assert_valid_is_served(account, "access_token", full[0], f"git-credential get {url}")
            if url not in self.git_hosts:
                assert full == (0, b""), f"answered for {url}, which config.toml does not name"
            if gone:
                assert hot[0] is None and full[1] == b"", f"{url} names a deleted profile, yet got an answer"

    @precondition(lambda self: self.people_profiles())
    @rule(data=st.data())
    def google_library_runs_bblogin_gcp(self, data: st.DataObject) -> None:
        """A Google client library runs `bblogin gcp --profile P` non-interactively with an
        output_file (issue #26): bblogin writes its answer there, and the library reuses it."""
        if os.environ.get(PIPELINES_ENV):
            return  # in a step `bblogin gcp` hands over the step token, not the profile's
        name = data.draw(st.sampled_from(self.people_profiles()))
        library = {"GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/pool/providers/dex", "GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE": "0", "GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE": self.gcp_file(name)}
        os.environ.update(library)
        try:
            with captured() as (_out, err):
                code = _cli.run(["gcp", "--profile", name])
        finally:
            for var in library:
                del os.environ[var]
        assert "Traceback" not in err.getvalue() and code in (0, 4, 5), err.getvalue()

    def gcp_file(self, name: str) -> str:
        return os.path.join(self.home.name, f"gcp-answer-{name}.json")

    @invariant()
    def google_output_files_hold_only_what_bblogin_would_hand_out(self) -> None:
        """An output file the library would reuse holds a token of the profile's active account,
        whatever `use`, `logout` and logins did since it was written (bblogin/_gcpfiles.py)."""
        from bblogin._tokens import account_id

        index = _index.load()
        for name in PROFILES:
            try:
                with open(self.gcp_file(name), encoding="utf-8") as fh:
                    answer = json.load(fh)
            except FileNotFoundError:
                continue
            if not answer.get("success") or answer["expiration_time"] < time.time():
                continue  # the library runs bblogin again
            claims = unverified_claims(answer["id_token"]) or {}
            owner = account_id(claims.get("iss"), claims.get("aud"), claims.get("sub"))
            member = any(a.identity == owner and name in a.profiles for a in index.accounts.values())
            active = index.accounts.get(index.active.get(name, ""))
            assert member and (active is None or active.identity == owner), f"the output file of {name} holds a token of {owner}, active is {active and active.identity}"

    @invariant()
    def idps_received_only_their_own_tokens(self) -> None:
        for idp, since in zip(self.idps, self.presented_before, strict=True):
            foreign = idp.foreign_tokens(since)
            assert foreign == [], f"{idp.issuer} received tokens it never issued: {foreign}"


def machine(keyring: Any, outage_idp: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The state machine's world: environment, two dev IdPs behind their fault injectors, the keyring."""
    for var, value in (("KUBERNETES_EXEC_INFO", EXEC_INFO), ("GIT_TERMINAL_PROMPT", "0"), ("BROWSER", "true")):
        monkeypatch.setenv(var, value)
    for var in ("BBLOGIN_CONFIG_DIR", "BBLOGIN_STATE_DIR", "BBLOGIN_CACHE_DIR"):
        monkeypatch.setenv(var, os.environ[var])  # restored after the examples replace them
    pairs = (outage_idp(), outage_idp())
    monkeypatch.setattr(Bblogin, "idps", tuple(idp for idp, _proxy in pairs))
    monkeypatch.setattr(Bblogin, "proxies", tuple(proxy for _idp, proxy in pairs))
    monkeypatch.setattr(Bblogin, "keyring", keyring)


@pytest.mark.timeout(600)  # a failure is shrunk, which replays examples
@pytest.mark.usefixtures("bblogin_home")
def test_model(keyring_secret_service, outage_idp, monkeypatch: pytest.MonkeyPatch) -> None:
    machine(keyring_secret_service, outage_idp, monkeypatch)
    run_state_machine_as_test(Bblogin, settings=SETTINGS)


@pytest.mark.timeout(300)
@pytest.mark.usefixtures("bblogin_home")
@pytest.mark.parametrize("fault", FAULTS)
def test_model_outage_walk(keyring_secret_service, outage_idp, monkeypatch: pytest.MonkeyPatch, fault: str) -> None:
    """One fixed walk through the outage rules, with every invariant after each step (random
    examples reach a token below the floor inside a window only now and then)."""
    machine(keyring_secret_service, outage_idp, monkeypatch)
    state = Bblogin()
    checks = (state.hot_path_declines_or_answers_as_the_full_path, state.idps_received_only_their_own_tokens)
    refreshes: list[int] = []
    steps = (
        lambda: state.first_login(0, "alice", GIT_HOSTS[0]),
        lambda: state.idp_fails(0, fault),
        lambda: make_expiring("a", seconds_left=45),  # inside the margin, valid: served, one attempt
        lambda: make_expiring("a", seconds_left=5),  # below the floor, window open: fails at once
        state.backoff_windows_end,  # the next call makes one attempt, and opens the next window
        lambda: make_expiring("a", seconds_left=-30),
        lambda: state.idp_recovers(0),
        state.backoff_windows_end,  # back: the next call refreshes once
        lambda: state.provisional_window_left("a", True),  # a killed detached refresh's record: the expired token is refreshed
        lambda: state.answer_lost_after_the_post("a") or pytest.fail("no background refresh was killed"),  # its POST sent, the answer lost: never sent again
        state.backoff_windows_end,  # the stored refresh token, spent by the lost answer: the login has ended
        lambda: state.login(0, "a", "alice"),
        lambda: state.answer_lost_after_the_post("a", caller_left=True) or pytest.fail("no background refresh was killed"),  # its mark is left
        lambda: refreshes.append(state.idps[0].count("/token", "refresh_token")),
        lambda: make_expiring("a", seconds_left=-30),  # a call that needs a new token takes the lock: it settles the mark into the lost answer's window
        lambda: state.lost_answer_settled("a", refreshes[-1]),
        state.backoff_windows_end,
        lambda: state.idp_fails(0, fault),
        lambda: make_expiring("a", seconds_left=45),
    )
    try:
        for step in steps:
            step()
            for check in checks:
                check()
        assert state.proxies[0].connections > 0 or fault == "refuse"
    finally:
        state.teardown()


@pytest.mark.timeout(300)
@pytest.mark.usefixtures("bblogin_home")
def test_model_profiles_sharing_an_idp_walk(keyring_secret_service, outage_idp, monkeypatch: pytest.MonkeyPatch) -> None:
    """One fixed walk through profiles at one IdP (issue #22: random examples put two profiles on
    one IdP, user and scopes only now and then): the same request shares a login and survives the
    other's logout; other scopes get their own tokens; an edited profile is served nothing old."""
    machine(keyring_secret_service, outage_idp, monkeypatch)
    state = Bblogin()
    checks = (state.hot_path_declines_or_answers_as_the_full_path, state.idps_received_only_their_own_tokens)

    def edit_scopes(name: str, scopes: tuple[str, ...]) -> None:
        state.profiles[name]["scopes"] = list(scopes)
        state.write_config()

    steps = (
        lambda: state.first_login(0, "alice", GIT_HOSTS[0]),
        lambda: state.login(0, "b", "alice", None),  # the same request as a: one token set, two members
        lambda: state.logout_of_profile("b"),  # a keeps working
        lambda: state.login(0, "b", "alice", SCOPE_SETS[1]),
        lambda: state.login(0, "a", "alice", SCOPE_SETS[2]),  # the same scopes in another order: shared again
        lambda: state.logout_of_profile("a"),
        lambda: state.login(0, "a", "alice", SCOPE_SETS[3]),  # without groups: its own tokens
        lambda: edit_scopes("b", SCOPE_SETS[3]),  # b now asks what a got: still needs its own login
        lambda: state.logout_of_profile("a"),
        lambda: state.login(0, "a", "bob", SCOPE_SETS[3]),  # alice and bob in a
        lambda: state.login(0, "a", "alice", SCOPE_SETS[3]),
        lambda: edit_scopes("a", SCOPE_SETS[1]),
        lambda: state.login(0, "a", "bob", SCOPE_SETS[1]),  # bob of the new shape; alice's set is of the old one
        lambda: state.full(["use", "alice@example.com", "--profile", "a"]),  # alice, never bob's tokens
    )
    try:
        for step in steps:
            step()
            for check in checks:
                check()
    finally:
        state.teardown()
