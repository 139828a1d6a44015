"""The SSH fallback for providers without a device flow (Bitbucket): the person opens the URL on
any machine, signs in, and pastes back the address their browser failed to load."""

from __future__ import annotations

import hmac
import urllib.parse

from bblogin._errors import LoginFailed


def parse_pasted_redirect(pasted: str, expected_state: str, redirect_uri: str) -> str:
    """The authorization code from a pasted redirect URL, after checking it is our redirect URI
    and carries our state; LoginFailed otherwise (never echoing what was pasted)."""
    url = urllib.parse.urlsplit(pasted.strip())
    want = urllib.parse.urlsplit(redirect_uri)
    if (url.scheme, url.netloc, url.path) != (want.scheme, want.netloc, want.path):
        raise LoginFailed("the pasted address is not this login's redirect address", hint=f"paste the full address that starts with {redirect_uri}")
    params = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
    if not hmac.compare_digest(params.get("state", ""), expected_state):
        raise LoginFailed("the pasted address belongs to another login (state mismatch)", hint="start the login again and paste the newest address")
    if "error" in params:
        raise LoginFailed(f"the identity provider ended the sign-in: {params['error']}")
    if not params.get("code"):
        raise LoginFailed("the pasted address has no authorization code")
    return params["code"]
