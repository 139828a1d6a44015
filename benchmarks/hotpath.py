"""The hot-path benchmark: what kubectl and git pay for bblogin on every call.

    python benchmarks/hotpath.py [--runs 30] [--check]

In one run, interleaved so machine noise hits every command alike, the median wall time of:
  (a) python -c pass                          the interpreter's floor
  (b) bblogin kubectl --profile bench         a valid cached ID token in the real Secret Service
  (c) kubectl get --raw /version              with a static token
  (d) kubectl get --raw /version              with bblogin as the exec credential plugin
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

from tests.fixtures.kube_apiserver import KubeAPIServer  # noqa: E402
from tests.tools.fetch_kubectl import fetch  # noqa: E402
from tests.tools.secret_service import private_secret_service  # noqa: E402

GOALS = {"b/a": 3.0, "d/c": 1.25, "rss_mb": 30.0}


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    """(wall seconds, peak RSS in KiB) of one run; fails loudly if the command fails."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(cmd)}\n{proc.stderr.read().decode() if proc.stderr else ''}")
    return elapsed, usage.ru_maxrss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
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
        exec_config = oidc_server.kubeconfig({"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": bblogin, "args": ["kubectl", "--profile", "bench"], "interactiveMode": "Never"}})
        static_config = static_server.kubeconfig({"token": "bench-static-token"})
        commands = {
            "a": [sys.executable, "-c", "pass"],
            "b": [bblogin, "kubectl", "--profile", "bench"],
            "c": [kubectl, "--kubeconfig", str(static_config), "get", "--raw", "/version"],
            "d": [kubectl, "--kubeconfig", str(exec_config), "get", "--raw", "/version"],
        }
        for cmd in commands.values():  # warm caches (pyc, page cache, JWKS in the API server)
            timed(cmd, env)
        times: dict[str, list[float]] = {k: [] for k in commands}
        rss_b = 0
        for _ in range(args.runs):
            for key, cmd in commands.items():
                elapsed, rss = timed(cmd, env)
                times[key].append(elapsed)
                if key == "b":
                    rss_b = max(rss_b, rss)
        importtime = subprocess.run([sys.executable, "-X", "importtime", bblogin, "kubectl", "--profile", "bench"], env=env, capture_output=True, text=True)
        oidc_server.stop()
        static_server.stop()

    med = {k: statistics.median(v) for k, v in times.items()}
    results = {"b/a": med["b"] / med["a"], "d/c": med["d"] / med["c"], "rss_mb": rss_b / 1024}
    print(f"runs: {args.runs} each, interleaved; medians are shown relative to each other, not as absolute times")
    print(f"  b/a  bblogin kubectl (cached) vs python -c pass     {results['b/a']:.2f}   (goal <= {GOALS['b/a']})")
    print(f"  d/c  kubectl with bblogin plugin vs static token    {results['d/c']:.2f}   (goal <= {GOALS['d/c']})")
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
