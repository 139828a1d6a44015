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
import time
from collections.abc import Iterator

PASSWORD = "bblogin-test-keyring"


class SecretServiceUnavailableForTests(RuntimeError):
    pass


@contextlib.contextmanager
def private_secret_service(listen: str | None = None, log: pathlib.Path | None = None) -> Iterator[str]:
    """Yields the D-Bus address; the caller exports it as DBUS_SESSION_BUS_ADDRESS. ``listen``: the
    address dbus-daemon listens on (default: its session config's). ``log``: where
    gnome-keyring-daemon's own messages go (it runs in the foreground so that they can: a daemonized
    one sends them to syslog, which a CI machine may not have); default: nowhere."""
    for tool in ("dbus-daemon", "gnome-keyring-daemon"):
        if shutil.which(tool) is None:
            raise SecretServiceUnavailableForTests(f"{tool} is not installed: run scripts/test --setup (it installs gnome-keyring and dbus-daemon)")
    root = pathlib.Path(tempfile.mkdtemp(prefix="bblogin-keyring-"))
    env = {**os.environ, "HOME": str(root), "XDG_DATA_HOME": str(root / "data"), "XDG_RUNTIME_DIR": str(root / "run"), "XDG_CONFIG_HOME": str(root / "config")}
    (root / "run").mkdir(mode=0o700)
    pids: list[int] = []
    daemon: subprocess.Popen[bytes] | None = None
    try:
        bus = subprocess.run(
            ["dbus-daemon", "--session", "--fork", "--print-address=1", "--print-pid=1", "--nosyslog", *([f"--address={listen}"] if listen else [])],
            capture_output=True, text=True, env=env, timeout=20, check=True,
        )
        address, pid = bus.stdout.split()[:2]
        pids.append(int(pid))
        env["DBUS_SESSION_BUS_ADDRESS"] = address
        with open(log or os.devnull, "ab") as messages:
            daemon = subprocess.Popen(
                ["gnome-keyring-daemon", "--unlock", "--components=secrets", "--foreground"],
                stdin=subprocess.PIPE, stdout=messages, stderr=messages, env=env, start_new_session=True,
            )
        pids.append(daemon.pid)
        assert daemon.stdin is not None
        daemon.stdin.write(PASSWORD.encode())
        daemon.stdin.close()
        _wait_for_owner(address, daemon, log)
        yield address
    finally:
        for pid in reversed(pids):
            if _started_here(pid, root):  # a pid whose daemon died may have gone to another process since
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        if daemon is not None:
            daemon.wait(timeout=10)  # our child: reaped here, not left a zombie
        shutil.rmtree(root, ignore_errors=True)


def _wait_for_owner(address: str, daemon: subprocess.Popen[bytes], log: pathlib.Path | None) -> None:
    """Until ``daemon`` owns org.freedesktop.secrets. Asked with NameHasOwner, which never starts a
    service: any call to the name itself would make D-Bus start a second, locked daemon."""
    from jeepney import DBusAddress, new_method_call
    from jeepney.io.blocking import open_dbus_connection
    from jeepney.wrappers import unwrap_msg

    bus = DBusAddress("/org/freedesktop/DBus", bus_name="org.freedesktop.DBus", interface="org.freedesktop.DBus")
    deadline = time.monotonic() + 20
    with open_dbus_connection(bus=address) as conn:
        while not unwrap_msg(conn.send_and_get_reply(new_method_call(bus, "NameHasOwner", "s", ("org.freedesktop.secrets",))))[0]:
            if daemon.poll() is not None or time.monotonic() > deadline:
                said = log.read_text(errors="replace").strip() if log else ""
                raise SecretServiceUnavailableForTests(f"gnome-keyring-daemon did not start (exit {daemon.poll()}): {said or 'no message'}")
            time.sleep(0.02)


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
