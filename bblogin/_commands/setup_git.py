"""`bblogin setup git`: scope bblogin to one remote prefix in git's config, idempotently (or undo it: --remove).

    [credential "https://bitbucket.org"]
        helper =                 # empties the helpers gathered *before* it for this host (later ones still run: _gitconfig)
        helper = "!f() { if [ $1 = store ]; then …drain…; else exec /venv/bin/python -S …/bblogin/_hot/_launcher.py git-credential $1; fi; }; f"
        useHttpPath = true       # only when the prefix has a path

and records ``[git."URL"]`` in bblogin's config.toml so the helper knows which profile serves it.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess

from bblogin import _config, _configedit, _gitconfig
from bblogin._cli import launcher_command
from bblogin._commands._common import load_config, say
from bblogin._errors import ConfigError, UsageError
from bblogin._record import replace


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


def _url(given: str) -> str:
    problem = _config.git_url_problem(given)
    if problem:
        raise UsageError(f"--host {given}: {problem}")
    return _config.normalize_git_url(given)


def _repository_of(file: str | None) -> str | None:
    """The working tree whose git config ``file`` is (``…/.git/config``), else None."""
    if file is None:
        return None
    path = os.path.abspath(file)
    if os.path.basename(path) == "config" and os.path.basename(os.path.dirname(path)) == ".git":
        return os.path.dirname(os.path.dirname(path))
    return None


def _refuse_changing_for_one_repository(existing: _config.GitHost, host: _config.GitHost, file: str, scope: list[str]) -> UsageError:
    """``--file`` edits one git config file, but config.toml's binding holds for every repository."""
    url = host.url
    changes = [f"{key} {getattr(existing, key) or 'default'} → {getattr(host, key) or 'default'}" for key in ("profile", "account", "username", "token", "authtype") if getattr(existing, key) != getattr(host, key)]
    remote = _git_config(scope, "--get", "remote.origin.url", check=False).stdout.strip()
    remote = re.sub(r"^([A-Za-z]+://)[^@/]*@", r"\1", remote)  # never a user name (or a password) in a key
    own = _config.normalize_git_url(remote) if remote and not _config.git_url_problem(remote) else None
    narrower = own if own and own != url and own.startswith(url + "/") else f"{url}/PATH/OF/THE/REPOSITORY"
    flags = " ".join(f"--{key} {getattr(host, key)}" for key in ("profile", "username", "token", "authtype") if getattr(host, key) and (key == "profile" or getattr(existing, key) != getattr(host, key)))
    return UsageError(
        f"config.toml binds {url} to profile {existing.profile} for every repository; --file {file} edits only that file's helper entries, "
        f"so it cannot change that for one repository ({', '.join(changes)}): nothing was changed",
        hint=(
            f"bind this repository's URL instead (the longest matching prefix wins; it holds for that URL wherever git sends its path, not for this clone alone): "
            f"bblogin setup git --file {file} --host {narrower} {flags}; or, to change {url} for every repository, run it without --file"
        ),
    )


def run(args: argparse.Namespace) -> int:
    scope = ["--file", args.file] if args.file else ["--global"]
    if args.remove and _config.git_url_problem(args.host) and any(h.url == args.host and h.problem for h in load_config().git_hosts):
        return _remove(args.host, scope, args.file)  # a bad key already in config.toml: --remove takes it as written
    url = _url(args.host)
    if args.remove:
        return _remove(url, scope, args.file)
    if not args.profile:
        raise UsageError("--profile NAME is required (or --remove to undo)", hint="`bblogin profiles` lists them")
    config = load_config()
    profile = config.profile(args.profile)
    helper = helper_value()
    has_path = "/" in url.split("://", 1)[1]
    existing = next((h for h in config.git_hosts if h.url == url), None)
    moving = existing is not None and existing.profile != profile.name and existing.profile in config.profiles
    same = existing if existing is not None and existing.profile == profile.name else None
    host = _config.GitHost(  # a rerun keeps what was chosen before: token kind and authtype per host, user name and account per profile (pinned_account)
        url=url,
        profile=profile.name,
        account=pinned_account(args, profile, existing),
        username=(args.username or None) if args.username is not None else (same.username if same else None),
        authtype=args.authtype or (existing.authtype if existing else "basic"),
        token=args.token or (existing.token if existing else "access_token"),
    )
    no_id_token = profile.provider in _config.BITBUCKET_PROVIDERS  # Bitbucket issues no ID token
    if no_id_token and args.token == "id_token":
        raise UsageError(f"--token id_token: profile {profile.name} is {profile.provider}, and Bitbucket issues no ID token: git would get no answer", hint="leave --token out (git gets the access token)")
    if no_id_token and host.token == "id_token":  # kept from the host's earlier profile
        host = replace(host, token="access_token")
        say(f"note: {url} answered with {existing.profile if existing else 'its earlier profile'}'s id token; {profile.name} is {profile.provider}, which has none, so git gets the access token now.")
    if args.file and existing is not None and existing.profile in config.profiles and existing != host:
        raise _refuse_changing_for_one_repository(existing, host, args.file, scope)
    lines = [f'[credential "{url}"]', "\thelper =", f"\thelper = {_ini_value(helper)}"] + (["\tuseHttpPath = true"] if has_path else [])
    if args.print_only:
        print(f"# git config ({'file ' + args.file if args.file else 'global'})")
        print("\n".join(lines))
        print(
            f'\n# bblogin config ({config.path})\n[git."{url}"]\nprofile = "{profile.name}"'
            + (f'\naccount = "{host.account}"' if host.account else "")
            + (f'\nusername = "{host.username}"' if host.username else "")
            + (f'\nauthtype = "{host.authtype}"' if host.authtype != "basic" else "")
            + (f'\ntoken = "{host.token}"' if host.token != "access_token" else "")
        )
        return 0
    changed = write_helper(url, scope)
    if existing != host or existing.problem:
        _configedit.save_git_host(host)
    state = "already set up" if not changed and existing == host and not existing.problem else "set up"
    where = args.file or "your global git config"
    who = f"{host.account}'s" if host.account else f"profile {profile.name}'s"
    say(f"git: {url} {state}: bblogin answers with {who} {host.token.replace('_', ' ')} (profile {profile.name})" + (f" as {host.username}" if host.username else "") + ".")
    if moving:
        say(f"git: {url} moved from profile {existing.profile} to {profile.name}, for every repository.")
    elif existing is not None and existing.profile != profile.name:
        say(f"git: {url} was bound to profile {existing.profile}, which config.toml no longer has; now to {profile.name}, for every repository.")
    if args.file:
        say(f"git: config.toml binds {url} to {profile.name} for every repository whose git config asks bblogin for it; {where} does.")
    say(f"git: the empty `helper =` in {where} switches off the helpers configured before it for {url}; helpers configured after it (a repository's config, a later line, an include) still run.")
    for value in switched_off(url, scope):
        say(f"note: in {where}, [credential \"{url}\"] helper = {_gitconfig.shown(value)} comes before bblogin's empty `helper =`, which switches it off for {url} (your line stays; remove it if you no longer want it).")
    _warn_about_other_helpers(url, _repository_of(args.file))
    return 0


def _warn_about_other_helpers(url: str, cwd: str | None) -> None:
    """Say which helpers git still runs for ``url`` besides bblogin (``_gitconfig``), as doctor would fail them."""
    try:
        found = _gitconfig.entries(cwd)
    except _gitconfig.GitUnavailable as exc:
        say(f"warning: cannot tell which other helpers git runs for {url}: {exc}")
        return
    for finding in _gitconfig.findings(found, url):
        where = finding.url + (f" as {finding.username}" if finding.username else "")
        if finding.bblogin is None:
            say(f"warning: git does not ask bblogin for {where} from {cwd or 'here'} (`bblogin doctor` says why)")
            continue
        for position, entry in finding.others:
            say(f"warning: for {where}, {_gitconfig.explain(position, entry)}")


def _values(scope: list[str], key: str) -> list[str]:
    """Every value of ``key``, in order; a value with an escaped newline stays one value."""
    return _git_config(scope, "--null", "--get-all", key, check=False).stdout.split("\0")[:-1]


def _ours(values: list[str]) -> list[int]:
    """The positions of bblogin's lines among a key's values: each bblogin helper and the empty
    ``helper =`` right before it (setup writes them as a pair)."""
    out: list[int] = []
    for i, value in enumerate(values):
        if _gitconfig.is_bblogin_helper(value):
            out += ([i - 1] if i and values[i - 1] == "" and i - 1 not in out else []) + [i]
    return out


_RECORD = "git-setup.json"  # what setup wrote that the user may also have written: useHttpPath


def _record_key(scope: list[str], url: str) -> str:
    return ("global" if scope == ["--global"] else os.path.abspath(scope[1])) + " " + url


def _record(change: dict[str, object]) -> dict[str, object]:
    """Merge ``change`` into setup's record (None removes a key); the record."""
    import json

    from bblogin import _files, _paths

    path = os.path.join(_paths.state_dir(), _RECORD)
    try:
        with open(path, encoding="utf-8") as fh:
            record = json.load(fh)
        record = record if isinstance(record, dict) else {}
    except (OSError, ValueError):
        record = {}
    if change:
        record.update(change)
        record = {k: v for k, v in record.items() if v is not None}
        _files.atomic_write_json(path, record)
    return record


def write_helper(url: str, scope: list[str]) -> bool:
    """Write ``[credential "URL"]``'s empty ``helper =`` and bblogin's helper (after the user's own
    lines, which stay) and, for a prefix with a path, ``useHttpPath`` into the git config ``scope``
    (``--global`` or ``--file PATH``). An older bblogin helper is replaced where it stands.
    ``url`` is normalised. True when something changed."""
    helper = helper_value()
    key = f"credential.{url}.helper"
    values = _values(scope, key)
    ours = _ours(values)
    changed = False
    if ours and values[ours[0]] == "":  # bblogin's pair is there: bring its helper up to date in place
        for old in dict.fromkeys(values[i] for i in ours if values[i] and values[i] != helper):
            _git_config(scope, "--replace-all", "--fixed-value", key, helper, old)
            changed = True
    else:
        for old in dict.fromkeys(values[i] for i in ours):  # a bblogin helper without its reset: setup's pair replaces it
            _git_config(scope, "--unset-all", "--fixed-value", key, old)
        _git_config(scope, "--add", key, "")
        _git_config(scope, "--add", key, helper)
        changed = True
    if "/" in url.split("://", 1)[1]:
        before = _git_config(scope, "--get", f"credential.{url}.useHttpPath", check=False)
        if before.stdout.strip() != "true":
            _git_config(scope, f"credential.{url}.useHttpPath", "true")
            _record({_record_key(scope, url): {"useHttpPath": before.stdout.strip() if before.returncode == 0 else ""}})
            changed = True
    return changed


def switched_off(url: str, scope: list[str]) -> list[str]:
    """The user's own helper values under ``[credential "URL"]`` that bblogin's reset switches off."""
    values = _values(scope, f"credential.{url}.helper")
    ours = _ours(values)
    before = values[: ours[0]] if ours else []
    last_reset = max((i for i, v in enumerate(before) if v == ""), default=-1)
    return [v for v in before[last_reset + 1 :] if v]


def remove_helper(url: str, scope: list[str]) -> list[str]:
    """Remove from the git config ``scope`` exactly what ``write_helper`` writes for ``url`` —
    bblogin's helper and the empty ``helper =`` before it, ``useHttpPath`` when setup set it (back
    to what it was), the section once nothing else is left — under every spelling of the URL. The
    user's own lines stay where they are. The ``credential.<section>`` names edited."""
    names = _git_config(scope, "--name-only", "--list", check=False).stdout.splitlines()
    sections = {n[len("credential.") : n.rfind(".")] for n in names if n.startswith("credential.") and n.count(".") >= 2}
    edited = []
    for section in sorted(s for s in sections if _config.normalize_git_url(s) == url):
        key = f"credential.{section}.helper"
        values = _values(scope, key)
        ours = _ours(values)
        if ours:
            for value in dict.fromkeys(values[i] for i in ours if values[i]):
                _git_config(scope, "--unset-all", "--fixed-value", key, value)
            if any(values[i] == "" for i in ours):
                if values.count("") == sum(values[i] == "" for i in ours):
                    _git_config(scope, "--unset-all", "--fixed-value", key, "")
                else:  # the user has resets of their own too: git cannot unset one by position, so rewrite the key
                    keep = [v for i, v in enumerate(values) if i not in ours]
                    _git_config(scope, "--unset-all", key)
                    for value in keep:
                        _git_config(scope, "--add", key, value)
            edited.append(section)
        recorded = _record({}).get(_record_key(scope, section))
        if isinstance(recorded, dict) and "useHttpPath" in recorded:
            prior = recorded["useHttpPath"]
            _git_config(scope, *(["--unset-all", f"credential.{section}.useHttpPath"] if not prior else [f"credential.{section}.useHttpPath", str(prior)]))
            _record({_record_key(scope, section): None})
            edited += [] if section in edited else [section]
        rest = [n for n in _git_config(scope, "--name-only", "--list", check=False).stdout.splitlines() if n.startswith(f"credential.{section}.")]
        if not rest:
            _git_config(scope, "--remove-section", f"credential.{section}", check=False)
    return edited


def _still_asking(url: str) -> str | None:
    """Where git's configuration seen from here (global, system, this directory's repository)
    still has a bblogin helper under ``[credential "URL"]`` (any spelling): the first such line."""
    try:
        found = _gitconfig.entries()
    except _gitconfig.GitUnavailable:
        return None
    return next((e.where for e in found if e.is_bblogin and e.url and not _config.git_url_problem(e.url) and _config.normalize_git_url(e.url) == url), None)


def _remove(url: str, scope: list[str], file: str | None) -> int:
    """Undo `setup git` for ``url``: its ``[git."URL"]`` in config.toml and ``remove_helper``."""
    config = _config.load()
    edited = remove_helper(url, scope)  # git's config first: if git fails, config.toml still names the host
    where = file or "your global git config"
    still = _still_asking(url) if file and any(h.url == url for h in config.git_hosts) else None
    removed = _configedit.remove_git_host(url) if not still and any(h.url == url for h in config.git_hosts) else []
    if still:
        say(f"git: kept [git.\"{url}\"] in config.toml: {still} still asks bblogin for {url} (`setup git --remove --host {url}` there removes both).")
    if not removed and not edited:
        say(f"git: nothing to remove for {url}: {where} has no bblogin helper for it" + ("." if still else " and config.toml no such host."))
        return 0
    say(
        f"git: removed {url}: "
        + ", ".join(
            ([f"[git.\"{k}\"] from {config.path}" for k in removed])
            + ([f"bblogin's helper entries for {', '.join(edited)} from {where}"] if edited else [])
        )
        + "."
    )
    return 0
