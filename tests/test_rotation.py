"""A rotated refresh token is kept the moment the IdP issues it, and never sent twice (#13, #15.1).

The token it replaces is spent: dex refuses it ("already claimed") and, like Okta or Auth0 with
reuse detection, that ends the grant. Here a step after the token response fails — the JWKS
fetch the refreshed ID token needs, or the ID token's verification itself — and the next refresh
must use the new refresh token. (The Bitbucket side, a fault at each REST call after the token
response, is in test_bitbucket.)
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.test_session import bblogin, login, set_margin

pytestmark = pytest.mark.usefixtures("keyring_secret_service")


@pytest.mark.parametrize("fault", ["jwks-unreachable", "id-token-refused"])
def test_refresh_answer_that_cannot_be_verified_keeps_the_new_refresh_token(devidp_factory, fault: str) -> None:
    idp = devidp_factory(refresh_reuse_interval=0, id_token_ttl=2)  # dex with reuse off: a spent token is refused
    login(idp)
    set_margin("dev", 0)
    time.sleep(2.5)  # the ID token has expired: the next call refreshes
    idp.id_token_ttl = 3600  # the refreshed ones live long enough to be served
    old_jwks = httpx.get(idp.issuer + "/keys").text
    idp.rotate_keys()  # the refreshed ID token is signed with a key bblogin has not seen
    if fault == "jwks-unreachable":
        idp.fail_next("/keys", 500, '{"error": "server_error"}', count=10)
    else:  # a JWKS without the new key: the ID token's signature cannot be verified
        idp.fail_next("/keys", 200, old_jwks, count=10)
    refused = bblogin("token", "--profile", "dev", "--no-login")
    assert refused.returncode != 0, refused.stderr
    idp.fail_next("/keys", 200, "", count=0)
    again = bblogin("token", "--refresh", "--profile", "dev", "--no-login")  # now, not after the outage's backoff window
    assert again.returncode == 0, again.stderr  # the kept refresh token works; the spent one would not
    assert idp.count("/token", "refresh_token") == 2
