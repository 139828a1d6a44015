"""Bitbucket Cloud and Data Center OAuth 2.0 directly, against fakes that behave as the services
are documented to (tests/fixtures/bitbucket_fakes.py cites the sources).

Cloud runs in this process: its fake is reached at the real https://bitbucket.org and
https://api.bitbucket.org through a mounted httpx transport. Data Center has no fixed host, so
its fake is a real 127.0.0.1 server and bblogin runs as a subprocess too.
"""

from __future__ import annotations

from bblogin import _record
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
from typing import Any

import httpx
import pytest

from bblogin import _config, _configedit, _index
from bblogin._cli import launcher_command
from bblogin._errors import ConfigError, IdPError, LoginFailed, LoginRequired, OAuthError, RefreshTokenDead, TokenVerificationError, UsageError
from bblogin._login import LoginOptions, interactive_login
from bblogin._providers._paste import parse_pasted_redirect
from bblogin._session import get_credential, save_login
from bblogin._store import SecretStore
from tests.fixtures.bitbucket_fakes import DC_ALICE, FakeBitbucket, cloud_http_client, free_port
from tests.test_login import BROWSER_STUB
from tests.test_session import bblogin

HELPER = [sys.executable, "-m", "bblogin", "git-credential", "get"]


@pytest.fixture(autouse=True)
def browser(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROWSER", f"{sys.executable} {BROWSER_STUB} %s")


def git_get(protocol: str, host: str, path: str = "") -> dict[str, str]:
    request = f"protocol={protocol}\nhost={host}\n" + (f"path={path}\n" if path else "") + "\n"
    done = subprocess.run(HELPER, input=request, capture_output=True, text=True, timeout=60, env=os.environ.copy())
    assert done.returncode == 0 and done.stdout, done.stderr
    return dict(line.split("=", 1) for line in done.stdout.splitlines())


def cloud_profile(fake: FakeBitbucket, **extra: Any) -> _config.Profile:
    profile = _config.Profile(
        name="cloud", provider="bitbucket-cloud", issuer=fake.base, client_id=fake.client_id, client_secret=fake.client_secret,
        scopes=_config.default_scopes("bitbucket-cloud"), redirect_uri=fake.callback, flow="loopback", **extra,
    )
    _configedit.save_profile(profile)
    return _config.load().profile("cloud")


def dc_profile(fake: FakeBitbucket) -> _config.Profile:
    profile = _config.Profile(
        name="dc", provider="bitbucket-dc", issuer=fake.base, client_id=fake.client_id, client_secret=fake.client_secret,
        scopes=("REPO_READ", "REPO_WRITE"), redirect_uri=fake.callback, flow="loopback",
    )
    _configedit.save_profile(profile)
    return _config.load().profile("dc")


def browse(fake: FakeBitbucket, url: str) -> str:
    """What a browser does with the authorization URL: Bitbucket signs the person in and redirects;
    returns where to. Cloud's URL goes through the same routed transport as bblogin's requests."""
    client = cloud_http_client(fake)() if fake.kind == "cloud" else httpx.Client()
    with client:
        answer = client.get(url)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def login_in_process(fake: FakeBitbucket, profile: _config.Profile) -> Any:
    """A loopback login in this process; the 'browser' follows the redirect to the listener."""

    def on_url(url: str) -> None:
        threading.Thread(target=lambda: httpx.get(browse(fake, url), timeout=30), daemon=True).start()

    tokens, identity = interactive_login(profile, LoginOptions(flow="loopback", open_browser=False, on_url=on_url, timeout=30))
    return tokens, save_login(profile, tokens, identity)


# -- Cloud -------------------------------------------------------------------------------------
def test_cloud_login_scope_identity_refresh_rotation_and_git(keyring_secret_service, bitbucket_cloud) -> None:
    fake = bitbucket_cloud
    fake.permissions = ("account", "email", "repository")  # the consumer lacks repository:write
    tokens, account = login_in_process(fake, cloud_profile(fake))
    assert fake.authorize_requests[0]["scope"] == "account email repository repository:write"  # what the profile asks
    assert fake.authorize_requests[0]["redirect_uri"] == fake.callback
    assert tokens.scope == "account email repository"  # what the consumer's permissions granted, from `scopes`
    assert (account.email, account.username, account.groups) == ("alice@example.com", "alice", ["acme", "platform"])
    assert account.sub == "{c0ffee00-0000-4000-8000-000000000001}"
    assert "code_verifier" in fake.token_requests[0] and "client_secret" not in fake.token_requests[0]  # HTTP Basic
    assert any(i.endswith("/refresh_token/3") for i in keyring_secret_service.bblogin_items())  # 3 KB: chunked
    profile = _config.load().profile("cloud")
    for _ in range(2):
        get_credential(profile, kind="access_token", force_refresh=True)
    refreshes = [r for r in fake.token_requests if r.get("grant_type") == "refresh_token"]
    assert len(refreshes) == 2 and refreshes[0]["refresh_token"] != refreshes[1]["refresh_token"] and not fake.reused
    _configedit.save_git_host(_config.GitHost(url="https://bitbucket.org", profile="cloud"))
    answer = git_get("https", "bitbucket.org")  # from the cache: the subprocess reaches no network
    assert answer["username"] == "x-token-auth" and answer["password"] in fake.access_tokens


def test_cloud_api_is_only_api_bitbucket_org(bitbucket_cloud) -> None:
    """The REST API exists on api.bitbucket.org alone (no `{issuer}/!api` shape), and a `next`
    link to another host is refused before the token is sent."""
    from bblogin._providers._bitbucket import BitbucketCloud
    from bblogin._tokens import TokenSet

    fake = bitbucket_cloud
    with httpx.Client() as plain:  # the fake itself refuses the API on the OAuth host
        assert plain.get(fake.server.url_for("/2.0/user"), headers={"Host": "bitbucket.org"}).status_code == 404
    provider = BitbucketCloud(cloud_profile(fake))
    fake.access_tokens.add("at")
    fake.workspaces_next = "https://evil.example/2.0/user/workspaces?page=2"
    with pytest.raises(TokenVerificationError, match="evil.example"):
        provider.identity(TokenSet(access_token="at"))


def test_cloud_profile_must_be_bitbucket_org(bitbucket_cloud) -> None:
    from bblogin._providers._bitbucket import BitbucketCloud

    profile = _record.replace(cloud_profile(bitbucket_cloud), issuer="https://bitbucket.example.com")
    with pytest.raises(ConfigError, match="lives at https://bitbucket.org") as info:
        BitbucketCloud(profile)
    assert "bitbucket-dc" in (info.value.hint or "")


def test_cloud_dead_refresh_token_is_a_dead_grant(keyring_secret_service, bitbucket_cloud) -> None:
    """Cloud answers a revoked/expired refresh token with invalid_request "Invalid refresh_token"."""
    fake = bitbucket_cloud
    login_in_process(fake, cloud_profile(fake))
    fake.refresh_tokens.clear()  # revoked at Bitbucket
    profile = _config.load().profile("cloud")
    with pytest.raises(RefreshTokenDead) as info:
        get_credential(profile, kind="access_token", force_refresh=True)
    assert "bblogin login --profile cloud" in (info.value.hint or "")
    assert _index.load().accounts[next(iter(_index.load().accounts))].refresh_dead
    with pytest.raises(LoginRequired):  # never sent again: the account needs a login
        get_credential(profile, kind="access_token", force_refresh=True)
    assert len([r for r in fake.token_requests if r.get("grant_type") == "refresh_token"]) == 1


def test_cloud_needs_a_secret(bitbucket_cloud) -> None:
    _configedit.save_profile(_config.Profile(name="cloud", provider="bitbucket-cloud", issuer=bitbucket_cloud.base, client_id="k", redirect_uri=bitbucket_cloud.callback, flow="loopback"))
    done = bblogin("login", "--profile", "cloud", "--timeout", "5")
    assert done.returncode == 3 and "client_secret" in done.stderr


# -- the rotated refresh token is stored first (#15.1, #13) -------------------------------------
@pytest.mark.parametrize(
    ("path", "status"),
    [("/2.0/user", 500), ("/2.0/user", 0), ("/2.0/user/emails", 403), ("/2.0/user/workspaces", 429), ("/2.0/user/workspaces", 0)],
    ids=["user-500", "user-dropped", "emails-403", "workspaces-429", "workspaces-dropped"],
)
def test_rotated_refresh_token_survives_a_failure_after_the_token_response(keyring_secret_service, bitbucket_cloud, path: str, status: int) -> None:
    fake = bitbucket_cloud
    login_in_process(fake, cloud_profile(fake))
    profile = _config.load().profile("cloud")
    fake.fail[path] = status  # the token endpoint answers; the step after it fails
    with pytest.raises(IdPError):
        get_credential(profile, kind="access_token", force_refresh=True)
    del fake.fail[path]
    credential = get_credential(profile, kind="access_token", force_refresh=True)  # with the rotated one
    assert credential.token in fake.access_tokens
    assert not fake.reused  # the spent refresh token was never sent again


def test_rotated_refresh_token_survives_a_keyring_failure_storing_the_other_tokens(keyring_secret_service, bitbucket_cloud, monkeypatch) -> None:
    from bblogin._errors import KeyringTimeout
    from bblogin._store._secrets import SecretStore as Store

    fake = bitbucket_cloud
    login_in_process(fake, cloud_profile(fake))
    profile = _config.load().profile("cloud")
    real_set = Store.set

    def flaky_set(self: Store, account_id: str, kind: str, value: str) -> None:
        if kind == "access_token":
            raise KeyringTimeout("the keyring did not answer within 5 s (store a token)")
        real_set(self, account_id, kind, value)

    monkeypatch.setattr(Store, "set", flaky_set)
    with pytest.raises(KeyringTimeout):
        get_credential(profile, kind="access_token", force_refresh=True)
    monkeypatch.setattr(Store, "set", real_set)
    assert get_credential(profile, kind="access_token", force_refresh=True).token in fake.access_tokens
    assert not fake.reused


@pytest.mark.parametrize("answer", ["bad-expires_in", "bad-token_type", "no-access_token"])
def test_rotated_refresh_token_survives_a_token_answer_that_cannot_be_parsed(keyring_secret_service, bitbucket_cloud, answer: str) -> None:
    """A 200 whose refresh token is fine but whose other fields are not: Bitbucket has spent the
    old refresh token all the same, so the new one is kept before the answer is judged."""
    fake = bitbucket_cloud
    login_in_process(fake, cloud_profile(fake))
    profile = _config.load().profile("cloud")
    fake.mangle = {"bad-expires_in": {"expires_in": -1}, "bad-token_type": {"token_type": "mac"}, "no-access_token": {"access_token": None}}[answer]
    with pytest.raises(IdPError):
        get_credential(profile, kind="access_token", force_refresh=True)
    fake.mangle = {}
    assert get_credential(profile, kind="access_token", force_refresh=True).token in fake.access_tokens
    assert not fake.reused  # the spent refresh token was never sent again


@pytest.mark.parametrize(("path", "status"), [("/bitbucket/plugins/servlet/applinks/whoami", 503), ("/bitbucket/rest/api/latest/users", 500)], ids=["whoami-503", "users-500"])
def test_rotated_refresh_token_survives_a_failure_after_the_token_response_dc(keyring_secret_service, bitbucket_dc, path: str, status: int) -> None:
    fake = bitbucket_dc
    login_in_process(fake, dc_profile(fake))
    profile = _config.load().profile("dc")
    fake.fail[path] = status
    with pytest.raises(IdPError):
        get_credential(profile, kind="access_token", force_refresh=True)
    del fake.fail[path]
    assert get_credential(profile, kind="access_token", force_refresh=True).token in fake.access_tokens
    assert not fake.reused


def test_refreshed_tokens_of_another_user_end_the_login(keyring_secret_service, bitbucket_cloud) -> None:
    """Decision (docs/security.md): the grant now speaks for someone else and the account's own
    refresh token is spent, so the new one is discarded and the account needs a login."""
    fake = bitbucket_cloud
    _, account = login_in_process(fake, cloud_profile(fake))
    profile = _config.load().profile("cloud")
    fake.user = {**fake.user, "uuid": "{0ther000-0000-4000-8000-000000000002}"}
    with pytest.raises(TokenVerificationError, match="different user"):
        get_credential(profile, kind="access_token", force_refresh=True)
    assert SecretStore(profile.storage).get(account.id, "refresh_token") is None
    assert _index.load().accounts[account.id].refresh_dead
    with pytest.raises(LoginRequired):
        get_credential(profile, kind="access_token", force_refresh=True)
    assert not fake.reused


# -- Data Center -------------------------------------------------------------------------------
def test_data_center_end_to_end(keyring_secret_service, bitbucket_dc) -> None:
    fake = bitbucket_dc
    fake.access_lifetime = 2  # the first access token expires at once: the token call below refreshes
    dc_profile(fake)
    done = bblogin("login", "--profile", "dc", "--timeout", "30")
    assert done.returncode == 0, done.stderr
    status = json.loads(bblogin("status", "--json").stdout)["accounts"][0]
    assert (status["sub"], status["username"], status["email"]) == ("101", DC_ALICE["name"], "alice@example.com")  # slug differs from name
    first = fake.token_requests[0]
    assert (first["client_id"], first["client_secret"], first["redirect_uri"]) == (fake.client_id, fake.client_secret, fake.callback)
    fake.access_lifetime = None
    time.sleep(2.5)
    assert bblogin("token", "--profile", "dc", "--access-token", "--no-login").returncode == 0
    assert json.loads(bblogin("status", "--json").stdout)["accounts"][0]["state"] == "valid"  # judged by the access token it serves: DC has no ID token
    assert "  valid" in bblogin("accounts").stdout
    refresh = fake.token_requests[-1]
    assert refresh["grant_type"] == "refresh_token" and (refresh["client_secret"], refresh["redirect_uri"]) == (fake.client_secret, fake.callback)
    _configedit.save_git_host(_config.GitHost(url=fake.base, profile="dc"))
    answer = git_get("http", fake.base.split("//")[1].split("/")[0], "bitbucket/scm/proj/repo.git")
    assert answer["username"] == DC_ALICE["name"] and answer["password"] in fake.access_tokens


@pytest.mark.parametrize("profile_now", ["gone", "no-redirect_uri"])
def test_data_center_refresh_without_the_registered_callback_or_secret_sends_nothing(keyring_secret_service, bitbucket_dc, profile_now: str) -> None:
    """DC refuses a refresh without the client secret or the registered redirect_uri, the latter
    with a bare invalid_grant: bblogin must not send one (nor mark the login dead) when the
    account's profile is gone (the fallback of profile_for has neither) or names no callback."""
    from bblogin._session import profile_for, refresh_account

    fake = bitbucket_dc
    _, account = login_in_process(fake, dc_profile(fake))
    if profile_now == "gone":
        profile = profile_for(account, _config.Config(path="nowhere.toml"))
    else:
        _configedit.save_profile(_record.replace(_config.load().profile("dc"), redirect_uri=None))
        profile = profile_for(account, _config.load())
    before = len(fake.token_requests)
    with pytest.raises(ConfigError) as info:
        refresh_account(profile, account)  # what a profile that is gone can still do: the TUI's refresh
    assert "dc" in info.value.message and "redirect_uri" in (info.value.message + (info.value.hint or ""))
    assert len(fake.token_requests) == before  # the refresh token was not sent
    assert not _index.load().accounts[account.id].refresh_dead
    assert get_credential(dc_profile(fake), kind="access_token", force_refresh=True).token in fake.access_tokens  # the profile restored: it works


def test_data_center_fake_refuses_what_data_center_refuses(bitbucket_dc) -> None:
    fake = bitbucket_dc
    token_url = f"{fake.base}/rest/oauth2/latest/token"
    fake.refresh_tokens["rt"] = "REPO_READ"
    form = {"grant_type": "refresh_token", "refresh_token": "rt", "redirect_uri": fake.callback}
    basic_only = httpx.post(token_url, data=form, auth=(fake.client_id, fake.client_secret))
    assert basic_only.status_code == 401 and basic_only.json()["error"] == "invalid_client"
    wrong_redirect = httpx.post(token_url, data={**form, "client_id": fake.client_id, "client_secret": fake.client_secret, "redirect_uri": "http://127.0.0.1:1/x"})
    assert wrong_redirect.status_code == 400 and wrong_redirect.json()["error"] == "invalid_grant"
    no_redirect = httpx.post(token_url, data={"grant_type": "refresh_token", "refresh_token": "rt", "client_id": fake.client_id, "client_secret": fake.client_secret})
    assert no_redirect.status_code == 400 and no_redirect.json()["error"] == "invalid_grant"
    fake.access_tokens.add("at")
    users = f"{fake.base}/rest/api/latest/users/"
    assert httpx.get(users + DC_ALICE["slug"], headers={"Authorization": "Bearer at"}).status_code == 200
    assert httpx.get(users + urllib.parse.quote(DC_ALICE["name"], safe=""), headers={"Authorization": "Bearer at"}).status_code != 200  # the slug, not the name


def test_data_center_user_lookup_uses_the_filter_and_matches_the_name(bitbucket_dc) -> None:
    from bblogin._providers._bitbucket import BitbucketDataCenter
    from bblogin._tokens import TokenSet

    fake = bitbucket_dc
    fake.access_tokens.add("at")
    identity = BitbucketDataCenter(dc_profile(fake)).identity(TokenSet(access_token="at"))
    assert (identity.sub, identity.username, identity.name) == ("101", "alice.smith@example.com", "Alice Smith")  # not the decoys


def test_data_center_user_name_from_whoami_body_when_a_proxy_strips_x_ausername(bitbucket_dc) -> None:
    from bblogin._providers._bitbucket import BitbucketDataCenter
    from bblogin._tokens import TokenSet

    fake = bitbucket_dc
    fake.strip_user_headers = True
    fake.access_tokens.add("at")
    identity = BitbucketDataCenter(dc_profile(fake)).identity(TokenSet(access_token="at"))
    assert (identity.sub, identity.username) == ("101", DC_ALICE["name"])
    with pytest.raises(IdPError, match="who is logged in"):  # an expired token: 200, empty body, no header
        BitbucketDataCenter(dc_profile(fake)).identity(TokenSet(access_token="expired"))


class Typed:
    """What the person types at the paste prompt (``_interactive.typed_lines``): ``line()``."""

    def __init__(self, line) -> None:  # type: ignore[no-untyped-def]
        self.readline = line

    def __enter__(self) -> Typed:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def test_data_center_paste_warns_of_the_ten_second_code_before_the_prompt(bitbucket_dc, monkeypatch, capsys) -> None:
    fake = bitbucket_dc
    profile = dc_profile(fake)
    urls: list[str] = []
    order: list[str] = []

    def paste() -> str:
        order.append(capsys.readouterr().err)
        return browse(fake, urls[0])

    monkeypatch.setattr("bblogin._interactive.typed_lines", lambda: Typed(paste))
    tokens, _ = interactive_login(profile, LoginOptions(flow="auto", open_browser=False, on_url=urls.append))
    assert tokens.access_token in fake.access_tokens
    before_prompt = order[0]
    assert "10 seconds" in before_prompt and before_prompt.index("10 seconds") < before_prompt.index("Open this URL")


def test_data_center_code_pasted_too_late_is_refused(bitbucket_dc, monkeypatch) -> None:
    fake = bitbucket_dc
    fake.code_lifetime = 0.3
    urls: list[str] = []

    def slow_paste() -> str:
        location = browse(fake, urls[0])
        time.sleep(0.6)
        return location

    monkeypatch.setattr("bblogin._interactive.typed_lines", lambda: Typed(slow_paste))
    with pytest.raises(OAuthError) as info:
        interactive_login(dc_profile(fake), LoginOptions(flow="auto", open_browser=False, on_url=urls.append))
    assert info.value.error == "invalid_grant"


# -- the registered callback URL (#15.6) -------------------------------------------------------
def test_config_refuses_a_listen_port_that_is_not_the_registered_callbacks(tmp_path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[profiles.cloud]\nprovider = "bitbucket-cloud"\nclient_id = "k"\nclient_secret = "s"\nredirect_uri = "http://127.0.0.1:8400/callback"\nlisten_port = 8401\n')
    with pytest.raises(ConfigError) as info:
        _config.load(str(path))
    assert "listen_port 8401" in info.value.message and "http://127.0.0.1:8400/callback" in info.value.message and ":6" in info.value.message
    path.write_text('[profiles.dc]\nprovider = "bitbucket-dc"\nissuer = "https://git.example.com"\nclient_id = "k"\nredirect_uri = "https://app.example.com/cb"\n')
    with pytest.raises(ConfigError, match="redirect_uri"):
        _config.load(str(path))


def test_login_needs_the_registered_callback(bitbucket_dc) -> None:
    fake = bitbucket_dc
    profile = _record.replace(dc_profile(fake), redirect_uri=None)
    with pytest.raises(UsageError, match="callback URL registered") as info:
        interactive_login(profile, LoginOptions(flow="loopback", open_browser=False))
    assert "redirect_uri" in (info.value.hint or "")
    with pytest.raises(UsageError, match="--listen"):
        interactive_login(dc_profile(fake), LoginOptions(flow="loopback", open_browser=False, listen_port=free_port()))


def test_pasted_redirect() -> None:
    redirect = "http://127.0.0.1:8400/callback"
    assert parse_pasted_redirect(f" {redirect}?code=abc&state=s1 \n", "s1", redirect) == "abc"
    for pasted in (f"{redirect}?code=abc&state=other", "http://evil.example/callback?code=abc&state=s1", f"{redirect}?state=s1", f"{redirect}?error=access_denied&state=s1", "garbage"):
        with pytest.raises(LoginFailed) as info:
            parse_pasted_redirect(pasted, "s1", redirect)
        assert "abc" not in str(info.value)


def test_a_fixed_listen_port_is_the_bitbucket_callback_but_only_a_preference_for_oidc() -> None:
    bitbucket = _config.Profile(name="dc", issuer="https://git.example.com", client_id="k", provider="bitbucket-dc", listen_port=8400)
    assert _config.registered_redirect(bitbucket) == (8400, "http://127.0.0.1:8400/callback")
    oidc = _config.Profile(name="dev", issuer="https://dex.example.com", client_id="bblogin", listen_port=8400)
    assert _config.registered_redirect(oidc) is None  # --listen may still pick another port for dex
    registered = _record.replace(oidc, redirect_uri="http://localhost:8500/cb")
    assert _config.registered_redirect(registered) == (8500, "http://localhost:8500/cb")


def test_logout_of_a_cloud_account_whose_profile_is_gone(keyring_secret_service, bitbucket_cloud) -> None:
    """Bitbucket revokes nothing, so logging out needs no client secret: an account whose profile
    was removed from config.toml (profile_for's fallback has no secret) is still removed."""
    from bblogin._session import logout, profile_for

    fake = bitbucket_cloud
    _, account = login_in_process(fake, cloud_profile(fake))
    assert logout(profile_for(account, _config.Config(path="nowhere.toml")), account) == (False, [])  # not revoked; no member left
    assert account.id not in _index.load().accounts
    assert SecretStore(account.storage).get(account.id, "refresh_token") is None


def test_logout_during_a_refresh_stays_logged_out(keyring_secret_service, bitbucket_cloud, monkeypatch) -> None:
    """A logout that lands while a refresh is between the token answer and storing the tokens (a
    git helper refreshing while the person runs `bblogin logout`) waits for it, then removes
    everything: neither the rotated refresh token nor the account comes back."""
    from bblogin._providers._bitbucket import BitbucketCloud
    from bblogin._session import logout

    fake = bitbucket_cloud
    _, account = login_in_process(fake, cloud_profile(fake))
    profile = _config.load().profile("cloud")
    in_refresh, release = threading.Event(), threading.Event()
    real_identity = BitbucketCloud.identity

    def slow_identity(self: BitbucketCloud, tokens: Any) -> Any:
        in_refresh.set()
        release.wait(10)
        return real_identity(self, tokens)

    monkeypatch.setattr(BitbucketCloud, "identity", slow_identity)
    refresher = threading.Thread(target=lambda: get_credential(profile, kind="access_token", force_refresh=True))
    refresher.start()
    assert in_refresh.wait(10)
    leaver = threading.Thread(target=lambda: logout(profile, _index.load().accounts[account.id]))
    leaver.start()
    time.sleep(0.5)
    release.set()
    refresher.join(20)
    leaver.join(20)
    assert account.id not in _index.load().accounts
    assert all(SecretStore(account.storage).get(account.id, kind) is None for kind in ("refresh_token", "access_token"))


def test_a_hand_written_kubeconfig_entry_never_gets_a_bitbucket_token(keyring_secret_service, bitbucket_cloud) -> None:
    """setup kubectl refuses a Bitbucket profile; an entry written by hand (`bblogin kubectl --profile
    cloud --use-access-token`) gets no token either, from the full path or the launcher's hot path:
    the access token is a Bitbucket credential, and a Kubernetes API server is not Bitbucket."""
    tokens, _ = login_in_process(bitbucket_cloud, cloud_profile(bitbucket_cloud))
    env = {**os.environ, "KUBERNETES_EXEC_INFO": '{"apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}'}
    for command in ([sys.executable, "-m", "bblogin", "kubectl", "--profile", "cloud", "--use-access-token"], launcher_command("kubectl", "--profile", "cloud", "--use-access-token"), launcher_command("kubectl", "--profile", "cloud")):
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)
        assert done.returncode == 3 and done.stdout == "" and "never to a Kubernetes API server" in done.stderr, done.stderr
        assert tokens.access_token not in done.stderr
