"""A real release: build the sdist and the wheel as CI does, install the WHEEL into a fresh venv
(no checkout on its path), and use it as a user would: the demo, `setup kubectl`, one kubectl
call through the launcher it writes, answered from the cache by the hot path running out of
site-packages, as lean and about as fast as from the checkout."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from bblogin import __version__
from bblogin._cli import launcher_command

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXEC_INFO = '{"apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}'
DATA_FILES = {
    "share/man/man1/bblogin.1": "man/bblogin.1",
    "share/bash-completion/completions/bblogin.bash": "completions/bblogin.bash",
    "share/zsh/site-functions/_bblogin": "completions/_bblogin",
    "share/fish/vendor_completions.d/bblogin.fish": "completions/bblogin.fish",
}
HEAVY = ("httpx", "authlib", "jwt", "keyring", "textual", "argparse", "json", "tomllib", "platformdirs")

pytestmark = pytest.mark.slow


class Release:
    def __init__(self, dist: pathlib.Path, venv: pathlib.Path) -> None:
        self.dist, self.venv = dist, venv
        self.wheel = next(dist.glob("bblogin-*.whl"))
        self.sdist = next(dist.glob("bblogin-*.tar.gz"))

    def run(self, program: str, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        kw.setdefault("env", os.environ.copy())
        return subprocess.run([str(self.venv / "bin" / program), *args], capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL, cwd=self.venv, **kw)


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    base = tmp_path_factory.mktemp("release")
    built = subprocess.run([sys.executable, "-m", "build", "--outdir", str(base / "dist"), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    made = Release(base / "dist", venv)
    installed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(made.wheel)], capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr[-3000:]
    yield made


def test_wheel_and_sdist_carry_what_a_user_needs(release: Release) -> None:
    with zipfile.ZipFile(release.wheel) as whl:
        names = set(whl.namelist())
        metadata = whl.read(f"bblogin-{__version__}.dist-info/METADATA").decode()
    data = f"bblogin-{__version__}.data/data/"
    assert {data + target for target in DATA_FILES} <= names
    assert "License-Expression: Apache-2.0" in metadata and "License-File: LICENSE" in metadata and "Requires-Dist: shtab" in metadata
    assert f"bblogin-{__version__}.dist-info/licenses/LICENSE" in names
    assert not any(n.startswith(("tests/", "tools/", "bblogin.egg-info")) or n.endswith(".html") for n in names)
    assert {"bblogin/_launcher.py", "bblogin/py.typed", "bblogin/tui/app.tcss"} <= names
    with tarfile.open(release.sdist) as sdist:
        members = {m.name.split("/", 1)[1] for m in sdist.getmembers() if "/" in m.name}
    assert set(DATA_FILES.values()) <= members  # so a wheel built from the sdist has them too


def test_installed_wheel_has_man_page_completions_and_helpers(release: Release) -> None:
    for target, source in DATA_FILES.items():
        assert (release.venv / target).read_text() == (ROOT / source).read_text(), target
    shells = {"bash": "completions/bblogin.bash", "zsh": "completions/_bblogin", "fish": "completions/bblogin.fish"}
    for shell, source in shells.items():
        done = release.run("bblogin", "completion", shell)
        assert done.returncode == 0 and done.stdout == (ROOT / source).read_text(), done.stderr
    for program in ("bblogin", "git-credential-bblogin", "kubectl-bblogin"):
        done = release.run(program, "--version")
        assert done.returncode == 0 and __version__ in done.stdout, done.stderr
    where = release.run("python", "-c", "import bblogin; print(bblogin.__file__)")
    assert where.stdout.strip().startswith(str(release.venv)), where.stdout  # the wheel, not the checkout


def test_installed_wheel_runs_the_demo(release: Release, keyring_secret_service) -> None:  # type: ignore[no-untyped-def]
    done = release.run("bblogin", "demo")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "ExecCredential" in done.stdout
    assert keyring_secret_service.bblogin_items() == []  # the demo cleaned up


def imported(command: list[str]) -> tuple[str, set[str]]:
    done = subprocess.run([command[0], "-X", "importtime", *command[1:]], capture_output=True, text=True, timeout=60, env={**os.environ, "KUBERNETES_EXEC_INFO": EXEC_INFO})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")} - {"imported package"}


def fastest(commands: dict[str, tuple[list[str], dict[str, str]]], rounds: int) -> dict[str, float]:
    """The fastest of ``rounds`` runs of each command, taken in turns so that the load of a shared
    machine falls on all alike; the first round (which may write bytecode) is not counted."""
    best = {name: float("inf") for name in commands}
    for round_ in range(rounds + 1):
        for name, (command, env) in commands.items():
            started = time.perf_counter()
            subprocess.run(command, capture_output=True, timeout=60, env=env, check=True)
            if round_:
                best[name] = min(best[name], time.perf_counter() - started)
    return best


def test_installed_wheel_serves_kubectl_from_the_cache_through_its_launcher(
    release: Release, keyring_secret_service, devidp, kube_apiserver, kubectl_bin, tmp_path: pathlib.Path  # type: ignore[no-untyped-def]
) -> None:
    from ruamel.yaml import YAML

    login = release.run("bblogin", "login", "--profile", "dev", "--issuer", devidp.issuer, "--client-id", "bblogin", "--flow", "device", "--no-browser")
    assert login.returncode == 0, login.stderr
    printed = release.run("bblogin", "setup", "kubectl", "--profile", "dev", "--print")
    assert printed.returncode == 0, printed.stderr
    user = next(u for u in YAML(typ="safe").load(printed.stdout)["users"] if u["name"] == "bblogin-dev")["user"]
    command = [user["exec"]["command"], *user["exec"]["args"]]
    site_packages = pathlib.Path(release.run("python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").stdout.strip())
    launcher = pathlib.Path(launcher_command()[2]).relative_to(ROOT)  # bblogin/…/_launcher.py, as in the checkout
    assert command[:3] == [str(release.venv / "bin" / "python"), "-S", str(site_packages / launcher)], command

    server = kube_apiserver(issuer=devidp.issuer, client_id="bblogin")
    config = server.kubeconfig(json.loads(json.dumps(user)))
    done = subprocess.run([str(kubectl_bin), "--kubeconfig", str(config), "get", "--raw", "/version"], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert server.attempts == [("/version", True)]
    assert devidp.count("/token", "refresh_token") == 0  # from the cache

    # The hot path out of site-packages: the same lean imports as from the checkout, as fast.
    wheel_out, wheel_modules = imported(command)
    checkout_out, checkout_modules = imported(launcher_command("kubectl", "--profile", "dev"))
    assert json.loads(wheel_out)["status"]["token"] == json.loads(checkout_out)["status"]["token"]
    assert not {m for m in wheel_modules if m.split(".")[0] in HEAVY}, sorted(wheel_modules)
    assert wheel_modules == checkout_modules, sorted(wheel_modules ^ checkout_modules)
    # pip compiled the wheel's bytecode at install; the checkout's goes to a private prefix (it may
    # not write its own: PYTHONDONTWRITEBYTECODE), so both runs load compiled modules.
    env = {**os.environ, "KUBERNETES_EXEC_INFO": EXEC_INFO}
    checkout_env = {**env, "PYTHONPYCACHEPREFIX": str(tmp_path / "pycache"), "PYTHONDONTWRITEBYTECODE": ""}
    commands = {"wheel": (command, env), "checkout": (launcher_command("kubectl", "--profile", "dev"), checkout_env)}
    best = fastest(commands, 20)
    for _ in range(2):  # a burst of load from the suite's other workers: the fastest of more rounds (a slower wheel stays slower)
        if best["wheel"] < 1.5 * best["checkout"]:
            break
        more = fastest(commands, 20)
        best = {name: min(best[name], more[name]) for name in best}
    wheel_time, checkout_time = best["wheel"], best["checkout"]
    print(f"cached kubectl call, fastest runs: wheel {wheel_time * 1000:.1f} ms, checkout {checkout_time * 1000:.1f} ms, ratio {wheel_time / checkout_time:.2f}")
    assert wheel_time < 1.5 * checkout_time
