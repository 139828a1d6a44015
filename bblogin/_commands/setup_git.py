"""`bblogin setup git`: scope bblogin to one remote prefix in git's config, idempotently.

    [credential "https://bitbucket.org"]
        helper =                 # reset: no other helper answers for this host
        helper = "!f() { if [ $1 = store ]; then …drain…; else exec /venv/bin/python -S …/bblogin/_hot/_launcher.py git-credential $1; fi; }; f"
        useHttpPath = true       # only when the prefix has a path

and records ``[git."URL"]`` in bblogin's config.toml so the helper knows which profile serves it.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess

from bblogin import _config, _configedit
from bblogin._cli import launcher_command
from bblogin._commands._common import load_config, say
from bblogin._errors import ConfigError, UsageError


def helper_value() -> str:
    """A shell helper that starts bblogin through the lean launcher (``bblogin/_hot``) for `get`
    and `erase`. git runs it for every fetch and push: `get` first, then `store` once the server
    accepted the credential. bblogin keeps nothing from a `store` and prints nothing (the keyring
    has the token already), so the shell answers it alone, draining git's request with a builtin:
    one Python start-up per git operation instead of two. (git runs `!` helpers with sh -c and
    appends the operation, a single word, as the function's argument.)"""
    launcher = " ".join(shlex.quote(part) for part in launcher_command("git-credential"))
    return f"!f() {{ if [ $1 = store ]; then while read -r _; do :; done; else exec {launcher} $1; fi; }}; f"


def _ini_value(value: str) -> str:
    """A git config value as it must be written in a file: quoted, since the helper has ; and #."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _git_config(scope: list[str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(["git", "config", *scope, *args], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise UsageError("git is not installed (or not on PATH)") from None
    if check and done.returncode not in (0, 5):  # 5: nothing to unset
        raise ConfigError(f"git config failed: {done.stderr.strip()}")
    return done


def pinned_account(args: argparse.Namespace, profile: _config.Profile, existing: _config.GitHost | None) -> str | None:
    """The ``account`` key the host gets: ``--account`` (said when the profile has no such login
    yet: git gets no answer until it has), else the one an earlier setup pinned (a rerun keeps
    it; ``--account ""`` removes it)."""
    from bblogin import _index
    from bblogin._errors import AccountNotFound

    if getattr(args, "account", None) is None:
        return existing.account if existing is not None and existing.profile == profile.name else None
    if not args.account:
        return None
    try:
        _index.load().find(args.account, profile.name)
    except AccountNotFound as exc:
        say(f"note: {exc.message}; git gets no answer for it until `bblogin login --profile {profile.name}` signs it in")
    return str(args.account)


def run(args: argparse.Namespace) -> int:
    url = args.host.rstrip("/")
    problem = _config.git_url_problem(url)
    if problem:
        raise UsageError(f"--host {args.host}: {problem}")
    config = load_config()
    profile = config.profile(args.profile)
    scope = ["--file", args.file] if args.file else ["--global"]
    helper = helper_value()
    has_path = "/" in url.split("://", 1)[1]
    existing = next((h for h in config.git_hosts if h.url == url), None)
    token = args.token or (existing.token if existing else "access_token")  # a rerun keeps the chosen kind
    account = pinned_account(args, profile, existing)
    host = _config.GitHost(url=url, profile=profile.name, account=account, username=args.username, authtype=args.authtype or "basic", token=token)
    lines = [f'[credential "{url}"]', "\thelper =", f"\thelper = {_ini_value(helper)}"] + (["\tuseHttpPath = true"] if has_path else [])
    if args.print_only:
        print(f"# git config ({'file ' + args.file if args.file else 'global'})")
        print("\n".join(lines))
        print(
            f'\n# bblogin config ({config.path})\n[git."{url}"]\nprofile = "{profile.name}"'
            + (f'\naccount = "{account}"' if account else "")
            + (f'\nusername = "{args.username}"' if args.username else "")
            + (f'\nauthtype = "{args.authtype}"' if args.authtype else "")
            + (f'\ntoken = "{token}"' if token != "access_token" else "")
        )
        return 0
    key = f"credential.{url}.helper"
    current = _git_config(scope, "--get-all", key, check=False).stdout.splitlines()
    if current != ["", helper]:
        _git_config(scope, "--unset-all", key)
        _git_config(scope, "--add", key, "")
        _git_config(scope, "--add", key, helper)
    if has_path:
        _git_config(scope, f"credential.{url}.useHttpPath", "true")
    if existing != host:
        _configedit.save_git_host(host)
    state = "already set up" if current == ["", helper] and existing == host else "set up"
    who = f"{account}'s" if account else f"profile {profile.name}'s"
    say(f"git: {url} {state}: bblogin answers with {who} {token.replace('_', ' ')} (profile {profile.name}); other helpers are off for it.")
    return 0
