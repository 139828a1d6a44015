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
from tests.test_hot import _hot_imports
from tests.test_session import bblogin

BINDIR = str(pathlib.Path(sys.executable).parent)


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
    name = adhoc_profile_name(devidp.issuer, "bblogin")

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
    name = adhoc_profile_name(devidp.issuer, "bblogin")
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
    name = adhoc_profile_name(devidp.issuer, "bblogin")
    _answer(["kubectl", "--issuer", devidp.issuer, "--client-id", "bblogin"], full=True)  # no login: records the ad-hoc profile only
    done = bblogin("profiles")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["work", f"{name}\tad hoc: {devidp.issuer}, client bblogin"]
    completion = subprocess.run(["bash", "-c", f"source {_completion_script()}; _bblogin_profiles ''"], capture_output=True, text=True, timeout=60, env={**os.environ, "PATH": f"{BINDIR}{os.pathsep}{os.environ['PATH']}"})
    assert completion.stdout.split() == ["work", name]  # bash completes the names only


def _completion_script() -> str:
    return str(pathlib.Path(__file__).resolve().parents[1] / "completions" / "bblogin.bash")
