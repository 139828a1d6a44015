"""`bblogin doctor`'s kubectl checks: the kubeconfig as kubectl sees it, and each entry run as kubectl runs it.

Every ``$KUBECONFIG`` file is read and merged as kubectl merges them (the first file that names a
user, context or cluster wins; the first current-context set wins; a missing file adds nothing);
without ``$KUBECONFIG``, ``~/.kube/config``. A user entry runs bblogin when its exec command is
``bblogin`` (with ``kubectl`` first), ``kubectl-bblogin``, or a Python running bblogin's launcher
(what ``bblogin setup kubectl`` writes) or ``-m bblogin kubectl``. For each one:

- its arguments are parsed by the very parser ``bblogin kubectl`` uses (``--profile=work``,
  ``-p work``, ``--issuer URL --client-id ID`` …); arguments it would refuse, or a profile that
  config.toml (and the ad-hoc profiles, ``_adhoc``) does not have, are a failed check;
- its command must exist where kubectl looks (an absolute path; a relative one from the
  kubeconfig's directory; a bare name on PATH), and so must the launcher script: a moved or
  removed installation is a failed check that says to run ``bblogin setup kubectl`` again;
- it is then run as kubectl runs it — the entry's command, arguments and ``env``, with
  ``KUBERNETES_EXEC_INFO`` saying the session is not interactive, no standard input, no
  controlling terminal, so it never opens a browser or waits for a person — and its exit code and
  message are reported (a token is never shown). "login required" (exit 4) is a warning whose fix
  is the login to run; any other failure fails the check.

A kubeconfig that cannot be read, is not YAML, or whose shape kubectl would refuse (a top level
that is not a mapping, ``users:`` that is not a list, an entry that is not a mapping) is a failed
check naming the file and what to fix, never an exception.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import subprocess
from typing import Any

from bblogin import _kubeconfig
from bblogin._commands.doctor import Check
from bblogin._config import Config
from bblogin._errors import EXIT_LOGIN_REQUIRED, BbloginError

RUN_TIMEOUT = 40  # seconds: above the non-interactive lock wait (30 s), so a busy lock reports its own message
SETUP_FIX = "bblogin setup kubectl --profile NAME"


def _parse(flags: list[str]) -> tuple[argparse.Namespace | None, str]:
    """``flags`` parsed as `bblogin kubectl` parses them: (namespace, "") or (None, argparse's message)."""
    from bblogin._cli import _helper_parser

    parser = _helper_parser("kubectl", "kubectl-bblogin")
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said):
            return parser.parse_args(flags), ""
    except SystemExit:
        return None, said.getvalue().strip().splitlines()[-1] if said.getvalue().strip() else "arguments bblogin kubectl does not take"


SECRET_FLAGS = ("--client-secret",)
API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
INTERACTIVE_MODES = ("Never", "IfAvailable", "Always")


def _secrets(args: list[str]) -> list[str]:
    """The values of ``args``' secret flags (``--client-secret S``, ``--client-secret=S``)."""
    found = [a.partition("=")[2] for a in args if a.partition("=")[0] in SECRET_FLAGS and "=" in a]
    found += [args[i + 1] for i, a in enumerate(args[:-1]) if a in SECRET_FLAGS]
    return [v for v in found if v]


def _masked(check: Check, args: list[str]) -> Check:
    """``check`` with every secret flag's value from ``args`` masked, in detail and fix alike."""
    for value in _secrets(args):
        check.detail, check.fix = check.detail.replace(value, "***"), check.fix.replace(value, "***")
    return check


def _resolve(command: str, kubeconfig: str) -> str:
    """Where kubectl looks for ``command``: absolute as is, a relative path from the kubeconfig's
    directory; a bare name as is (found on kubectl's own PATH — this process's — never the
    entry's ``env`` PATH: Go resolves it before it sets the child's environment)."""
    if os.sep in command or (os.altsep and os.altsep in command):
        return command if os.path.isabs(command) else os.path.join(os.path.dirname(os.path.abspath(kubeconfig)), command)
    return command


def _found(where: str) -> str | None:
    if os.sep in where:
        return where if os.path.isfile(where) and os.access(where, os.X_OK) else None
    return shutil.which(where)


def _env_problem(exec_: dict[str, Any]) -> str | None:
    env = exec_.get("env")
    if env is None:
        return None
    if not isinstance(env, list) or not all(isinstance(i, dict) and isinstance(i.get("name"), str) and isinstance(i.get("value", ""), str) for i in env):
        return "exec.env must be a list of {name: …, value: …} entries with string values"
    return None


def _exec_problem(name: str, exec_: dict[str, Any]) -> str | None:
    """What client-go refuses in the exec stanza before it starts anything, in kubectl's words."""
    api, mode = exec_.get("apiVersion"), exec_.get("interactiveMode")
    if not api:
        return f"apiVersion must be specified for {name} to use exec authentication plugin"
    if not mode and api != "client.authentication.k8s.io/v1beta1":
        return f"interactiveMode must be specified for {name} to use exec authentication plugin"
    if mode and mode not in INTERACTIVE_MODES:
        return f'invalid interactiveMode for {name}: "{mode}"'
    if api not in API_VERSIONS:
        return f'exec plugin: invalid apiVersion "{api}"'
    return None


def _entry_env(exec_: dict[str, Any]) -> dict[str, str]:
    env = dict(os.environ)
    for item in exec_.get("env") or []:
        env[item["name"]] = item.get("value", "")
    return env


def _run(command: str, args: list[str], exec_: dict[str, Any], env: dict[str, str]) -> tuple[int | None, str, dict[str, Any] | None]:
    """(exit code, stderr, ExecCredential) of the entry run as kubectl runs it, not interactive."""
    info = {"kind": "ExecCredential", "apiVersion": exec_.get("apiVersion") or "client.authentication.k8s.io/v1", "spec": {"interactive": False}}
    env = {**env, "KUBERNETES_EXEC_INFO": json.dumps(info)}
    try:
        done = subprocess.run([command, *args], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=RUN_TIMEOUT, start_new_session=True)
    except subprocess.TimeoutExpired:
        return None, f"no answer within {RUN_TIMEOUT} s", None
    except OSError as exc:
        return None, f"cannot be started ({exc.strerror})", None
    try:
        credential = json.loads(done.stdout) if done.returncode == 0 else None
    except ValueError:
        credential = None
    return done.returncode, done.stderr, credential if isinstance(credential, dict) else None


def _said(stderr: str) -> tuple[str, str]:
    """(message, hint) from what bblogin wrote on stderr."""
    from bblogin._log import redact

    lines = [line.strip() for line in redact(stderr).splitlines() if line.strip()]
    hints = [line.removeprefix("hint:").strip() for line in lines if line.startswith("hint:")]
    said = [line.removeprefix("bblogin:").strip() for line in lines if not line.startswith("hint:")]
    return (said[-1] if said else "(nothing on stderr)"), (hints[-1] if hints else "")


def _profile_of(ns: argparse.Namespace, config: Config) -> tuple[str | None, Check | None, str]:
    """(profile name, failed check, what runs) for the entry's parsed arguments."""
    from bblogin._commands._common import profile_from_args

    shown = f"--profile {ns.profile}" if ns.profile else (f"--issuer {ns.issuer} --client-id {ns.client_id}" if ns.issuer or ns.client_id else "the default profile")
    try:
        return profile_from_args(ns, config, remember=False).name, None, shown  # doctor writes nothing
    except BbloginError as exc:
        return None, Check("", "fail", f"runs bblogin kubectl with {shown}: {exc.message}", exc.hint or SETUP_FIX), shown


def check_user(name: str, source: str, body: Any, config: Config, used_by: list[str]) -> tuple[Check, str | None] | None:
    """The check of one user entry and the profile it runs bblogin for (secret flags' values
    masked); None when it does not run bblogin."""
    exec_ = body.get("exec") if isinstance(body, dict) else None
    if not isinstance(exec_, dict):
        return None  # a token, a client certificate, `exec: null`: not ours
    args = exec_.get("args") or []
    found = _check_user(name, source, exec_, config, used_by)
    return None if found is None else (_masked(found[0], [a for a in args if isinstance(a, str)] if isinstance(args, list) else []), found[1])


def _check_user(name: str, source: str, exec_: dict[str, Any], config: Config, used_by: list[str]) -> tuple[Check, str | None] | None:
    label = f"kubectl:{name}"
    command, args = exec_.get("command"), exec_.get("args") or []
    if not isinstance(command, str) or not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        strings = [command, *(args if isinstance(args, list) else [])]
        if not any(isinstance(v, str) and "bblogin" in v for v in strings):
            return None
        return Check(label, "fail", f"{source}: user {name}: exec.command must be a string and exec.args a list of strings", f"fix the entry, or rewrite it: {SETUP_FIX}"), None
    argv = _kubeconfig.bblogin_argv(command, args)
    if argv is None:
        return None
    refused = _exec_problem(name, exec_) or _env_problem(exec_)
    if refused is not None:
        return Check(label, "fail", f"{source}: user {name}: kubectl refuses the entry ({refused})", f"fix the entry's exec (apiVersion: {API_VERSIONS[0]}, interactiveMode: IfAvailable or Never), or rewrite it: {SETUP_FIX}"), None
    if argv[:1] != ["kubectl"]:
        return Check(label, "fail", f"{source}: user {name}: runs `bblogin {' '.join(argv)}`, not the kubectl credential plugin (`bblogin kubectl`)", f"rewrite the entry: {SETUP_FIX}"), None
    flags = argv[1:]
    ns, refused = _parse(flags)
    if ns is None:
        return Check(label, "fail", f"{source}: user {name}: bblogin kubectl refuses its args {' '.join(flags) or '(none)'}: {refused}", f"fix exec.args, or rewrite the entry: {SETUP_FIX}"), None
    profile, failed, shown = _profile_of(ns, config)
    if failed is not None:
        failed.name = label
        return failed, ns.profile
    return _wiring(label, name, source, exec_, ns, shown, profile, used_by), profile


def _wiring(label: str, name: str, source: str, exec_: dict[str, Any], ns: argparse.Namespace, shown: str, profile: str, used_by: list[str]) -> Check:
    """Whether kubectl can start the entry, and what it answers when it does."""
    command, args = exec_["command"], exec_.get("args") or []
    where = _resolve(command, source)
    found = _found(where)
    rewrite = f"bblogin setup kubectl --profile {ns.profile}" + (f" --user {name}" if name != f"bblogin-{ns.profile}" else "") if ns.profile else "reinstall bblogin where the entry says, or fix exec.command"
    if found is None:
        kubectl_says = f"fork/exec {where}: no such file or directory" if os.sep in where else f"getting credentials: exec: executable {command} not found"
        return Check(label, "fail", f"{source}: user {name}: its command {command} does not exist where kubectl looks (its own PATH, not the entry's env), so kubectl cannot start it ({kubectl_says}): a moved or removed install", rewrite)
    launcher = next((a for a in args if a.endswith(".py")), None)
    if launcher is not None and not os.path.isfile(launcher):
        return Check(label, "fail", f"{source}: user {name}: bblogin's launcher {launcher} is gone (a moved or upgraded install): kubectl gets exit 2, \"can't open file\"", rewrite)
    if not used_by:  # kubectl never starts it: neither does doctor
        return Check(label, "warn", f"runs bblogin for {profile} ({shown}), but no context uses user {name}: kubectl never runs it (doctor did not either)", f"kubectl config set-context NAME --cluster CLUSTER --user {name}")
    code, stderr, credential = _run(found, args, exec_, _entry_env(exec_))
    contexts = f"context {', '.join(used_by)}"
    if code == 0 and credential is not None and isinstance((credential.get("status") or {}).get("token"), str):
        until = (credential.get("status") or {}).get("expirationTimestamp") or "no expiry"
        if exec_.get("interactiveMode") == "Always":
            return Check(label, "warn", f"{contexts}: bblogin kubectl for {profile} answers, but with interactiveMode: Always kubectl refuses to run it without a terminal (scripts, CI, editors)", "set interactiveMode: IfAvailable")
        return Check(label, "ok", f"{contexts}: bblogin kubectl for {profile} answers with a token valid until {until}")
    message, hint = _said(stderr)
    if code == EXIT_LOGIN_REQUIRED:
        return Check(label, "warn", f"{contexts}: bblogin kubectl for {profile} exits {code}: {message}", hint)
    said = f"exits {code}" if code is not None else "fails"
    return Check(label, "fail", f"{contexts}: bblogin kubectl for {profile} {said}: {message}" + ("" if code != 0 else " (no ExecCredential on stdout)"), hint or "run the entry's command by hand to see the whole message")


def kubectl_checks(config: Config) -> list[Check]:
    """The summary check ("kubectl") and one check per user entry that runs bblogin."""
    files = _kubeconfig.files()
    kc = _kubeconfig.read(files)
    shown = ", ".join(files)
    existing = [f for f in files if os.path.exists(f)]
    if not existing:
        return [Check("kubectl", "warn", f"no kubeconfig at {shown}", SETUP_FIX)]
    used: dict[str, list[str]] = {}
    for context, user in kc.contexts.items():
        used.setdefault(user, []).append(context)
    checks = [Check("kubeconfig", "fail", f"{path}: {what}", fix) for path, what, fix in kc.problems]
    wired: dict[str, str | None] = {}
    for name, (source, body) in kc.users.items():
        found = check_user(name, source, body, config, sorted(used.get(name, [])))
        if found is not None:
            checks.append(found[0])
            wired[name] = found[1]
    if not wired:
        summary = Check("kubectl", "fail" if kc.problems else "warn", f"{shown} runs bblogin for no user", SETUP_FIX)
    else:
        profiles = sorted({p for p in wired.values() if p is not None})
        missing = sorted(set(config.profiles) - set(profiles))
        status = "fail" if kc.problems else "ok"
        summary = Check("kubectl", status, f"{shown} runs bblogin for {', '.join(profiles) or 'no profile'} (users {', '.join(sorted(wired))})" + (f"; not for {', '.join(missing)}" if missing else ""))
    return [summary, *checks]

