"""Whether and how a browser is launched: the environment decides, and never more than once."""

from __future__ import annotations

import stat
import sys
import time
from pathlib import Path

import pytest

from bblogin._oidc._browser import LAUNCH_GRACE, can_open_browser, open_browser

ENV = ("BROWSER", "DISPLAY", "WAYLAND_DISPLAY", "SSH_CONNECTION", "SSH_TTY")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the display rules are the Linux/BSD ones")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, fresh_webbrowser: None):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)

    def set_env(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return set_env


@linux_only
@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, False),
        ({"DISPLAY": ":0"}, True),
        ({"WAYLAND_DISPLAY": "wayland-0"}, True),
        ({"SSH_CONNECTION": "10.0.0.1 5 10.0.0.2 22"}, False),
        ({"SSH_TTY": "/dev/pts/3"}, False),
        ({"SSH_CONNECTION": "10.0.0.1 5 10.0.0.2 22", "DISPLAY": "localhost:10.0"}, True),  # X11 forwarding
        ({"SSH_TTY": "/dev/pts/3", "BROWSER": "w3m"}, True),  # the user said how
    ],
)
def test_can_open_browser(env, values: dict[str, str], expected: bool) -> None:
    env(**values)
    assert can_open_browser() is expected


def recording_browser(tmp_path: Path, name: str = "browser", exit_code: int = 0, runs_for: float = 0) -> tuple[str, Path]:
    record = tmp_path / f"{name}.opened"
    script = tmp_path / name
    script.write_text(f'#!/bin/sh\necho "$1" >> {record}\nsleep {runs_for}\nexit {exit_code}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return f"{script} %s", record


def test_open_browser_launches_browser_once(env, tmp_path: Path) -> None:
    command, record = recording_browser(tmp_path)
    env(BROWSER=command)
    assert open_browser("http://127.0.0.1:9/auth?state=s") is True
    assert record.read_text().splitlines() == ["http://127.0.0.1:9/auth?state=s"]


def test_a_failing_browser_is_not_followed_by_another(env, tmp_path: Path) -> None:
    command, record = recording_browser(tmp_path, "first", exit_code=1)
    second, second_record = recording_browser(tmp_path, "second")
    env(BROWSER=f"{command}:{second}")  # webbrowser.open would try the second after the first fails
    assert open_browser("http://127.0.0.1:9/auth") is False
    assert record.read_text().splitlines() == ["http://127.0.0.1:9/auth"]
    assert not second_record.exists()


def test_a_browser_running_in_the_foreground_does_not_block_the_login(env, tmp_path: Path) -> None:
    command, record = recording_browser(tmp_path, runs_for=5)  # e.g. a text browser, or a wrapper that waits
    env(BROWSER=command)
    started = time.monotonic()
    assert open_browser("http://127.0.0.1:9/auth") is True
    assert LAUNCH_GRACE <= time.monotonic() - started < LAUNCH_GRACE + 1.5
    assert record.read_text().splitlines() == ["http://127.0.0.1:9/auth"]


@linux_only
def test_nothing_is_launched_without_a_display(env, tmp_path: Path) -> None:
    assert open_browser("http://127.0.0.1:9/auth") is False
