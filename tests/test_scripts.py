"""The README's test command is scripts/test, CI runs it, and it sets up only what is missing.

scripts/test --check runs every check of the install step and installs nothing, so these tests
need neither root nor the network: on a machine scripts/test (or .ci/run) has set up, a second
run must find nothing to install; with something missing it must name it and what installs it.
"""

from __future__ import annotations

import glob
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "test"


def run_script(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "BBLOGIN_VENV": sys.prefix, **env}  # the venv running these tests
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=120, env=environ, stdin=subprocess.DEVNULL)


def readme_test_command() -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- test-command -->\n```sh\n(.*?)\n```\n<!-- /test-command -->", text, re.S)
    assert block, "README.md has no <!-- test-command --> block"
    return block.group(1).strip()


def test_readme_test_command_is_the_script_ci_runs() -> None:
    assert readme_test_command() == "scripts/test"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "scripts/test --setup" in ci and "scripts/test --check" in ci
    assert "readme_block test-command" in ci and "readme_block install-command" in ci
    assert "<!-- install-command -->\n```sh\npython3 -m venv .venv && .venv/bin/pip install . && .venv/bin/bblogin demo\n```" in (ROOT / "README.md").read_text()
    assert "apt-get" not in ci and "chromium" not in ci  # the package list lives in scripts/apt-packages only
    assert not (ROOT / ".ci" / "apt-packages").exists()


def test_the_readme_says_how_scripts_test_runs_pytest() -> None:
    """scripts/test runs the suite through pytest-xdist's options (workers on request, none by
    default), and the README quotes that command as it is, with the default worker count."""
    run = re.search(r'^exec "\$venv/bin/python" (-m pytest .*) "\$@"$', SCRIPT.read_text(), re.M)
    assert run, "scripts/test no longer ends in exec python -m pytest ... \"$@\""
    command = re.sub(r'"\$\{BBLOGIN_TEST_WORKERS:-(\d+)\}"', r"\1", run.group(1))
    assert re.search(r"-n \d+ --dist loadfile", command), command
    assert f"`python {command}`" in (ROOT / "README.md").read_text().replace("\n", " ")


# What the tests and benchmarks run (a program on PATH, or a file), by the package in
# scripts/apt-packages that brings it: on a fresh machine (CI) only scripts/test can have put them there.
PROVIDES = {
    "git": "git",
    "gnome-keyring": "gnome-keyring-daemon",
    "dbus-daemon": "dbus-daemon",
    "dbus": None,  # configuration only
    "groff-base": "groff",
    "time": "/usr/bin/time",
    "chromium": "chromium",
    "zsh": "zsh",
    "fish": "fish",
    "faketime": "faketime",
    "libfaketime": "/usr/lib/*/faketime/libfaketimeMT.so.1",  # LD_PRELOAD (tests/test_clock_skew.py)
    "tinyproxy": "tinyproxy",  # the authenticating HTTP proxy (tests/fixtures/corpnet.py)
    "microsocks": "microsocks",  # the SOCKS5 proxy (tests/fixtures/corpnet.py)
    "tmux": "tmux",  # a detached session for the login rule (tests/test_interactive.py)
    "curl": "curl",  # getting-started.md's blocks wait for the dev IdP with it (tests/test_docs.py)
    "man-db": "man",  # `man -w bblogin` after getting-started.md's install block (tests/test_docs.py)
}


def test_the_list_brings_every_program_the_tests_run() -> None:
    names = [line.split("#")[0].strip() for line in (ROOT / "scripts" / "apt-packages").read_text().splitlines()]
    listed = {n for n in names if n}
    assert listed >= set(PROVIDES), set(PROVIDES) - listed
    for package in sorted(listed):
        assert package in PROVIDES, f"{package}: say which program the tests use it for"
        program = PROVIDES[package]
        found = program is None or (glob.glob(program) if program.startswith("/") else shutil.which(program))
        assert found, f"{program} (from {package}) is not installed: scripts/test --setup"


def test_second_run_installs_nothing_and_is_fast() -> None:
    started = time.monotonic()
    done = run_script("--check")
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert "nothing to install" in done.stderr and "missing" not in done.stderr and "installing" not in done.stderr
    assert elapsed < 10, f"--check took {elapsed:.1f} s"


def test_check_names_what_is_missing_and_installs_nothing(tmp_path: pathlib.Path) -> None:
    packages = tmp_path / "apt-packages"
    packages.write_text("# a comment\ngit\nbblogin-no-such-package   # not in Debian\n\n")
    venv = tmp_path / "venv"
    done = run_script("--check", BBLOGIN_APT_PACKAGES=str(packages), BBLOGIN_VENV=str(venv))
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert any("missing: Debian packages bblogin-no-such-package (would run: apt-get update" in line for line in lines), done.stderr
    assert not any("Debian packages" in line and " git" in line for line in lines)  # git is installed
    assert any(f"missing: the venv {venv}" in line for line in lines)
    assert any("missing: bblogin and its test dependencies" in line for line in lines)
    assert not venv.exists()


def test_check_notices_a_dependency_pyproject_asks_for(tmp_path: pathlib.Path) -> None:
    """A dependency added to pyproject.toml (by a pull) makes the next run install again."""
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    (checkout / "scripts" / "test").write_bytes(SCRIPT.read_bytes())
    (checkout / "scripts" / "test").chmod(0o755)
    text = (ROOT / "pyproject.toml").read_text().replace('test = [\n', 'test = [\n    "bblogin-no-such-dependency>=1",\n')
    (checkout / "pyproject.toml").write_text(text)
    done = subprocess.run([str(checkout / "scripts" / "test"), "--check"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "BBLOGIN_VENV": sys.prefix, "BBLOGIN_APT_PACKAGES": os.devnull})
    assert done.returncode == 1
    assert "missing: bblogin and its test dependencies" in done.stderr and "bblogin-no-such-dependency>=1" in done.stderr


LIST_MARKERS = """
import pytest
class Show:
    def pytest_collection_finish(self, session):
        for item in session.items:
            print("MARKS", item.nodeid, *sorted({m.name for m in item.iter_markers()} & {"keyring", "kubectl", "browser", "slow"}))
raise SystemExit(pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", *__import__("sys").argv[1:]], plugins=[Show()]))
"""


def collected(*args: str) -> dict[str, set[str]]:
    done = subprocess.run([sys.executable, "-c", LIST_MARKERS, *args], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-2000:]
    return {f[1]: set(f[2:]) for f in (line.split() for line in done.stdout.splitlines()) if f and f[0] == "MARKS"}


@pytest.mark.slow  # collects the whole suite
def test_markers_follow_the_parts_a_test_uses() -> None:
    marks = collected()
    files = lambda marker: {node.split("::")[0] for node, m in marks.items() if marker in m}  # noqa: E731
    assert files("browser") == {"tests/test_browser.py"}
    assert "tests/test_session.py" in files("keyring") and "tests/test_config.py" not in files("keyring")
    assert "tests/test_kubectl.py" in files("kubectl") and "tests/test_cli.py" not in files("kubectl")
    assert "slow" in marks["tests/test_adversarial.py::test_1000_cache_hits_grow_nothing"]
    uses_keyring = [n for n, m in marks.items() if n.startswith("tests/test_session.py")]
    assert uses_keyring and all("keyring" in marks[n] for n in uses_keyring)  # pytestmark usefixtures counts too


@pytest.mark.slow  # collects the whole suite twice
def test_not_browser_deselects_exactly_the_browser_tests() -> None:
    everything, without = collected(), collected("-m", "not browser")
    base = lambda nodes: {n.split("[")[0] for n in nodes}  # noqa: E731  # some ids carry random parameters
    browser = base(n for n, m in everything.items() if "browser" in m)
    assert browser and base(everything) - base(without) == browser and not browser & base(without)


@pytest.mark.parametrize("break_it", ["interpreter gone", "interpreter changed"])
def test_a_venv_from_another_interpreter_is_made_anew(tmp_path: pathlib.Path, break_it: str) -> None:
    """A removed pyenv version leaves bin/python dangling; a distribution upgrade leaves a Python
    whose pip sits in another lib/pythonX.Y. `python -m venv` over either keeps it broken (it keeps
    the dangling link; pip stays missing), so scripts/test must make the venv anew (--clear)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    if break_it == "interpreter gone":
        for name in ("python", "python3"):
            (venv / "bin" / name).unlink()
            (venv / "bin" / name).symlink_to(tmp_path / "gone" / "python3")
    else:  # runs, but finds no pip: the pip installed with it sits in another version's lib/pythonX.Y
        (venv / "lib" / f"python3.{sys.version_info[1]}").rename(venv / "lib" / "python3.10")
    done = run_script("--check", BBLOGIN_APT_PACKAGES=os.devnull, BBLOGIN_VENV=str(venv))
    assert done.returncode == 1, done.stderr
    assert f"missing: a new venv {venv} (the one there has no working Python with pip" in done.stderr, done.stderr
    assert f"-m venv --clear {venv}" in done.stderr
    assert "older than 3.11" not in done.stderr
