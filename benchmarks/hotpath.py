"""The hot-path benchmark: what kubectl and git pay for bblogin on every call.

    python benchmarks/hotpath.py [--runs 30] [--check] [--absolute]

In one run, interleaved so machine noise hits every command alike, the median wall time (and CPU
time, user + system, which other processes on a shared machine disturb far less) of:
  (a)  python -c pass                          the interpreter's floor
  (a') python -S -c pass                       the floor with the launcher's flags
  (b)  bblogin kubectl --profile bench         a valid cached ID token in the real Secret Service,
                                               started as kubectl starts it (the launcher that
                                               `bblogin setup kubectl` writes); (b') via pip's script
  (h)  bblogin kubectl --issuer … --client-id … the same for a flags-only kubeconfig entry (what a
                                               platform team hands out) with no config.toml at all
  (j)  bblogin kubectl --profile adhoc-…        the same entry by the ad-hoc profile's name (what the
                                               login hint names), no config.toml
  (c)  kubectl get --raw /version              with a static token
  (d)  kubectl get --raw /version              with bblogin as the exec credential plugin
  (e)  kubectl get --raw /version              with a plugin that only prints a fixed credential
                                               from a bare `python -S` (the floor for any Python plugin)
  (g)  git ls-remote                           with git-credential-bblogin (cached; the helper line
                                               `bblogin setup git` writes) against a smart-HTTP server
  (s)  git ls-remote                           the same with git's own credential-store
  (f)  git ls-remote                           with a helper that only prints the credential from a
                                               bare `python -S` (the floor for any Python helper)
  (gh) git-credential-bblogin get             the cached answer, as git's helper line starts it
  (gu) the same with username=                 git was given a user name (https://alice@host): the
                                               account it names is matched first (issue #23)
  (k)  a keyctl read through ctypes            what a kernel-keyring front cache would cost (not used)
  (p)  the hot path instrumented in-process    where (b)'s time goes: imports, D-Bus, the rest
  (r)  bblogin kubectl --profile bench-refresh one refresh (the cached ID token expired), in its own
                                               loop interleaved with (a), and the requests it makes
                                               to the IdP (must be 1)
and the peak RSS of (b) and of the git helper. Goals (--check fails otherwise): b/a <= 1.25,
d/c <= 1.30, g/s <= 1.10, RSS <= 12 MB. Everything runs locally: a private gnome-keyring, the dev
IdP, an API-server double and a git server on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bblogin.devidp import DevIdP

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bblogin._cli import launcher_command  # noqa: E402
from bblogin._commands.setup_kubectl import exec_entry  # noqa: E402
from bblogin._hot._answer import adhoc_profile_name  # noqa: E402
from bblogin._shape import DEFAULT_OIDC_SCOPES, shape_of  # noqa: E402
from tests.fixtures.git_http import GitServer  # noqa: E402
from tests.fixtures.kube_apiserver import KubeAPIServer  # noqa: E402
from tests.tools.fetch_kubectl import fetch  # noqa: E402
from tests.tools.secret_service import bblogin_env, private_secret_service  # noqa: E402

GOALS = {"bf/a": 3.0, "gf/a": 3.0, "full_rss_mb": 25.0, "b/a": 1.25, "d/c": 1.30, "g/s": 1.10, "rss_mb": 12.0, "git_rss_mb": 12.0}

# (p): the hot path in one process, each phase timed. The D-Bus phases wrap the connection's
# set-up and its round trips (send, wait for the daemons, parse); "rest" is the mirrors, the
# checks and the output. Printed as JSON on stderr.
PROBE = """
import sys, time
t0 = time.perf_counter()
sys.path[0] = sys.argv[1]
from bblogin._hot import _answer, _dbus, _chunks
from bblogin import _kubectl, _timefmt
t1 = time.perf_counter()
spent = {"connect": 0.0, "round trips": 0.0}
def clocked(name, fn):
    def wrapper(*args, **kw):
        s = time.perf_counter()
        try:
            return fn(*args, **kw)
        finally:
            spent[name] += time.perf_counter() - s
    return wrapper
_dbus.Connection.__init__ = clocked("connect", _dbus.Connection.__init__)
_dbus.Connection.reply = clocked("round trips", _dbus.Connection.reply)
code = _answer.answer(sys.argv[2:])
sys.stdout.flush()
t2 = time.perf_counter()
assert code == 0, "the probe missed the cache"
rest = (t2 - t1) - spent["connect"] - spent["round trips"]
sys.stderr.write(repr({"imports": t1 - t0, "connect": spent["connect"], "round trips": spent["round trips"], "rest": rest}))
"""

# (k): the cheapest read of a kernel keyring key a stdlib-only Python has: ctypes and a syscall.
KEYCTL_READ = """
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
key = libc.syscall(250, 10, -4, b"user", sys.argv[1].encode(), 0)  # keyctl(KEYCTL_SEARCH, user keyring, ...)
buf = ctypes.create_string_buffer(8192)
n = libc.syscall(250, 11, key, buf, 8192)  # keyctl(KEYCTL_READ)
assert key > 0 and n > 0, ctypes.get_errno()
sys.stdout.write(buf.raw[:n].decode())
"""


def timed(cmd: list[str], env: dict[str, str], stdin: bytes = b"") -> tuple[float, float, str]:
    """(wall seconds, CPU seconds (user + system, from wait4), stderr) of one run; fails loudly
    if the command fails."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stderr is not None
    proc.stdin.write(stdin)
    proc.stdin.close()
    stderr = proc.stderr.read().decode()
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(cmd)}\n{stderr}")
    return elapsed, usage.ru_utime + usage.ru_stime, stderr


def peak_rss_kib(cmd: list[str], env: dict[str, str], stdin: bytes = b"") -> int:
    """Peak RSS via GNU time. (ru_maxrss from wait4 would count the pages of this big benchmark
    process that the child held between fork and exec, not bblogin's own.)"""
    done = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], env=env, input=stdin, capture_output=True, check=True)
    return int(done.stderr.decode().strip().splitlines()[-1])


SYS_ADD_KEY, SYS_KEYCTL = 248, 250  # x86-64
KEYCTL_SET_TIMEOUT, KEYCTL_INVALIDATE, KEY_SPEC_USER_KEYRING = 15, 21, -4


def _syscall(number: int, *args: object) -> int:
    return int(ctypes.CDLL(None, use_errno=True).syscall(number, *args))


def refresh_path(bblogin: str, idp: DevIdP, env: dict[str, str], runs: int) -> tuple[float, float, list[int]]:
    """(r)/(a) in wall and CPU time — one refresh through `bblogin kubectl` vs `python -c pass`,
    interleaved — and the requests each refresh made to the IdP (discovery and JWKS must come from
    the disk cache: [1]). Tokens live 6 s, so the refresh margin is capped at 1 s (a quarter of the
    lifetime) and each call after an untimed wait of 5 s refreshes; at most 10 runs, since each
    waits. Another user than (b)'s, so (b)'s account keeps its long-lived token."""
    idp.id_token_ttl, idp.default_user = 6, "bob"
    login = [bblogin, "login", "--profile", "bench-refresh", "--issuer", idp.issuer, "--client-id", "bblogin", "--connector-id", "bitbucket-cloud", "--flow", "device", "--no-browser"]
    subprocess.run(login, env=env, check=True, capture_output=True, timeout=60)
    floor, refresh = [sys.executable, "-c", "pass"], launcher_command("kubectl", "--profile", "bench-refresh")
    wall: dict[str, list[float]] = {"a": [], "r": []}
    cpu: dict[str, list[float]] = {"a": [], "r": []}
    requests: set[int] = set()
    for run in range(min(runs, 10) + 1):  # the first refresh warms the pyc and page caches
        wall_a, cpu_a, _ = timed(floor, env)
        time.sleep(idp.id_token_ttl - 0.9)
        before = len(idp.requests)
        wall_r, cpu_r, _ = timed(refresh, env)
        if run:
            requests.add(len(idp.requests) - before)
            for key, elapsed, used in (("a", wall_a, cpu_a), ("r", wall_r, cpu_r)):
                wall[key].append(elapsed)
                cpu[key].append(used)
    return statistics.median(wall["r"]) / statistics.median(wall["a"]), statistics.median(cpu["r"]) / statistics.median(cpu["a"]), sorted(requests)


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
    keyctl_name = f"bblogin-bench-{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="bblogin-bench-") as tmp, private_secret_service() as bus, DevIdP(auto_approve=True, device_interval=1) as idp:
        env = bblogin_env(bus, tmp, GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0")
        login = [bblogin, "login", "--profile", "bench", "--issuer", idp.issuer, "--client-id", "bblogin", "--connector-id", "bitbucket-cloud", "--flow", "device", "--no-browser"]
        subprocess.run(login, env=env, check=True, capture_output=True, timeout=60)
        oidc_server = KubeAPIServer(pathlib.Path(tmp), issuer=idp.issuer, client_id="bblogin")
        static_dir = pathlib.Path(tmp) / "static"
        static_dir.mkdir()
        static_server = KubeAPIServer(static_dir, issuer=None, client_id=None, static_token="bench-static-token")
        # (h): another user logged in through flags alone, with no config.toml (its own cache dir:
        # the config mirror describes one config file)
        flags = ["--issuer", idp.issuer, "--client-id", "bblogin", "--connector-id", "bitbucket-cloud"]
        env_h = {**env, "BBLOGIN_CONFIG": f"{tmp}/no-config/config.toml", "BBLOGIN_CACHE_DIR": f"{tmp}/cache-flags"}
        idp.default_user = "carol"
        subprocess.run([bblogin, "login", *flags, "--flow", "device", "--no-browser"], env=env_h, check=True, capture_output=True, timeout=60)
        idp.default_user = "alice"
        exec_config = oidc_server.kubeconfig(exec_entry("bench", use_access_token=False))  # what `bblogin setup kubectl` writes
        static_config = static_server.kubeconfig({"token": "bench-static-token"})
        floor_dir = pathlib.Path(tmp) / "floor"
        floor_dir.mkdir()
        floor_server = KubeAPIServer(floor_dir, issuer=None, client_id=None, static_token="bench-static-token")
        credential = '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"bench-static-token"}}'
        floor_config = floor_server.kubeconfig({"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable, "args": ["-S", "-c", f"print('{credential}')"], "interactiveMode": "Never"}})

        # git: the same server and the same token, once through bblogin, once through credential-store
        git_root = pathlib.Path(tmp) / "git"
        git_root.mkdir()
        accepted: set[tuple[str, str]] = set()
        git_server = GitServer(git_root, lambda user, token: (user, token) in accepted)
        bblogin_gitconfig, store_gitconfig = pathlib.Path(tmp) / "gitconfig-bblogin", pathlib.Path(tmp) / "gitconfig-store"
        subprocess.run([bblogin, "setup", "git", "--host", git_server.url, "--profile", "bench", "--file", str(bblogin_gitconfig)], env=env, check=True, capture_output=True)
        host = git_server.url.split("://", 1)[1]
        git_request = f"protocol=http\nhost={host}\n\n".encode()
        answer = subprocess.run(launcher_command("git-credential", "get"), env=env, input=git_request, capture_output=True, check=True).stdout.decode()
        fields = dict(line.split("=", 1) for line in answer.splitlines() if "=" in line)
        accepted.add((fields["username"], fields["password"]))
        store_file = pathlib.Path(tmp) / "git-credentials"
        from urllib.parse import quote

        store_file.write_text(f"http://{quote(fields['username'], safe='')}:{quote(fields['password'], safe='')}@{host}\n")
        store_gitconfig.write_text(f'[credential "{git_server.url}"]\n\thelper =\n\thelper = store --file {store_file}\n')
        # (f): the floor for any Python helper: a bare `python -S` that prints the same credential
        floor_gitconfig = pathlib.Path(tmp) / "gitconfig-floor"
        floor_helper = pathlib.Path(tmp) / "floor-helper.py"
        floor_helper.write_text(f"print({answer!r}, end='')\n")
        floor_gitconfig.write_text(f'[credential "{git_server.url}"]\n\thelper =\n\thelper = !{sys.executable} -S {floor_helper}\n')

        # (k): the ID token in the kernel's user keyring for a minute, as a front cache would hold it
        id_token = subprocess.run(launcher_command("kubectl", "--profile", "bench"), env=env, capture_output=True, check=True).stdout
        token = json.loads(id_token)["status"]["token"].encode()
        key = _syscall(SYS_ADD_KEY, b"user", keyctl_name.encode(), token, len(token), KEY_SPEC_USER_KEYRING)
        keyctl_works = key > 0  # seccomp (e.g. Docker's default profile) may forbid it
        if keyctl_works:
            _syscall(SYS_KEYCTL, KEYCTL_SET_TIMEOUT, key, 60)

        commands = {
            "a": [sys.executable, "-c", "pass"],
            "a'": [sys.executable, "-S", "-c", "pass"],
            "b": launcher_command("kubectl", "--profile", "bench"),
            "b'": [bblogin, "kubectl", "--profile", "bench"],
            "h": launcher_command("kubectl", *flags),
            "j": launcher_command("kubectl", "--profile", adhoc_profile_name(shape_of("oidc", idp.issuer, "bblogin", DEFAULT_OIDC_SCOPES, "bitbucket-cloud"))),
            "c": [kubectl, "--kubeconfig", str(static_config), "get", "--raw", "/version"],
            "d": [kubectl, "--kubeconfig", str(exec_config), "get", "--raw", "/version"],
            "e": [kubectl, "--kubeconfig", str(floor_config), "get", "--raw", "/version"],
            "g": ["git", "ls-remote", f"{git_server.url}/repo.git"],
            "s": ["git", "ls-remote", f"{git_server.url}/repo.git"],
            "f": ["git", "ls-remote", f"{git_server.url}/repo.git"],
            "p": [sys.executable, "-S", "-c", PROBE, str(ROOT), "kubectl", "--profile", "bench"],
            "bf": launcher_command("kubectl", "--profile", "bench"),  # the full path, cached (every macOS/Windows call)
            "gf": launcher_command("git-credential", "get"),
            "gh": launcher_command("git-credential", "get"),  # the hot path's answer, as git's helper line runs it
            "gu": launcher_command("git-credential", "get"),  # the same with the user name in the URL (https://alice@host)
        }
        named_request = f"protocol=http\nhost={host}\nusername={fields['username']}\n\n".encode()
        stdins = {"gf": git_request, "gh": git_request, "gu": named_request}
        if keyctl_works:
            commands["k"] = [sys.executable, "-S", "-c", KEYCTL_READ, keyctl_name]
        envs = {key: env for key in commands}
        envs["h"] = envs["j"] = env_h
        envs["g"] = {**env, "GIT_CONFIG_GLOBAL": str(bblogin_gitconfig)}
        envs["s"] = {**env, "GIT_CONFIG_GLOBAL": str(store_gitconfig)}
        envs["f"] = {**env, "GIT_CONFIG_GLOBAL": str(floor_gitconfig)}
        envs["bf"] = envs["gf"] = {**env, "BBLOGIN_NO_FAST_PATH": "1"}
        for key, cmd in commands.items():  # warm caches (pyc, page cache, JWKS in the API server)
            timed(cmd, envs[key], stdins.get(key, b""))
        wall: dict[str, list[float]] = {k: [] for k in commands}
        cpu: dict[str, list[float]] = {k: [] for k in commands}
        phases: list[dict[str, float]] = []
        for _ in range(args.runs):
            for key, cmd in commands.items():
                elapsed, used, stderr = timed(cmd, envs[key], stdins.get(key, b""))
                wall[key].append(elapsed)
                cpu[key].append(used)
                if key == "p":
                    phases.append(eval(stderr.strip().splitlines()[-1]))  # noqa: S307  # the probe's own repr
        rss_b = max(peak_rss_kib(commands["b"], env) for _ in range(5))
        rss_git = max(peak_rss_kib(launcher_command("git-credential", "get"), env, git_request) for _ in range(5))
        rss_full = max(peak_rss_kib(commands["bf"], envs["bf"]) for _ in range(3))
        importtime = subprocess.run([sys.executable, "-X", "importtime", *launcher_command("kubectl", "--profile", "bench")[1:]], env=env, capture_output=True, text=True)
        refresh_wall, refresh_cpu, refresh_requests = refresh_path(bblogin, idp, env, args.runs)
        if keyctl_works:
            _syscall(SYS_KEYCTL, KEYCTL_INVALIDATE, key)
        for server in (oidc_server, static_server, floor_server, git_server):
            server.stop()

    med = {k: statistics.median(v) for k, v in wall.items()}
    cmed = {k: statistics.median(v) for k, v in cpu.items()}
    results = {"bf/a": med["bf"] / med["a"], "gf/a": med["gf"] / med["a"], "full_rss_mb": rss_full / 1024, "b/a": med["b"] / med["a"], "d/c": med["d"] / med["c"], "g/s": med["g"] / med["s"], "rss_mb": rss_b / 1024, "git_rss_mb": rss_git / 1024}
    print(f"runs: {args.runs} each, interleaved; medians are shown relative to each other, not as absolute times (cpu: user+system of the process)")
    if args.absolute:
        print("  medians (ms, this run only): " + ", ".join(f"{k}={v * 1000:.1f}" for k, v in med.items()))
        print("  cpu medians (ms, this run only): " + ", ".join(f"{k}={v * 1000:.1f}" for k, v in cmed.items()))
    print(f"  b/a  bblogin kubectl (cached) vs python -c pass     {results['b/a']:.2f}   (goal <= {GOALS['b/a']}; cpu {cmed['b'] / cmed['a']:.2f}; the launcher kubeconfig runs)")
    floor_s, floor_s_cpu, console = med["a'"] / med["a"], cmed["a'"] / cmed["a"], med["b'"] / med["a"]
    print(f"  h/a  the same, flags-only entry, no config.toml   {med['h'] / med['a']:.2f}   (cpu {cmed['h'] / cmed['a']:.2f}; h/b {med['h'] / med['b']:.2f})")
    print(f"  j/a  the same by --profile adhoc-…, no config.toml {med['j'] / med['a']:.2f}   (cpu {cmed['j'] / cmed['a']:.2f}; j/b {med['j'] / med['b']:.2f})")
    print(f"  a'/a python -S -c pass vs python -c pass            {floor_s:.2f}   (cpu {floor_s_cpu:.2f}: the launcher's flags skip site)")
    print(f"  b'/a the same through pip's console script          {console:.2f}   (pip's wrapper imports re; site)")
    print(f"  bf/a full path, cached: bblogin kubectl            {med['bf'] / med['a']:.2f}   (goal <= {GOALS['bf/a']}; cpu {cmed['bf'] / cmed['a']:.2f}; BBLOGIN_NO_FAST_PATH=1, what macOS and Windows take)")
    print(f"  gf/a full path, cached: git-credential-bblogin get {med['gf'] / med['a']:.2f}   (goal <= {GOALS['gf/a']}; cpu {cmed['gf'] / cmed['a']:.2f})")
    print(f"  d/c  kubectl with bblogin plugin vs static token    {results['d/c']:.2f}   (goal <= {GOALS['d/c']})")
    print(f"  e/c  kubectl with a do-nothing Python plugin (the floor) {med['e'] / med['c']:.2f}   (what any CPython plugin costs at least)")
    print(f"  gu/gh git-credential get with a user name to match vs without {med['gu'] / med['gh']:.2f}   (cpu {cmed['gu'] / cmed['gh']:.2f}; gh/a {med['gh'] / med['a']:.2f})")
    print(f"  g/s  git ls-remote, bblogin helper vs credential-store {results['g/s']:.2f}   (goal <= {GOALS['g/s']}; cpu {cmed['g'] / cmed['s']:.2f})")
    print(f"  f/s  git ls-remote, do-nothing Python helper (the floor) {med['f'] / med['s']:.2f}   (git runs a helper twice: get, then store)")
    if "k" in med:
        print(f"  k/a  a keyctl read via ctypes vs python -c pass     {med['k'] / med['a']:.2f}   (cpu {cmed['k'] / cmed['a']:.2f}; a kernel-keyring front cache would cost this: not adopted)")
    print(f"  r/a  one refresh through bblogin kubectl           {refresh_wall:.2f}   (cpu {refresh_cpu:.2f}; requests to the IdP per refresh: {refresh_requests}, goal [1])")
    print(f"  peak RSS of the full path, cached (kubectl)         {results['full_rss_mb']:.1f} MB (goal <= {GOALS['full_rss_mb']:.0f} MB)")
    print(f"  peak RSS of bblogin kubectl                         {results['rss_mb']:.1f} MB (goal <= {GOALS['rss_mb']:.0f} MB)")
    print(f"  peak RSS of git-credential-bblogin get              {results['git_rss_mb']:.1f} MB (goal <= {GOALS['git_rss_mb']:.0f} MB)")
    gap = med["b"] - med["a'"]
    phase = {name: statistics.median(p[name] for p in phases) for name in phases[0]}
    print(f"  where b's time goes, as shares of a (python -c pass); b - a' = {gap / med['a']:.2f} a:")
    print(f"    interpreter with the launcher's flags (a')       {floor_s:.2f}")
    for name, seconds in phase.items():
        print(f"    {name:48} {seconds / med['a']:.2f}")
    print(f"    exit (b skips the clean-up a' pays), the rest    {(gap - sum(phase.values())) / med['a']:.2f}")
    rows = [line.split("|") for line in importtime.stderr.splitlines() if line.startswith("import time:") and "cumulative" not in line]
    top = sorted(rows, key=lambda r: int(r[1]), reverse=True)[:8]
    print("  heaviest imports on the hot path (cumulative µs):")
    for cumulative, name in ((r[1].strip(), r[2].rstrip()) for r in top):
        print(f"    {cumulative:>7}  {name}")
    missed = [k for k, goal in GOALS.items() if results[k] > goal] + (["r requests"] if refresh_requests != [1] else [])
    if missed:
        print(f"missed: {', '.join(missed)}")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
