"""`bblogin demo`: the whole product against the embedded dev IdP, then a clean slate.

It starts the dex double in-process, logs in through the same code as `bblogin login` (device
flow auto-approved by default, or the loopback flow in a browser), stores the tokens through the
same store as real logins (the OS keyring; a plaintext temp file only when no keyring works, and
then it says so), runs the real `bblogin kubectl` and `git-credential-bblogin` commands to show
what kubectl and git receive, prints the decoded claims, and removes everything it created.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator

from bblogin._claims import unverified_claims
from bblogin._commands._common import say
from bblogin._errors import BbloginError, LoginTimeout, StorageError

DEMO_GIT_HOST = "https://git.bblogin-demo.test"
_ENV = ("BBLOGIN_CONFIG_DIR", "BBLOGIN_STATE_DIR", "BBLOGIN_CACHE_DIR", "BBLOGIN_CONFIG")


@contextlib.contextmanager
def _throwaway_home() -> Iterator[str]:
    """Point bblogin's config/state/cache at a temp dir for the demo; restore afterwards."""
    saved = {k: os.environ.get(k) for k in _ENV}
    with tempfile.TemporaryDirectory(prefix="bblogin-demo-") as tmp:
        for name in ("config", "state", "cache"):
            os.environ[f"BBLOGIN_{name.upper()}_DIR"] = os.path.join(tmp, name)
        os.environ.pop("BBLOGIN_CONFIG", None)
        try:
            yield tmp
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def _choose_storage() -> str:
    """The OS keyring when it works; otherwise a plaintext file in the temp dir, said out loud."""
    from bblogin._store import SecretStore

    probe = SecretStore("keyring")
    try:
        probe.set("demo-probe", "id_token", "probe")
        probe.delete("demo-probe", "id_token")
    except StorageError as exc:
        say(f"note: no usable OS keyring here ({exc.message}).")
        say("      The demo keeps its throwaway tokens in a PLAINTEXT file in its temp dir, deleted at exit.")
        return "plaintext"
    return "keyring"


LOOPBACK_DEMO_HINT = (
    "the loopback demo needs a browser on this machine; without one run `bblogin demo` (device flow, auto-approved, "
    "no browser needed), or open the URL within --timeout SECONDS"
)
NO_BROWSER_TIMEOUT = 60  # the loopback demo's wait when no browser here can open the URL (a login's default is 180 s)


def _loopback_timeout(no_browser: bool, timeout: int | None) -> int | None:
    """The dev IdP listens on 127.0.0.1 only: when no browser here can open the URL, say so, and
    wait a short time (unless --timeout says otherwise) instead of a login's full 180 s."""
    from bblogin._oidc._browser import can_open_browser

    if not no_browser and can_open_browser():
        return timeout
    wait = NO_BROWSER_TIMEOUT if timeout is None else timeout
    say("note: " + ("--no-browser: " if no_browser else "no browser can open here (no DISPLAY, or over SSH): ")
        + "the loopback demo needs a browser on THIS machine (the dev IdP listens on 127.0.0.1 only);")
    say(f"      open the URL below in one within {wait} s (--timeout SECONDS changes that), or press Ctrl-C and run")
    say("      `bblogin demo` (device flow, auto-approved, no browser needed).")
    return wait


def _mask(token: str) -> str:
    return f"{token[:10]}…[{len(token)} chars, masked]"


def _run_bblogin(args: list[str], stdin: str = "") -> str:
    """Run the installed entry point the way kubectl/git would: a new process, the hot path."""
    done = subprocess.run([sys.executable, "-m", "bblogin", *args], input=stdin, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise BbloginError(f"`bblogin {' '.join(args)}` failed in the demo: {done.stderr.strip()}")
    return done.stdout


def run(args: argparse.Namespace) -> int:
    from bblogin import _config, _configedit
    from bblogin._login import LoginOptions, interactive_login
    from bblogin._session import logout, save_login
    from bblogin.devidp import DevIdP

    auto = args.flow == "device"
    with _throwaway_home(), DevIdP(auto_approve=auto) as idp:
        say(f"Started the dev IdP (a double of dex with the bitbucket-cloud connector) at {idp.issuer}")
        storage = _choose_storage()
        profile = _config.Profile(
            name="demo", issuer=idp.issuer, client_id="bblogin", connector_id="bitbucket-cloud", flow=args.flow, storage=storage
        )
        _configedit.save_profile(profile, make_default=True)
        _configedit.save_git_host(_config.GitHost(url=DEMO_GIT_HOST, profile="demo"))
        say(f"Logging in with the {args.flow} flow" + (" (auto-approved as the fake Bitbucket user alice)…" if auto else "…"))
        timeout = args.timeout if auto else _loopback_timeout(args.no_browser, args.timeout)
        options = LoginOptions(flow=args.flow, open_browser=not args.no_browser, timeout=timeout)
        try:
            tokens, identity = interactive_login(profile, options)
        except LoginTimeout as exc:
            if auto:
                raise
            # a login's hint says "run it again within --timeout": no help where no browser can come back
            raise LoginTimeout(exc.message, hint=LOOPBACK_DEMO_HINT) from None
        account = save_login(profile, tokens, identity)
        try:
            say(f"\nLogged in as {account.label}; tokens stored in {'the OS keyring' if storage == 'keyring' else 'a plaintext temp file'}.\n")
            cred = json.loads(_run_bblogin(["kubectl", "--profile", "demo"]))
            cred["status"]["token"] = _mask(cred["status"]["token"])
            print("What kubectl receives from `bblogin kubectl --profile demo`:")
            print(json.dumps(cred, indent=2, ensure_ascii=False))
            answer = _run_bblogin(["git-credential", "get"], f"protocol=https\nhost={DEMO_GIT_HOST.split('://')[1]}\n\n")
            print(f"\nWhat git receives from `git-credential-bblogin get` for {DEMO_GIT_HOST}:")
            for line in answer.splitlines():
                key, _, value = line.partition("=")
                print(f"  {key}={_mask(value) if key in ('password', 'credential') else value}")
            print("\nThe ID token's claims (verified against the IdP's JWKS when stored):")
            print(json.dumps(unverified_claims(tokens.id_token or "") or {}, indent=2, ensure_ascii=False))
        finally:
            logout(profile, account)
            say("\nDemo finished: tokens deleted, dev IdP stopped, temp files removed.")
    return 0
