"""The full path's cached answer (the fast path declined or is off: every macOS and Windows call,
and Linux's declines) imports only what it uses: no keyring, secretstorage, jeepney or
cryptography for a read from the Secret Service, no HTTP client, no TOML writer, no logging.
Run with BBLOGIN_NO_FAST_PATH=1, as the full path, through the launcher's entry."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import time

from bblogin import _config, _index, _paths
from tests.test_session import login, make_expiring

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Beyond what `python -c pass` has loaded: bblogin's modules on the way (no argparse: _cli._quick_args; no
# dataclasses: the config and index are bblogin._record's records). No json: accounts.json as parsed
# comes from its mirror (``_mirrors.parsed_index``), kubectl's KUBERNETES_EXEC_INFO from a table; no re:
# string checks. No tomllib: config.toml as parsed before comes from its cache (``_mirrors.parsed_toml``).
# No contextlib (nor the collections and functools it imports): the context managers are made at
# first use (``_lazy.contextmanager``), and a cached answer whose mirrors are current enters none.
ALLOWED = {
    "bblogin", "bblogin._adhoc", "bblogin._cli", "bblogin._clock", "bblogin._commands", "bblogin._commands._common", "bblogin._commands.kubectl",
    "bblogin._commands.git_credential", "bblogin._gitcred", "bblogin._config", "bblogin._configedit", "bblogin._errors", "bblogin._files",
    "bblogin._helperargs", "bblogin._interactive", "bblogin._hot", "bblogin._hot._answer", "bblogin._hot._chunks", "bblogin._hot._dbus", "bblogin._hot._mirror", "bblogin._index",
    "bblogin._kubectl", "bblogin._lock", "bblogin._mirrors", "bblogin._outage", "bblogin._paths", "bblogin._proxy", "bblogin._session", "bblogin._shape", "bblogin._store", "bblogin._store._keyring",
    "bblogin._store._plaintext", "bblogin._store._secrets", "bblogin._timefmt", "bblogin._tokens",
    "bblogin._record", "bblogin._lazy", "importlib", "importlib._bootstrap", "importlib._bootstrap_external", "importlib.machinery", "math", "copyreg",
    "types", "warnings", "weakref",
    "_weakrefset", "__future__", "_socket", "_sha256", "_sha2", "pwd", "io", "select", "_posixsubprocess",
}  # fmt: skip
PROXY_NEVER = ("subprocess", "ipaddress", "urllib", "urllib.parse", "signal", "selectors")  # what routing a request needs, not validating a key
# KUBERNETES_EXEC_INFO byte for byte as kubectl sends it: read without json (_kubectl.KUBECTL_EXEC_INFO)
EXEC_INFO = '{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}'
NEVER = ("dataclasses", "inspect", "ast", "dis", "tokenize", "json", "re", "enum", "argparse", "keyring", "secretstorage", "jeepney", "cryptography", "urllib.request", "http.client", "tomllib", "typing", "tomlkit", "httpx", "logging", "threading", "email.utils", "statistics", "contextlib", "collections", "functools")


def _full_path_imports(argv: list[str], stdin: bytes = b"") -> tuple[int, bytes, set[str]]:
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); before = set(sys.modules)\n"
        "from bblogin._cli import main\n"
        "code = main(sys.argv[2:]); sys.stdout.flush()\n"
        "sys.stderr.write(repr((code, sorted(set(sys.modules) - before))))\n"
    )
    env = {**os.environ, "KUBERNETES_EXEC_INFO": EXEC_INFO, "BBLOGIN_NO_FAST_PATH": "1"}
    baseline = set(subprocess.run([sys.executable, "-c", "import sys; print(' '.join(sys.modules))"], capture_output=True, text=True, env=env, check=True).stdout.split())
    done = subprocess.run([sys.executable, "-S", "-c", probe, str(ROOT), *argv], input=stdin, capture_output=True, timeout=60, env=env)
    code, modules = eval(done.stderr.decode().splitlines()[-1])  # noqa: S307  # our own probe's repr
    return code, done.stdout, set(modules) - baseline


def test_the_full_paths_cached_answers_import_only_their_allow_list(keyring_secret_service, devidp, tmp_path: pathlib.Path) -> None:
    login(devidp)
    done = subprocess.run([sys.executable, "-m", "bblogin", "setup", "git", "--host", "http://127.0.0.1:9", "--profile", "dev", "--file", str(tmp_path / "gitconfig")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    cases = {
        "kubectl": (["kubectl", "--profile", "dev"], b"", b'"token":'),
        "git get": (["git-credential", "get"], b"protocol=http\nhost=127.0.0.1:9\n\n", b"password="),
    }
    for name, (argv, stdin, answer) in cases.items():
        code, out, modules = _full_path_imports(argv, stdin)
        assert code == 0 and answer in out, name
        assert not [m for m in modules if m.split(".")[0] in NEVER or m in NEVER], (name, sorted(modules))
        assert modules <= ALLOWED, (name, sorted(modules - ALLOWED))
    # Review of outage7, 4: a kubeconfig entry of flags alone (no json for adhoc-profiles.json, no
    # lock to remember what is recorded already), and a token served inside a backoff window
    # (its -v line goes nowhere without -v: no logging).
    flags = ["--issuer", devidp.issuer, "--client-id", "bblogin", "--connector-id", "bitbucket-cloud"]
    done = subprocess.run([sys.executable, "-m", "bblogin", "login", *flags, "--flow", "device", "--no-browser"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    _full_path_imports(["kubectl", *flags])  # the first call remembers the ad-hoc profile
    make_expiring("dev", seconds_left=45)
    at = time.time()
    with _index.transaction() as index:
        index.active_account("dev").outage = {"since": at - 30, "failures": 1, "cause": "x did not answer", "retry_at": at + 60}
    for name, argv in {"kubectl, flags only": ["kubectl", *flags], "kubectl, inside a backoff window": ["kubectl", "--profile", "dev"]}.items():
        code, out, modules = _full_path_imports(argv)
        assert code == 0 and b'"token":' in out, name
        assert not [m for m in modules if m.split(".")[0] in NEVER or m in NEVER], (name, sorted(modules))
        assert modules <= ALLOWED, (name, sorted(modules - ALLOWED))
    # A profile with a proxy: config loading validates the key (bblogin._proxy, string checks
    # only), and nothing else comes in: no subprocess/threading/ipaddress/urllib.parse.
    config = pathlib.Path(_paths.config_file())
    config.write_text(config.read_text().replace('[profiles.dev]\n', '[profiles.dev]\nproxy = "http://corp:S3CRET@proxy.corp.example:3128"\n', 1))
    assert _config.load(cache=False).profiles["dev"].proxy
    for name, (argv, stdin, answer) in cases.items():
        _full_path_imports(argv, stdin)  # the first call after the edit parses config.toml anew (tomllib)
        code, out, modules = _full_path_imports(argv, stdin)
        assert code == 0 and answer in out, name
        assert not [m for m in modules if m.split(".")[0] in NEVER or m in NEVER or m in PROXY_NEVER], (name, "with proxy", sorted(modules))
        assert modules <= ALLOWED, (name, "with proxy", sorted(modules - ALLOWED))


QUICK = [
    ["kubectl"], ["kubectl", "--profile", "w"], ["kubectl", "-p", "w", "-a", "bob@example.com"], ["kubectl", "--profile=w", "--use-access-token"],
    ["kubectl", "--issuer", "https://dex.example.com/dex", "--client-id", "c", "--connector-id", "bitbucket-cloud", "--client-secret", "s", "--ca-file", "ca.pem"],
    ["kubectl", "--profile", "w", "--account="], ["git-credential", "get"], ["git-credential", "store"],
    ["kubectl", "--scope", "groups", "--scope=email"], ["kubectl", "--provider", "oidc"],
]  # fmt: skip
NOT_QUICK = [
    ["kubectl", "--provider", "bogus"], ["kubectl", "-v"], ["kubectl", "--prof", "w"], ["kubectl", "--profile", "a", "-p", "b"],
    ["kubectl", "-pw"], ["kubectl", "--profile", "-x"], ["kubectl", "--help"], ["kubectl", "--version"], ["kubectl", "extra"], ["git-credential", "erase"],
    ["git-credential", "get", "x"], ["git-credential"], ["status"], [],
]  # fmt: skip


def test_the_helper_commands_usual_command_lines_get_argparses_namespace_without_argparse() -> None:
    """``_cli._quick_args`` (no argparse on a cached kubectl or git call) gives exactly the
    namespace argparse gives, as `bblogin CMD` and as the helper program; anything else goes to
    argparse, which judges it."""
    from bblogin import _cli

    for argv in QUICK:
        for prog in (None, _cli.QUICK_COMMANDS[argv[0]][0]):
            parser = _cli._parser_for(argv) if prog is None else _cli._helper_parser(argv[0], prog)
            args, extra = parser.parse_known_args(argv if prog is None else argv[1:])
            assert extra == []
            quick = _cli._quick_args(argv, prog)
            assert quick is not None, (argv, prog)
            assert vars(quick) == {k: v for k, v in vars(args).items() if k != "_parser"}, (argv, prog)
    for argv in NOT_QUICK:
        assert _cli._quick_args(argv, None) is None, argv


def test_a_bitbucket_profiles_cached_config_read_compiles_no_regular_expression(tmp_path: pathlib.Path) -> None:
    """Review of outage7, 4: every parse of a Bitbucket profile checks its redirect_uri; with
    config.toml's parse cached (``_mirrors.parsed_toml``), that check is string code — no re,
    no enum (tests/test_config.py: it says what the regular expression said)."""
    config = pathlib.Path(_paths.config_file())
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        '[profiles.dc]\nprovider = "bitbucket-dc"\nissuer = "https://bitbucket.example.com"\nclient_id = "c"\n'
        'client_secret = "s"\nredirect_uri = "http://127.0.0.1:8400/callback"\n'
    )
    probe = "import sys; sys.path.insert(0, sys.argv[1]); from bblogin import _mirrors; _mirrors.load_config(); print(sorted(m for m in ('re', 'enum', 'tomllib') if m in sys.modules))"
    for _ in range(2):  # the first read parses config.toml (tomllib) and caches the parse
        done = subprocess.run([sys.executable, "-c", probe, str(ROOT)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout
