"""`bblogin doctor`: check what bblogin depends on and say what to fix.

Checks: config.toml; the keyring (backend, plaintext or not, a write/read/delete round trip within
the timeout); for each profile the IdP's discovery document and JWKS and the clock against the
IdP's Date header; kubeconfig and git wiring. Exit 0 when nothing failed (warnings allowed),
EXIT_CHECK_FAILED (10) otherwise. ``--json`` for scripts.
"""

from __future__ import annotations

import argparse
import email.utils
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

from bblogin._config import Config, Profile
from bblogin._errors import EXIT_CHECK_FAILED, EXIT_OK, BbloginError

CLOCK_SKEW_WARN = 30


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""


def _config() -> tuple[Config | None, Check]:
    from bblogin._commands._common import load_config

    try:
        config = load_config()
    except BbloginError as exc:
        return None, Check("config", "fail", exc.message, exc.hint)
    if not config.profiles:
        return config, Check("config", "warn", f"{config.path}: no profiles yet", "bblogin login --profile NAME --issuer URL --client-id ID")
    return config, Check("config", "ok", f"{config.path}: {len(config.profiles)} profile(s), {len(config.git_hosts)} git host(s)")


def _keyring() -> Check:
    from bblogin._store import SecretStore

    store = SecretStore("keyring")
    try:
        description = store.backend_description()
        store.set("doctor-probe", "id_token", "probe")
        ok = store.get("doctor-probe", "id_token") == "probe"
        store.delete("doctor-probe", "id_token")
    except BbloginError as exc:
        return Check("keyring", "fail", exc.message, exc.hint)
    if not ok:
        return Check("keyring", "fail", f"{description}: a value written could not be read back", "check the keyring backend")
    if store.is_plaintext:
        return Check("keyring", "warn", f"{description} keeps secrets in a plaintext file", "use a Secret Service, macOS Keychain or Windows Credential Manager")
    return Check("keyring", "ok", description)


def _idp(profile: Profile) -> list[Check]:
    from bblogin._http import make_client, request

    name = f"idp:{profile.name}"
    try:
        with make_client(ca_file=profile.ca_file, timeout=5) as http:
            if profile.provider != "oidc":
                response = request(http, "GET", profile.issuer, what=f"reaching {profile.issuer}")
                checks = [Check(name, "ok", f"{profile.issuer} answers (HTTP {response.status_code})")]
            else:
                from bblogin._oidc._discovery import discover

                metadata = discover(profile.issuer, http=http)
                response = request(http, "GET", metadata.jwks_uri, what="fetching the JWKS")
                keys = len(response.json().get("keys", [])) if response.status_code == 200 else 0
                status = "ok" if keys else "fail"
                checks = [Check(name, status, f"discovery ok; JWKS has {keys} key(s)", "" if keys else "the IdP publishes no signing keys")]
    except BbloginError as exc:
        return [Check(name, "fail", exc.message, exc.hint)]
    date = response.headers.get("Date")
    if date:
        skew = time.time() - email.utils.parsedate_to_datetime(date).timestamp()
        status = "warn" if abs(skew) > CLOCK_SKEW_WARN else "ok"
        checks.append(Check(f"clock:{profile.name}", status, f"this machine is {skew:+.0f} s from the IdP's clock", "fix NTP" if status == "warn" else ""))
    return checks


def _kubeconfig(config: Config) -> Check:
    from ruamel.yaml import YAML

    from bblogin._commands.setup_kubectl import kubeconfig_path

    path = kubeconfig_path(None)
    try:
        with open(path, encoding="utf-8") as fh:
            doc = YAML(typ="safe").load(fh) or {}
    except FileNotFoundError:
        return Check("kubectl", "warn", f"no kubeconfig at {path}", "bblogin setup kubectl --profile NAME")
    except Exception as exc:  # a broken kubeconfig is reported, not raised
        return Check("kubectl", "fail", f"{path} cannot be read ({type(exc).__name__})", "fix the YAML")
    wired = set()
    for user in doc.get("users") or []:
        args = ((user or {}).get("user") or {}).get("exec", {}).get("args") or []
        if "kubectl" in args and "--profile" in args:
            wired.add(args[args.index("--profile") + 1])
    missing = sorted(set(config.profiles) - wired)
    if not wired:
        return Check("kubectl", "warn", f"{path} runs bblogin for no profile", "bblogin setup kubectl --profile NAME")
    return Check("kubectl", "ok", f"{path} runs bblogin for {', '.join(sorted(wired))}" + (f"; not for {', '.join(missing)}" if missing else ""))


def _git(config: Config) -> Check:
    if not config.git_hosts:
        return Check("git", "ok", "no git hosts configured")
    unwired = []
    for host in config.git_hosts:
        try:
            done = subprocess.run(["git", "config", "--get-all", f"credential.{host.url}.helper"], capture_output=True, text=True, timeout=10)
        except FileNotFoundError:
            return Check("git", "fail", "git is not installed", "install git")
        if "bblogin" not in done.stdout:
            unwired.append(host.url)
    if unwired:
        return Check("git", "fail", f"git does not ask bblogin for {', '.join(unwired)}", f"bblogin setup git --host {unwired[0]} --profile NAME")
    return Check("git", "ok", f"git asks bblogin for {', '.join(h.url for h in config.git_hosts)}")


def run(args: argparse.Namespace) -> int:
    config, first = _config()
    checks = [first, _keyring()]
    if config is not None:
        for profile in config.profiles.values():
            checks += _idp(profile)
        checks += [_kubeconfig(config), _git(config)]
    if args.json:
        sys.stdout.write(json.dumps({"ok": all(c.status != "fail" for c in checks), "checks": [asdict(c) for c in checks]}, indent=2) + "\n")
    else:
        marks = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}
        for c in checks:
            print(f"[{marks[c.status]}] {c.name:16} {c.detail}" + (f"\n{'':24}fix: {c.fix}" if c.fix else ""))
    return EXIT_OK if all(c.status != "fail" for c in checks) else EXIT_CHECK_FAILED
