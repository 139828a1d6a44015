"""git's helper chain as git really builds it (doctor, setup git, logout), and setting up, moving and
undoing a git host — all with the real git binary (2.39), its own `store` and `cache` helpers, and the
smart-HTTP server of tests/fixtures/git_http.py."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import pytest

from bblogin import _config, _gitconfig, _paths
from bblogin._commands.setup_git import helper_value
from tests.test_git import HELPER, dex_token_validator, git, git_env, wired  # noqa: F401  (fixtures)
from tests.test_session import bblogin, login


def run_bblogin(*args: str, cwd: pathlib.Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bblogin", *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=os.environ.copy(), stdin=subprocess.DEVNULL)


def doctor(cwd: pathlib.Path | None = None) -> tuple[int, dict[str, dict]]:
    done = run_bblogin("doctor", "--json", cwd=cwd)
    return done.returncode, {c["name"]: c for c in json.loads(done.stdout)["checks"]}


def fill(url: str, *helpers: str, cwd: pathlib.Path | None = None) -> dict[str, str]:
    """``git credential fill`` with only ``helpers`` (none: the configured ones); the answer or {}."""
    isolated = [a for h in helpers for a in ("-c", f"credential.helper={h}")]
    done = subprocess.run(
        ["git", *(["-c", "credential.helper="] if helpers else []), *isolated, "credential", "fill"],
        input=f"url={url}\n\n", capture_output=True, text=True, timeout=60, cwd=cwd, env=os.environ.copy(),
    )
    return dict(line.split("=", 1) for line in done.stdout.splitlines()) if done.returncode == 0 else {}


def line_of(path: pathlib.Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def access_token(profile: str = "dev") -> str:
    return bblogin("token", "--profile", profile, "--access-token", "--no-login").stdout.strip()


# -- git's helper list: _gitconfig resolves what git runs ---------------------------------------------
def recorder(log: pathlib.Path, name: str) -> str:
    return f"!f() {{ echo {name} >> {log}; cat >/dev/null; }}; f"


def test_the_resolved_helper_list_is_the_one_git_runs(git_env, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Scopes, includes, the repository's config, -c, URL case and default ports, wildcards, paths,
    user names and the empty-value reset: for each request, the helpers _gitconfig.chain names are
    the ones git itself runs, in the same order."""
    log = tmp_path / "ran"
    names_ = ("g1", "g2", "inc", "local", "team", "bob", "cmd", "star", "partial", "pport", "puser", "ppath", "pteam", "enc")
    rec = {name: recorder(log, name) for name in names_}
    include = tmp_path / "included.gitconfig"
    include.write_text(f'[credential "https://*.example.com"]\n\thelper = "{rec["star"]}"\n')
    with git_env.open("a") as fh:
        fh.write(
            f'[credential]\n\thelper = "{rec["g1"]}"\n'
            f'[credential "https://H.Example.com:443/"]\n\thelper =\n\thelper = "{rec["g2"]}"\n'
            f"[include]\n\tpath = {include}\n"
            f'[credential "https://bob@h.example.com"]\n\thelper = "{rec["bob"]}"\n'
            # keys with no scheme: git matches them field by field (credential.c match_partial_url)
            f'[credential "h.example.com"]\n\thelper = "{rec["partial"]}"\n'
            f'[credential "h.example.com:8443"]\n\thelper = "{rec["pport"]}"\n'
            f'[credential "alice@h.example.com"]\n\thelper = "{rec["puser"]}"\n'
            f'[credential "h.example.com/team/repo.git"]\n\thelper = "{rec["ppath"]}"\n'
            f'[credential "h.example.com/team"]\n\thelper = "{rec["pteam"]}"\n'
            f'[credential "https://h.example.com/te%61m"]\n\thelper = "{rec["enc"]}"\n'
        )
    repo = tmp_path / "repo"
    assert git("init", "-q", str(repo)).returncode == 0
    assert git("config", "--add", "credential.helper", rec["local"], cwd=repo).returncode == 0
    assert git("config", "--add", "credential.https://h.example.com/team.helper", "", cwd=repo).returncode == 0
    assert git("config", "--add", "credential.https://h.example.com/team.helper", rec["team"], cwd=repo).returncode == 0
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "credential.helper")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", rec["cmd"])
    found = _gitconfig.entries(str(repo))
    assert [(e.scope, e.line) for e in found if e.value == rec["g2"]] == [("global", line_of(git_env, rec["g2"]))]
    assert [e.origin for e in found if e.value == rec["star"]] == [str(include)]
    names = {value: name for name, value in rec.items()}
    for url, user in [
        ("https://h.example.com/repo.git", None),
        ("https://h.example.com/team/repo.git", None),
        ("https://H.EXAMPLE.COM:443/team/x.git", None),
        ("https://h.example.com/teams/x.git", None),  # not /team: a path matches on segment boundaries
        ("https://h.example.com/repo.git", "bob"),
        ("https://other.example.com/x.git", None),
        ("https://a.b.example.com/x.git", None),  # * is one label
        ("http://h.example.com/x.git", None),
        ("https://h.example.com:8443/x.git", None),
        ("https://h.example.com/repo.git", "alice"),
        ("https://h.example.com/team", None),
        ("https://h.example.com/my%20team/x.git", None),
    ]:
        log.write_text("")
        request = f"url={url}\n" + (f"username={user}\n" if user else "") + "\n"
        subprocess.run(["git", "credential", "fill"], input=request, capture_output=True, text=True, timeout=60, cwd=repo, env=os.environ.copy())
        ran = log.read_text().split()
        assert ran == [names[e.value] for e in _gitconfig.chain(found, url, user) if e.value], (url, user)


def test_a_config_git_cannot_read_is_said_not_taken_for_no_helpers(wired, git_env: pathlib.Path) -> None:
    _idp, server, _ = wired
    git_env.write_text(git_env.read_text() + "[credential\n")  # a broken line: git refuses the whole file
    code, checks = doctor()
    assert code == 10 and checks["git"]["status"] == "fail" and "git cannot read its configuration here" in checks["git"]["detail"]
    assert str(git_env) in checks["git"]["detail"]


def test_findings_cover_the_parts_of_a_host_that_git_config_scopes_apart() -> None:
    def entry(line: int, url: str | None, value: str) -> _gitconfig.HelperEntry:
        return _gitconfig.HelperEntry("global", "/g", line, url, value)

    found = [entry(1, None, "store"), entry(2, "https://*.example.com/team", "cache"), entry(3, "https://h.example.com", "!bblogin git-credential $1"), entry(4, "https://bob@h.example.com/x", "osxkeychain")]
    got = {(f.url, f.username): [e.value for e in f.runs] for f in _gitconfig.findings(found, "https://h.example.com")}
    assert got == {
        ("https://h.example.com", None): ["store", "!bblogin git-credential $1"],
        ("https://h.example.com/team", None): ["store", "cache", "!bblogin git-credential $1"],  # the wildcard entry, for this host's /team
        ("https://h.example.com/x", "bob"): ["store", "!bblogin git-credential $1", "osxkeychain"],
    }
    partial = [entry(1, "https://h.example.com", "!bblogin git-credential $1"), entry(2, "h.example.com/team/repo.git", "store"), entry(3, "alice@h.example.com", "cache"), entry(4, "other.example.com", "osxkeychain")]
    got = {(f.url, f.username): [e.value for e in f.runs] for f in _gitconfig.findings(partial, "https://h.example.com")}
    assert got == {  # keys with no scheme (git's match_partial_url) are parts of the host too
        ("https://h.example.com", None): ["!bblogin git-credential $1"],
        ("https://h.example.com/team/repo.git", None): ["!bblogin git-credential $1", "store"],
        ("https://h.example.com", "alice"): ["!bblogin git-credential $1", "cache"],
    }


# -- doctor and setup git see the helpers that still run -------------------------------------------------
def test_a_later_store_helper_is_named_by_setup_and_doctor_and_really_stores_the_token(wired, git_env: pathlib.Path) -> None:
    _idp, server, _ = wired
    assert git("config", "--global", "--add", "credential.helper", "store").returncode == 0  # after bblogin's entry
    store_line = f"{git_env}:{line_of(git_env, 'helper = store')}"
    assert git("ls-remote", f"{server.url}/repo.git").returncode == 0
    credentials = pathlib.Path(os.environ["HOME"], ".git-credentials").read_text()
    assert access_token() in credentials  # what the issue saw: bblogin's token in plaintext, written by git's own store
    code, checks = doctor()
    check = checks[f"git:{server.url}"]
    assert code == 10 and check["status"] == "fail"
    assert f"{store_line}: helper = store — store: writes the token git gets, in plaintext, to ~/.git-credentials" in check["detail"]
    assert "runs after bblogin" in check["detail"] and check["fix"].startswith("remove those helper lines") and "rerunning setup git cannot help" in check["fix"]
    again = bblogin("setup", "git", "--host", server.url, "--profile", "dev")
    assert again.returncode == 0 and f"warning: for {server.url}, {store_line}: helper = store" in again.stderr
    assert "the empty `helper =` in your global git config switches off the helpers configured before it" in again.stderr


def test_a_store_helper_under_a_key_with_no_scheme_is_caught(wired, git_env: pathlib.Path) -> None:
    """`[credential "host:port"]` is git's own partial-URL scoping (any scheme): its store still
    writes bblogin's token, so doctor fails and setup warns."""
    _idp, server, _ = wired
    hostport = server.url.split("//")[1]
    with git_env.open("a") as fh:
        fh.write(f'[credential "{hostport}"]\n\thelper = store\n')
    assert git("ls-remote", f"{server.url}/repo.git").returncode == 0
    assert access_token() in pathlib.Path(os.environ["HOME"], ".git-credentials").read_text()
    code, checks = doctor()
    check = checks[f"git:{server.url}"]
    assert code == 10 and check["status"] == "fail" and f"{git_env}:{line_of(git_env, 'helper = store')}: helper = store" in check["detail"]
    again = bblogin("setup", "git", "--host", server.url, "--profile", "dev")
    assert again.returncode == 0 and f"warning: for {server.url}, {git_env}:{line_of(git_env, 'helper = store')}: helper = store" in again.stderr


def test_doctor_in_a_subdirectory_names_the_repository_file_and_sends_the_decoded_user_name(wired, tmp_path: pathlib.Path) -> None:
    _idp, server, _ = wired
    clone = tmp_path / "clone"
    assert git("clone", "-q", f"{server.url}/repo.git", str(clone)).returncode == 0
    assert git("config", "credential.helper", "store", cwd=clone).returncode == 0
    deep = clone / "sub" / "dir"
    deep.mkdir(parents=True)
    check = doctor(cwd=deep)[1][f"git:{server.url}"]
    assert f"{clone}/.git/config:{line_of(clone / '.git/config', 'helper = store')}: helper = store" in check["detail"]
    user = server.url.replace("//", "//alice%40example.com@")
    assert git("config", "--global", f"credential.{user}.username", "alice@example.com").returncode == 0
    assert git("config", "--global", "--add", f"credential.{user}.helper", "").returncode == 0
    assert git("config", "--global", "--add", f"credential.{user}.helper", helper_value()).returncode == 0
    check = doctor(cwd=tmp_path)[1][f"git:{server.url}"]
    assert check["status"] == "ok" and "alice%40" not in check["detail"] and "as alice@example.com" in check["detail"], check


def test_a_cache_helper_in_a_repository_is_caught_and_logout_makes_it_forget(wired, tmp_path: pathlib.Path) -> None:
    _idp, server, _ = wired
    clone = tmp_path / "clone"
    assert git("clone", "-q", f"{server.url}/repo.git", str(clone)).returncode == 0
    socket_dir = pathlib.Path(tempfile.mkdtemp(prefix="gc", dir="/tmp"))  # a unix socket path must be short
    cache = f"cache --socket {socket_dir}/s"
    try:
        assert git("config", "credential.helper", cache, cwd=clone).returncode == 0
        assert git("fetch", "-q", cwd=clone).returncode == 0  # bblogin answers; git hands the token to cache
        token = access_token()
        assert fill(f"{server.url}/repo.git", cache)["password"] == token
        code, checks = doctor(cwd=clone)
        check = checks[f"git:{server.url}"]
        assert code == 10 and check["status"] == "fail"
        assert f"{clone}/.git/config:{line_of(clone / '.git/config', 'helper = cache')}: helper = cache … — cache: keeps the token in memory" in check["detail"]
        assert doctor(cwd=tmp_path)[1][f"git:{server.url}"]["status"] == "ok"  # outside the repository git never runs it
        done = run_bblogin("logout", cwd=clone)
        assert done.returncode == 0 and f"Told git to forget alice@example.com's credentials for {server.url}" in done.stderr
        assert fill(f"{server.url}/repo.git", cache) == {}  # git credential reject: cache dropped it
    finally:
        subprocess.run(["git", "credential-cache", "--socket", f"{socket_dir}/s", "exit"], capture_output=True, timeout=30)
        shutil.rmtree(socket_dir, ignore_errors=True)


def approve_like_git(url: str) -> dict[str, str]:
    """What git does after a request succeeded: fill, then approve what it got (store keeps it)."""
    done = subprocess.run(["git", "credential", "fill"], input=f"url={url}\n\n", capture_output=True, text=True, timeout=60, env=os.environ.copy())
    subprocess.run(["git", "credential", "approve"], input=done.stdout + "\n", capture_output=True, text=True, timeout=60, env=os.environ.copy())
    return dict(line.split("=", 1) for line in done.stdout.splitlines())


@pytest.mark.parametrize("helper", ["store", "cache"])
def test_logout_makes_store_and_cache_forget_every_path_and_user_name_git_kept(keyring_secret_service, devidp_factory, git_env: pathlib.Path, helper: str) -> None:
    """store and cache erase only entries whose fields equal the reject's: logout must reach what
    they keep under a repository's path (a prefix with a path, or useHttpPath) and under the user
    name git was given (an email), not only the host's own user name."""
    login(devidp_factory(id_token_ttl=3600))
    socket_dir = pathlib.Path(tempfile.mkdtemp(prefix="gc", dir="/tmp"))
    value = "store" if helper == "store" else f"cache --socket {socket_dir}/s"
    try:
        assert bblogin("setup", "git", "--host", "https://git.example.com/team", "--profile", "dev").returncode == 0
        assert bblogin("setup", "git", "--host", "https://other.example.com", "--profile", "dev").returncode == 0
        assert git("config", "--global", "credential.useHttpPath", "true").returncode == 0  # as GCM users often have
        assert git("config", "--global", "--add", "credential.helper", value).returncode == 0
        kept = [
            approve_like_git("https://git.example.com/team/repo.git"),
            approve_like_git("https://other.example.com/x/y.git"),
            approve_like_git("https://alice%40example.com@other.example.com/z.git"),
        ]
        assert kept[2]["username"] == "alice@example.com" and all(k.get("password") for k in kept)
        urls = ["https://git.example.com/team/repo.git", "https://other.example.com/x/y.git", "https://alice%40example.com@other.example.com/z.git"]
        assert [fill(url, value).get("password") == k["password"] for url, k in zip(urls, kept)] == [True, True, True]
        done = run_bblogin("logout")
        assert done.returncode == 0 and "Told git to forget" in done.stderr
        assert [bool(fill(url, value)) for url in urls] == [False, False, False]  # (no token in a failure's text)
        if helper == "store":
            assert kept[0]["password"] not in pathlib.Path(os.environ["HOME"], ".git-credentials").read_text()
    finally:
        subprocess.run(["git", "credential-cache", "--socket", f"{socket_dir}/s", "exit"], capture_output=True, timeout=30)
        shutil.rmtree(socket_dir, ignore_errors=True)


def test_logging_out_in_the_tui_makes_git_forget_too(keyring_secret_service, devidp_factory, git_env: pathlib.Path) -> None:
    from bblogin.tui.source import CoreSource

    login(devidp_factory(id_token_ttl=3600))
    assert bblogin("setup", "git", "--host", "https://git.example.com", "--profile", "dev").returncode == 0
    assert git("config", "--global", "--add", "credential.helper", "store").returncode == 0
    assert approve_like_git("https://git.example.com/repo.git").get("password")
    source = CoreSource()
    (row,) = source.accounts()
    source.logout(row["id"])
    assert ("git.example.com" in pathlib.Path(os.environ["HOME"], ".git-credentials").read_text()) is False


def test_git_credential_manager_configured_later_means_bblogin_is_never_asked(wired, git_env: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """What `git-credential-manager configure` (GCM 2.7) appends to the global config, exactly as the
    real binary writes it: an empty `helper =` and its own path in [credential]. GCM itself cannot run
    here (its binary is not installed), so the helper it names is a program called
    git-credential-manager that records being asked and answers nothing."""
    _idp, server, _ = wired
    asked = tmp_path / "gcm-asked"
    gcm = tmp_path / "bin" / "git-credential-manager"
    gcm.parent.mkdir()
    gcm.write_text(f"#!/bin/sh\necho \"$1\" >> {asked}\ncat >/dev/null\n")
    gcm.chmod(0o755)
    with git_env.open("a") as fh:
        fh.write(f"[credential]\n\thelper = \n\thelper = {gcm}\n[credential \"https://dev.azure.com\"]\n\tuseHttpPath = true\n")
    assert git("ls-remote", f"{server.url}/repo.git").returncode != 0
    assert asked.read_text().split() == ["get"] and server.attempts == []  # git asked GCM only; bblogin never
    code, checks = doctor()
    check = checks[f"git:{server.url}"]
    reset = f"{git_env}:{_reset_line(git_env)}"
    assert code == 10 and check["status"] == "fail"
    assert f"git never asks bblogin for {server.url}: {reset} empties git's helper list, and no bblogin entry comes after it" in check["detail"]
    assert f"helper = {gcm} — Git Credential Manager" in check["detail"] and "git asks it instead of bblogin" in check["detail"]


def _reset_line(gitconfig: pathlib.Path) -> int:
    """The line of the last empty `helper =` (GCM's)."""
    return max(i for i, line in enumerate(gitconfig.read_text().splitlines(), 1) if line.strip() == "helper =")


def test_a_shell_helper_is_named_by_its_line_never_printed(wired, git_env: pathlib.Path) -> None:
    _idp, server, _ = wired
    secret = "hunter2-not-to-be-shown"
    assert git("config", "--global", "--add", "credential.helper", f"!f() {{ echo username=me; echo password={secret}; }}; f").returncode == 0
    code, checks = doctor()
    check = checks[f"git:{server.url}"]
    assert code == 10 and f"{git_env}:{line_of(git_env, secret)}: helper = !… (a shell command) — another helper" in check["detail"]
    assert secret not in json.dumps(checks)
    assert secret not in bblogin("setup", "git", "--host", server.url, "--profile", "dev").stderr


def test_doctor_runs_the_helper_as_git_runs_it(wired, git_env: pathlib.Path) -> None:
    _idp, server, _ = wired
    code, checks = doctor()
    check = checks[f"git:{server.url}"]
    assert check["status"] == "ok" and f"git asks bblogin for {server.url}" in check["detail"] and "it answers as alice" in check["detail"]
    assert bblogin("logout", "--all").returncode == 0
    code, checks = doctor()
    check = checks[f"git:{server.url}"]
    assert check["status"] == "warn" and "it has no token to answer with" in check["detail"] and check["fix"] == "bblogin login --profile dev"
    launcher = str(pathlib.Path(_gitconfig.__file__).parent / "_hot" / "_launcher.py")
    git_env.write_text(git_env.read_text().replace(launcher, "/nonexistent/bblogin/_hot/_launcher.py"))  # an uninstalled bblogin
    code, checks = doctor()
    check = checks[f"git:{server.url}"]
    assert code == 10 and check["status"] == "fail"
    assert "runs, but no answer comes" in check["detail"] and "/nonexistent/bblogin/_hot/_launcher.py" in check["detail"]
    assert check["fix"] == f"bblogin setup git --host {server.url} --profile dev"


# -- setting up, moving, undoing ------------------------------------------------------------------------
def test_setup_for_one_repository_never_moves_the_host_for_every_repository(wired, tmp_path: pathlib.Path, devidp_factory) -> None:
    idp, server, _ = wired
    login(idp, "other")
    clone = tmp_path / "clone"
    assert git("clone", "-q", f"{server.url}/repo.git", str(clone)).returncode == 0
    config_before = pathlib.Path(_paths.config_file()).read_bytes()
    refused = run_bblogin("setup", "git", "--file", str(clone / ".git/config"), "--host", server.url, "--profile", "other")
    assert refused.returncode == 2 and f"config.toml binds {server.url} to profile dev for every repository" in refused.stderr
    assert f"--host {server.url}/repo.git --profile other" in refused.stderr  # the hint names this repository's own URL
    assert pathlib.Path(_paths.config_file()).read_bytes() == config_before
    kind = run_bblogin("setup", "git", "--file", str(clone / ".git/config"), "--host", server.url, "--profile", "dev", "--token", "id_token")
    assert kind.returncode == 2 and "(token access_token → id_token)" in kind.stderr  # nor another token kind for every repository
    assert pathlib.Path(_paths.config_file()).read_bytes() == config_before
    same = run_bblogin("setup", "git", "--file", str(clone / ".git/config"), "--host", server.url, "--profile", "dev")
    assert same.returncode == 0 and f"config.toml binds {server.url} to dev for every repository whose git config asks bblogin for it" in same.stderr
    done = run_bblogin("setup", "git", "--file", str(clone / ".git/config"), "--host", f"{server.url}/repo.git", "--profile", "other")
    assert done.returncode == 0, done.stderr
    assert fill(f"{server.url}/repo.git", cwd=clone)["password"] == access_token("other")  # in the repository: profile other
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert fill(f"{server.url}/repo.git", cwd=elsewhere)["password"] == access_token("dev")  # everywhere else: still dev
    assert git("fetch", "-q", cwd=clone).returncode == 0
    undone = run_bblogin("setup", "git", "--remove", "--file", str(clone / ".git/config"), "--host", f"{server.url}/repo.git")
    assert undone.returncode == 0 and f'[credential "{server.url}/repo.git"]' not in (clone / ".git/config").read_text()
    assert [h.url for h in _config.load().git_hosts] == [server.url]
    assert fill(f"{server.url}/repo.git", cwd=clone)["password"] == access_token("dev")  # the repository is back to the host's binding


def test_moving_a_host_is_said_and_a_rerun_keeps_earlier_choices(wired) -> None:
    idp, server, _ = wired
    first = bblogin("setup", "git", "--host", server.url, "--profile", "dev", "--username", "alice", "--authtype", "bearer", "--token", "id_token")
    assert first.returncode == 0, first.stderr
    again = bblogin("setup", "git", "--host", server.url, "--profile", "dev")
    assert again.returncode == 0 and "already set up" in again.stderr
    (host,) = _config.load().git_hosts
    assert (host.username, host.authtype, host.token) == ("alice", "bearer", "id_token")
    assert bblogin("setup", "git", "--host", server.url, "--profile", "dev", "--username", "").returncode == 0
    assert _config.load().git_hosts[0].username is None  # "" asks for the account's own again
    login(idp, "other")
    moved = bblogin("setup", "git", "--host", server.url, "--profile", "other")
    assert moved.returncode == 0 and f"git: {server.url} moved from profile dev to other, for every repository." in moved.stderr
    assert _config.load().git_hosts[0].profile == "other"


def test_a_bitbucket_profile_never_gets_an_id_token_binding(wired) -> None:
    config = pathlib.Path(_paths.config_file())
    config.write_text(config.read_text() + '\n[profiles.cloud]\nprovider = "bitbucket-cloud"\nclient_id = "K"\n')
    assert bblogin("setup", "git", "--host", "https://bitbucket.org", "--profile", "dev", "--token", "id_token").returncode == 0
    moved = bblogin("setup", "git", "--host", "https://bitbucket.org", "--profile", "cloud")
    assert moved.returncode == 0 and "so git gets the access token now" in moved.stderr and "id token (profile cloud)" not in moved.stderr
    assert next(h for h in _config.load().git_hosts if h.url == "https://bitbucket.org").token == "access_token"
    refused = bblogin("setup", "git", "--host", "https://bitbucket.org", "--profile", "cloud", "--token", "id_token")
    assert refused.returncode == 2 and "Bitbucket issues no ID token" in refused.stderr


def test_a_host_key_in_any_case_with_a_default_port_is_one_key(wired, tmp_path: pathlib.Path) -> None:
    _idp, server, _ = wired
    shouted = server.url.upper().replace("127.0.0.1", "LOCALHOST") + "/"
    assert shouted.startswith("HTTP://LOCALHOST:")
    done = bblogin("setup", "git", "--host", shouted, "--profile", "dev")
    assert done.returncode == 0, done.stderr
    normal = server.url.replace("127.0.0.1", "localhost")
    assert [h.url for h in _config.load().git_hosts] == [server.url, normal]
    assert git("clone", "-q", f"{normal}/repo.git", str(tmp_path / "c")).returncode == 0
    wrong = bblogin("setup", "git", "--host", "http://git.example.com", "--profile", "dev")
    assert wrong.returncode == 2 and "is plain http://, which is allowed only for 127.0.0.1/localhost" in wrong.stderr
    config_before = pathlib.Path(_paths.config_file()).read_bytes()
    newline = bblogin("setup", "git", "--host", "https://git.example.com/a\n", "--profile", "dev")
    assert newline.returncode == 2 and "has a space or control character" in newline.stderr
    assert pathlib.Path(_paths.config_file()).read_bytes() == config_before  # refused before anything was written


def test_two_spellings_of_one_host_are_refused_then_setup_makes_them_one(wired) -> None:
    _idp, server, _ = wired
    path = pathlib.Path(_paths.config_file())
    path.write_text(path.read_text() + f'\n[git."{server.url.upper()}/"]\nprofile = "dev"\nusername = "bob"\n')
    request = f"protocol=http\nhost={server.url.split('//')[1]}\n\n"
    done = subprocess.run([HELPER, "get"], input=request, capture_output=True, text=True, timeout=60, env=os.environ.copy())
    assert done.returncode == 3 and done.stdout == "" and f"2 entries are the same git host {server.url}" in done.stderr
    assert bblogin("setup", "git", "--host", server.url, "--profile", "dev").returncode == 0
    assert [h.url for h in _config.load().git_hosts] == [server.url] and server.url.upper() not in path.read_text()


def test_remove_undoes_exactly_what_setup_added(keyring_secret_service, devidp_factory, git_server, git_env: pathlib.Path) -> None:
    idp = devidp_factory()
    login(idp)
    server = git_server(lambda user, token: True)
    git_env.write_text(git_env.read_text() + f'[credential "{server.url}/team"]\n\tusername = alice\n')
    before = git_env.read_text()
    config_before = pathlib.Path(_paths.config_file()).read_text()
    assert bblogin("setup", "git", "--host", f"{server.url}/team/", "--profile", "dev").returncode == 0
    assert bblogin("setup", "git", "--host", "https://git.example.com", "--profile", "dev").returncode == 0
    assert "useHttpPath" in git_env.read_text()
    removed = bblogin("setup", "git", "--remove", "--host", f"{server.url}/team")
    assert removed.returncode == 0 and f"removed {server.url}/team" in removed.stderr
    assert "https://git.example.com" in git_env.read_text() and [h.url for h in _config.load().git_hosts] == ["https://git.example.com"]
    assert bblogin("setup", "git", "--remove", "--host", "HTTPS://git.example.com:443").returncode == 0
    assert git_env.read_text() == before  # the user's own username line stays; nothing of bblogin's does
    assert pathlib.Path(_paths.config_file()).read_text() == config_before
    nothing = bblogin("setup", "git", "--remove", "--host", "https://git.example.com")
    assert nothing.returncode == 0 and "nothing to remove" in nothing.stderr


def test_remove_with_file_undoes_only_that_repository(wired, tmp_path: pathlib.Path) -> None:
    """--remove --file edits that file; config.toml's binding stays while the global config still
    asks bblogin for the host (every other repository keeps working)."""
    _idp, server, _ = wired
    clone = tmp_path / "clone"
    assert git("clone", "-q", f"{server.url}/repo.git", str(clone)).returncode == 0
    local = str(clone / ".git/config")
    assert run_bblogin("setup", "git", "--file", local, "--host", server.url, "--profile", "dev").returncode == 0
    done = run_bblogin("setup", "git", "--remove", "--file", local, "--host", server.url)
    assert done.returncode == 0 and "bblogin" not in (clone / ".git/config").read_text()
    assert f"kept [git.\"{server.url}\"] in config.toml" in done.stderr
    assert [h.url for h in _config.load().git_hosts] == [server.url]
    assert git("clone", "-q", f"{server.url}/repo.git", str(tmp_path / "e/c")).returncode == 0
    assert run_bblogin("setup", "git", "--remove", "--host", server.url).returncode == 0  # the last one asking: both go
    assert not _config.load().git_hosts


def test_a_bad_host_key_already_in_config_breaks_only_that_host_and_remove_takes_it(wired) -> None:
    """An earlier bblogin saved `[git."…/my team"]` before git refused the key: it must not make
    every command exit 3, and --remove must take it as written."""
    _idp, server, _ = wired
    config = pathlib.Path(_paths.config_file())
    config.write_text(config.read_text() + '\n[git."https://git.example.com/my team"]\nprofile = "dev"\n')
    assert run_bblogin("status").returncode == 0
    request = f"protocol=http\nhost={server.url.split('//')[1]}\n\n"
    other = subprocess.run([HELPER, "get"], input=request, capture_output=True, text=True, timeout=60, env=os.environ.copy())
    assert other.returncode == 0 and "password=" in other.stdout
    bad = subprocess.run([HELPER, "get"], input="protocol=https\nhost=git.example.com\npath=my team/x.git\n\n", capture_output=True, text=True, timeout=60, env=os.environ.copy())
    assert bad.returncode == 3 and "has a space or control character" in bad.stderr and "--remove --host 'https://git.example.com/my team'" in bad.stderr
    done = run_bblogin("setup", "git", "--remove", "--host", "https://git.example.com/my team")
    assert done.returncode == 0, done.stderr
    assert "my team" not in config.read_text() and [h.url for h in _config.load().git_hosts] == [server.url]


def test_setup_keeps_the_users_own_helpers_and_remove_takes_only_what_setup_wrote(keyring_secret_service, devidp_factory, git_env: pathlib.Path) -> None:
    """setup adds its reset and helper after the user's own lines (saying which it switches off) and
    never deletes them; a rerun changes nothing; --remove takes exactly those two lines, and
    useHttpPath only when setup wrote it. A multi-line helper value stays one value."""
    login(devidp_factory())
    multi = '!f() {\n echo hi >&2; cat >/dev/null; }; f'
    git_env.write_text(
        git_env.read_text()
        + '[credential "https://git.example.com/team"]\n\tuseHttpPath = true\n\thelper = cache --timeout 60\n'
        + '\thelper = "!f() {\\n echo hi >&2; cat >/dev/null; }; f"\n\t# the user\'s comment\n'
        + '[credential "https://other.example.com/x"]\n\thelper = cache --socket /tmp/git-credential-bblogin/sock\n'
    )
    before = git_env.read_text()
    done = bblogin("setup", "git", "--host", "https://git.example.com/team", "--profile", "dev")
    assert done.returncode == 0 and "switches off" in done.stderr and "helper = cache …" in done.stderr
    values = git("config", "--global", "--null", "--get-all", "credential.https://git.example.com/team.helper").stdout.split("\0")[:-1]
    assert values[:2] == ["cache --timeout 60", multi] and values[2] == "" and _gitconfig.is_bblogin_helper(values[3]) and len(values) == 4
    assert bblogin("setup", "git", "--host", "https://git.example.com/team", "--profile", "dev").stderr.count("already set up") == 1
    assert bblogin("setup", "git", "--host", "https://other.example.com/x", "--profile", "dev").returncode == 0
    assert bblogin("setup", "git", "--remove", "--host", "https://git.example.com/team").returncode == 0
    assert bblogin("setup", "git", "--remove", "--host", "https://other.example.com/x").returncode == 0
    assert git_env.read_text() == before  # the user's helpers, their useHttpPath, comment and order


def test_a_percent_encoded_key_path_matches_the_path_git_sends() -> None:
    """git decodes a remote URL's path before a helper sees it (credential_from_url): a key
    written as %20 (as the --host advice says) must match ``path=my team/…``."""
    from bblogin import _gitcred

    def fields(path: str) -> dict[str, list[str]]:
        return {"protocol": ["https"], "host": ["git.example.com"], "path": [path]}

    assert _gitcred.matching_hosts(fields("my team/repo.git"), [{"url": "https://git.example.com/my%20team"}])
    assert _gitcred.matching_hosts(fields("team/repo.git"), [{"url": "https://git.example.com/te%61m"}])
    assert not _gitcred.matching_hosts(fields("my%20team/repo.git"), [{"url": "https://git.example.com/my%20team"}])


def test_only_what_setup_writes_counts_as_bblogin() -> None:
    for value in [helper_value(), "bblogin", "git-credential-bblogin", "/opt/bin/git-credential-bblogin --x", "!bblogin git-credential $1"]:
        assert _gitconfig.is_bblogin_helper(value), value
    for value in ["cache --socket ~/.cache/git-credential-bblogin/sock", "store --file ~/bblogin git-credential", "!f() { cat ~/x; }; f # git-credential-bblogin", "bblogin-other"]:
        assert not _gitconfig.is_bblogin_helper(value), value


def test_a_deleted_profile_gets_a_clear_message_and_breaks_nothing_else(wired, git_server, tmp_path: pathlib.Path) -> None:
    idp, server, _ = wired
    login(idp, "other")
    second = git_server(lambda user, token: True)
    assert bblogin("setup", "git", "--host", second.url, "--profile", "other").returncode == 0
    path = pathlib.Path(_paths.config_file())
    text = path.read_text()
    start = text.index("[profiles.other]")
    end = text.find("\n[", start + 1)
    path.write_text('default_profile = "other"\n' + text[:start].replace('default_profile = "dev"\n', "") + (text[end + 1 :] if end > 0 else ""))
    broken = git("ls-remote", f"{second.url}/repo.git")
    assert broken.returncode != 0 and f"names the profile 'other', which is not in config.toml" in broken.stderr
    assert f"bblogin setup git --remove --host {second.url}" in broken.stderr and second.attempts == []
    assert git("ls-remote", f"{server.url}/repo.git").returncode == 0  # the other host keeps working
    assert bblogin("token", "--profile", "dev", "--no-login").returncode == 0
    no_default = bblogin("token", "--no-login")
    assert no_default.returncode == 3 and "default_profile names 'other'" in no_default.stderr
    assert bblogin("status").returncode == 0 and bblogin("accounts").returncode == 0
    code, checks = doctor()
    assert checks[f"git:{second.url}"]["status"] == "fail" and checks[f"git:{server.url}"]["status"] == "ok"
    rebound = bblogin("setup", "git", "--host", second.url, "--profile", "dev")
    assert rebound.returncode == 0 and f"was bound to profile other, which config.toml no longer has; now to dev" in rebound.stderr
    assert git("ls-remote", f"{second.url}/repo.git").returncode == 0


# -- smaller ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("via", ["program", "launcher"])
@pytest.mark.parametrize(
    "request_",
    [b"protocol=https\nhost=gone.example.com\n\n", b"\0\xff garbage with no equals sign\n" + os.urandom(4096) + b"\n\n"],
    ids=["host-of-a-deleted-profile", "garbage"],
)
def test_an_unknown_operation_is_ignored_silently(wired, via: str, request_: bytes) -> None:
    """What get would refuse (exit 3: the host's profile is gone; exit 2: garbage) an unknown
    operation ignores: exit 0, nothing said — and the launcher answers it itself, never starting
    the full command (no argparse imported)."""
    config = pathlib.Path(_paths.config_file())
    config.write_text(config.read_text() + '\n[git."https://gone.example.com"]\nprofile = "gone"\n')
    command = [HELPER, "frobnicate"] if via == "program" else ["sh", "-c", helper_value()[1:] + " frobnicate"]
    done = subprocess.run(command, input=request_, capture_output=True, timeout=60, env=os.environ.copy())
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
    get = subprocess.run(command[:-1] + ["get"] if via == "program" else ["sh", "-c", helper_value()[1:] + " get"], input=request_, capture_output=True, timeout=60, env=os.environ.copy())
    assert get.returncode in (2, 3)  # the same request is an error for an operation bblogin knows
    if via == "launcher":
        traced = subprocess.run(command, input=request_, capture_output=True, timeout=60, env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
        assert traced.returncode == 0 and traced.stdout == b"" and b"| argparse" not in traced.stderr and b"bblogin._cli" not in traced.stderr


def test_get_exit_codes_follow_one_rule_and_git_reads_only_the_answer(wired, tmp_path: pathlib.Path) -> None:
    """0: answered, or not a host bblogin serves; else the reason's documented code (here 3, a
    config problem) with the message — and git, which ignores the code, asks its next helper."""
    _idp, server, _ = wired
    hostport = server.url.split("//")[1]
    ours = subprocess.run([HELPER, "get"], input=f"protocol=http\nhost={hostport}\n\n", capture_output=True, text=True, timeout=60, env=os.environ.copy())
    assert ours.returncode == 0 and "password=" in ours.stdout
    other = subprocess.run([HELPER, "get"], input="protocol=https\nhost=elsewhere.example.com\n\n", capture_output=True, text=True, timeout=60, env=os.environ.copy())
    assert (other.returncode, other.stdout, other.stderr) == (0, "", "")
    garbage = subprocess.run([HELPER, "get"], input=b"protocol=https\nhost=\0\n\n", capture_output=True, timeout=60, env=os.environ.copy())
    assert garbage.returncode == 2 and garbage.stdout == b"" and b"cannot read" in garbage.stderr
    path = pathlib.Path(_paths.config_file())
    path.write_text(path.read_text().replace('profile = "dev"', 'profile = "gone"'))
    broken = subprocess.run([HELPER, "get"], input=f"protocol=http\nhost={hostport}\n\n", capture_output=True, text=True, timeout=60, env=os.environ.copy())
    assert broken.returncode == 3 and broken.stdout == "" and "names the profile 'gone'" in broken.stderr
    log = tmp_path / "ran"
    answered = fill(f"{server.url}/repo.git", f"!{HELPER}", f"!f() {{ echo next >> {log}; cat >/dev/null; echo username=u; echo password=p; }}; f")
    assert (answered["username"], answered["password"]) == ("u", "p")
    assert log.read_text().split() == ["next"]
