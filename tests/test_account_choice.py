"""Review findings on the account/token-set model (issue #22 §1, #23 §1): who is served after
`use`, a flag override's login, an `--account` query after a scope edit.

Real CLI processes (hot path and full path), the dev IdP (its ID tokens carry ``groups`` only
when asked for), the real Secret Service.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from bblogin import _config, _configedit, _index
from bblogin._claims import unverified_claims
from tests.test_session import bblogin, login
from tests.test_shared_idp import EXEC_INFO, WITH_GROUPS, WITHOUT_GROUPS, kubectl, scopes, served_claims

pytestmark = pytest.mark.usefixtures("keyring_secret_service")


def edit_scopes(name: str, wanted: tuple[str, ...]) -> None:
    _configedit.save_profile(dataclasses.replace(_config.load().profiles[name], scopes=wanted))


def test_use_of_an_account_whose_login_is_of_an_older_shape_never_serves_another_account(devidp) -> None:
    """alice and bob in work; work's scopes change; bob logs in again, alice not. `use alice`
    must mean alice — a login of alice — never bob's tokens (hot path and full path)."""
    login(devidp, "work", *scopes(*WITHOUT_GROUPS))  # alice
    devidp.default_user = "bob"
    login(devidp, "work", *scopes(*WITHOUT_GROUPS))
    edit_scopes("work", WITH_GROUPS)
    login(devidp, "work", *scopes(*WITH_GROUPS))  # bob, the new shape
    done = bblogin("use", "alice@example.com", "--profile", "work")
    assert done.returncode == 0, done.stderr
    assert "alice@example.com's login in profile work was made for other scopes" in done.stderr and "bblogin login --profile work" in done.stderr, done.stderr
    for hot in (True, False):
        k = kubectl("work", hot=hot)
        who = (unverified_claims(json.loads(k.stdout)["status"]["token"]) or {}).get("email") if k.returncode == 0 else None
        assert who is None, f"use made alice active and kubectl (hot={hot}) got {who}'s token"
        assert k.returncode == 4 and "alice@example.com" in k.stderr and "bblogin login --profile work" in k.stderr, k.stderr
    done = bblogin("use", "bob@example.com", "--profile", "work")
    assert done.returncode == 0 and "note:" not in done.stderr, done.stderr
    assert served_claims("work")["email"] == "bob@example.com"


def test_an_account_query_is_refused_the_tokens_of_an_older_shape(devidp) -> None:
    """`kubectl --profile work --account alice@…` after work's scopes changed: only the shape
    check of ``_hot._answer.cached_token`` stands between the hot path and the old tokens."""
    login(devidp, "work", *scopes(*WITHOUT_GROUPS))
    edit_scopes("work", WITH_GROUPS)
    for hot in (True, False):
        env = {**os.environ, "KUBERNETES_EXEC_INFO": EXEC_INFO}
        if not hot:
            env["BBLOGIN_NO_FAST_PATH"] = "1"
        done = subprocess.run(
            [sys.executable, "-m", "bblogin", "kubectl", "--profile", "work", "--account", "alice@example.com"],
            capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 4 and "bblogin login --profile work" in done.stderr, (hot, done.stdout[:80], done.stderr)
    assert len(_index.load().accounts) == 1
