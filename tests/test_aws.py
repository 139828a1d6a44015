"""`bblogin aws`: AWS credential_process via AssumeRoleWithWebIdentity, against moto's STS server
and consumed by botocore itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from bblogin._claims import unverified_claims
from bblogin._store import SecretStore

ROLE = "arn:aws:iam::123456789012:role/deploy"
# moto accepts every web identity token, so a refusal is AWS's documented error shape, canned
STS_DENIED = """<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>
  <Code>InvalidIdentityToken</Code><Message>Incorrect token audience</Message></Error></ErrorResponse>"""
STS_THROTTLED = """<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>
  <Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>"""
NO_KEYRING = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}


def bblogin(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bblogin", *args], capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


@pytest.fixture
def step(devidp, monkeypatch: pytest.MonkeyPatch) -> str:
    """A Pipelines step's OIDC token in the environment, as in a Bitbucket Pipelines step."""
    token = devidp.mint_pipelines_token()
    monkeypatch.setenv("BITBUCKET_STEP_OIDC_TOKEN", token)
    return token


def aws(endpoint: str, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return bblogin("aws", "--role-arn", ROLE, "--sts-endpoint", endpoint, *extra, env=env)


def test_botocore_runs_the_credential_process_against_moto(keyring_secret_service, step, moto_sts, tmp_path) -> None:
    import botocore.session

    config = tmp_path / "aws-config"
    launcher = f"{sys.executable} -m bblogin aws --role-arn {ROLE} --sts-endpoint {moto_sts}"
    config.write_text(f"[profile ci]\ncredential_process = {launcher}\nregion = us-east-1\n")
    os.environ["AWS_CONFIG_FILE"] = str(config)
    try:
        session = botocore.session.Session(profile="ci")
        identity = session.create_client("sts", endpoint_url=moto_sts).get_caller_identity()
    finally:
        del os.environ["AWS_CONFIG_FILE"]
    assert identity["Account"] == "123456789012"


def test_cached_only_while_more_than_15_minutes_remain_and_keyed_by_duration(keyring_secret_service, step, moto_sts) -> None:
    first = json.loads(aws(moto_sts).stdout)
    assert first["Version"] == 1 and first["AccessKeyId"].startswith("ASIA")
    assert json.loads(aws(moto_sts).stdout) == first  # 60 min left: reused
    short = aws(moto_sts, "--duration", "1000")
    assert short.returncode == 0, short.stderr
    short_creds = json.loads(short.stdout)
    assert short_creds["AccessKeyId"] != first["AccessKeyId"]  # another duration is another answer
    expires = time.mktime(time.strptime(short_creds["Expiration"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    assert abs(expires - (time.time() + 1000)) < 120
    minimum = [json.loads(aws(moto_sts, "--duration", "900").stdout)["AccessKeyId"] for _ in range(2)]
    assert minimum[0] != minimum[1]  # 15 min or less left: botocore would call again at once, so would we


def test_a_corrupt_cache_entry_is_a_miss_and_is_replaced(keyring_secret_service, step, moto_sts) -> None:
    from bblogin._commands.aws import cache_key

    key = cache_key(ROLE, "fixed", unverified_claims(step), moto_sts, 3600)
    store = SecretStore("keyring")
    garbage = ["{not json", "[]", '{"Version": 1}', '{"Version": 1, "AccessKeyId": "A", "SecretAccessKey": "S", "SessionToken": "T", "Expiration": "soon"}']
    for entry in garbage:
        store.set(key, "aws_credentials", entry)
        done = aws(moto_sts, "--session-name", "fixed")
        assert done.returncode == 0 and "internal error" not in done.stderr, done.stderr
        assert json.loads(store.get(key, "aws_credentials") or "") == json.loads(done.stdout)  # overwritten


def test_without_a_keyring_it_says_it_does_not_cache(step, moto_sts) -> None:
    done = bblogin("-v", "aws", "--role-arn", ROLE, "--sts-endpoint", moto_sts, env=NO_KEYRING)
    assert done.returncode == 0 and "not caching AWS credentials" in done.stderr
    doctor = json.loads(bblogin("doctor", "--json", env=NO_KEYRING).stdout)
    keyring = next(c for c in doctor["checks"] if c["name"] == "keyring")
    assert "`bblogin aws` caches no AWS credentials" in keyring["detail"]


def test_throttling_is_retried_with_backoff(step, moto_sts, httpserver: HTTPServer) -> None:
    answers: list[int] = []

    def throttle_twice_then_moto(request: Request) -> Response:
        if len(answers) < 2:
            answers.append(400)
            return Response(STS_THROTTLED, status=400, content_type="text/xml")
        answers.append(200)
        forwarded = httpx.post(moto_sts, data=request.form.to_dict())
        return Response(forwarded.content, status=forwarded.status_code, content_type="text/xml")

    httpserver.expect_request("/", method="POST").respond_with_handler(throttle_twice_then_moto)
    started = time.monotonic()
    done = aws(httpserver.url_for("/"), env=NO_KEYRING)
    assert done.returncode == 0, done.stderr
    assert answers == [400, 400, 200] and json.loads(done.stdout)["AccessKeyId"].startswith("ASIA")
    assert 0.7 <= time.monotonic() - started < 20  # backed off: 0.25..0.5 s, then 0.5..1 s


def test_endless_throttling_is_a_transient_error(step, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/", method="POST").respond_with_data(STS_THROTTLED, status=400, content_type="text/xml")
    done = aws(httpserver.url_for("/"), env=NO_KEYRING)
    assert done.returncode == 5 and "Throttling" in done.stderr and "4 times in a row" in done.stderr
    assert len(httpserver.log) == 4


def test_unreachable_sts_is_named(step) -> None:
    done = aws("http://127.0.0.1:9/", env=NO_KEYRING)
    assert done.returncode == 5 and "STS endpoint http://127.0.0.1:9/" in done.stderr and "issuer" not in done.stderr


def test_sts_refusal_is_explained(step, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/", method="POST").respond_with_data(STS_DENIED, status=400, content_type="text/xml")
    done = aws(httpserver.url_for("/"), env=NO_KEYRING)
    assert done.returncode == 8
    assert "InvalidIdentityToken" in done.stderr and "trust policy" in done.stderr and done.stdout == ""
    assert len(httpserver.log) == 1  # a refusal is not retried


@pytest.mark.parametrize("region", ["x@127.0.0.1:9/#", "eu-west-1.evil.example/", "us-east-1 "])
def test_a_hostile_aws_region_never_sends_the_token_to_another_host(step, region: str) -> None:
    """The default endpoint is built from AWS_REGION: a value that is not a region name (botocore's
    validate_region_name) must not turn the URL into another host that receives the identity token."""
    from bblogin._errors import UsageError

    done = bblogin("aws", "--role-arn", ROLE, env={**NO_KEYRING, "AWS_REGION": region})
    assert done.returncode == UsageError.exit_code and "AWS_REGION" in done.stderr and done.stdout == "", done.stderr
