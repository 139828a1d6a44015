"""The hot-path benchmark: what kubectl and git pay for bblogin on every call.

    python benchmarks/hotpath.py [--runs 30] [--check]

In one run, interleaved so machine noise hits every command alike, the median wall time of:
  (a) python -c pass                          the interpreter's floor
  (b) bblogin kubectl --profile bench         a valid cached ID token in the real Secret Service,
                                              started as kubectl starts it (the launcher that
                                              `bblogin setup kubectl` writes); (b') via pip's script
  (c) kubectl get --raw /version              with a static token
  (d) kubectl get --raw /version              with bblogin as the exec credential plugin
  (e) kubectl get --raw /version              with a plugin that only prints a fixed credential
                                              from a bare `python -S` (the floor for any Python plugin)
and the peak RSS of (b). Goals: b/a <= 3.0, d/c <= 1.25, RSS <= 30 MB (--check fails otherwise).
Everything runs locally: a private gnome-keyring, the dev IdP and an API-server double on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bblogin._cli import launcher_command  # noqa: E402
from bblogin._commands.setup_kubectl import exec_entry  # noqa: E402
from tests.fixtures.kube_apiserver import KubeAPIServer  # noqa: E402
from tests.tools.fetch_kubectl import fetch  # noqa: E402
from tests.tools.secret_service import private_secret_service  # noqa: E402

GOALS = {"b/a": 3.0, "d/c": 1.25, "rss_mb": 30.0}


def timed(cmd: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one run; fails loudly if the command fails."""
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(cmd)}\n{done.stderr.decode()}")
    return elapsed


def peak_rss_kib(cmd: list[str], env: dict[str, str]) -> int:
    """Peak RSS via GNU time. (ru_maxrss from wait4 would count the pages of this big benchmark
    process that the child held between fork and exec, not bblogin's own.)"""
    done = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], env=env, capture_output=True, text=True, check=True)
    return int(done.stderr.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    parser.add_argument("--absolute", action="store_true", help="also print this run's medians in ms (noisy; compare ratios)")
    args = parser.parse_args()

    from bblogin.devidp import DevIdP

    bblogin = str(pathlib.Path(sys.executable).parent / "bblogin")
    kubectl = str(fetch())
    # byte-compile as `pip install` does: an editable checkout under PYTHONDONTWRITEBYTECODE would
    # otherwise compile bblogin from source on every call and measure the compiler, not bblogin
    import bblogin as package

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(pathlib.Path(package.__file__).parent)], check=True)
    with tempfile.TemporaryDirectory(prefix="bblogin-bench-") as tmp, private_secret_service() as bus, DevIdP(auto_approve=True, device_interval=1) as idp:
        env = {
            **os.environ,
            "DBUS_SESSION_BUS_ADDRESS": bus,
            "PYTHON_KEYRING_BACKEND": "keyring.backends.SecretService.Keyring",
            "BBLOGIN_CONFIG_DIR": f"{tmp}/config",
            "BBLOGIN_STATE_DIR": f"{tmp}/state",
            "BBLOGIN_CACHE_DIR": f"{tmp}/cache",
        }
        login = [bblogin, "login", "--profile", "bench", "--issuer", idp.issuer, "--client-id", "bblogin", "--connector-id", "bitbucket-cloud", "--flow", "device", "--no-browser"]
        subprocess.run(login, env=env, check=True, capture_output=True, timeout=60)
        oidc_server = KubeAPIServer(pathlib.Path(tmp), issuer=idp.issuer, client_id="bblogin")
        static_dir = pathlib.Path(tmp) / "static"
        static_dir.mkdir()
        static_server = KubeAPIServer(static_dir, issuer=None, client_id=None, static_token="bench-static-token")
        exec_config = oidc_server.kubeconfig(exec_entry("bench", use_access_token=False))  # what `bblogin setup kubectl` writes
        static_config = static_server.kubeconfig({"token": "bench-static-token"})
        floor_dir = pathlib.Path(tmp) / "floor"
        floor_dir.mkdir()
        floor_server = KubeAPIServer(floor_dir, issuer=None, client_id=None, static_token="bench-static-token")
        credential = '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"bench-static-token"}}'
        floor_config = floor_server.kubeconfig({"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable, "args": ["-S", "-c", f"print('{credential}')"], "interactiveMode": "Never"}})
        commands = {
            "a": [sys.executable, "-c", "pass"],
            "b": launcher_command("kubectl", "--profile", "bench"),
            "b'": [bblogin, "kubectl", "--profile", "bench"],
            "c": [kubectl, "--kubeconfig", str(static_config), "get", "--raw", "/version"],
            "d": [kubectl, "--kubeconfig", str(exec_config), "get", "--raw", "/version"],
            "e": [kubectl, "--kubeconfig", str(floor_config), "get", "--raw", "/version"],
        }
        for cmd in commands.values():  # warm caches (pyc, page cache, JWKS in the API server)
            timed(cmd, env)
        times: dict[str, list[float]] = {k: [] for k in commands}
        for _ in range(args.runs):
            for key, cmd in commands.items():
                times[key].append(timed(cmd, env))
        rss_b = max(peak_rss_kib(commands["b"], env) for _ in range(5))
        importtime = subprocess.run([sys.executable, "-X", "importtime", *launcher_command("kubectl", "--profile", "bench")[1:]], env=env, capture_output=True, text=True)
        for server in (oidc_server, static_server, floor_server):
            server.stop()

    med = {k: statistics.median(v) for k, v in times.items()}
    results = {"b/a": med["b"] / med["a"], "d/c": med["d"] / med["c"], "rss_mb": rss_b / 1024}
    console = med["b'"] / med["a"]
    floor = med["e"] / med["c"]
    print(f"runs: {args.runs} each, interleaved; medians are shown relative to each other, not as absolute times")
    if args.absolute:
        print("  medians (ms, this run only): " + ", ".join(f"{k}={v * 1000:.1f}" for k, v in med.items()))
    print(f"  b/a  bblogin kubectl (cached) vs python -c pass     {results['b/a']:.2f}   (goal <= {GOALS['b/a']}; the launcher kubeconfig runs)")
    print(f"  b'/a the same through pip's console script          {console:.2f}   (pip's wrapper imports re; site)")
    print(f"  d/c  kubectl with bblogin plugin vs static token    {results['d/c']:.2f}   (goal <= {GOALS['d/c']})")
    print(f"  e/c  kubectl with a do-nothing Python plugin (the floor) {floor:.2f}   (what any CPython plugin costs at least)")
    print(f"  peak RSS of bblogin kubectl                         {results['rss_mb']:.1f} MB (goal <= {GOALS['rss_mb']:.0f} MB)")
    rows = [line.split("|") for line in importtime.stderr.splitlines() if line.startswith("import time:") and "cumulative" not in line]
    top = sorted(rows, key=lambda r: int(r[1]), reverse=True)[:8]
    print("  heaviest imports on the hot path (cumulative µs):")
    for self_us, cumulative, name in ((r[0].split(":")[1].strip(), r[1].strip(), r[2].rstrip()) for r in top):
        print(f"    {cumulative:>7}  {name}")
    missed = [k for k, goal in GOALS.items() if results[k] > goal]
    if missed:
        print(f"missed: {', '.join(missed)}")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
