from __future__ import annotations

import os
import subprocess
import sys


def run_demo(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bblogin", "demo"], capture_output=True, text=True, timeout=120, env=env)


def test_demo_runs_the_whole_flow_in_the_real_keyring_and_cleans_up(keyring_secret_service) -> None:
    done = run_demo(os.environ.copy())
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert '"kind": "ExecCredential"' in out and "masked" in out
    assert "username=alice" in out and "password_expiry_utc=" in out
    assert '"email": "alice@example.com"' in out and '"groups": [' in out
    assert "tokens stored in the OS keyring" in done.stderr.replace("\n", " ")
    assert "PLAINTEXT" not in done.stderr
    assert keyring_secret_service.bblogin_items() == []  # cleaned up
    for line in out.splitlines():  # no whole JWT anywhere in the output, only the masked prefix
        assert not (line.count(".") >= 2 and "eyJ" in line and len(line) > 200)


def test_demo_without_a_keyring_says_plaintext_out_loud() -> None:
    env = {**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    done = run_demo(env)
    assert done.returncode == 0, done.stderr
    assert "PLAINTEXT file in its temp dir" in done.stderr
