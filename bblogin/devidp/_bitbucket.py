"""A double of the part of Bitbucket Cloud that dex's bitbucket-cloud connector talks to: the
OAuth consent page (``/bitbucket/site/oauth2/authorize``, where a person picks a fake user), the
code exchange, and the REST view of the account (uuid, username, primary confirmed email,
workspaces). Tests change accounts or revoke dex's access between requests."""

from __future__ import annotations

import secrets

from bblogin import _record
from bblogin.devidp import _pages
from bblogin.devidp._settings import Settings
from bblogin.devidp._users import USERS, BitbucketUser
from bblogin.devidp._web import Reply, Request, html, redirect, with_params

AUTHORIZE_PATH = "/bitbucket/site/oauth2/authorize"
CONSUMER_KEY = "dex-dev-consumer"  # the OAuth consumer dex is registered as


class FakeBitbucket:
    def __init__(self, base_url: str, callback_url: str, settings: Settings) -> None:
        self.authorize_url = base_url + AUTHORIZE_PATH
        self.callback_url = callback_url  # the consumer's registered callback: dex's /callback
        self.users: dict[str, BitbucketUser] = dict(USERS)
        self._settings = settings
        self._codes: dict[str, str] = {}  # authorization code -> username
        self._grants: dict[str, str] = {}  # access token held by dex -> username

    # -- test controls -----------------------------------------------------------------------
    def update_user(self, username: str, **changes: object) -> None:
        """Change an account (email, workspaces…); dex sees it at the next login or refresh."""
        self.users[username] = _record.replace(self.users[username], **changes)  # type: ignore[arg-type]

    def revoke_access(self, username: str) -> None:
        """The person revoked dex's access in Bitbucket: dex's next refresh for them fails."""
        self._grants = {token: user for token, user in self._grants.items() if user != username}

    # -- the web page ------------------------------------------------------------------------
    def authorize(self, request: Request) -> Reply:
        if request.arg("client_id") != CONSUMER_KEY or request.arg("response_type") != "code":
            return html(400, _pages.page("Invalid OAuth request", "<p>Unknown consumer or response type.</p>", site="fake Bitbucket Cloud"))
        state = request.arg("state")
        if self._settings.auto_approve:
            return self._grant(self._settings.default_user, state)
        if request.method != "POST":
            return html(200, _pages.bitbucket_login([(u.username, u.display_name, self._describe(u)) for u in self.users.values()]))
        if request.post("deny") or request.post("user") not in self.users:
            denied = [("error", "access_denied"), ("error_description", "The user denied access"), ("state", state)]
            return redirect(with_params(self.callback_url, denied, replace=True))
        return self._grant(request.post("user"), state)

    @staticmethod
    def _describe(user: BitbucketUser) -> str:
        email = user.email or "no confirmed email"
        return f"{user.username}; {email}; workspaces: {', '.join(user.workspaces) or 'none'}"

    def _grant(self, username: str, state: str) -> Reply:
        code = secrets.token_urlsafe(18)
        self._codes[code] = username
        return redirect(with_params(self.callback_url, [("code", code), ("state", state)], replace=True))

    # -- what dex's connector calls ----------------------------------------------------------
    def exchange(self, code: str) -> str | None:
        """POST /site/oauth2/access_token: an access token for dex, or None (bad code)."""
        username = self._codes.pop(code, None)
        if username is None:
            return None
        token = secrets.token_urlsafe(24)
        self._grants[token] = username
        return token

    def account(self, access_token: str) -> BitbucketUser | None:
        """GET /2.0/user (+ /user/emails, workspaces) with dex's token; None: 401."""
        username = self._grants.get(access_token)
        return self.users.get(username) if username is not None else None
