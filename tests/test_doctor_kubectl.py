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
