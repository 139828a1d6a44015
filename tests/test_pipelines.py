"""CI without stored secrets: Bitbucket Pipelines tokens exchanged at dex (AWS: tests/test_aws.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bblogin import _config, _configedit
from bblogin._claims import unverified_claims
from bblogin.devidp import dex_subject


def bblogin(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bblogin", *args], capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


@pytest.fixture
def ci_profile(devidp):  # type: ignore[no-untyped-def]
    _configedit.save_profile(
        _config.Profile(
            name="ci", issuer=devidp.issuer, client_id="bblogin-ci", client_secret="bblogin-ci-secret", pipelines=True,
            exchange_connector_id="bitbucket-pipelines", scopes=("openid", "groups"), storage="plaintext",
        )
    )
    return devidp


def test_exchange_prints_a_verified_dex_token(ci_profile) -> None:
    step_token = ci_profile.mint_pipelines_token(repository_uuid="{repo-1}", step_uuid="{step-1}")
    done = bblogin("exchange", "--profile", "ci", "--json", env={"BITBUCKET_STEP_OIDC_TOKEN": step_token})
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    claims = unverified_claims(out["token"])
    assert claims["iss"] == ci_profile.issuer and claims["aud"] == "bblogin-ci"
    assert claims["sub"] == dex_subject("{repo-1}:{step-1}", "bitbucket-pipelines") == out["sub"]
    assert ci_profile.count("/auth") == 0 and ci_profile.count("/device/code") == 0


def test_kubectl_plugin_exchanges_without_any_login(ci_profile) -> None:
    env = {"BITBUCKET_STEP_OIDC_TOKEN": ci_profile.mint_pipelines_token(), "KUBERNETES_EXEC_INFO": '{"apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}'}
    done = bblogin("kubectl", "--profile", "ci", env=env)
    assert done.returncode == 0, done.stderr
    cred = json.loads(done.stdout)
    assert cred["apiVersion"] == "client.authentication.k8s.io/v1" and unverified_claims(cred["status"]["token"])["aud"] == "bblogin-ci"
    assert bblogin("kubectl", "--profile", "ci", env=env).returncode == 0
    assert ci_profile.count("/token", "urn:ietf:params:oauth:grant-type:token-exchange") == 1  # the second call hit the cache


def test_forged_or_missing_step_token(ci_profile) -> None:
    forged = ci_profile.mint_pipelines_token(workspace="someone-else")  # another workspace's issuer: not trusted
    done = bblogin("exchange", "--profile", "ci", env={"BITBUCKET_STEP_OIDC_TOKEN": forged})
    assert done.returncode == 8 and "access_denied" in done.stderr and done.stdout == ""
    done = bblogin("exchange", "--profile", "ci")
    assert done.returncode == 4 and "oidc: true" in done.stderr


@pytest.mark.parametrize("fast_path", [True, False], ids=["hot-path", "full-path"])
def test_a_cached_exchange_is_only_for_the_step_token_it_was_exchanged_for(ci_profile, fast_path: bool) -> None:
    """A state dir that survives across steps (self-hosted runners): repo B's step must never get
    repo A's exchanged token, on the hot path or the full one."""
    base = {"KUBERNETES_EXEC_INFO": '{"apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}'}
    if not fast_path:
        base["BBLOGIN_NO_FAST_PATH"] = "1"
    step_a = ci_profile.mint_pipelines_token(repository_uuid="{repo-a}", step_uuid="{step-a}")
    step_b = ci_profile.mint_pipelines_token(repository_uuid="{repo-b}", step_uuid="{step-b}")
    subs = []
    for step in (step_a, step_a, step_b, step_b, step_a):
        done = bblogin("kubectl", "--profile", "ci", env={**base, "BITBUCKET_STEP_OIDC_TOKEN": step})
        assert done.returncode == 0, done.stderr
        subs.append(unverified_claims(json.loads(done.stdout)["status"]["token"])["sub"])
    sub_a, sub_b = (dex_subject(f"{{repo-{r}}}:{{step-{r}}}", "bitbucket-pipelines") for r in "ab")
    assert subs == [sub_a, sub_a, sub_b, sub_b, sub_a]
    # each step token is exchanged once per switch; a repeat of the same step is answered from the cache
    assert ci_profile.count("/token", "urn:ietf:params:oauth:grant-type:token-exchange") == 3
    done = bblogin("kubectl", "--profile", "ci", env=base)  # no step token at all: never a cached one
    assert done.returncode == 4 and done.stdout == ""
