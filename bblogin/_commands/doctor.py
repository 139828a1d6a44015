"""`bblogin doctor`: check what bblogin depends on and say what to fix.

Checks: config.toml; the keyring (backend, plaintext or not, a write/read/delete round trip within
the timeout); the trust store, and for each profile's issuer the proxy and a TLS handshake through
it (``_doctor_network``); for each profile the IdP's discovery document and JWKS (and that it still publishes the key that
signed the cached ID token) and the clock against the
IdP's Date header, and any IdP outage its accounts met (``_outage``); kubeconfig wiring (``_doctor_kubectl``: every $KUBECONFIG file, each
bblogin entry run as kubectl runs it) and git wiring; for each configured git host, whether it accepts the
token kind bblogin sends (one authenticated ``info/refs`` probe, as git's first request, with the
token git would get next — refreshed first when git erased it after a 401, never a new login; only to that configured host, only over https or to loopback, redirects not
followed). Exit 0 when nothing failed (warnings allowed),
EXIT_CHECK_FAILED (10) otherwise. ``--json`` for scripts.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from bblogin._config import DOCTOR_HINT, Config, GitHost, Profile
from bblogin._errors import EXIT_CHECK_FAILED, EXIT_OK, BbloginError
from bblogin._record import asdict, record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from bblogin._gitconfig import HelperEntry
    from bblogin._index import Account

CLOCK_FIX = "set this machine's clock right: enable NTP (`timedatectl set-ntp true`; WSL: `sudo hwclock -s`; macOS: System Settings → Date & Time)"


@record
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
        return None, Check("config", "fail", exc.message, exc.hint.removesuffix(DOCTOR_HINT))  # this is doctor
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
        return Check("keyring", "fail", f"{exc.message}; `bblogin aws` caches no AWS credentials without one (every call asks STS)", exc.hint)
    if not ok:
        return Check("keyring", "fail", f"{description}: a value written could not be read back", "check the keyring backend")
    if store.is_plaintext:
        return Check("keyring", "warn", f"{description} keeps secrets in a plaintext file; `bblogin aws` caches no AWS credentials there (every call asks STS)", "use a Secret Service, macOS Keychain or Windows Credential Manager")
    return Check("keyring", "ok", description)


def _idp(profile: Profile) -> list[Check]:
    from bblogin._http import make_client, reach, request

    name = f"idp:{profile.name}"
    try:
        git_url = profile.issuer if profile.provider != "oidc" else None  # Bitbucket: git's proxy and CA apply
        with make_client(ca_file=profile.ca_file, proxy=profile.proxy, git_url=git_url, timeout=5) as http:
            if profile.provider != "oidc":
                response = reach(http, profile.issuer)  # a Bitbucket root answers 302 (to /dashboard): it answers
                checks = [Check(name, "ok", f"{profile.issuer} answers (HTTP {response.status_code})")]
            else:
                from bblogin._oidc._discovery import discover

                metadata = discover(profile.issuer, http=http)
                response = request(http, "GET", metadata.jwks_uri, what="fetching the JWKS")
                published = response.json().get("keys", []) if response.status_code == 200 else []
                keys = len(published)
                status = "ok" if keys else "fail"
                checks = [Check(name, status, f"discovery ok; JWKS has {keys} key(s)", "" if keys else "the IdP publishes no signing keys")]
                if keys:
                    checks += _signing_key_check(profile, {k.get("kid") for k in published if isinstance(k, dict)})
    except BbloginError as exc:
        return [Check(name, "fail", exc.message, exc.hint), *_outages(profile)]
    checks.append(_clock_check(profile))
    return [*checks, *_outages(profile)]


def _outages(profile: Profile) -> list[Check]:
    """The profile's accounts whose last refresh met a failing IdP (``_outage``): what failed and
    when bblogin tries again by itself."""
    from bblogin import _index, _outage

    found = [(a, _outage.of(a)) for a in _index.load().for_profile(profile.name)]
    return [
        Check(f"outage:{profile.name}", "warn", f"{account.label}: {outage.describe()}", f"`bblogin refresh --profile {profile.name}` tries now (once {profile.issuer} answers)")
        for account, outage in found
        if outage is not None
    ]


def _signing_key_check(profile: Profile, kids: set[str | None]) -> list[Check]:
    """Whether the IdP still publishes the key that signed the profile's cached, unexpired ID
    token. An IdP that lost its keys (dex with `storage: memory` restarted, `bblogin dev-idp
    --ephemeral`) makes every cached token fail at the API server while it looks valid here."""
    import time

    import jwt

    from bblogin import _index
    from bblogin._claims import unverified_claims
    from bblogin._session import login_command, serves
    from bblogin._store import SecretStore

    account = _index.load().active_account(profile.name)
    if account is None or not serves(account, profile):
        return []
    try:
        token = SecretStore(account.storage).get(account.id, "id_token")
    except BbloginError:  # the keyring check says what is wrong with it
        return []
    claims = unverified_claims(token or "") or {}
    if not token or not isinstance(claims.get("exp"), (int, float)) or claims["exp"] <= time.time():
        return []  # nothing cached that is still served: the next call refreshes or logs in anyway
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError:
        return []
    if kid is None or kid in kids:
        return [Check(f"signing-key:{profile.name}", "ok", f"the IdP still publishes the key that signed the cached ID token of {account.label}")]
    return [Check(
        f"signing-key:{profile.name}", "fail",
        f"the IdP no longer publishes the key (kid {kid}) that signed the cached ID token of {account.label}: "
        "servers that verify it (kubectl's API server) refuse it, though it has not expired (the IdP lost its keys: restarted with memory storage?)",
        f"log in again: `{login_command(profile)}`",
    )]


def _clock_check(profile: Profile) -> Check:
    """This machine's clock against the IdP's, from the Date headers of the answers just fetched."""
    from bblogin import _clock

    name = f"clock:{profile.name}"
    measured = _clock.Clock().updated(_clock.observed(profile.issuer))
    if not measured.samples:
        return Check(name, "warn", "the identity provider's answers carry no Date header: bblogin cannot measure its clock")
    if measured.unbelieved is not None:
        return Check(name, "fail", measured.note() or "", CLOCK_FIX)
    note = measured.note()
    if note is not None:
        return Check(name, "warn", note, CLOCK_FIX)
    return Check(name, "ok", f"in step with the identity provider's clock ({measured.shown():+d} s)")


def _git(config: Config) -> list[Check]:
    """For each configured host: the helpers git really runs for it (``_gitconfig``: every scope,
    includes, the repository of the working directory), then bblogin's helper run as git runs it."""
    from bblogin import _gitconfig

    if not config.git_hosts:
        return [Check("git", "ok", "no git hosts configured")]
    try:
        found = _gitconfig.entries()
    except _gitconfig.GitUnavailable as exc:
        return [Check("git", "fail", str(exc), "install git" if "not installed" in str(exc) else "fix the file git names")]
    return [_git_host(host, found) for host in config.git_hosts]


def _git_host(host: GitHost, found: list[HelperEntry]) -> Check:
    from bblogin import _gitconfig

    name = f"git:{host.url}"
    if host.problem:
        return Check(name, "fail", host.problem[0], host.problem[1])
    setup = f"bblogin setup git --host {host.url} --profile {host.profile}"
    failures: list[str] = []
    notes: list[tuple[str, str]] = []
    unwired = others = False  # no working bblogin entry applies (setup fixes it); other helpers or a later reset (setup cannot)
    for finding in _gitconfig.findings(found, host.url):
        where = finding.url + (f" as {finding.username}" if finding.username else "")
        mine = finding.bblogin
        others = others or bool(finding.others)
        if mine is None:
            reset = finding.runs[0] if finding.runs and not finding.runs[0].value else None
            unwired, others = unwired or reset is None, others or reset is not None
            said = f"{reset.where} empties git's helper list, and no bblogin entry comes after it" if reset else "no helper entry that runs bblogin applies to it"
            failures.append(f"git never asks bblogin for {where}: {said}" + "".join(f"\n{_gitconfig.explain('instead', e)}" for _, e in finding.others))
            continue
        if finding.others:
            failures.append(f"git asks other helpers for {where} too:" + "".join(f"\n{_gitconfig.explain(pos, e)}" for pos, e in finding.others))
        status, said = _run_helper(mine, finding.url, finding.username)
        if status == "fail":
            failures.append(said)
            unwired = True  # setup writes the launcher's current path
        else:
            notes.append((status, said))
    if failures:
        fixes = [setup] if unwired else []
        if others:
            fixes.append(f"remove those helper lines, or scope them to other hosts ([credential \"https://other.example.com\"]); rerunning setup git cannot help: its empty `helper =` resets only what comes before it")
        return Check(name, "fail", "\n".join(failures), " and ".join(fixes))
    warn = any(status == "warn" for status, _ in notes)
    return Check(name, "warn" if warn else "ok", "\n".join(said for _, said in notes), f"bblogin login --profile {host.profile}" if warn else "")


def _run_helper(entry: HelperEntry, url: str, username: str | None) -> tuple[str, str]:
    """Run bblogin's helper entry as git runs it — ``git credential fill`` with only that helper,
    never a prompt — and say whether the answer comes. The answer itself is thrown away."""
    import os

    request = f"url={url}\n" + (f"username={username}\n" if username else "") + "\n"
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": ""}
    try:
        done = subprocess.run(
            ["git", "-c", "credential.helper=", "-c", f"credential.helper={entry.value}", "credential", "fill"],
            input=request, capture_output=True, text=True, timeout=60, env=env,
        )
    except subprocess.TimeoutExpired:
        return "fail", f"the helper at {entry.where} gave no answer for {url} within 60 s"
    answer = dict(line.partition("=")[::2] for line in done.stdout.splitlines())
    if done.returncode == 0 and (answer.get("password") or answer.get("credential")):
        return "ok", f"git asks bblogin for {url} ({entry.where}) and it answers" + (f" as {answer['username']}" if answer.get("username") else "")
    said = [line for line in done.stderr.splitlines() if line.strip() and "could not read" not in line]
    ours = [line.removeprefix("bblogin: ") for line in said if line.startswith("bblogin:")]
    if ours and "no credential for" in ours[0]:
        return "warn", f"git asks bblogin for {url} ({entry.where}); it has no token to answer with: {ours[0]}"
    why = "; ".join(said[:3]) or "no answer and no message"
    return "fail", f"the helper at {entry.where} runs, but no answer comes for {url}: {why}"


def _probe(host: GitHost, profile: Profile, account: Account, kind: str) -> int | BbloginError:
    """HTTP status of git's first request (``info/refs?service=git-upload-pack``) to ``host``
    with the account's ``kind`` token, sent as the helper would hand it to git, the way git goes
    there: git's ``http.proxy``/``http.sslCAInfo`` for the host and the environment's proxies —
    and the profile's ``proxy`` and ``ca_file`` when the host is the profile's issuer (a Bitbucket
    profile, where the IdP is the git host). The error naming the proxy or the certificate when
    the host cannot be reached. Raises LoginRequired when there is no such token without a login."""
    from bblogin._record import asdict

    from bblogin import _gitcred
    from bblogin._http import client_for_url, reach
    from bblogin._session import get_credential

    cred = get_credential(profile, kind=kind, account=account, interactive=False)
    request = {"capability[]": ["authtype"]} if host.authtype == "bearer" else {}
    fields = dict(_gitcred.answer_fields(asdict(host), asdict(profile), asdict(cred.account), cred.token, cred.expires_at, request))
    auth = {"Authorization": f"Bearer {fields['credential']}"} if "credential" in fields else None
    url = f"{host.url}/info/refs"
    issuers = _origin(profile.issuer) == _origin(host.url)
    try:
        with client_for_url(url, ca_file=profile.ca_file if issuers else None, proxy=profile.proxy if issuers else None, git_url=host.url, timeout=5) as http:
            response = reach(  # never follows a redirect: the token stays with this host
                http,
                url,
                params={"service": "git-upload-pack"},
                headers={**(auth or {}), "Git-Protocol": "version=2", "Accept": "*/*"},
                auth=None if auth else (fields["username"], fields["password"]),
            )
    except BbloginError as exc:
        return exc
    return response.status_code


def _origin(url: str) -> tuple[str, str, int | None]:
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port or {"https": 443, "http": 80}.get(parts.scheme.lower())


def _git_auth(config: Config) -> list[Check]:
    """Does each configured git host accept the token kind bblogin sends it? (see the docstring)"""
    from bblogin import _config, _index
    from bblogin._session import visible_account

    index = _index.load()
    checks = []
    for host in config.git_hosts:
        name = f"git-auth:{host.url}"
        profile = config.profiles.get(host.profile)
        if profile is None or _config.git_url_problem(host.url):
            continue  # the config check reports these; nothing is sent
        try:
            account = index.find(host.account, profile.name) if host.account else visible_account(index, profile)  # the one git gets
        except BbloginError:
            account = None
        if account is None:
            checks.append(Check(name, "warn", f"no account logged in for profile {profile.name}: cannot check what {host.url} accepts", f"bblogin login --profile {profile.name}"))
            continue
        kind, other = host.token, ("id_token" if host.token == "access_token" else "access_token")
        said = kind.replace("_", " ")
        try:
            status = _probe(host, profile, account, kind)
        except BbloginError as exc:
            checks.append(Check(name, "warn", f"no {said} to check {host.url} with: {exc.message}", exc.hint))
            continue
        if isinstance(status, BbloginError):
            checks.append(Check(name, "warn", f"{host.url}: cannot reach it: {status.message}", status.hint))
        elif status in (401, 403):  # only the configured kind is ever sent: the other may carry more (an ID token's email, groups)
            fix = f"bblogin setup git --host {host.url} --profile {profile.name} --token {other}  (if the server takes {other.replace('_', ' ')}s; else check that {account.label} may use it)"
            checks.append(Check(name, "fail", f"{host.url} refuses the {said} bblogin sends for {account.label} (HTTP {status})", fix))
        else:
            detail = "accepts it" if 200 <= status < 300 else f"did not refuse it (HTTP {status} for info/refs: the prefix is no repository, so only a 401/403 would tell)"
            checks.append(Check(name, "ok", f"{host.url} {detail}: {said} of {account.label}"))
    return checks


def run(args: argparse.Namespace) -> int:
    config, first = _config()
    checks = [first, _keyring()]
    if config is not None:
        from bblogin._commands import _doctor_network

        checks += _doctor_network.checks(config)  # the trust store; each issuer's proxy and TLS handshake
        for profile in config.profiles.values():
            checks += _idp(profile)
        from bblogin._commands._doctor_kubectl import kubectl_checks

        checks += [*kubectl_checks(config), *_git(config), *_git_auth(config)]
    if args.json:
        sys.stdout.write(json.dumps({"ok": all(c.status != "fail" for c in checks), "checks": [asdict(c) for c in checks]}, indent=2) + "\n")
    else:
        marks = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}
        for c in checks:
            detail = c.detail.replace("\n", "\n" + " " * 24)
            print(f"[{marks[c.status]}] {c.name:16} {detail}" + (f"\n{'':24}fix: {c.fix}" if c.fix else ""))
    return EXIT_OK if all(c.status != "fail" for c in checks) else EXIT_CHECK_FAILED
