"""An account's tokens go only to the party that issued them (issue #13, defect 1).

Two dev IdPs: the account logs in at ``home``; flags, an edited config.toml, a TUI refresh and a
logout then name ``other`` (or another client at ``home``). ``other`` must never see a request
for the account, nothing may be sent with the wrong client, and the real account must stay alive.
"""

from __future__ import annotations

from bblogin import _record
import json
import os
import re
import subprocess
import sys

import pytest

from bblogin import _adhoc, _config, _configedit, _index
from tests.test_session import bblogin, login, make_expiring, set_margin

pytestmark = pytest.mark.usefixtures("keyring_secret_service")

EXEC_INFO = '{"apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}'


@pytest.fixture
def two_idps(devidp_factory):  # type: ignore[no-untyped-def]
    home, other = devidp_factory(id_token_ttl=90), devidp_factory()
    login(home)
    make_expiring("dev")  # the cached tokens are "about to expire": any use would refresh them
    return home, other


def only_account() -> _index.Account:
    (account,) = _index.load().accounts.values()
    return account


def assert_account_untouched(home, other) -> None:  # type: ignore[no-untyped-def]
    assert other.requests == [], f"another IdP was contacted: {other.requests}"
    assert home.foreign_tokens() == [] and other.foreign_tokens() == []
    assert not only_account().refresh_dead
    refreshes = home.count("/token", "refresh_token")
    done = bblogin("token", "--profile", "dev", "--no-login")  # the real profile still works
    assert done.returncode == 0, done.stderr
    assert home.count("/token", "refresh_token") == refreshes + 1


def test_issuer_flags_on_kubectl_never_send_the_accounts_tokens_elsewhere(two_idps, monkeypatch: pytest.MonkeyPatch) -> None:
    home, other = two_idps
    monkeypatch.setenv("KUBERNETES_EXEC_INFO", EXEC_INFO)
    done = bblogin("kubectl", "--profile", "dev", "--issuer", other.issuer, "--client-id", "bblogin")
    assert done.returncode == 4 and done.stdout == "", done.stderr
    # the flags ask another IdP: an ad-hoc profile of that request (#22 §2), whose hint logs in there
    hint = re.search(r"run `bblogin login --profile (adhoc-[0-9a-f]{12})`", done.stderr)
    assert hint, done.stderr
    assert _adhoc.load()[hint.group(1)].issuer == other.issuer
    assert home.count("/token", "refresh_token") == 0
    assert_account_untouched(home, other)


def test_an_edited_issuer_in_config_toml_hides_the_account(two_idps) -> None:
    home, other = two_idps
    original = _config.load().profiles["dev"]
    _configedit.save_profile(_record.replace(original, issuer=other.issuer))
    done = bblogin("token", "--profile", "dev", "--no-login")
    assert done.returncode == 4 and done.stdout == "", done.stderr
    assert other.requests == [] and home.count("/token", "refresh_token") == 0
    (status,) = json.loads(bblogin("status", "--json").stdout)["accounts"]
    assert status["state"] == f"not used: profile dev now names {other.issuer} (client bblogin)"
    _configedit.save_profile(original)
    assert_account_untouched(home, other)


def test_an_edited_client_id_never_redeems_the_refresh_token_as_another_client(two_idps) -> None:
    home, other = two_idps
    original = _config.load().profiles["dev"]
    _configedit.save_profile(_record.replace(original, client_id="bblogin-ci", client_secret="bblogin-ci-secret"))
    done = bblogin("token", "--profile", "dev", "--no-login")
    assert done.returncode == 4, done.stderr
    assert home.count("/token", "refresh_token") == 0, "the refresh token went to the token endpoint as another client"
    _configedit.save_profile(original)
    assert_account_untouched(home, other)


def test_tui_refresh_and_logout_go_to_the_issuing_idp_only(two_idps) -> None:
    from bblogin.tui.source import CoreSource

    home, other = two_idps
    original = _config.load().profiles["dev"]
    _configedit.save_profile(_record.replace(original, issuer=other.issuer))
    account = only_account()
    CoreSource().refresh(account.id)  # refreshed where it was issued, whatever the profile says now
    assert home.count("/token", "refresh_token") == 1 and not only_account().refresh_dead
    done = bblogin("logout", "--all")
    assert done.returncode == 0, done.stderr
    assert other.requests == [], f"logout contacted the profile's new issuer: {other.requests}"
    assert home.foreign_tokens() == [] and _index.load().accounts == {}


def test_the_hot_path_declines_an_account_issued_elsewhere(two_idps, monkeypatch: pytest.MonkeyPatch) -> None:
    home, other = two_idps
    monkeypatch.setenv("KUBERNETES_EXEC_INFO", EXEC_INFO)
    set_margin("dev", 0)  # valid: the hot path would answer for the real profile
    original = _config.load().profiles["dev"]
    _configedit.save_profile(_record.replace(original, issuer=other.issuer))
    done = bblogin("kubectl", "--profile", "dev")
    assert done.returncode == 4 and done.stdout == ""
    status = json.loads(bblogin("status", "--json").stdout)["accounts"]
    assert [a["issuer"] for a in status] == [home.issuer]
    assert other.requests == [] and home.count("/token", "refresh_token") == 0


def test_profile_for_never_lends_another_clients_secret_or_settings() -> None:
    from bblogin._session import issued_for, profile_for

    account = _index.Account(id="x", profiles=["dev"], provider="oidc", issuer="https://idp.example", client_id="bblogin", sub="s", storage="plaintext")
    same = _config.Profile(name="dev", issuer="https://idp.example", client_id="bblogin", client_secret="ours", ca_file="/ca.pem")
    elsewhere = _record.replace(same, issuer="https://other.example", client_secret="theirs")
    assert profile_for(account, _config.Config(path="c", profiles={"dev": same})) == _record.replace(same, storage="plaintext")
    for config in (_config.Config(path="c", profiles={"dev": elsewhere}), _config.Config(path="c")):
        fallback = profile_for(account, config)
        assert issued_for(account, fallback) and fallback.client_secret is None and fallback.ca_file is None and fallback.storage == "plaintext"
    assert not issued_for(account, _record.replace(same, provider="bitbucket-dc"))


def test_flags_naming_another_idp_or_client_never_carry_the_profiles_client_secret() -> None:
    import argparse

    from bblogin._commands._common import profile_from_args

    base = _config.Profile(name="ci", issuer="https://idp.example", client_id="bblogin-ci", client_secret="ci-secret")
    config = _config.Config(path="c", profiles={"ci": base})

    def args(**flags: str) -> argparse.Namespace:
        return argparse.Namespace(profile="ci", **{k: flags.get(k) for k in ("issuer", "client_id", "client_secret", "provider", "connector_id", "scopes", "ca_file")})

    assert profile_from_args(args(connector_id="x"), config).client_secret == "ci-secret"  # same IdP and client
    assert profile_from_args(args(issuer="https://other.example"), config).client_secret is None
    assert profile_from_args(args(client_id="another"), config).client_secret is None
    assert profile_from_args(args(provider="bitbucket-dc"), config).client_secret is None  # another token endpoint
    assert profile_from_args(args(provider="oidc"), config).client_secret == "ci-secret"  # the profile's own provider
    assert profile_from_args(args(client_id="another", client_secret="given"), config).client_secret == "given"


def test_a_login_through_override_flags_leaves_the_profiles_own_account_in_use(two_idps, monkeypatch: pytest.MonkeyPatch) -> None:
    """`kubectl --profile dev --issuer OTHER` (interactive) logs in at OTHER under the name dev; the
    profile as configured must still find its own login afterwards — not 'login required' (and, on
    a terminal, a needless new login) because dev's active pointer now names OTHER's account."""
    from bblogin._login import LoginOptions
    from bblogin._session import get_credential

    home, other = two_idps
    set_margin("dev", 0)
    dev = _config.load().profiles["dev"]
    elsewhere = _record.replace(dev, issuer=other.issuer, client_secret=None)
    cred = get_credential(elsewhere, interactive=True, login=LoginOptions(flow="device", open_browser=False))
    assert cred.account.issuer == other.issuer
    monkeypatch.setenv("KUBERNETES_EXEC_INFO", EXEC_INFO)
    for hot in (False, True):  # the full path, then the hot path (from the mirror it left) answer with dev's own login
        env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"} | ({} if hot else {"BBLOGIN_NO_FAST_PATH": "1"})
        done = subprocess.run([sys.executable, "-m", "bblogin", "kubectl", "--profile", "dev"], capture_output=True, text=True, timeout=60, env=env)
        assert done.returncode == 0, done.stderr
        imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
        assert ("bblogin._session" not in imported) == hot, "the hot path must agree with the full path, not decline"
        assert json.loads(done.stdout)["status"]["token"] == home_token(home)
    again = get_credential(elsewhere)  # and the override keeps its own login: no second login
    assert again.account.id == cred.account.id
    assert other.count("/token", "refresh_token") == 0


def home_token(home) -> str:  # type: ignore[no-untyped-def]
    from bblogin._store import SecretStore

    (account,) = [a for a in _index.load().accounts.values() if a.issuer == home.issuer]
    value = SecretStore(account.storage).get(account.id, "id_token")
    assert value
    return value
