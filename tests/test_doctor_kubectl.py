"""`bblogin doctor`'s kubectl checks (bblogin/_commands/_doctor_kubectl.py): every $KUBECONFIG file
merged as kubectl merges them, each bblogin entry recognised and run as kubectl runs it, broken
kubeconfigs reported as failed checks."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

from bblogin import _config, _configedit, _errors
from tests.test_adhoc import adhoc_name
from tests.test_session import login

BINDIR = str(pathlib.Path(sys.executable).parent)


def doctor(kubeconfig: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": kubeconfig, "PATH": f"{BINDIR}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([sys.executable, "-m", "bblogin", "doctor", *extra], capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)


def checks(done: subprocess.CompletedProcess[str]) -> dict[str, dict]:
    return {c["name"]: c for c in json.loads(done.stdout)["checks"]}


def user(name: str, command: str, *args: str) -> dict:
    return {"name": name, "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": command, "args": list(args), "interactiveMode": "Never"}}}


def kubeconfig(path: pathlib.Path, users: list, contexts: list[tuple[str, str]] = ()) -> str:  # type: ignore[assignment]
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
        "users": users,
        "contexts": [{"name": n, "context": {"cluster": "c", "user": u}} for n, u in contexts],
    }
    path.write_text(json.dumps(doc))
    return str(path)


def test_every_kubeconfig_file_every_entry_form_run_as_kubectl_runs_it(keyring_secret_service, devidp, tmp_path: pathlib.Path) -> None:
    login(devidp, "work")
    first = kubeconfig(tmp_path / "first", [{"name": "static", "user": {"token": "not-ours"}}, {"name": "nullexec", "user": {"exec": None}}])
    second = kubeconfig(
        tmp_path / "second",
        [
            user("plugin", "kubectl-bblogin", "--profile=work"),
            user("flags", "kubectl-bblogin", "--issuer", devidp.issuer, "--client-id", "bblogin", "--connector-id", "bitbucket-cloud"),
            user("moved", "/nonexistent/venv/bin/python3", "-S", "/nonexistent/bblogin/_hot/_launcher.py", "kubectl", "--profile", "work"),
            user("gone-launcher", sys.executable, "-S", str(tmp_path / "old" / "bblogin" / "_hot" / "_launcher.py"), "kubectl", "--profile", "work"),
            user("ghost", "bblogin", "kubectl", "-p", "nope"),
            user("dangling", "bblogin", "kubectl", "--profile"),
            user("unused", "kubectl-bblogin", "--profile", "work"),
        ],
        [("prod", "plugin"), ("flags", "flags"), ("m", "moved"), ("g", "gone-launcher"), ("x", "ghost"), ("d", "dangling")],
    )
    done = doctor(os.pathsep.join([first, str(tmp_path / "missing"), second]), "--json")
    assert done.returncode == _errors.EXIT_CHECK_FAILED, done.stderr
    assert "internal error" not in done.stderr
    result = checks(done)
    assert result["kubectl:plugin"]["status"] == "ok", result["kubectl:plugin"]
    assert "context prod" in result["kubectl:plugin"]["detail"] and "valid until" in result["kubectl:plugin"]["detail"]
    flags = result["kubectl:flags"]
    assert flags["status"] == "warn" and "exits 4" in flags["detail"]  # another request: not logged in through flags
    assert flags["fix"] == f"run `bblogin login --profile {adhoc_name(devidp.issuer)}`"
    assert result["kubectl:moved"]["status"] == "fail" and "fork/exec /nonexistent/venv/bin/python3: no such file or directory" in result["kubectl:moved"]["detail"]
    assert result["kubectl:moved"]["fix"] == "bblogin setup kubectl --profile work --user moved"
    assert result["kubectl:gone-launcher"]["status"] == "fail" and "can't open file" in result["kubectl:gone-launcher"]["detail"]
    assert result["kubectl:ghost"]["status"] == "fail" and "no profile named 'nope'" in result["kubectl:ghost"]["detail"]
    assert result["kubectl:dangling"]["status"] == "fail" and "expected one argument" in result["kubectl:dangling"]["detail"]
    assert result["kubectl:unused"]["status"] == "warn" and "no context uses user unused" in result["kubectl:unused"]["detail"]
    assert not any(name.startswith("kubectl:") for name in ("kubectl:static", "kubectl:nullexec") if name in result)
    assert "work" in result["kubectl"]["detail"] and second in result["kubectl"]["detail"]
    assert keyring_secret_service.bblogin_items()  # the login's tokens: nothing was logged out or rewritten


def test_a_broken_kubeconfig_is_a_failed_check_saying_what_to_fix(tmp_path: pathlib.Path) -> None:
    _configedit.save_profile(_config.Profile(name="work", issuer="https://dex.example.com/dex", client_id="bblogin"))
    cases = {
        "list": ("- a\n- b\n", "its top level is a list, not a mapping"),
        "yaml": ("users: [\n  - name: x\n", "is not valid YAML at line"),
        "users-map": ("users:\n  me:\n    token: t\n", "`users:` is a mapping, not a list"),
        "string-user": ("users:\n- just-a-name\n", "users[0] is a string"),
    }
    for name, (text, said) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        done = doctor(str(path), "--json")
        assert done.returncode == _errors.EXIT_CHECK_FAILED, (name, done.stderr)
        result = checks(done)
        assert result["kubeconfig"]["status"] == "fail" and said in result["kubeconfig"]["detail"], (name, result["kubeconfig"])
        assert str(path) in result["kubeconfig"]["detail"] and result["kubeconfig"]["fix"]


def test_the_failing_config_check_does_not_send_you_to_doctor(bblogin_home: pathlib.Path, tmp_path: pathlib.Path) -> None:
    (bblogin_home / "config" / "config.toml").write_text("[profiles.x]\nissuer = 5\n")
    result = checks(doctor(str(tmp_path / "none"), "--json"))
    assert result["config"]["status"] == "fail" and "must be a string" in result["config"]["detail"]
    assert result["config"]["fix"] == "fix the value in the file"


BOMB = "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9) if i else ', '.join('x' * 9)}]\n" for i in range(8))


def test_hostile_kubeconfigs_are_failed_checks_found_cheaply(tmp_path: pathlib.Path) -> None:
    """Alias bombs, circular aliases, nesting deeper than Python's stack, a huge file, `env:` that
    is not a list: each a failed check naming the file (kubectl refuses them too), never an
    internal error, and quick — as `setup kubectl --kubeconfig` refuses to edit them (exit 3)."""
    import time

    _configedit.save_profile(_config.Profile(name="work", issuer="https://dex.example.com/dex", client_id="bblogin"))
    exec_ = "users:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      interactiveMode: Never\n"
    cases = {
        "circular": (exec_ + "      command: &a [bblogin, *a]\n      args: [kubectl]\n", "kubeconfig"),
        "env-int": (exec_ + "      command: bblogin\n      args: [kubectl, --profile, work]\n      env: 5\n", "kubectl:u"),
        "deep": ("users: " + "[" * 20000 + "]" * 20000 + "\n", "kubeconfig"),
        "bomb-context": (BOMB + "contexts:\n- name: c\n  context: {user: *a7}\ncurrent-context: *a7\n", "kubeconfig"),
        "bomb-env": (BOMB + exec_ + "      command: bblogin\n      args: [kubectl, --profile, work]\n      env: [{name: X, value: *a7}]\n", "kubeconfig"),
        "bomb-command": (BOMB + exec_ + "      command: *a7\n      args: [kubectl]\n", "kubeconfig"),
        "huge": ("# a comment\n" * 500_000, "kubeconfig"),
    }
    for name, (text, check) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        started = time.monotonic()
        done = doctor(str(path), "--json")
        took = time.monotonic() - started
        assert done.returncode == _errors.EXIT_CHECK_FAILED and "internal error" not in done.stderr, (name, done.stderr)
        result = checks(done)
        assert result[check]["status"] == "fail" and result[check]["fix"], (name, result)
        assert str(path) in result[check]["detail"], (name, result[check])
        assert took < 15, (name, took)
        edit = subprocess.run([sys.executable, "-m", "bblogin", "setup", "kubectl", "--profile", "work", "--kubeconfig", str(path)], capture_output=True, text=True, timeout=60)
        assert edit.returncode in (0, 3) and "internal error" not in edit.stderr, (name, edit.stderr)
        if check == "kubeconfig":
            assert edit.returncode == 3, (name, edit.stderr)


def test_entries_kubectl_refuses_or_cannot_start_fail_with_kubectls_words(keyring_secret_service, devidp, tmp_path: pathlib.Path, kubectl_bin: pathlib.Path) -> None:
    """What kubectl checks before it runs an exec entry (client-go's exec config validation), and
    a command found only through the entry's own env PATH (Go resolves it with kubectl's PATH):
    doctor fails each with the words the real kubectl prints, never `ok`."""
    login(devidp, "work")
    base = {"apiVersion": "client.authentication.k8s.io/v1", "command": "bblogin", "args": ["kubectl", "--profile", "work"], "interactiveMode": "Never"}
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "bblogin-elsewhere").symlink_to(pathlib.Path(BINDIR) / "bblogin")
    cases = {
        "no-api": ({k: v for k, v in base.items() if k != "apiVersion"}, "apiVersion must be specified for no-api to use exec authentication plugin"),
        "no-mode": ({k: v for k, v in base.items() if k != "interactiveMode"}, "interactiveMode must be specified for no-mode to use exec authentication plugin"),
        "bad-mode": ({**base, "interactiveMode": "Sometimes"}, 'invalid interactiveMode for bad-mode: "Sometimes"'),
        "env-path": ({**base, "command": "bblogin-elsewhere", "env": [{"name": "PATH", "value": str(hidden)}]}, "exec: executable bblogin-elsewhere not found"),
    }
    for name, (exec_, words) in cases.items():
        path = kubeconfig(tmp_path / name, [{"name": name, "user": {"exec": exec_}}], [("c", name)])
        real = subprocess.run([str(kubectl_bin), "--kubeconfig", path, "--context", "c", "get", "--raw", "/version"], capture_output=True, text=True, timeout=60, env={**os.environ, "PATH": f"{BINDIR}{os.pathsep}{os.environ['PATH']}"})
        assert real.returncode != 0 and words in real.stderr, (name, real.stderr)
        result = checks(doctor(path, "--json"))[f"kubectl:{name}"]
        assert result["status"] == "fail" and words in result["detail"] and result["fix"], (name, result)
    beta = {**{k: v for k, v in base.items() if k != "interactiveMode"}, "apiVersion": "client.authentication.k8s.io/v1beta1"}  # v1beta1 defaults to IfAvailable
    assert checks(doctor(kubeconfig(tmp_path / "beta", [{"name": "beta", "user": {"exec": beta}}], [("c", "beta")]), "--json"))["kubectl:beta"]["status"] == "ok"
    always = checks(doctor(kubeconfig(tmp_path / "always", [{"name": "always", "user": {"exec": {**base, "interactiveMode": "Always"}}}], [("c", "always")]), "--json"))["kubectl:always"]
    assert always["status"] == "warn" and "without a terminal" in always["detail"] and always["fix"] == "set interactiveMode: IfAvailable"


def test_an_entry_no_context_uses_is_not_run(tmp_path: pathlib.Path) -> None:
    """kubectl never starts a user entry no context names: doctor checks it but does not run it."""
    _configedit.save_profile(_config.Profile(name="work", issuer="https://dex.example.com/dex", client_id="bblogin"))
    ran = tmp_path / "ran"
    script = tmp_path / "bblogin-marker"
    script.write_text(f"#!/bin/sh\ntouch {ran}\nexit 4\n")
    script.chmod(0o755)
    path = kubeconfig(tmp_path / "kc", [user("unused", str(script), "kubectl", "--profile", "work")])
    result = checks(doctor(path, "--json"))["kubectl:unused"]
    assert result["status"] == "warn" and "no context uses user unused" in result["detail"]
    assert not ran.exists()
    path = kubeconfig(tmp_path / "kc2", [user("used", str(script), "kubectl", "--profile", "work")], [("c", "used")])
    assert checks(doctor(path, "--json"))["kubectl:used"]["status"] == "warn" and ran.exists()  # used: run (exit 4)


def test_doctor_never_shows_a_client_secret_from_a_kubeconfig(tmp_path: pathlib.Path) -> None:
    _configedit.save_profile(_config.Profile(name="work", issuer="https://dex.example.com/dex", client_id="bblogin"))
    path = kubeconfig(
        tmp_path / "secret",
        [
            user("bad-args", "kubectl-bblogin", "--issuer", "https://dex.example.com/dex", "--client-id", "bblogin", "--client-secret", "SUPERSECRET-123", "--bogus"),
            user("token-cmd", "bblogin", "token", "--issuer", "https://dex.example.com/dex", "--client-id", "bblogin", "--client-secret=SUPERSECRET-456"),
        ],
        [("a", "bad-args"), ("b", "token-cmd")],
    )
    for extra in ((), ("--json",)):
        done = doctor(path, *extra)
        assert "SUPERSECRET" not in done.stdout + done.stderr, done.stdout
        assert "--client-secret" in done.stdout  # the checks are still there, the value masked
