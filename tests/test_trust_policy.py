"""`bblogin aws trust-policy`: the printed policy is one IAM accepts (moto's IAM validates trust policy
documents) and admits exactly this repository's steps; STS refusals say what AWS
compared; `bblogin aws --duration` warns about expiration drift.

moto accepts every web identity token on AssumeRoleWithWebIdentity (it evaluates no trust
policy), so the policy's conditions are evaluated here by ``admits``: a small evaluator of the
two condition operators the policy uses, as IAM documents them
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
— StringEquals: exact, case-sensitive; StringLike: case-sensitive, ``*`` any run of characters,
``?`` one character; several values for a key: any one matches; every key and every operator
must hold) and of the keys an IAM OIDC provider sets
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_iam-condition-keys.html#condition-keys-wif
— ``<provider url without https://>:aud`` and ``:sub`` from the token's claims), with the
Federated principal naming the provider of the token's issuer.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from bblogin._claims import unverified_claims

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/deploy"
REPO = "{11111111-2222-4333-8444-555555555555}"
ENV = "{99999999-2222-4333-8444-555555555555}"
STS_ACCESS_DENIED = """<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>
  <Code>AccessDenied</Code><Message>Not authorized to perform sts:AssumeRoleWithWebIdentity</Message></Error></ErrorResponse>"""
NO_KEYRING = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}


def bblogin(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bblogin", *args], capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


def _like(pattern: str, value: str) -> bool:
    return re.fullmatch("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), value, re.DOTALL) is not None


OPERATORS = {"StringEquals": lambda want, got: want == got, "StringLike": _like}


def admits(policy: dict[str, Any], token: str) -> bool:
    """Whether an Allow statement of ``policy`` lets this web identity token assume the role."""
    claims = unverified_claims(token) or {}
    provider = re.sub(r"^https?://", "", claims["iss"]).rstrip("/")
    keys = {f"{provider}:aud": claims.get("aud"), f"{provider}:sub": claims.get("sub")}
    for statement in policy["Statement"]:
        if statement["Effect"] != "Allow" or statement["Action"] != "sts:AssumeRoleWithWebIdentity":
            continue
        if not statement["Principal"]["Federated"].endswith(f":oidc-provider/{provider}"):
            continue
        def holds(operator: str, key: str, wanted: Any) -> bool:
            got = keys.get(key)
            return isinstance(got, str) and any(OPERATORS[operator](w, got) for w in (wanted if isinstance(wanted, list) else [wanted]))
        if all(holds(op, key, wanted) for op, block in statement.get("Condition", {}).items() for key, wanted in block.items()):
            return True
    return False


def test_the_evaluator_itself() -> None:
    assert _like("{a}:*", "{a}:{b}:{c}") and _like("a?c", "abc") and not _like("a?c", "abbc") and not _like("{a}:*", "{A}:x")


def iam(moto_sts: str) -> Any:
    import boto3

    return boto3.client("iam", endpoint_url=moto_sts, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")


def install(moto_sts: str, name: str, policy: dict[str, Any]) -> dict[str, Any]:
    """Make a role with ``policy`` as its trust policy in moto's IAM, validated: moto's create_role
    stores any document, update_assume_role_policy runs its IAMTrustPolicyDocumentValidator
    (syntax, version, condition operators, trust actions, no Resource) as IAM does."""
    client = iam(moto_sts)
    client.create_role(RoleName=name, AssumeRolePolicyDocument="{}")
    client.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(policy))
    return client.get_role(RoleName=name)["Role"]


def trust_policy(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = bblogin("aws", "trust-policy", "--account-id", ACCOUNT, *args, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_policy_from_a_step_is_valid_and_admits_only_this_repository(devidp, moto_sts) -> None:
    step = devidp.mint_pipelines_token(repository_uuid=REPO)
    policy = trust_policy(env={"BITBUCKET_STEP_OIDC_TOKEN": step})
    assert install(moto_sts, "deploy-from-step", policy)["AssumeRolePolicyDocument"] == policy
    assert admits(policy, devidp.mint_pipelines_token(repository_uuid=REPO))  # another step of this repository
    assert admits(policy, devidp.mint_pipelines_token(repository_uuid=REPO, deployment_environment_uuid=ENV))  # ...or its deployments
    assert not admits(policy, devidp.mint_pipelines_token())  # another repository of the workspace
    assert not admits(policy, devidp.mint_pipelines_token(repository_uuid=REPO, audience=devidp.pipelines.audience("other")))  # another workspace's audience
    assert not admits(policy, devidp.mint_pipelines_token(workspace="other", repository_uuid=REPO))  # another workspace's issuer


def test_a_deployment_steps_policy_admits_only_that_environment(devidp, moto_sts, tmp_path) -> None:
    token_file = tmp_path / "step-token"
    token_file.write_text(devidp.mint_pipelines_token(repository_uuid=REPO, deployment_environment_uuid=ENV) + "\n")
    policy = trust_policy("--token-file", str(token_file))
    install(moto_sts, "deploy-production", policy)
    assert admits(policy, devidp.mint_pipelines_token(repository_uuid=REPO, deployment_environment_uuid=ENV))
    assert not admits(policy, devidp.mint_pipelines_token(repository_uuid=REPO))
    assert not admits(policy, devidp.mint_pipelines_token(repository_uuid=REPO, deployment_environment_uuid="{99999999-2222-4333-8444-000000000000}"))


def test_the_policy_from_flags_names_bitbuckets_issuer(moto_sts) -> None:
    policy = trust_policy("--workspace", "acme", "--workspace-uuid", "{3F7C0B1E-2D4A-4B6C-9E8F-0A1B2C3D4E5F}".lower(), "--repository-uuid", REPO)
    install(moto_sts, "deploy-from-flags", policy)
    prefix = "api.bitbucket.org/2.0/workspaces/acme/pipelines-config/identity/oidc"
    statement = policy["Statement"][0]
    assert statement["Principal"]["Federated"] == f"arn:aws:iam::{ACCOUNT}:oidc-provider/{prefix}"
    assert statement["Condition"] == {"StringEquals": {f"{prefix}:aud": "ari:cloud:bitbucket::workspace/3f7c0b1e-2d4a-4b6c-9e8f-0a1b2c3d4e5f"}, "StringLike": {f"{prefix}:sub": f"{REPO}:*"}}


def test_moto_really_validates_trust_policies(moto_sts) -> None:
    """The check above means something: IAM (moto) refuses a malformed trust policy document."""
    from botocore.exceptions import ClientError

    good = {"Effect": "Allow", "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/x"}, "Action": "sts:AssumeRoleWithWebIdentity"}
    broken = [
        {**good, "Condition": {"StringMatches": {"x:sub": "a"}}},  # no such operator
        {**good, "Condition": {"StringLike": {"x:sub": {"a": 1}}}},  # a value that is no string
        {**good, "Action": "sts:AssumeRoleWithOIDC"},
        {**good, "Resource": "*"},
    ]
    for n, statement in enumerate(broken):
        with pytest.raises(ClientError, match="MalformedPolicyDocument"):
            install(moto_sts, f"broken-{n}", {"Version": "2012-10-17", "Statement": [statement]})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "BITBUCKET_STEP_OIDC_TOKEN is not set"),
        (("--workspace", "acme", "--workspace-uuid", "nope", "--repository-uuid", REPO), "--workspace-uuid 'nope' is not a UUID"),
        (("--workspace", "acme"), "--repository-uuid"),
    ],
)
def test_bad_input_is_a_usage_error(args: tuple[str, ...], message: str) -> None:
    done = bblogin("aws", "trust-policy", "--account-id", ACCOUNT, *args)
    assert done.returncode == 2 and message in done.stderr and done.stdout == ""
    assert bblogin("aws", "trust-policy", "--account-id", "12345", "--token-file", "/dev/null").returncode == 2


def test_a_refusal_says_what_aws_compared_and_the_matching_command_never_the_token(devidp, httpserver: HTTPServer) -> None:
    step = devidp.mint_pipelines_token(repository_uuid=REPO)
    claims = unverified_claims(step)
    prefix = claims["iss"].removeprefix("http://")
    httpserver.expect_request("/", method="POST").respond_with_data(STS_ACCESS_DENIED, status=403, content_type="text/xml")
    done = bblogin("aws", "--role-arn", ROLE, "--sts-endpoint", httpserver.url_for("/"), env={**NO_KEYRING, "BITBUCKET_STEP_OIDC_TOKEN": step})
    assert done.returncode == 8 and "AccessDenied" in done.stderr
    assert f"{prefix}:aud = {claims['aud']}" in done.stderr and f"{prefix}:sub = {claims['sub']}" in done.stderr
    assert f"oidc-provider/{prefix}" in done.stderr and f"bblogin aws trust-policy --account-id {ACCOUNT}" in done.stderr
    assert step not in done.stderr + done.stdout and step.split(".")[1] not in done.stderr


def test_duration_past_the_step_tokens_expiry_warns_once_with_both_times(devidp, moto_sts) -> None:
    from bblogin._timefmt import rfc3339

    step = devidp.mint_pipelines_token(ttl=1800)
    env = {**NO_KEYRING, "BITBUCKET_STEP_OIDC_TOKEN": step}
    done = bblogin("aws", "--role-arn", ROLE, "--sts-endpoint", moto_sts, "--duration", "7200", env=env)
    assert done.returncode == 0 and json.loads(done.stdout)["Version"] == 1
    assert done.stderr.count("warning:") == 1 and rfc3339(unverified_claims(step)["exp"]) in done.stderr and "--duration 7200" in done.stderr
    assert "renewal" in done.stderr  # botocore renews 15 min before the end: long after the token expired
    assert bblogin("aws", "--role-arn", ROLE, "--sts-endpoint", moto_sts, "--duration", "1200", env=env).stderr == ""


# -- F2: the drift warning where the step log shows it; F4: advice that can be followed ---------------
def test_in_the_documented_set_up_the_step_log_shows_the_drift_and_botocore_gets_credentials(devidp, moto_sts, tmp_path, monkeypatch) -> None:
    """docs/pipelines.md: the step's script runs `bblogin aws config … >> ~/.aws/config` (its stderr is
    the step log), then the AWS CLI/boto3 runs the credential_process (whose stderr botocore drops
    on success)."""
    import botocore.session

    step = devidp.mint_pipelines_token(ttl=1800)
    monkeypatch.setenv("BITBUCKET_STEP_OIDC_TOKEN", step)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    script_line = bblogin("aws", "config", "--role-arn", ROLE, "--sts-endpoint", moto_sts, "--duration", "7200", "--name", "deploy")
    assert script_line.returncode == 0, script_line.stderr
    step_log = script_line.stderr
    assert step_log.count("warning:") == 1 and "--duration 7200" in step_log
    assert all(1790 <= int(n) <= 1800 for n in re.findall(r"ask for --duration (\d+)", step_log)) and "ask for --duration" in step_log
    config = tmp_path / "aws-config"
    config.write_text(script_line.stdout + "region = us-east-1\n")
    command = script_line.stdout.split("credential_process = ")[1].split()
    assert os.path.isabs(command[0]) and command[1:] == ["aws", "--role-arn", ROLE, "--duration", "7200", "--sts-endpoint", moto_sts]
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    identity = botocore.session.Session(profile="deploy").create_client("sts", endpoint_url=moto_sts).get_caller_identity()
    assert identity["Account"] == ACCOUNT


def test_after_the_step_token_expired_botocore_shows_why(devidp, moto_sts, tmp_path, monkeypatch) -> None:
    import botocore.exceptions
    import botocore.session

    monkeypatch.setenv("BITBUCKET_STEP_OIDC_TOKEN", devidp.mint_pipelines_token(ttl=-60))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    line = f"{sys.executable} -m bblogin aws --role-arn {ROLE} --sts-endpoint {moto_sts}"
    (tmp_path / "aws-config").write_text(f"[profile deploy]\ncredential_process = {line}\nregion = us-east-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    with pytest.raises(botocore.exceptions.CredentialRetrievalError, match="BITBUCKET_STEP_OIDC_TOKEN expired at .*cannot be renewed") as info:
        botocore.session.Session(profile="deploy").create_client("sts", endpoint_url=moto_sts).get_caller_identity()
    assert "bblogin aws config" in str(info.value)


def test_drift_advice_respects_the_900_s_minimum(devidp, moto_sts) -> None:
    env = {**NO_KEYRING, "BITBUCKET_STEP_OIDC_TOKEN": devidp.mint_pipelines_token(ttl=600)}
    done = bblogin("aws", "--role-arn", ROLE, "--sts-endpoint", moto_sts, "--duration", "900", env=env)
    assert done.returncode == 0 and done.stderr.count("warning:") == 1
    assert "no --duration avoids this" in done.stderr and not re.search(r"--duration [0-8]\d\d\b", done.stderr)


def test_run_options_are_refused_where_they_would_be_dropped() -> None:
    flags = ("--workspace", "acme", "--workspace-uuid", "3f7c0b1e-2d4a-4b6c-9e8f-0a1b2c3d4e5f", "--repository-uuid", REPO)
    done = bblogin("aws", "--role-arn", ROLE, "--duration", "7200", "trust-policy", "--account-id", ACCOUNT, *flags)
    assert done.returncode == 2 and "--role-arn, --duration" in done.stderr and done.stdout == ""


# -- F10: UUIDs as Bitbucket writes them ---------------------------------------------------------------
def test_upper_case_uuids_are_written_as_bitbucket_writes_them() -> None:
    upper = ("--workspace", "acme", "--workspace-uuid", "3F7C0B1E-2D4A-4B6C-9E8F-0A1B2C3D4E5F", "--repository-uuid", REPO.upper(), "--environment-uuid", ENV.upper())
    policy = json.loads(bblogin("aws", "trust-policy", "--account-id", ACCOUNT, *upper).stdout)
    condition = policy["Statement"][0]["Condition"]
    assert list(condition["StringEquals"].values()) == ["ari:cloud:bitbucket::workspace/3f7c0b1e-2d4a-4b6c-9e8f-0a1b2c3d4e5f"]
    assert list(condition["StringLike"].values()) == [f"{REPO}:{ENV}:*"]
    gcp = json.loads(bblogin("gcp", "provider-condition", "--json", *upper).stdout)
    assert gcp["attribute_condition"] == f'assertion.repositoryUuid == "{REPO}" && assertion.deploymentEnvironmentUuid == "{ENV}"'


# -- F13: a token file that is no token ----------------------------------------------------------------
def test_a_huge_or_endless_token_file_is_not_a_jwt(tmp_path) -> None:
    huge = tmp_path / "huge"
    huge.write_bytes(b"a" * (2 * 1024 * 1024))
    for path in (str(huge), "/dev/zero"):
        done = subprocess.run([sys.executable, "-c", f"import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_AS, (600 << 20, 600 << 20)); sys.argv = ['bblogin', 'aws', 'trust-policy', '--account-id', '{ACCOUNT}', '--token-file', {path!r}]; runpy.run_module('bblogin', run_name='__main__')"], capture_output=True, text=True, timeout=30)
        assert done.returncode == 2 and "not a JWT" in done.stderr and "internal error" not in done.stderr, done.stderr
