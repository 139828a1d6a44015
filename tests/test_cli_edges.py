"""Smaller command-line behaviours (#22 §5): a closed pipe, a subcommand's own usage, who is
active after a logout, and the keyring checked before a sign-in."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bblogin import _errors
from tests.test_session import bblogin, login

NO_KEYRING = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}


def run(*args: str, env: dict[str, str] | None = None, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bblogin", *args], capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}, **kw)  # type: ignore[call-overload]


@pytest.mark.parametrize("argv", [["doctor"], ["status"], ["accounts"], ["profiles"], ["completion", "bash"], ["--help"], ["kubectl", "--help"]])
def test_a_reader_that_went_away_is_a_quiet_exit(argv: list[str]) -> None:
    """`bblogin doctor | head -1`: head is gone before bblogin writes. Deterministic here: the
    pipe's read end is closed before bblogin starts."""
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run([sys.executable, "-m", "bblogin", *argv], stdout=write, stderr=subprocess.PIPE, text=True, timeout=120, env={**os.environ, **NO_KEYRING, "KUBECONFIG": os.devnull})
    finally:
        os.close(write)
    if argv == ["profiles"] or "--help" in argv:
        assert done.returncode == 0  # nothing to print; argparse drops a help text nobody reads
    else:
        assert done.returncode == _errors.EXIT_BROKEN_PIPE == 141, done.stderr
    assert done.stderr == ""


def test_a_bad_option_of_a_subcommand_prints_that_subcommands_usage() -> None:
    done = run("kubectl", "--bogus")
    assert done.returncode == 2
    assert done.stderr.startswith("usage: bblogin kubectl ") and "unrecognized arguments: --bogus" in done.stderr, done.stderr
    done = run("setup", "kubectl", "--profile", "w", "--bogus")
    assert done.returncode == 2 and done.stderr.startswith("usage: bblogin setup kubectl "), done.stderr


def test_logging_out_the_active_account_says_who_is_active_now(keyring_secret_service, devidp) -> None:
    login(devidp)
    devidp.default_user = "bob"
    login(devidp)  # bob is the active account of dev
    done = bblogin("logout", "--profile", "dev")
    assert done.returncode == 0, done.stderr
    assert "Logged out bob@example.com" in done.stderr and "alice@example.com is now the active account of dev." in done.stderr
    done = bblogin("logout", "--profile", "dev")
    assert done.returncode == 0 and "is now the active account" not in done.stderr


def test_login_without_a_usable_keyring_fails_before_the_sign_in(devidp) -> None:
    done = run("login", "--profile", "dev", "--issuer", devidp.issuer, "--client-id", "bblogin", "--flow", "device", "--no-browser", env=NO_KEYRING)
    assert done.returncode == _errors.EXIT_STORAGE == 6, done.stderr
    assert "keyring" in done.stderr and "--insecure-storage" in done.stderr
    assert devidp.count("/device/code") == 0 and devidp.count("/token") == 0  # no sign-in was started


def test_kubectl_without_a_usable_keyring_names_the_keyring_not_a_login(devidp) -> None:
    exec_info = '{"apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}'
    done = run("kubectl", "--issuer", devidp.issuer, "--client-id", "bblogin", env={**NO_KEYRING, "KUBERNETES_EXEC_INFO": exec_info})
    assert done.returncode == _errors.EXIT_STORAGE, done.stderr
    assert "no OS keyring backend is available" in done.stderr and "login required" not in done.stderr


def test_an_interactive_credential_request_checks_the_keyring_before_any_sign_in(devidp, monkeypatch: pytest.MonkeyPatch) -> None:
    """`kubectl`/`token` on a terminal with no usable keyring: the storage error comes before the
    device or browser flow starts (`_session.get_credential`), so nobody signs in for nothing."""
    from bblogin import _session
    from bblogin._config import Profile
    from bblogin._login import LoginOptions

    import keyring.core
    from keyring.backends import fail

    monkeypatch.setattr(keyring.core, "_keyring_backend", fail.Keyring(), raising=False)  # in this process (an earlier test may have installed one)
    profile = Profile(name="dev", issuer=devidp.issuer, client_id="bblogin", flow="device")
    with pytest.raises(_errors.StorageError):
        _session.get_credential(profile, interactive=True, login=LoginOptions(open_browser=False))
    assert devidp.count("/device/code") == 0 and devidp.count("/token") == 0
