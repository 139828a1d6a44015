"""Start a private Secret Service: dbus-daemon + gnome-keyring-daemon (unlocked with a throwaway
password) in temp dirs. Used by the test fixture and the benchmark; stops everything on exit."""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator

PASSWORD = "bblogin-test-keyring"


class SecretServiceUnavailableForTests(RuntimeError):
    pass


@contextlib.contextmanager
def private_secret_service(listen: str | None = None) -> Iterator[str]:
    """Yields the D-Bus address; the caller exports it as DBUS_SESSION_BUS_ADDRESS. ``listen``: the
    address dbus-daemon listens on (default: its session config's)."""
    for tool in ("dbus-daemon", "gnome-keyring-daemon"):
        if shutil.which(tool) is None:
            raise SecretServiceUnavailableForTests(f"{tool} is not installed: run scripts/test --setup (it installs gnome-keyring and dbus-daemon)")
    root = pathlib.Path(tempfile.mkdtemp(prefix="bblogin-keyring-"))
    env = {**os.environ, "HOME": str(root), "XDG_DATA_HOME": str(root / "data"), "XDG_RUNTIME_DIR": str(root / "run"), "XDG_CONFIG_HOME": str(root / "config")}
    (root / "run").mkdir(mode=0o700)
    pids: list[int] = []
    try:
        bus = subprocess.run(
            ["dbus-daemon", "--session", "--fork", "--print-address=1", "--print-pid=1", "--nosyslog", *([f"--address={listen}"] if listen else [])],
            capture_output=True, text=True, env=env, timeout=20, check=True,
        )
        address, pid = bus.stdout.split()[:2]
        pids.append(int(pid))
        env["DBUS_SESSION_BUS_ADDRESS"] = address
        daemon = subprocess.run(
            ["gnome-keyring-daemon", "--unlock", "--components=secrets", "--daemonize"],
            input=PASSWORD, capture_output=True, text=True, env=env, timeout=20,
        )
        pids += [int(line.split("=", 1)[1]) for line in daemon.stdout.splitlines() if line.startswith("GNOME_KEYRING_PID=")]
        if daemon.returncode != 0:
            raise SecretServiceUnavailableForTests(f"gnome-keyring-daemon failed: {daemon.stderr.strip()}")
        yield address
    finally:
        for pid in reversed(pids):
            if _started_here(pid, root):  # a pid whose daemon died may have gone to another process since
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        shutil.rmtree(root, ignore_errors=True)


def _started_here(pid: int, root: pathlib.Path) -> bool:
    """Whether ``pid`` is still a daemon this function started: its environment has our HOME."""
    try:
        return f"HOME={root}".encode() in pathlib.Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def bblogin_env(bus: str, home: str, **extra: str) -> dict[str, str]:
    """The environment of a bblogin that keeps its config, state and cache below ``home`` and its
    secrets in the private Secret Service at ``bus`` (the benchmarks' set-up), plus ``extra``."""
    dirs = {f"BBLOGIN_{name.upper()}_DIR": f"{home}/{name}" for name in ("config", "state", "cache")}
    return {**os.environ, "DBUS_SESSION_BUS_ADDRESS": bus, "PYTHON_KEYRING_BACKEND": "keyring.backends.SecretService.Keyring", **dirs, **extra}
