"""Two accounts on one git host (issue #23 §1): the user name git was given picks the account.

Real git against the smart-HTTP server of tests/fixtures/git_http.py, which accepts a token only
with its own user's name (``dex_token_validator``); the dev IdP signs in alice and bob into one
profile, alice is the active account. ``https://bob@host/…`` (git's own way to keep two accounts
on one host) must work as bob; a user name no login matches gets no answer and a one-line note;
the answer never rewrites the user name; ``setup git --account`` and ``useHttpPath`` paths pin accounts.
"""

from __future__ import annotations

import os
import pathlib
import subprocess

import jwt
import pytest

from bblogin import _index
from bblogin._hot import _answer as _fast
from tests.test_git import HELPER, dex_token_validator, git, git_env  # noqa: F401  (git_env: a fixture)
from tests.test_session import bblogin, login


@pytest.fixture
def alice_and_bob(keyring_secret_service, devidp_factory, git_server, git_env):  # type: ignore[no-untyped-def]
    idp = devidp_factory(id_token_ttl=3600)
    login(idp)
    idp.default_user = "bob"
    login(idp)
    assert bblogin("use", "alice@example.com").returncode == 0  # alice is the profile's active account
    server = git_server(dex_token_validator(idp, set()))
    done = bblogin("setup", "git", "--host", server.url, "--profile", "dev")
    assert done.returncode == 0, done.stderr
    return idp, server


def with_user(url: str, user: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{user}@{rest}"


def helper(operation: str, request: str, *, fast: bool = True) -> subprocess.CompletedProcess[str]:
    env = os.environ.copy()
    if not fast:
        env["BBLOGIN_NO_FAST_PATH"] = "1"
    return subprocess.run([HELPER, operation], input=request, capture_output=True, text=True, timeout=60, env=env)


def fields(answer: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in answer.splitlines())


def token_user(token: str) -> str:
    claims = jwt.decode(token, options={"verify_signature": False})
    return str(claims.get("preferred_username") or claims.get("name"))  # as dex_token_validator reads it


def test_clone_as_bob_while_alice_is_active(alice_and_bob, tmp_path: pathlib.Path) -> None:
    _idp, server = alice_and_bob
    clone = git("clone", "-q", f"{with_user(server.url, 'bob')}/repo.git", str(tmp_path / "as-bob"))
    assert clone.returncode == 0, clone.stderr
    assert server.attempts and {user for user, _t, ok in server.attempts if ok} == {"bob"}, server.attempts
    fetch = git("fetch", "-q", cwd=tmp_path / "as-bob")  # the remote keeps bob@: so does every later call
    assert fetch.returncode == 0, fetch.stderr
    plain = git("clone", "-q", f"{server.url}/repo.git", str(tmp_path / "as-alice"))
    assert plain.returncode == 0, plain.stderr
    assert server.attempts[-1][0] == "alice" and server.attempts[-1][2]


@pytest.mark.parametrize("user", ["bob", "BOB@example.com", "account-id"])
def test_a_user_name_email_or_account_id_picks_the_account_and_is_never_rewritten(alice_and_bob, user: str) -> None:
    _idp, server = alice_and_bob
    if user == "account-id":
        user = next(a.identity for a in _index.load().accounts.values() if a.username == "bob")
    request = f"protocol=http\nhost={server.url.split('//')[1]}\nusername={user}\n\n"
    for fast in (True, False):
        done = helper("get", request, fast=fast)
        assert done.returncode == 0, done.stderr
        answer = fields(done.stdout)
        assert answer["username"] == user and token_user(answer["password"]) == "bob", (fast, answer)


def test_a_user_name_no_login_matches_gets_no_answer_and_a_note(alice_and_bob, tmp_path: pathlib.Path) -> None:
    _idp, server = alice_and_bob
    request = f"protocol=http\nhost={server.url.split('//')[1]}\nusername=carol\n\n"
    for fast in (True, False):
        done = helper("get", request, fast=fast)
        assert done.returncode == 4 and done.stdout == "", done.stdout  # no answer; the code says why (docs/exit-codes.md)
        note = done.stderr
        assert "no login of 'carol' serves" in note and "bblogin login --profile dev" in note
    clone = git("clone", "-q", f"{with_user(server.url, 'carol')}/repo.git", str(tmp_path / "as-carol"))
    assert clone.returncode != 0 and "no login of 'carol'" in clone.stderr
    assert [token for _user, token, _ok in server.attempts if token] == [], "a token went out for a user name no login matches"


def test_the_hot_path_answers_a_user_name_as_the_full_path_or_declines(alice_and_bob) -> None:
    _idp, server = alice_and_bob
    host = server.url.split("//")[1]
    for user, answers in (("bob", True), ("alice", True), ("carol", False)):
        request = f"protocol=http\nhost={host}\nusername={user}\n\n".encode()
        hot = _fast.git_credential_get(request)
        full = helper("get", request.decode(), fast=False)
        if answers:
            assert hot is not None and hot.decode() == full.stdout, (user, hot, full.stdout)
        else:
            assert hot is None and full.stdout == ""


def test_setup_git_account_pins_a_host_and_use_http_path_paths_pick_accounts(alice_and_bob, tmp_path: pathlib.Path) -> None:
    _idp, server = alice_and_bob
    done = bblogin("setup", "git", "--host", f"{server.url}/repo.git", "--profile", "dev", "--account", "bob@example.com")
    assert done.returncode == 0 and "bob@example.com's access token" in done.stderr, done.stderr
    from bblogin import _config

    pinned = {h.url: h.account for h in _config.load().git_hosts}
    assert pinned == {server.url: None, f"{server.url}/repo.git": "bob@example.com"}
    clone = git("clone", "-q", f"{server.url}/repo.git", str(tmp_path / "pinned"))  # git sends the path (useHttpPath): bob's prefix
    assert clone.returncode == 0, clone.stderr
    assert {user for user, _t, ok in server.attempts if ok} == {"bob"}
    host = server.url.split("//")[1]
    for fast in (True, False):
        whole_host = fields(helper("get", f"protocol=http\nhost={host}\n\n", fast=fast).stdout)
        assert token_user(whole_host["password"]) == "alice"  # the host without that path: the active account
        alice_in_bobs_path = fields(helper("get", f"protocol=http\nhost={host}\npath=repo.git\nusername=alice\n\n", fast=fast).stdout)
        assert token_user(alice_in_bobs_path["password"]) == "alice" and alice_in_bobs_path["username"] == "alice"  # the URL's user name wins over the pin
    again = bblogin("setup", "git", "--host", f"{server.url}/repo.git", "--profile", "dev")
    assert again.returncode == 0 and {h.url: h.account for h in _config.load().git_hosts}[f"{server.url}/repo.git"] == "bob@example.com"  # a rerun keeps it
    shown = bblogin("setup", "git", "--host", server.url, "--profile", "dev", "--account", "nobody", "--print")
    assert 'account = "nobody"' in shown.stdout and "no account matches 'nobody'" in shown.stderr


def test_a_user_name_of_another_profile_serving_the_host_picks_that_profile(alice_and_bob) -> None:
    """`within the host's profile — or any profile that serves that host`: bob is logged in to
    profile `team` only, whose entry serves the repository's path; alice to `dev`, the whole host."""
    idp, server = alice_and_bob
    assert bblogin("logout", "bob@example.com").returncode == 0
    login(idp, "team")  # bob, into another profile
    assert bblogin("setup", "git", "--host", f"{server.url}/repo.git", "--profile", "team").returncode == 0
    host = server.url.split("//")[1]
    for user, via_hot in (("bob", True), ("alice", False)):
        request = f"protocol=http\nhost={host}\npath=repo.git\nusername={user}\n\n"
        answer = fields(helper("get", request, fast=False).stdout)
        assert answer["username"] == user and token_user(answer["password"]) == user
        hot = _fast.git_credential_get(request.encode())
        assert (hot is not None) == via_hot  # alice is not in team, the path's own profile: the full helper finds her
        assert hot is None or fields(hot.decode()) == answer


def test_which_user_names_name_an_account() -> None:
    from bblogin import _gitcred

    assert _gitcred.is_default_user("x-token-auth", {}, "bitbucket-cloud") and not _gitcred.is_default_user("x-token-auth", {}, "oidc")
    assert _gitcred.is_default_user("ci-bot", {"username": "ci-bot"}, "oidc")
    assert _gitcred.requested_user({}) is None and _gitcred.requested_user({"username": [""]}) is None
    assert _gitcred.requested_user({"username": ["bob"]}) == "bob" and not _gitcred.is_default_user("bob", {"username": "x-token-auth"}, "bitbucket-cloud")
    assert _gitcred.user_matches("Bob@Example.com", {"email": "bob@example.com"}) and not _gitcred.user_matches("bo", {"username": "bob"})
    assert not _gitcred.user_matches("\u212aate", {"username": "kate"}), "KELVIN SIGN folds to k: a look-alike named kate"
    assert not _gitcred.user_matches("\uff4bate", {"username": "kate"}) and _gitcred.user_matches("KATE", {"username": "kate"})
    answer = _gitcred.answer_fields({"username": "x-token-auth"}, {}, {"provider": "bitbucket-cloud"}, "t", 1, {"username": ["bob"]})
    assert answer[0] == ("username", "bob")


def test_a_login_named_like_the_hosts_configured_username_is_still_picked_by_it(alice_and_bob) -> None:
    """`setup git --username bob` (Data Center: the real user name) while alice is active: git's
    `username=bob` names bob's login, and bob's token answers — hot path and full path."""
    _idp, server = alice_and_bob
    done = bblogin("setup", "git", "--host", server.url, "--profile", "dev", "--username", "bob")
    assert done.returncode == 0, done.stderr
    host = server.url.split("//")[1]
    for fast in (True, False):
        answer = fields(helper("get", f"protocol=http\nhost={host}\nusername=bob\n\n", fast=fast).stdout)
        assert answer["username"] == "bob" and token_user(answer["password"]) == "bob", f"git asked for bob and got another token (fast={fast})"
    plain = fields(helper("get", f"protocol=http\nhost={host}\n\n").stdout)
    assert plain["username"] == "bob" and token_user(plain["password"]) == "alice"  # no name from git: the active account


def test_a_pin_to_another_profiles_login_says_which_profile(alice_and_bob) -> None:
    idp, server = alice_and_bob
    assert bblogin("logout", "bob@example.com").returncode == 0
    login(idp, "team")  # bob, in profile team only
    assert bblogin("setup", "git", "--host", server.url, "--profile", "dev", "--account", "bob@example.com").returncode == 0
    host = server.url.split("//")[1]
    for fast in (True, False):
        done = helper("get", f"protocol=http\nhost={host}\n\n", fast=fast)
        assert done.returncode == 3 and done.stdout == "" and "Traceback" not in done.stderr, done.stderr
        assert "a login of profile team" in done.stderr and "--profile team --account bob@example.com" in done.stderr, done.stderr
