"""Token exchange (RFC 8693) at the dev IdP as dex v2.45 does it: the ``bitbucket-pipelines``
oidc connector verifies Bitbucket Pipelines step tokens from the issuer double (signature, iss,
exp, but not aud), and dex answers with one token of its own. Also ``bblogin dev-idp``."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator

import httpx
import jwt
import pytest

from bblogin.devidp import DevIdP, OIDCConfig, dex_subject

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"
CI = ("bblogin-ci", "bblogin-ci-secret")


@pytest.fixture(scope="module")
def idp() -> Iterator[DevIdP]:
    with DevIdP() as server:
        yield server


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(follow_redirects=False, timeout=10) as client:
        yield client


def exchange(idp: DevIdP, http: httpx.Client, subject_token: str, auth: tuple[str, str] | None = CI, **form: str) -> httpx.Response:
    data = {"grant_type": EXCHANGE, "subject_token": subject_token, "subject_token_type": ID_TOKEN, "connector_id": "bitbucket-pipelines", "scope": "openid groups", **form}
    return http.post(f"{idp.issuer}/token", data=data, auth=auth)


def test_the_pipelines_issuer_double(idp: DevIdP, http: httpx.Client) -> None:
    issuer = idp.pipelines.issuer("acme")
    assert issuer == f"http://127.0.0.1:{idp.port}/pipelines/2.0/workspaces/acme/pipelines-config/identity/oidc"
    doc = http.get(f"{issuer}/.well-known/openid-configuration").json()
    assert doc["issuer"] == issuer and doc["jwks_uri"] == f"{issuer}/keys.json"
    keys = jwt.PyJWKSet.from_dict(http.get(f"{issuer}/keys.json").json())
    token = idp.mint_pipelines_token(repository_uuid="{repo}", step_uuid="{step}", branch="release")
    claims = jwt.decode(token, keys.keys[0].key, algorithms=["RS256"], audience=idp.pipelines.audience("acme"), issuer=issuer)
    assert claims["sub"] == "{repo}:{step}" and claims["branchName"] == "release" and claims["aud"].startswith("ari:cloud:bitbucket::workspace/")
    deploy = jwt.decode(idp.mint_pipelines_token(repository_uuid="{r}", step_uuid="{s}", deployment_environment_uuid="{env}"), options={"verify_signature": False})
    assert deploy["sub"] == "{r}:{env}:{s}" and deploy["deploymentEnvironmentUuid"] == "{env}"


def test_exchange_issues_dex_s_own_token(idp: DevIdP, http: httpx.Client) -> None:
    answer = exchange(idp, http, idp.mint_pipelines_token(repository_uuid="{repo-1}", step_uuid="{step-1}"))
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    body = answer.json()
    assert list(body) == ["access_token", "issued_token_type", "token_type", "expires_in"] and body["issued_token_type"] == ACCESS_TOKEN
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["iss"] == idp.issuer and claims["aud"] == "bblogin-ci" and "at_hash" in claims
    assert claims["sub"] == dex_subject("{repo-1}:{step-1}", "bitbucket-pipelines") and "groups" not in claims
    step_token = idp.mint_pipelines_token(repository_uuid="{r}", step_uuid="{s}")
    as_id_token = exchange(idp, http, step_token, requested_token_type=ID_TOKEN, scope="openid profile").json()
    id_claims = jwt.decode(as_id_token["access_token"], options={"verify_signature": False})
    assert as_id_token["issued_token_type"] == ID_TOKEN and "at_hash" not in id_claims and id_claims["name"] == "{r}:{s}"  # userNameKey: sub


def test_dex_does_not_check_the_step_token_s_audience(idp: DevIdP, http: httpx.Client) -> None:
    token = idp.mint_pipelines_token(audience="ari:cloud:bitbucket::workspace/someone-else")
    assert exchange(idp, http, token).status_code == 200  # go-oidc with SkipClientIDCheck, as dex's exchange runs it


@pytest.mark.parametrize(
    ("subject", "form", "auth", "status", "body"),
    [
        ("foreign", {}, CI, 401, {"error": "access_denied"}),  # another workspace's issuer
        ("expired", {}, CI, 401, {"error": "access_denied"}),
        ("garbage", {}, CI, 401, {"error": "access_denied"}),
        ("valid", {"subject_token_type": ACCESS_TOKEN}, CI, 401, {"error": "access_denied"}),  # needs getUserInfo, which Pipelines lacks
        ("valid", {"subject_token_type": "urn:x"}, CI, 400, {"error": "request_not_supported", "error_description": "Invalid subject_token_type."}),
        ("", {}, CI, 400, {"error": "invalid_request", "error_description": "Missing subject_token"}),
        ("valid", {"connector_id": ""}, CI, 400, {"error": "invalid_request", "error_description": "Requested connector does not exist."}),
        ("valid", {"connector_id": "bitbucket-cloud"}, CI, 400, {"error": "invalid_request", "error_description": "Requested connector does not exist."}),
        ("valid", {"requested_token_type": "urn:x"}, CI, 400, {"error": "request_not_supported", "error_description": "Invalid requested_token_type."}),
        ("valid", {}, ("bblogin-ci", "wrong"), 401, {"error": "invalid_client", "error_description": "Invalid client credentials."}),
    ],
)
def test_exchange_errors(idp: DevIdP, http: httpx.Client, subject: str, form: dict[str, str], auth: tuple[str, str], status: int, body: dict[str, str]) -> None:
    tokens = {
        "foreign": idp.mint_pipelines_token(workspace="evil"),
        "expired": idp.mint_pipelines_token(ttl=-60),
        "garbage": "not.a.jwt",
        "valid": idp.mint_pipelines_token(),
        "": "",
    }
    answer = exchange(idp, http, tokens[subject], auth=auth, **form)
    assert (answer.status_code, answer.json()) == (status, body)


def test_a_public_client_may_exchange_too(idp: DevIdP, http: httpx.Client) -> None:
    answer = exchange(idp, http, idp.mint_pipelines_token(), auth=None, client_id="bblogin")  # dex: the empty secret matches
    assert answer.status_code == 200


def test_dex_s_default_oidc_config_cannot_take_pipelines_tokens(http: httpx.Client) -> None:
    """Without userNameKey (Pipelines tokens have no "name") and with the default email scope,
    dex's oidc connector refuses every step token."""
    with DevIdP(pipelines_connector=OIDCConfig(insecure_skip_email_verified=True)) as idp:
        assert exchange(idp, http, idp.mint_pipelines_token()).json() == {"error": "access_denied"}
    with DevIdP(pipelines_connector=OIDCConfig(scopes=("groups",), user_name_key="repositoryUuid", user_id_key="stepUuid")) as idp:
        token = idp.mint_pipelines_token(repository_uuid="{r}", step_uuid="{s}")
        issued = exchange(idp, http, token, scope="openid profile").json()["access_token"]
        claims = jwt.decode(issued, options={"verify_signature": False})
        assert (claims["sub"], claims["name"]) == (dex_subject("{s}", "bitbucket-pipelines"), "{r}")


def test_dev_idp_command_runs_until_ctrl_c() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "bblogin", "dev-idp", "--port", "0", "--auto-approve", "--user", "bob"], stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    issuer = ""
    for line in proc.stderr:
        if line.strip().startswith("issuer") and not issuer:
            issuer = line.split()[-1]
        if "Ctrl-C" in line:
            break
    try:
        assert httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()["issuer"] == issuer
    finally:
        proc.send_signal(signal.SIGINT)
        _out, rest = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "stopped" in rest
    unknown = subprocess.run([sys.executable, "-m", "bblogin", "dev-idp", "--user", "mallory"], check=False, capture_output=True, text=True, timeout=30)
    assert unknown.returncode == 2 and "unknown dev user 'mallory'" in unknown.stderr
