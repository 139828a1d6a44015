"""kubeconfigs that name the identity provider by flags alone (`kubectl-bblogin --issuer URL
--client-id ID`), with no config.toml: what a platform team hands out. Real kubectl, the fake API
server, the dev IdP and a real Secret Service."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shlex
import subprocess
import sys

from bblogin import _adhoc, _paths
from bblogin._hot._answer import adhoc_profile_name
from bblogin._shape import DEFAULT_OIDC_SCOPES, shape_of
from tests.test_hot import _hot_imports
from tests.test_session import bblogin

BINDIR = str(pathlib.Path(sys.executable).parent)


def adhoc_name(issuer: str, client_id: str = "bblogin", connector_id: str | None = "bitbucket-cloud", scopes: tuple[str, ...] = DEFAULT_OIDC_SCOPES) -> str:
    """The ad-hoc profile name of ``kubectl-bblogin --issuer … --client-id … [--connector-id …]``."""
    return adhoc_profile_name(shape_of("oidc", issuer, client_id, scopes, connector_id))


def flags_entry(issuer: str) -> dict:
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": "kubectl-bblogin",
            "args": ["--issuer", issuer, "--client-id", "bblogin", "--connector-id", "bitbucket-cloud"],
            "interactiveMode": "Never",
        }
    }


def kubectl(binary: pathlib.Path, kubeconfig: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BINDIR}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([str(binary), "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)


def test_the_hint_of_a_flags_only_entry_is_a_command_that_works_and_every_command_takes_the_name(keyring_secret_service, devidp, kube_apiserver, kubectl_bin) -> None:
    assert not os.path.exists(_paths.config_file())
    server = kube_apiserver(issuer=devidp.issuer, client_id="bblogin")
    config = server.kubeconfig(flags_entry(devidp.issuer))
    name = adhoc_name(devidp.issuer)

    refused = kubectl(kubectl_bin, config, "get", "--raw", "/version")
    assert refused.returncode != 0
    hint = re.search(r"run `(bblogin login --profile [^`]+)`", refused.stderr)
    assert hint is not None, refused.stderr
    assert hint.group(1) == f"bblogin login --profile {name}"
    assert name in _adhoc.load()

    hinted = shlex.split(hint.group(1))[1:]
    done = bblogin(*hinted, "--flow", "device", "--no-browser")  # the hinted command (device flow: no browser in tests)
    assert done.returncode == 0, done.stderr
    assert kubectl(kubectl_bin, config, "get", "--raw", "/version").returncode == 0

    for command in (["status", "--profile", name], ["token", "--profile", name, "--no-login"], ["use", "alice@example.com", "--profile", name], ["setup", "kubectl", "--profile", name, "--print"], ["kubectl", "--profile", name]):
        done = bblogin(*command)
        assert done.returncode == 0, (command, done.stderr)
    assert json.loads(bblogin("status", "--profile", name, "--json").stdout)["accounts"][0]["email"] == "alice@example.com"
    done = bblogin("logout", "--profile", name)
    assert done.returncode == 0, done.stderr
    assert "alice@example.com" in done.stderr
    assert name not in _adhoc.load() and name not in bblogin("profiles").stdout  # its last login left: forgotten
    again = kubectl(kubectl_bin, config, "get", "--raw", "/version")
    assert again.returncode != 0 and f"bblogin login --profile {name}" in again.stderr


def test_a_flags_only_entry_without_config_toml_takes_the_hot_path(keyring_secret_service, devidp) -> None:
    argv = ["kubectl", "--issuer", devidp.issuer, "--client-id", "bblogin", "--connector-id", "bitbucket-cloud"]
    done = bblogin("login", *argv[1:], "--flow", "device", "--no-browser")
    assert done.returncode == 0, done.stderr
    assert not os.path.exists(_paths.config_file())
    done = subprocess.run([sys.executable, "-m", "bblogin", *argv], capture_output=True, text=True, timeout=60, env={**os.environ, "BBLOGIN_NO_FAST_PATH": "1"})
    assert done.returncode == 0, done.stderr  # one full-path call writes the mirrors
    code, modules = _hot_imports(argv)
    assert code == 0, "the hot path declined a cached flags-only entry"
    assert "hashlib" not in modules and "_hashlib" not in modules
    pathlib.Path(_paths.config_file()).write_text("")  # a config.toml appears: the mirror of "no file" is stale
    code, _ = _hot_imports(argv)
    assert code is None


def _answer(argv: list[str], *, full: bool) -> subprocess.CompletedProcess[str]:
    """``bblogin ARGV`` as kubectl starts it (the launcher), through the hot path or only the full one."""
    from bblogin._cli import launcher_command
    from tests.test_hot import EXEC_INFO

    env = {**os.environ, "KUBERNETES_EXEC_INFO": EXEC_INFO, **({"BBLOGIN_NO_FAST_PATH": "1"} if full else {})}
    return subprocess.run(launcher_command(*argv), capture_output=True, text=True, timeout=60, env=env)


def test_profile_adhoc_takes_the_hot_path_without_config_toml_and_answers_as_the_full_path(keyring_secret_service, devidp) -> None:
    """`kubectl-bblogin --profile adhoc-…` (what the hint names, and what a kubeconfig may say
    instead of the flags) with no config.toml: the hot path answers it from the mirror of
    adhoc-profiles.json, exactly as the full path does; a changed file or a config.toml profile
    of that name (which wins) makes it decline."""
    name = adhoc_name(devidp.issuer)
    done = bblogin("login", "--issuer", devidp.issuer, "--client-id", "bblogin", "--connector-id", "bitbucket-cloud", "--flow", "device", "--no-browser")
    assert done.returncode == 0, done.stderr
    assert not os.path.exists(_paths.config_file())
    argv = ["kubectl", "--profile", name]
    full = _answer(argv, full=True)
    assert full.returncode == 0, full.stderr
    code, modules = _hot_imports(argv)
    assert code == 0, "the hot path declined --profile adhoc-…"
    assert "json" not in modules and "hashlib" not in modules
    hot = _answer(argv, full=False)
    assert hot.returncode == 0 and json.loads(hot.stdout) == json.loads(full.stdout)

    os.utime(_adhoc.path(), ns=(1, 1))  # adhoc-profiles.json is not what the mirror was built from
    assert _hot_imports(argv)[0] is None
    assert _answer(argv, full=True).returncode == 0  # the full path rebuilds the mirror
    assert _hot_imports(argv)[0] == 0

    pathlib.Path(_paths.config_file()).write_text(f'[profiles.{name}]\nissuer = "https://other.example.com/dex"\nclient_id = "bblogin"\n')
    assert _answer(argv, full=True).returncode == 4  # config.toml's profile of that name is the profile: no token for it
    assert _hot_imports(argv)[0] is None  # and the hot path does not serve the ad-hoc profile's token either


def test_profiles_lists_the_adhoc_profiles_marked_as_such(devidp) -> None:
    pathlib.Path(_paths.config_file()).write_text('[profiles.work]\nissuer = "https://dex.example.com/dex"\nclient_id = "bblogin"\n')
    name = adhoc_name(devidp.issuer, connector_id=None)
    _answer(["kubectl", "--issuer", devidp.issuer, "--client-id", "bblogin"], full=True)  # no login: records the ad-hoc profile only
    done = bblogin("profiles")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["work", f"{name}\tad hoc: {devidp.issuer}, client bblogin"]
    completion = subprocess.run(["bash", "-c", f"source {_completion_script()}; _bblogin_profiles ''"], capture_output=True, text=True, timeout=60, env={**os.environ, "PATH": f"{BINDIR}{os.pathsep}{os.environ['PATH']}"})
    assert completion.stdout.split() == ["work", name]  # bash completes the names only


def _completion_script() -> str:
    return str(pathlib.Path(__file__).resolve().parents[1] / "completions" / "bblogin.bash")


def _hint(done: subprocess.CompletedProcess[str]) -> list[str]:
    found = re.search(r"run `(bblogin login [^`]+)`", done.stderr)
    assert found is not None, done.stderr
    return shlex.split(found.group(1))[1:]


SCOPES = ["--scope", "openid", "--scope", "email", "--scope", "offline_access"]


def test_two_flags_entries_at_one_idp_asking_for_other_scopes_are_two_adhoc_profiles_both_logged_in(keyring_secret_service, devidp) -> None:
    """Two clusters' entries at one IdP and client, one asking for fewer scopes: each hint logs in
    exactly what its entry asks for, and logging in one never ends the other's login."""
    a = ["kubectl", "--issuer", devidp.issuer, "--client-id", "bblogin", "--connector-id", "bitbucket-cloud"]
    b = [*a, *SCOPES]
    hint_a, hint_b = _hint(_answer(a, full=True)), _hint(_answer(b, full=True))
    assert hint_a != hint_b
    for hint in (hint_a, hint_b):
        done = bblogin(*hint, "--flow", "device", "--no-browser")
        assert done.returncode == 0, done.stderr
    for argv in (a, b, a):
        done = _answer(argv, full=True)
        assert done.returncode == 0, (argv, done.stderr)
    assert bblogin("doctor").returncode in (0, 10)  # running every entry flips nobody's record
    assert _answer(a, full=True).returncode == 0 and _answer(b, full=True).returncode == 0
    assert len(json.loads(bblogin("accounts", "--json").stdout)["accounts"]) == 2


def test_flags_on_top_of_a_profile_get_a_hint_that_logs_in_what_they_ask_for(keyring_secret_service, devidp) -> None:
    """`kubectl-bblogin --profile work --scope …`: another request than work's; its hint names the
    ad-hoc profile of that request, which works, and leaves config.toml's `work` as it was."""
    pathlib.Path(_paths.config_file()).write_text(f'[profiles.work]\nissuer = "{devidp.issuer}"\nclient_id = "bblogin"\nconnector_id = "bitbucket-cloud"\n')
    before = pathlib.Path(_paths.config_file()).read_text()
    assert bblogin("login", "--profile", "work", "--flow", "device", "--no-browser").returncode == 0
    argv = ["kubectl", "--profile", "work", *SCOPES]
    refused = _answer(argv, full=True)
    assert refused.returncode == 4
    hint = _hint(refused)
    assert hint[:2] == ["login", "--profile"] and hint[2] != "work"
    done = bblogin(*hint, "--flow", "device", "--no-browser")
    assert done.returncode == 0, done.stderr
    assert _answer(argv, full=True).returncode == 0
    assert _answer(["kubectl", "--profile", "work"], full=True).returncode == 0  # work's own login is still there
    assert pathlib.Path(_paths.config_file()).read_text() == before


def test_parallel_flags_entries_lose_no_adhoc_record() -> None:
    """15 kubectl calls for 15 clusters at once (k9s, `xargs -P`): every entry's record is kept,
    so every hint they print names a profile that exists."""
    from bblogin._cli import launcher_command
    from tests.test_hot import EXEC_INFO

    env = {**os.environ, "KUBERNETES_EXEC_INFO": EXEC_INFO}
    calls = [subprocess.Popen(launcher_command("kubectl", "--issuer", f"https://idp{n}.example.com", "--client-id", "c"), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in range(15)]
    hints = []
    for call in calls:
        out, err = call.communicate(timeout=120)
        assert call.returncode == 4, err
        hints.append(_hint(subprocess.CompletedProcess([], 4, out, err))[2])
    assert set(hints) <= set(_adhoc.load()) and len(set(hints)) == 15


def test_a_login_under_an_older_bblogins_adhoc_name_keeps_serving_its_entry(keyring_secret_service, devidp) -> None:
    """adhoc-profiles.json from before names came from the whole request (SHA-256 of issuer and
    client): that name still works, and the entry, now named by its request, is served its login."""
    old = _adhoc.legacy_name(devidp.issuer, "bblogin")
    record = {"issuer": devidp.issuer, "client_id": "bblogin", "connector_id": "bitbucket-cloud", "scopes": list(DEFAULT_OIDC_SCOPES)}
    pathlib.Path(_adhoc.path()).write_text(json.dumps({"version": 1, "profiles": {old: record}}))
    done = bblogin("login", "--profile", old, "--flow", "device", "--no-browser")
    assert done.returncode == 0, done.stderr
    entry = ["kubectl", "--issuer", devidp.issuer, "--client-id", "bblogin", "--connector-id", "bitbucket-cloud"]
    done = _answer(entry, full=True)
    assert done.returncode == 0, done.stderr  # no second login
    assert {old, adhoc_name(devidp.issuer)} <= set(_adhoc.load())
    assert _hot_imports(entry)[0] == 0
    assert bblogin("kubectl", "--profile", old).returncode == 0


def test_a_hostile_adhoc_profiles_file_breaks_nothing_but_is_kept_aside(keyring_secret_service, devidp) -> None:
    """Nested past Python's parser, huge, or records flags could never say (an http:// issuer, an
    unknown provider, a name its request does not give): other commands never see it; the next
    ad-hoc write keeps the damaged file aside and says so; invalid records are no profile."""
    pathlib.Path(_paths.config_file()).write_text('[profiles.work]\nissuer = "https://dex.example.com/dex"\nclient_id = "bblogin"\n')
    pathlib.Path(_adhoc.path()).write_text("[" * 200000 + "]" * 200000)
    for command in (["status"], ["profiles"], ["kubectl", "--profile", "work"]):
        done = _answer(command, full=True) if command[0] == "kubectl" else bblogin(*command)
        assert "internal error" not in done.stderr and done.returncode in (0, 4), (command, done.stderr)
    done = _answer(["kubectl", "--issuer", devidp.issuer, "--client-id", "bblogin"], full=True)
    assert done.returncode == 4 and "kept as" in done.stderr and "internal error" not in done.stderr
    assert pathlib.Path(_adhoc.path() + ".damaged").exists()
    evil = {"issuer": "http://evil.example.com", "client_id": "c"}
    records = {
        _adhoc.legacy_name(evil["issuer"], "c"): evil,
        "work": {"issuer": "https://dex.example.com/dex", "client_id": "c"},
        adhoc_name("https://x.example.com", "c", None): {"issuer": "https://x.example.com", "client_id": "c", "provider": "bogus"},
        adhoc_name("https://y.example.com", "c", None): {"issuer": "https://y.example.com", "client_id": "c"},
    }
    pathlib.Path(_adhoc.path()).write_text(json.dumps({"version": 1, "profiles": records}))
    assert set(_adhoc.load()) == {adhoc_name("https://y.example.com", "c", None)}
    done = bblogin("login", "--profile", _adhoc.legacy_name(evil["issuer"], "c"), "--flow", "device", "--no-browser")
    assert done.returncode == 3 and "evil" not in done.stderr.replace(_adhoc.legacy_name(evil["issuer"], "c"), "")


def test_a_flags_entry_with_scopes_and_provider_takes_the_hot_path_and_answers_as_the_full_path(keyring_secret_service, devidp) -> None:
    """`--scope` (repeatable, any order) and `--provider oidc` in a flags-only entry: the hot path
    computes the same ad-hoc name and shape as the full path; flags it cannot judge decline."""
    entry = ["--issuer", devidp.issuer, "--client-id", "bblogin", "--connector-id", "bitbucket-cloud"]
    done = bblogin("login", *entry, *SCOPES, "--flow", "device", "--no-browser")
    assert done.returncode == 0, done.stderr
    argv = ["kubectl", *entry, "--provider", "oidc", "--scope", "offline_access", "--scope=email", "--scope", "openid", "--scope", "email"]
    full = _answer(argv, full=True)
    assert full.returncode == 0, full.stderr
    assert _hot_imports(argv)[0] == 0, "the hot path declined a cached entry with --scope"
    hot = _answer(argv, full=False)
    assert hot.returncode == 0 and json.loads(hot.stdout) == json.loads(full.stdout)
    for declined in ([*argv, "--scope", "a b"], [a if a != "oidc" else "bitbucket-dc" for a in argv], ["kubectl", "--profile", adhoc_name(devidp.issuer, scopes=("openid", "email", "offline_access")), "--scope", "groups"]):
        assert _hot_imports(declined)[0] is None, declined
    assert _hot_imports(["kubectl", *entry])[0] is None  # the default scopes: another request, not logged in
