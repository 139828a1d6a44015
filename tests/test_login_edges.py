"""`bblogin login` and `bblogin demo` at their edges: refused logins change nothing, a foreign
state is named at the timeout, the demo's loopback wait can be bounded."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

from bblogin import _paths


def _login_args(idp, *extra: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [sys.executable, "-m", "bblogin", "login", "--profile", "new", "--issuer", idp.issuer, "--client-id", "bblogin", "--flow", "loopback", "--no-browser", *extra]


def test_a_refused_login_writes_no_profile(devidp) -> None:
    config = _paths.config_file()
    done = subprocess.run(_login_args(devidp, "--timeout", "1", "--default"), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 9, done.stderr
    assert not os.path.exists(config) or "new" not in open(config, encoding="utf-8").read()


def test_a_foreign_state_is_named_at_the_timeout_with_exit_8(devidp) -> None:
    proc = subprocess.Popen(_login_args(devidp, "--timeout", "4"), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)
    assert proc.stderr is not None
    seen = ""
    while "Waiting up to" not in seen:
        line = proc.stderr.readline()
        assert line, seen
        seen += line
    redirect = urllib.request.unquote(re.search(r"redirect_uri=([^&\s]+)", seen).group(1))  # type: ignore[union-attr]
    try:
        urllib.request.urlopen(redirect + "?code=injected&state=forged", timeout=5)
    except urllib.error.HTTPError as exc:
        assert exc.code == 400
    stderr = proc.stderr.read()
    assert proc.wait(30) == 8, stderr
    assert "foreign or missing state were refused" in stderr and "did not come back" not in stderr
    assert devidp.count("/token") == 0  # the injected code was never redeemed


def test_demo_loopback_takes_a_timeout_and_says_what_to_do(monkeypatch) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "bblogin", "demo", "--flow", "loopback", "--no-browser", "--timeout", "1"], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 9, done.stderr
    assert time.monotonic() - started < 30
    assert "on THIS machine" in done.stderr and "bblogin demo` (device flow" in done.stderr
    hint = [line for line in done.stderr.splitlines() if line.startswith("  hint: ")][-1]  # the last word, under the exit-9 error
    assert "`bblogin demo` (device flow" in hint, hint  # not a login's "finish it within --timeout": no browser can


def test_flags_config_toml_cannot_hold_cost_no_login_and_break_no_file(devidp) -> None:
    """`--scope "openid email"` (a space: config.toml refuses it) was used for a login that then
    succeeded, and saved after it into config.toml, which every command refused from then on."""
    config = _paths.config_file()
    args = [sys.executable, "-m", "bblogin", "login", "--profile", "new", "--issuer", devidp.issuer, "--client-id", "bblogin", "--flow", "device", "--no-browser", "--scope", "openid email"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 2 and "profiles.new.scopes: must be a list of scope names without spaces" in done.stderr, done.stderr
    assert devidp.count("/token") == 0 and not os.path.exists(config)
    profiles = subprocess.run([sys.executable, "-m", "bblogin", "profiles"], capture_output=True, text=True, timeout=60)
    assert profiles.returncode == 0, profiles.stderr


def test_a_profile_config_toml_would_refuse_is_never_written() -> None:
    from bblogin import _config, _configedit
    from bblogin._errors import ConfigError

    _configedit.save_profile(_config.Profile(name="ok", issuer="https://dex.example.com", client_id="bblogin"))
    before = open(_paths.config_file(), encoding="utf-8").read()
    bad = _config.Profile(name="bad", issuer="https://dex.example.com", client_id="bblogin", scopes=("openid email",))
    try:
        _configedit.save_profile(bad)
    except ConfigError as exc:
        assert "not saved" in exc.message and "scope names without spaces" in exc.message
    else:
        raise AssertionError("an invalid profile was saved")
    assert open(_paths.config_file(), encoding="utf-8").read() == before
    assert list(_config.load().profiles) == ["ok"]


def test_demo_loopback_without_a_browser_here_waits_briefly_not_a_login_s_180_s(monkeypatch, capsys) -> None:
    """README: `bblogin demo --flow loopback` on a machine with no browser waited the whole 180 s."""
    from bblogin._commands import demo

    for name in ("BROWSER", "DISPLAY", "WAYLAND_DISPLAY", "SSH_CONNECTION", "SSH_TTY"):
        monkeypatch.delenv(name, raising=False)
    assert demo._loopback_timeout(no_browser=False, timeout=None) == demo.NO_BROWSER_TIMEOUT < 180
    assert "needs a browser on THIS machine" in capsys.readouterr().err
    assert demo._loopback_timeout(no_browser=False, timeout=5) == 5  # --timeout still decides
    assert "within 5 s" in capsys.readouterr().err
    monkeypatch.setenv("BROWSER", "true")
    assert demo._loopback_timeout(no_browser=False, timeout=None) is None  # a browser opens here: a login's own wait
    assert capsys.readouterr().err == ""
