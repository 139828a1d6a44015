"""OIDCProvider end to end: against the dex double (loopback and device logins, refresh with
rotation, dead grants, key rotation, outages) and against a scripted IdP for the edge cases."""

from __future__ import annotations

import threading
import time
import urllib.parse
from typing import Any

import httpx
import pytest

from bblogin._config import Profile
from bblogin._errors import LoginFailed, RefreshTokenDead, TokenVerificationError
from bblogin._oidc._loopback import LoopbackListener
from bblogin._oidc._pkce import make_pkce
from bblogin._oidc._verify import half_hash
from bblogin._providers import _oidc as provider_module
from bblogin._providers._oidc import OIDCProvider
from bblogin._tokens import TokenSet
from bblogin.devidp import USERS, DevIdP, dex_subject
from tests.fixtures.oidc import CLIENT_ID, MiniIdP


@pytest.fixture(autouse=True)
def fresh_process_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test is a new process as far as the provider's in-memory caches go."""
    monkeypatch.setattr(provider_module, "_metadata", {})
    monkeypatch.setattr(provider_module, "_jwks", {})


def profile_for(issuer: str, **changes: Any) -> Profile:
    values: dict[str, Any] = {"name": "dev", "issuer": issuer, "client_id": CLIENT_ID, "connector_id": "bitbucket-cloud"}
    values.update(changes)
    return Profile(**values)


def browser_login(provider: OIDCProvider, **auth_changes: str) -> tuple[TokenSet, str]:
    """A loopback login where httpx plays the browser (the dev IdP approves at once)."""
    verifier, challenge = make_pkce()
    state, nonce = "state-" + str(time.monotonic_ns()), "nonce-" + str(time.monotonic_ns())
    with LoopbackListener() as listener:
        url = provider.authorization_url(redirect_uri=listener.redirect_uri, state=state, nonce=nonce, code_challenge=challenge)
        pages: list[httpx.Response] = []
        browser = threading.Thread(target=lambda: pages.append(httpx.get(url, follow_redirects=True, timeout=10)), daemon=True)
        browser.start()
        code = listener.wait(state, 10)
        browser.join(10)
    assert pages[0].status_code == 200 and "You are signed in" in pages[0].text
    tokens = provider.exchange_code(code=code, redirect_uri=listener.redirect_uri, code_verifier=verifier, nonce=auth_changes.get("nonce", nonce))
    return tokens, url


# -- against the dex double -------------------------------------------------------------------


def test_loopback_login_end_to_end(devidp: DevIdP) -> None:
    provider = OIDCProvider(profile_for(devidp.issuer, extra_auth_params={"prompt": "login", "state": "evil", "redirect_uri": "https://evil.example/", "code_challenge_method": "plain"}))
    tokens, url = browser_login(provider)
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    assert url.startswith(devidp.issuer + "/auth?")
    assert params["connector_id"] == "bitbucket-cloud" and params["prompt"] == "login"
    assert params["code_challenge_method"] == "S256" and params["response_type"] == "code"
    assert params["state"].startswith("state-") and params["redirect_uri"].startswith("http://127.0.0.1:") and params["nonce"].startswith("nonce-")
    assert params["scope"] == "openid email profile groups offline_access"
    assert tokens.refresh_token and tokens.id_expires_at and tokens.access_expires_at
    assert tokens.id_expires_at >= time.time() + 86400 - 60
    identity = provider.identity(tokens)
    alice = USERS["alice"]
    assert identity.sub == dex_subject(alice.uuid, "bitbucket-cloud")
    assert (identity.email, identity.username, identity.groups) == (alice.email, "alice", ("acme", "platform-team"))
    assert devidp.count("/auth") == 1 and devidp.count("/.well-known/openid-configuration") == 1


def test_a_token_for_another_login_is_refused_by_nonce(devidp: DevIdP) -> None:
    provider = OIDCProvider(profile_for(devidp.issuer))
    with pytest.raises(TokenVerificationError, match="nonce does not match"):
        browser_login(provider, nonce="a-different-login")


def test_device_login_end_to_end(devidp_factory) -> None:
    idp = devidp_factory(device_interval=1)
    provider = OIDCProvider(profile_for(idp.issuer))
    assert provider.supports_device_flow
    prompts: list[Any] = []
    tokens = provider.device_login(open_browser=False, on_prompt=prompts.append, timeout=30)
    assert prompts[0].verification_uri == idp.issuer + "/device" and len(prompts[0].user_code) == 9
    assert provider.identity(tokens).email == "alice@example.com"
    assert idp.count("/device/code") == 1


def test_refresh_follows_rotation_and_a_reused_token_is_dead(devidp: DevIdP) -> None:
    provider = OIDCProvider(profile_for(devidp.issuer))
    first, _ = browser_login(provider)
    assert first.refresh_token
    second = OIDCProvider(profile_for(devidp.issuer)).refresh(first.refresh_token)  # another process
    assert second.refresh_token and second.refresh_token != first.refresh_token
    assert provider.identity(second).sub == provider.identity(first).sub and second.id_expires_at
    with pytest.raises(RefreshTokenDead, match="already been claimed") as info:
        provider.refresh(first.refresh_token)
    assert info.value.hint == "log in again: `bblogin login --profile dev`" and info.value.exit_code == 4


def test_an_expired_refresh_token_is_dead(devidp_factory) -> None:
    idp = devidp_factory(refresh_token_ttl=1)
    provider = OIDCProvider(profile_for(idp.issuer))
    tokens, _ = browser_login(provider)
    time.sleep(1.2)
    with pytest.raises(RefreshTokenDead, match="Refresh token expired"):
        provider.refresh(tokens.refresh_token or "")


def test_key_rotation_between_login_and_refresh(devidp: DevIdP) -> None:
    provider = OIDCProvider(profile_for(devidp.issuer))
    tokens, _ = browser_login(provider)
    devidp.rotate_keys()
    refreshed = provider.refresh(tokens.refresh_token or "")
    assert provider.identity(refreshed).email == "alice@example.com"
    assert devidp.count("/keys") == 2  # the cached set, then one refetch for the new kid


def test_a_transient_503_on_refresh_is_retried(devidp: DevIdP) -> None:
    provider = OIDCProvider(profile_for(devidp.issuer))
    tokens, _ = browser_login(provider)
    devidp.fail_next("/token", 503, "<html>maintenance</html>", content_type="text/html")
    assert provider.refresh(tokens.refresh_token or "").refresh_token
    assert devidp.count("/token", "refresh_token") == 2


def test_dex_has_no_revocation(devidp: DevIdP) -> None:
    assert OIDCProvider(profile_for(devidp.issuer)).revoke(TokenSet(access_token="a", refresh_token="r")) is False


# -- against a scripted IdP -------------------------------------------------------------------


def serve_tokens(idp: MiniIdP, id_token: str | None, access_token: str = "at-1") -> None:
    body = {"access_token": access_token, "token_type": "bearer", "expires_in": 300, "refresh_token": "rt-2", **({"id_token": id_token} if id_token else {})}
    idp.server.expect_request("/idp/token", method="POST").respond_with_json(body)


def test_identity_drops_an_unverified_email(mini_idp: MiniIdP) -> None:
    mini_idp.serve_discovery()
    mini_idp.serve_jwks("rsa")
    serve_tokens(mini_idp, mini_idp.id_token(nonce=None, email="x@example.com", email_verified=False, name="X", groups=["g", 5]))
    provider = OIDCProvider(profile_for(mini_idp.issuer))
    identity = provider.identity(provider.refresh("rt-1"))
    assert (identity.sub, identity.email, identity.name, identity.groups) == ("user-1", None, "X", ("g",))


def test_at_hash_and_c_hash_are_checked_on_code_exchange(mini_idp: MiniIdP) -> None:
    mini_idp.serve_discovery()
    mini_idp.serve_jwks("rsa")
    serve_tokens(mini_idp, mini_idp.id_token(at_hash=half_hash("at-1", "RS256"), c_hash=half_hash("another-code", "RS256")))
    provider = OIDCProvider(profile_for(mini_idp.issuer))
    with pytest.raises(TokenVerificationError, match="c_hash does not match"):
        provider.exchange_code(code="the-code", redirect_uri="http://127.0.0.1:1/callback", code_verifier="v" * 64, nonce="n-1")


def test_code_exchange_without_an_id_token_is_refused(mini_idp: MiniIdP) -> None:
    mini_idp.serve_discovery()
    serve_tokens(mini_idp, None)
    with pytest.raises(TokenVerificationError, match="sent no ID token"):
        OIDCProvider(profile_for(mini_idp.issuer)).exchange_code(code="c", redirect_uri="r", code_verifier="v", nonce="n")


def test_a_refresh_without_an_id_token_takes_the_identity_from_userinfo(mini_idp: MiniIdP) -> None:
    mini_idp.serve_discovery()
    serve_tokens(mini_idp, None)
    mini_idp.server.expect_request("/idp/userinfo", headers={"Authorization": "Bearer at-1"}).respond_with_json({"sub": "user-1", "email": "u@example.com"})
    provider = OIDCProvider(profile_for(mini_idp.issuer))
    tokens = provider.refresh("rt-1")
    assert tokens.id_token is None and tokens.refresh_token == "rt-2"
    assert provider.identity(tokens).email == "u@example.com"


def test_an_idp_without_s256_pkce_is_refused(mini_idp: MiniIdP) -> None:
    mini_idp.serve_discovery(mini_idp.document(code_challenge_methods_supported=["plain"]))
    with pytest.raises(LoginFailed, match="does not offer PKCE with S256"):
        OIDCProvider(profile_for(mini_idp.issuer)).authorization_url(redirect_uri="http://127.0.0.1:1/callback", state="s", nonce="n", code_challenge="c")


def test_openid_is_always_requested_and_connector_id_only_when_set(mini_idp: MiniIdP) -> None:
    mini_idp.serve_discovery(mini_idp.document(authorization_endpoint=mini_idp.url("/auth?tenant=a")))
    provider = OIDCProvider(profile_for(mini_idp.issuer, scopes=("email",), connector_id=None))
    url = provider.authorization_url(redirect_uri="http://127.0.0.1:1/callback", state="s", nonce="n", code_challenge="c")
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    assert params["scope"] == "openid email" and params["tenant"] == "a" and "connector_id" not in params
    assert provider.revoke(TokenSet(access_token="a")) is False


def test_revocation_where_the_idp_offers_it(mini_idp: MiniIdP) -> None:
    mini_idp.serve_discovery(mini_idp.document(revocation_endpoint=mini_idp.url("/revoke")))
    mini_idp.server.expect_request("/idp/revoke", method="POST").respond_with_data("")
    assert OIDCProvider(profile_for(mini_idp.issuer)).revoke(TokenSet(access_token="a", refresh_token="r")) is True
    hints = [urllib.parse.parse_qs(r.get_data(as_text=True))["token_type_hint"][0] for r, _ in mini_idp.server.log if r.path == "/idp/revoke"]
    assert hints == ["refresh_token", "access_token"]


def test_token_exchange_returns_a_verified_dex_id_token(mini_idp: MiniIdP) -> None:
    mini_idp.serve_discovery()
    mini_idp.serve_jwks("rsa")
    issued = mini_idp.id_token(nonce=None)
    mini_idp.server.expect_request("/idp/token", method="POST").respond_with_json(
        {"access_token": issued, "issued_token_type": "urn:ietf:params:oauth:token-type:id_token", "token_type": "N_A", "expires_in": 600}
    )
    provider = OIDCProvider(profile_for(mini_idp.issuer, exchange_connector_id="pipelines"))
    tokens = provider.token_exchange("pipelines-oidc-token")
    assert tokens.id_token == issued and provider.identity(tokens).sub == "user-1"
    [form] = [urllib.parse.parse_qs(r.get_data(as_text=True)) for r, _ in mini_idp.server.log if r.path == "/idp/token"]
    assert form["connector_id"] == ["pipelines"] and form["subject_token"] == ["pipelines-oidc-token"]
