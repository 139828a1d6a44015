"""`bblogin gcp`: a Google executable-sourced credential, run by the real google-auth library
against STS and IAM Credentials doubles (tests/fixtures/google_wif.py), in a Pipelines step and
on a laptop; `gcp config`'s configuration; `gcp provider-condition`'s mapping and condition."""

from __future__ import annotations

import json
import os
import pathlib
import stat
import subprocess
import sys
import time

import pytest

from tests.fixtures.google_wif import GoogleWIF, Provider
from tests.test_session import login, make_expiring

SA = "deploy@acme-prod.iam.gserviceaccount.com"
POOL = "projects/123456789/locations/global/workloadIdentityPools/bitbucket"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
LIBRARY_ENV = ("GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE", "GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE", "GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE", "GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE")


def bblogin(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bblogin", *args], capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


@pytest.fixture(autouse=True)
def _library_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES", "1")
    for var in LIBRARY_ENV:
        monkeypatch.delenv(var, raising=False)


def write_config(wif: GoogleWIF, audience: str, tmp_path: pathlib.Path, *extra: str) -> pathlib.Path:
    """`bblogin gcp config`'s file, with token_url and the impersonation URL pointed at the doubles."""
    path = tmp_path / "gcp-credentials.json"
    done = bblogin("gcp", "config", "--audience", audience, "--service-account", SA, "--output", str(path), *extra)
    assert done.returncode == 0, done.stderr
    config = json.loads(path.read_text())
    config["token_url"] = f"{wif.url}/v1/token"
    config["service_account_impersonation_url"] = wif.impersonation_url(SA)
    path.write_text(json.dumps(config))
    return path


def google_token(path: pathlib.Path) -> str:
    """What an application gets: google-auth loads the configuration, runs bblogin, asks STS and IAM."""
    from google.auth import pluggable
    from google.auth.transport.requests import Request

    creds = pluggable.Credentials.from_file(str(path), scopes=SCOPES)  # the executable-sourced type's own loader
    creds.refresh(Request())
    return creds.token


def pipelines_provider(devidp, step_token: str) -> Provider:
    """The provider `bblogin gcp provider-condition --json` describes for this step."""
    done = bblogin("gcp", "provider-condition", "--json", env={"BITBUCKET_STEP_OIDC_TOKEN": step_token})
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    return Provider(f"{POOL}/providers/acme", out["issuer_uri"], out["allowed_audiences"], out["attribute_mapping"], out["attribute_condition"], out["principal_set"])


def test_config_is_what_gcloud_writes_with_bblogins_absolute_path(tmp_path: pathlib.Path) -> None:
    audience = f"//iam.googleapis.com/{POOL}/providers/acme"
    done = bblogin("gcp", "config", "--audience", audience, "--service-account", SA, "--profile", "work", "--token-lifetime", "1800", "--executable-output-file", "cache.json")
    assert done.returncode == 0, done.stderr
    config = json.loads(done.stdout)
    executable = config["credential_source"]["executable"]
    command = executable.pop("command").split()
    assert os.path.isabs(command[0]) and os.access(command[0], os.X_OK) and command[1:] == ["gcp", "--profile", "work"]
    assert executable == {"timeout_millis": 30000, "output_file": os.path.abspath("cache.json")}
    assert config == {
        "universe_domain": "googleapis.com",
        "type": "external_account",
        "audience": audience,
        "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
        "token_url": "https://sts.googleapis.com/v1/token",
        "credential_source": {"executable": executable},
        "service_account_impersonation_url": f"https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{SA}:generateAccessToken",
        "service_account_impersonation": {"token_lifetime_seconds": 1800},
    }
    bad = bblogin("gcp", "config", "--audience", "projects/1/pools/x")
    assert bad.returncode == 2 and "workloadIdentityPools" in bad.stderr


def test_google_auth_gets_a_service_account_token_in_a_pipelines_step(devidp, google_wif: GoogleWIF, tmp_path, monkeypatch) -> None:
    repo = "{11111111-2222-4333-8444-555555555555}"
    step = devidp.mint_pipelines_token(repository_uuid=repo)
    provider = pipelines_provider(devidp, step)
    audience = google_wif.add_provider(provider)
    google_wif.grant(SA, f"principalSet://iam.googleapis.com/{POOL}/{provider.principal_set}")  # the binding provider-condition prints
    path = write_config(google_wif, audience, tmp_path)
    monkeypatch.setenv("BITBUCKET_STEP_OIDC_TOKEN", step)
    token = google_token(path)
    assert token.startswith(f"ya29.sa-{SA}-")
    assert google_wif.subject_tokens == [step]  # the step token itself: Google trusts the Pipelines issuer directly

    # another repository of the same workspace: the provider's condition refuses it at STS
    monkeypatch.setenv("BITBUCKET_STEP_OIDC_TOKEN", devidp.mint_pipelines_token())
    import google.auth.exceptions

    with pytest.raises(google.auth.exceptions.OAuthError, match="attribute condition"):
        google_token(path)
    # another workspace's token (its own audience): refused for the audience, before any condition
    monkeypatch.setenv("BITBUCKET_STEP_OIDC_TOKEN", devidp.mint_pipelines_token(repository_uuid=repo, audience=devidp.pipelines.audience("other")))
    with pytest.raises(google.auth.exceptions.OAuthError, match="invalid_grant"):
        google_token(path)
    assert google_wif.refusals[0] == "attribute condition" and "Audience" in google_wif.refusals[1]


def test_google_auth_gets_a_token_on_a_laptop_with_the_profiles_id_token(keyring_secret_service, devidp, google_wif: GoogleWIF, tmp_path) -> None:
    login(devidp)
    audience = google_wif.add_provider(Provider(f"{POOL}/providers/dex-laptop", devidp.issuer, ["bblogin"], {"google.subject": "assertion.sub", "attribute.email": "assertion.email"}))
    google_wif.grant(SA, f"principalSet://iam.googleapis.com/{POOL}/attribute.email/alice@example.com")
    path = write_config(google_wif, audience, tmp_path, "--profile", "dev")
    assert google_token(path).startswith(f"ya29.sa-{SA}-")
    id_token = json.loads(bblogin("token", "--profile", "dev", "--json").stdout)["token"]
    assert google_wif.subject_tokens == [id_token]

    make_expiring("dev")  # inside the refresh margin: bblogin gcp refreshes before answering
    refreshes = devidp.count("/token", "refresh_token")
    assert google_token(path).startswith("ya29.sa-")
    assert devidp.count("/token", "refresh_token") == refreshes + 1 and google_wif.subject_tokens[-1] != id_token


def test_non_interactive_never_logs_in_and_answers_success_false(keyring_secret_service, devidp, monkeypatch) -> None:
    login(devidp)
    make_expiring("dev", seconds_left=-10)
    devidp.revoke_refresh_tokens()
    device_codes = devidp.count("/device/code")
    env = {"GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE": "//iam.googleapis.com/x", "GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE": "0"}
    # as google-auth runs it: stdout and stderr one pipe, stdin inherited (here: a terminal-less one)
    done = subprocess.run([sys.executable, "-m", "bblogin", "gcp", "--profile", "dev"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60, env={**os.environ, **env}, stdin=subprocess.DEVNULL)
    assert done.returncode == 4
    answer = json.loads(done.stdout)  # the whole output is the JSON: no stderr text mixed in
    assert answer["version"] == 1 and answer["success"] is False and answer["code"] == "RefreshTokenDead"
    assert "bblogin login --profile dev" in answer["message"]
    assert devidp.count("/device/code") == device_codes


def test_output_file_is_written_0600_and_reused_by_google_auth(devidp, google_wif: GoogleWIF, tmp_path, monkeypatch) -> None:
    repo = "{11111111-2222-4333-8444-555555555555}"
    step = devidp.mint_pipelines_token(repository_uuid=repo, ttl=1800)
    audience = google_wif.add_provider(pipelines_provider(devidp, step))
    google_wif.grant(SA, f"principalSet://iam.googleapis.com/{POOL}/*")
    cache = tmp_path / "answers" / "gcp-answer.json"
    cache.parent.mkdir()
    path = write_config(google_wif, audience, tmp_path, "--executable-output-file", str(cache))
    monkeypatch.setenv("BITBUCKET_STEP_OIDC_TOKEN", step)
    google_token(path)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600 and not [p for p in cache.parent.iterdir() if p != cache]  # no temporary left
    answer = json.loads(cache.read_text())
    from bblogin._claims import unverified_claims

    assert answer == {"version": 1, "success": True, "token_type": "urn:ietf:params:oauth:token-type:id_token", "id_token": step, "expiration_time": unverified_claims(step)["exp"]}
    monkeypatch.delenv("BITBUCKET_STEP_OIDC_TOKEN")  # bblogin would now fail: the library must reuse the file
    assert google_token(path).startswith("ya29.sa-") and google_wif.subject_tokens == [step, step]


def test_interactive_mode_answers_only_in_the_output_file(devidp, tmp_path) -> None:
    step = devidp.mint_pipelines_token()
    out = tmp_path / "answer.json"
    env = {"BITBUCKET_STEP_OIDC_TOKEN": step, "GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE": "//iam.googleapis.com/x", "GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE": "1", "GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE": str(out)}
    done = bblogin("gcp", env=env)
    assert done.returncode == 0 and step not in done.stdout + done.stderr  # stdout is the person's terminal
    assert json.loads(out.read_text())["id_token"] == step
    missing = bblogin("gcp", env={k: v for k, v in env.items() if k != "GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE"})
    assert missing.returncode == 2 and missing.stdout == "" and "output_file" in missing.stderr  # google-auth refuses such a configuration itself


def test_an_expired_step_token_is_a_failure_answer(devidp) -> None:
    done = bblogin("gcp", env={"BITBUCKET_STEP_OIDC_TOKEN": devidp.mint_pipelines_token(ttl=-5)})
    answer = json.loads(done.stdout)
    assert done.returncode == 4 and answer["success"] is False and "expired" in answer["message"]


def test_drift_warning_once_with_both_times_never_inside_google_auths_pipe(devidp) -> None:
    from bblogin._claims import unverified_claims
    from bblogin._timefmt import rfc3339

    step = devidp.mint_pipelines_token(ttl=600)
    done = bblogin("gcp", env={"BITBUCKET_STEP_OIDC_TOKEN": step})
    assert done.returncode == 0 and json.loads(done.stdout)["id_token"] == step
    assert done.stderr.count("warning:") == 1 and rfc3339(unverified_claims(step)["exp"]) in done.stderr
    session_end = done.stderr.split("last until ")[1].split(",")[0]
    assert abs(time.mktime(time.strptime(session_end, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone - (time.time() + 3600)) < 60
    assert bblogin("gcp", env={"BITBUCKET_STEP_OIDC_TOKEN": devidp.mint_pipelines_token(ttl=3600)}).stderr == ""
    # run as google-auth runs it (stderr into stdout): the output stays exactly the JSON
    merged = subprocess.run([sys.executable, "-m", "bblogin", "gcp"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60, env={**os.environ, "BITBUCKET_STEP_OIDC_TOKEN": step})
    assert json.loads(merged.stdout)["success"] is True
    # ...so `gcp config`, run in the step's script, says it where the step log shows it
    config = bblogin("gcp", "config", "--audience", f"//iam.googleapis.com/{POOL}/providers/acme", env={"BITBUCKET_STEP_OIDC_TOKEN": step})
    assert config.returncode == 0 and config.stderr.count("warning:") == 1


def test_provider_condition_for_a_deployment_environment_and_from_flags(devidp) -> None:
    repo, env_uuid = "{11111111-2222-4333-8444-555555555555}", "{99999999-2222-4333-8444-555555555555}"
    step = devidp.mint_pipelines_token(repository_uuid=repo, deployment_environment_uuid=env_uuid)
    out = json.loads(bblogin("gcp", "provider-condition", "--json", env={"BITBUCKET_STEP_OIDC_TOKEN": step}).stdout)
    assert out["attribute_condition"] == f'assertion.repositoryUuid == "{repo}" && assertion.deploymentEnvironmentUuid == "{env_uuid}"'
    assert out["attribute_mapping"]["google.subject"] == "assertion.sub" and out["allowed_audiences"] == [devidp.pipelines.audience()]
    flags = bblogin("gcp", "provider-condition", "--workspace", "acme", "--workspace-uuid", "3f7c0b1e-2d4a-4b6c-9e8f-0a1b2c3d4e5f", "--repository-uuid", repo)
    assert flags.returncode == 0 and "--issuer-uri=https://api.bitbucket.org/2.0/workspaces/acme/pipelines-config/identity/oidc" in flags.stdout
    assert f"--attribute-condition='assertion.repositoryUuid == \"{repo}\"'" in flags.stdout
    member = f"--member='principalSet://iam.googleapis.com/projects/PROJECT_NUMBER/locations/global/workloadIdentityPools/POOL_ID/attribute.repository_uuid/{repo}'"
    assert "add-iam-policy-binding SERVICE_ACCOUNT_EMAIL" in flags.stdout and member in flags.stdout
    partial = bblogin("gcp", "provider-condition", "--workspace", "acme")
    assert partial.returncode == 2 and "--repository-uuid" in partial.stderr


def as_library(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`bblogin gcp` as google-auth runs it non-interactively: stdout and stderr one pipe, no stdin."""
    library = {"GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE": f"//iam.googleapis.com/{POOL}/providers/acme", "GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE": "0", **env}
    return subprocess.run([sys.executable, "-m", "bblogin", "gcp", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60, env={**os.environ, **library}, stdin=subprocess.DEVNULL)


# -- F1: the output file is a token copy bound to bblogin's state ----------------------------------
def test_output_file_never_outlives_use_or_logout_and_is_shown(keyring_secret_service, devidp, tmp_path) -> None:
    login(devidp)
    devidp.default_user = "bob"
    login(devidp)  # bob is now the active account of dev
    cache = tmp_path / "gcp-answer.json"
    env = {"GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE": str(cache)}
    first = as_library("--profile", "dev", env=env)
    assert first.returncode == 0, first.stdout
    answer = json.loads(cache.read_text())
    from bblogin._claims import unverified_claims

    assert unverified_claims(answer["id_token"])["email"].startswith("bob@")
    # a token copy on disk: capped far below the ID token's day, and listed by status as plaintext
    assert answer["expiration_time"] <= time.time() + 600 + 2
    status = bblogin("status", "--profile", "dev")
    assert str(cache) in status.stdout and "PLAINTEXT" in status.stdout.split(str(cache))[1].splitlines()[0]
    assert str(cache) in json.dumps(json.loads(bblogin("status", "--json").stdout)["gcp_output_files"])

    assert bblogin("use", "alice@example.com", "--profile", "dev").returncode == 0
    assert not cache.exists()  # google-auth now runs bblogin again and gets alice's token
    again = as_library("--profile", "dev", env=env)
    assert again.returncode == 0 and unverified_claims(json.loads(cache.read_text())["id_token"])["email"].startswith("alice@")

    login(devidp)  # bob logs in again: he is the active account now, alice's copy goes
    assert not cache.exists()
    assert as_library("--profile", "dev", env=env).returncode == 0
    cache.write_text(cache.read_text())  # bblogin removes only what it wrote: same bytes, still ours
    assert bblogin("logout", "--all").returncode == 0
    assert not cache.exists()
    assert str(cache) not in bblogin("status", "--json").stdout
    from bblogin import _gcpfiles, _paths

    assert not os.path.exists(os.path.join(_paths.state_dir(), _gcpfiles.RECORD))  # nothing left on record


def test_a_file_the_user_changed_since_is_left_alone(keyring_secret_service, devidp, tmp_path) -> None:
    login(devidp)
    cache = tmp_path / "gcp-answer.json"
    assert as_library("--profile", "dev", env={"GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE": str(cache)}).returncode == 0
    cache.write_text('{"version": 1, "success": false, "code": "x", "message": "mine now"}\n')
    assert bblogin("logout", "--all").returncode == 0
    assert "mine now" in cache.read_text()


def test_laptop_expiration_time_is_the_id_tokens_local_expiry_capped(keyring_secret_service, devidp) -> None:
    login(devidp, "dev")
    make_expiring("dev", seconds_left=300)  # 300 s left (outside the 60 s margin): under the cap, its own expiry
    done = as_library("--profile", "dev", env={})
    local = json.loads(bblogin("token", "--profile", "dev", "--json").stdout)["expires_at"]  # this machine's clock
    assert json.loads(done.stdout)["expiration_time"] == int(local)


# -- F5: a step token's expiry on the local clock, and nothing absurd --------------------------------
def test_step_token_expiry_is_on_the_local_clock_when_the_runner_is_behind(devidp) -> None:
    step = devidp.mint_pipelines_token(ttl=3600, clock_offset=600)  # the runner's clock 10 min behind the issuer's
    answer = json.loads(as_library(env={"BITBUCKET_STEP_OIDC_TOKEN": step}).stdout)
    assert answer["success"] is True and 3590 <= answer["expiration_time"] - time.time() <= 3601  # not 4200


def _unsigned(claims: dict) -> str:
    import base64

    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2ln"


@pytest.mark.parametrize("lifetime", ["absurd exp", "three days", "iat a week ahead"])
def test_an_absurd_step_token_lifetime_is_refused(lifetime: str) -> None:
    at = int(time.time())
    claims = {"absurd exp": {"iat": at, "exp": 10**30}, "three days": {"iat": at, "exp": at + 3 * 86400}, "iat a week ahead": {"iat": at + 7 * 86400, "exp": at + 7 * 86400 + 3600}}[lifetime]
    done = as_library(env={"BITBUCKET_STEP_OIDC_TOKEN": _unsigned({"iss": "https://x", "sub": "s", "aud": "a", **claims})})
    answer = json.loads(done.stdout)
    assert done.returncode == 2 and answer["success"] is False and "expiration_time" not in answer


# -- F6: INTERACTIVE=0 means no login, terminal or not -----------------------------------------------
def test_interactive_0_at_a_terminal_never_logs_in(keyring_secret_service, devidp, tmp_path) -> None:
    import fcntl
    import pty
    import select
    import termios

    login(devidp)
    make_expiring("dev", seconds_left=-10)
    devidp.revoke_refresh_tokens()
    env = {**os.environ, "GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE": "0", "BROWSER": "true"}
    env.pop("GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE", None)
    master, slave = pty.openpty()

    def own_terminal() -> None:  # a session whose controlling terminal the pty is, in its foreground: a person's shell
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen([sys.executable, "-m", "bblogin", "gcp", "--profile", "dev"], stdin=slave, stdout=slave, stderr=slave, env=env, preexec_fn=own_terminal)
    os.close(slave)
    output, deadline = b"", time.time() + 40
    while proc.poll() is None and time.time() < deadline:
        if select.select([master], [], [], 0.2)[0]:
            try:
                output += os.read(master, 65536)
            except OSError:
                break
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    os.close(master)
    text = output.decode(errors="replace")
    assert proc.returncode == 4 and "bblogin login --profile dev" in text, text
    assert "login" in text and "browser" not in text.lower() and "/device/code" not in text


# -- F7: the double refuses what Google refuses -------------------------------------------------------
@pytest.fixture
def pipelines_config(devidp, google_wif: GoogleWIF, tmp_path):  # type: ignore[no-untyped-def]
    repo = "{11111111-2222-4333-8444-555555555555}"
    audience = google_wif.add_provider(pipelines_provider(devidp, devidp.mint_pipelines_token(repository_uuid=repo)))
    google_wif.grant(SA, f"principalSet://iam.googleapis.com/{POOL}/*")
    return write_config(google_wif, audience, tmp_path), repo


def _forged(devidp, repo: str, how: str) -> str:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    from bblogin._claims import unverified_claims

    if how == "expired":
        return devidp.mint_pipelines_token(repository_uuid=repo, ttl=-120)
    if how == "another issuer":
        return devidp.mint_pipelines_token(repository_uuid=repo, workspace="other", audience=devidp.pipelines.audience())
    claims = unverified_claims(devidp.mint_pipelines_token(repository_uuid=repo))
    header = jwt.get_unverified_header(devidp.mint_pipelines_token())
    kid = header["kid"] if how == "another key" else "no-such-kid"
    return jwt.encode(claims, rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm="RS256", headers={"kid": kid})


@pytest.mark.parametrize(("how", "refusal"), [("another key", "InvalidSignatureError"), ("unknown kid", "has no key"), ("expired", "ExpiredSignatureError"), ("another issuer", "InvalidIssuerError")])
def test_the_sts_double_refuses_what_workload_identity_refuses(devidp, google_wif: GoogleWIF, pipelines_config, monkeypatch, how: str, refusal: str) -> None:
    import google.auth.exceptions

    path, repo = pipelines_config
    token = _forged(devidp, repo, how)
    # bblogin hands the step token over as it is (an expired one it refuses itself: ask STS directly)
    status, body = google_wif.exchange({"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "requested_token_type": "urn:ietf:params:oauth:token-type:access_token", "subject_token": token, "subject_token_type": "urn:ietf:params:oauth:token-type:id_token", "audience": json.loads(path.read_text())["audience"]})
    assert (status, body["error"]) == (400, "invalid_grant") and refusal in google_wif.refusals[-1]
    if how != "expired":
        monkeypatch.setenv("BITBUCKET_STEP_OIDC_TOKEN", token)
        with pytest.raises(google.auth.exceptions.OAuthError, match="invalid_grant"):
            google_token(path)


def test_a_saml_token_type_is_a_failure_answer(devidp) -> None:
    done = as_library(env={"BITBUCKET_STEP_OIDC_TOKEN": devidp.mint_pipelines_token(), "GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE": "urn:ietf:params:oauth:token-type:saml2"})
    answer = json.loads(done.stdout)
    assert done.returncode == 2 and answer["success"] is False and "saml2" in answer["message"]


def test_the_output_file_is_replaced_never_rewritten_in_place(devidp, tmp_path) -> None:
    cache = tmp_path / "answer.json"
    env = {"GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE": str(cache)}
    assert as_library(env={**env, "BITBUCKET_STEP_OIDC_TOKEN": devidp.mint_pipelines_token()}).returncode == 0
    before = cache.stat().st_ino
    reader = open(cache)  # a reader that opened the old answer keeps reading the old answer, whole
    assert as_library(env={**env, "BITBUCKET_STEP_OIDC_TOKEN": devidp.mint_pipelines_token()}).returncode == 0
    assert cache.stat().st_ino != before and json.loads(reader.read())["success"] is True
    reader.close()


# -- F8: the output file: always JSON, never a file that is not an answer -----------------------------
def test_output_file_problems_are_failure_answers_and_touch_nothing(devidp, tmp_path) -> None:
    step = devidp.mint_pipelines_token()
    (tmp_path / "adir").mkdir()
    bashrc = tmp_path / ".bashrc"
    bashrc.write_text("export PATH=$HOME/bin:$PATH\n")
    cases = {"adir": "is a directory", "missing/deeper/out.json": "does not exist", ".bashrc": "not a previous answer"}
    for name, said in cases.items():
        done = as_library(env={"BITBUCKET_STEP_OIDC_TOKEN": step, "GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE": str(tmp_path / name)})
        answer = json.loads(done.stdout)  # still exactly the library's JSON
        assert done.returncode != 0 and answer["success"] is False and said in answer["message"], (name, answer)
        assert step not in done.stdout
    assert not (tmp_path / "missing").exists() and bashrc.read_text() == "export PATH=$HOME/bin:$PATH\n"


# -- F9: a command both splitters read the same way ---------------------------------------------------
def test_the_command_is_read_the_same_by_shlex_and_by_whitespace_splitting(monkeypatch) -> None:
    import shlex

    from bblogin import _commandline as gcp_config
    from bblogin._errors import UsageError

    assert gcp_config.command_line(["/opt/bblogin/bin/bblogin", "gcp"], windows=False) == "/opt/bblogin/bin/bblogin gcp"
    windows = gcp_config.command_line([r"C:\Users\me\pipx\venvs\bblogin\Scripts\bblogin.exe", "gcp"], windows=True)
    assert shlex.split(windows) == windows.split() == ["C:/Users/me/pipx/venvs/bblogin/Scripts/bblogin.exe", "gcp"]
    for word in ("it's", 'say"x', "back\\slash", "two words", ""):
        with pytest.raises(UsageError):
            gcp_config.command_line(["/opt/bblogin", "gcp", "--profile", word], windows=False)
    quoted = bblogin("gcp", "config", "--audience", f"//iam.googleapis.com/{POOL}/providers/acme", "--profile", "it's")
    assert quoted.returncode == 2 and quoted.stdout == ""


# -- F3/F4: the command keeps what was asked; advice that can be followed ------------------------------
def test_config_keeps_the_account_and_refuses_what_it_would_drop() -> None:
    audience = f"//iam.googleapis.com/{POOL}/providers/acme"
    for args in (("gcp", "config", "--audience", audience, "--account", "bob@example.com"), ("gcp", "--account", "bob@example.com", "config", "--audience", audience)):
        done = bblogin(*args)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["credential_source"]["executable"]["command"].split()[1:] == ["gcp", "--account", "bob@example.com"]
    refused = bblogin("gcp", "--account", "bob", "provider-condition", "--workspace", "acme", "--workspace-uuid", "3f7c0b1e-2d4a-4b6c-9e8f-0a1b2c3d4e5f", "--repository-uuid", "{11111111-2222-4333-8444-555555555555}")
    assert refused.returncode == 2 and "--account" in refused.stderr and refused.stdout == ""
    assert bblogin("gcp", "--lifetime", "1800").returncode == 2  # it only silenced the check: gone


@pytest.mark.parametrize(
    ("ttl", "extra", "advice", "not_said"),
    [
        (1800, (), "always lasts an hour", "ask for"),
        (1800, ("--service-account", SA, "--token-lifetime", "3600"), "ask for --token-lifetime ", "always lasts"),  # 1790..1800 (checked below)
        (300, ("--service-account", SA), "no --token-lifetime", "--token-lifetime 300"),
    ],
)
def test_gcp_config_drift_advice_can_be_followed(devidp, ttl: int, extra: tuple[str, ...], advice: str, not_said: str) -> None:
    step = devidp.mint_pipelines_token(ttl=ttl)
    done = bblogin("gcp", "config", "--audience", f"//iam.googleapis.com/{POOL}/providers/acme", *extra, env={"BITBUCKET_STEP_OIDC_TOKEN": step})
    assert done.returncode == 0 and done.stderr.count("warning:") == 1, done.stderr
    assert advice in done.stderr and not_said not in done.stderr
    import re

    assert all(ttl - 10 <= int(n) <= ttl for n in re.findall(r"--token-lifetime (\d+)", done.stderr))


def test_racing_writers_leave_a_record_that_names_the_file(keyring_secret_service, devidp, tmp_path) -> None:
    """Library processes started together each write the output file: whichever write lands last,
    the record names its bytes, so logout still removes the file."""
    from concurrent.futures import ThreadPoolExecutor

    login(devidp)
    cache = tmp_path / "gcp-answer.json"
    with ThreadPoolExecutor(6) as pool:
        runs = list(pool.map(lambda _i: as_library("--profile", "dev", env={"GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE": str(cache)}), range(6)))
    assert all(r.returncode == 0 for r in runs), [r.stdout for r in runs]
    assert str(cache) in bblogin("status").stdout
    assert bblogin("logout", "--all").returncode == 0 and not cache.exists()


def test_a_profile_leaving_a_shared_token_set_loses_its_output_file_only(keyring_secret_service, devidp, tmp_path) -> None:
    """Two profiles share one token set (the same request to one IdP): `logout --profile staging`
    takes staging out of it; staging's output file goes, work's stays (its token is still work's)."""
    login(devidp, "work")
    login(devidp, "staging")
    files = {name: tmp_path / f"{name}.json" for name in ("work", "staging")}
    for name, path in files.items():
        assert as_library("--profile", name, env={"GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE": str(path)}).returncode == 0
    assert bblogin("logout", "--profile", "staging").returncode == 0
    assert not files["staging"].exists() and files["work"].exists()
