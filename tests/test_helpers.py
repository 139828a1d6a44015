"""The helper programs (git-credential-bblogin, kubectl-bblogin) speak as themselves, and a user
with no or an incomplete config gets messages that are true and name commands that exist."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import sysconfig

import pytest

from bblogin import __version__

EXEC_INFO = '{"apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}'


def helper(name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed console script, as git and kubectl do."""
    program = os.path.join(sysconfig.get_path("scripts"), name)
    return subprocess.run([program, *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})


def bblogin(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bblogin", *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize(("program", "command"), [("git-credential-bblogin", "git-credential"), ("kubectl-bblogin", "kubectl")])
def test_helpers_answer_version(program: str, command: str) -> None:
    done = helper(program, "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{program} {__version__} (bblogin {command})"


@pytest.mark.parametrize(("program", "bad"), [("git-credential-bblogin", ["get", "--bogus"]), ("kubectl-bblogin", ["--bogus"])])  # an unknown *operation* is no error: test_git_wiring
def test_helpers_usage_names_the_program_as_invoked(program: str, bad: list[str]) -> None:
    usage = helper(program, "--help")
    assert usage.returncode == 0 and usage.stdout.startswith(f"usage: {program} "), usage.stdout
    wrong = helper(program, *bad)
    assert wrong.returncode == 2
    assert f"usage: {program} " in wrong.stderr and f"{program}: error:" in wrong.stderr
    assert "bblogin git-credential" not in wrong.stderr and "bblogin kubectl" not in wrong.stderr


def test_kubectl_without_a_config_file_says_there_is_none(bblogin_home: pathlib.Path) -> None:
    done = helper("kubectl-bblogin", env={"KUBERNETES_EXEC_INFO": EXEC_INFO})
    config = bblogin_home / "config" / "config.toml"
    assert done.returncode == 3
    assert f"there is no {config} yet" in done.stderr and "default_profile" not in done.stderr
    assert "bblogin login --profile NAME" in done.stderr and "Traceback" not in done.stderr


def test_several_profiles_and_no_default_names_them(bblogin_home: pathlib.Path) -> None:
    (bblogin_home / "config" / "config.toml").write_text(
        '[profiles.work]\nissuer = "https://dex.example.com/dex"\nclient_id = "bblogin"\n'
        '[profiles.home]\nissuer = "https://dex.example.org/dex"\nclient_id = "bblogin"\n'
    )
    done = helper("kubectl-bblogin", env={"KUBERNETES_EXEC_INFO": EXEC_INFO})
    assert done.returncode == 3
    assert "sets no default_profile among its 2 profiles" in done.stderr and "--profile (home, work)" in done.stderr


def test_unknown_profile_hint_names_the_command_that_lists_profiles(bblogin_home: pathlib.Path) -> None:
    (bblogin_home / "config" / "config.toml").write_text('[profiles.work]\nissuer = "https://dex.example.com/dex"\nclient_id = "bblogin"\n')
    done = helper("kubectl-bblogin", "--profile", "nope", env={"KUBERNETES_EXEC_INFO": EXEC_INFO})
    assert done.returncode == 3 and "no profile named 'nope'" in done.stderr
    assert "`bblogin profiles`" in done.stderr and "bblogin accounts" not in done.stderr
    assert bblogin("profiles").stdout.split() == ["work"]  # the command the hint names exists and lists it


@pytest.mark.parametrize("command", [["status"], ["status", "--json"], ["accounts"], ["accounts", "--json"], ["profiles"]])
def test_read_only_commands_write_no_file_without_a_config(bblogin_home: pathlib.Path, command: list[str]) -> None:
    done = bblogin(*command)
    assert done.returncode == 0, done.stderr
    assert [p for p in bblogin_home.rglob("*") if p.is_file()] == []
