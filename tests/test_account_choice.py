"""Review findings on the account/token-set model (issue #22 §1, #23 §1): who is served after
`use`, a flag override's login, an `--account` query after a scope edit.

Real CLI processes (hot path and full path), the dev IdP (its ID tokens carry ``groups`` only
when asked for), the real Secret Service.
"""

from __future__ import annotations

from bblogin import _record
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
    _configedit.save_profile(_record.replace(_config.load().profiles[name], scopes=wanted))


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


def test_a_login_through_flags_that_change_a_profiles_request_takes_nothing_from_its_login(devidp) -> None:
    """What `bblogin token --profile work --scope …` on a terminal reaches when the request under
    work's name is not work's (``profile_from_args`` names it apart now; ``save_login`` is the
    last guard): its own set, and work's configured login — refresh token and all — stays."""
    from bblogin._login import LoginOptions
    from bblogin._session import get_credential
    from bblogin._store import SecretStore

    login(devidp, "work", *scopes(*WITH_GROUPS))
    (configured,) = _index.load().accounts.values()
    refresh_token = SecretStore(configured.storage).get(configured.id, "refresh_token")
    override = _record.replace(_config.load().profiles["work"], scopes=WITHOUT_GROUPS)
    cred = get_credential(override, interactive=True, login=LoginOptions(flow="device", open_browser=False))
    assert "groups" not in (unverified_claims(cred.token) or {}) and cred.account.id != configured.id
    index = _index.load()
    assert configured.id in index.accounts and index.active["work"] == configured.id, "the override's login took work's place"
    assert SecretStore(configured.storage).get(configured.id, "refresh_token") == refresh_token
    assert "groups" in served_claims("work")
    again = get_credential(override)  # the override is served its own tokens, no second login
    assert again.account.id == cred.account.id
