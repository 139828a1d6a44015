"""bblogin as git's credential helper, with the real git binary against a smart-HTTP server."""

from __future__ import annotations

import os
import pathlib
import shlex
import subprocess
import sys

import jwt
import pytest

from bblogin import _gitcred
from tests.test_session import bblogin, login, make_expiring, set_margin

HELPER = str(pathlib.Path(sys.executable).parent / "git-credential-bblogin")


@pytest.fixture
def git_env(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """A private HOME and global git config; git never prompts a person."""
    home = tmp_path / "githome"
    home.mkdir()
    gitconfig = home / ".gitconfig"
    gitconfig.write_text("[user]\n\tname = Test\n\temail = test@example.com\n[init]\n\tdefaultBranch = main\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "0")
    monkeypatch.setenv("PATH", f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return gitconfig


def git(*args: str, cwd: pathlib.Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], capture_output=True, text=True, timeout=60, cwd=cwd, env=os.environ.copy(), stdin=subprocess.DEVNULL)


def dex_token_validator(idp, rejected: set[str]):  # type: ignore[no-untyped-def]
    """What a dex-backed git server checks: the access token's signature (the IdP's JWKS), issuer,
    audience and expiry, and that the user name sent is the token's user."""
    keys = jwt.PyJWKClient(f"{idp.issuer}/keys")

    def valid(user: str, token: str) -> bool:
        if token in rejected:
            return False
        try:
            claims = jwt.decode(token, keys.get_signing_key_from_jwt(token).key, algorithms=["RS256"], audience="bblogin", issuer=idp.issuer)
        except jwt.PyJWTError:
            return False
        return user == (claims.get("preferred_username") or claims.get("name"))

    return valid


@pytest.fixture
def wired(keyring_secret_service, devidp_factory, git_server, git_env):  # type: ignore[no-untyped-def]
    idp = devidp_factory(id_token_ttl=3600)
    login(idp)
    rejected: set[str] = set()
    server = git_server(dex_token_validator(idp, rejected))
    done = bblogin("setup", "git", "--host", server.url, "--profile", "dev")
    assert done.returncode == 0, done.stderr
    return idp, server, rejected


def test_clone_and_push_with_dex_tokens(wired, tmp_path: pathlib.Path, git_env: pathlib.Path) -> None:
    idp, server, _ = wired
    assert "_launcher.py git-credential" in git_env.read_text()
    clone = git("clone", "-q", f"{server.url}/repo.git", str(tmp_path / "clone"))
    assert clone.returncode == 0, clone.stderr
    work = tmp_path / "clone"
    (work / "new.txt").write_text("pushed through bblogin\n")
    assert git("add", "new.txt", cwd=work).returncode == 0
    assert git("commit", "-q", "-m", "change", cwd=work).returncode == 0
    push = git("push", "-q", "origin", "main", cwd=work)
    assert push.returncode == 0, push.stderr
    assert git("fetch", "-q", cwd=work).returncode == 0
    assert server.attempts and all(accepted and user == "alice" for user, _t, accepted in server.attempts)


def test_401_erase_then_refresh_on_the_next_call(wired, tmp_path: pathlib.Path) -> None:
    idp, server, rejected = wired
    set_margin("dev", 0)
    current = bblogin("token", "--profile", "dev", "--access-token", "--no-login").stdout.strip()
    rejected.add(current)  # the server revokes the token git is about to send
    first = git("ls-remote", f"{server.url}/repo.git")
    assert first.returncode != 0  # git sent our token, got 401, told us to erase it
    second = git("ls-remote", f"{server.url}/repo.git")
    assert second.returncode == 0, second.stderr
    assert idp.count("/token", "refresh_token") == 1
    assert bblogin("token", "--profile", "dev", "--access-token", "--no-login").stdout.strip() != current


def test_unconfigured_host_gets_nothing(wired, git_server) -> None:
    idp, _server, _ = wired
    other = git_server(lambda user, token: True)
    done = git("ls-remote", f"{other.url}/repo.git")
    assert done.returncode != 0
    assert other.attempts == []  # not one token reached a host the user did not name


def test_dead_login_gives_no_answer_and_a_hint(wired) -> None:
    idp, server, _ = wired
    make_expiring("dev")  # every cached token counts as expiring
    idp.revoke_refresh_tokens()
    done = subprocess.run([HELPER, "get"], input=f"protocol=http\nhost={server.url.split('//')[1]}\n\n", capture_output=True, text=True, timeout=60, env=os.environ.copy())
    assert done.returncode == 4 and done.stdout == ""  # no answer; the code says why (git reads only the answer)
    assert "bblogin login --profile dev" in done.stderr


def test_fast_path_answers_git_get_from_the_cache(wired) -> None:
    idp, server, _ = wired
    request = f"protocol=http\nhost={server.url.split('//')[1]}\n\n"
    done = subprocess.run([HELPER, "get"], input=request, capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "bblogin._hot._answer" in imported and "bblogin._session" not in imported, "the full path answered, not the fast path"
    fields = dict(line.split("=", 1) for line in done.stdout.splitlines())
    assert fields["username"] == "alice" and int(fields["password_expiry_utc"]) > 0
    assert jwt.decode(fields["password"], options={"verify_signature": False})["aud"] == "bblogin"
    capability = subprocess.run([HELPER, "capability"], capture_output=True, text=True, timeout=30)
    assert capability.stdout == "version 0\ncapability authtype\n"


HOSTS = [
    {"url": "https://bitbucket.org", "profile": "cloud"},
    {"url": "https://git.example.com:8443/team", "profile": "team"},
    {"url": "http://127.0.0.1:7990", "profile": "local"},
]


@pytest.mark.parametrize(
    ("request_text", "expected"),
    [
        ("protocol=https\nhost=bitbucket.org\n", "cloud"),
        ("protocol=https\nhost=BITBUCKET.ORG\n", "cloud"),
        ("protocol=https\nhost=bitbucket.org:443\n", "cloud"),
        ("protocol=https\nhost=bitbucket.org\npath=team/repo.git\n", "cloud"),
        ("protocol=https\nhost=git.example.com:8443\npath=team/repo.git\n", "team"),
        ("protocol=https\nhost=git.example.com:8443\npath=team\n", "team"),
        ("protocol=http\nhost=127.0.0.1:7990\n", "local"),
        ("protocol=http\nhost=bitbucket.org\n", None),
        ("protocol=https\nhost=bitbucket.org.evil.com\n", None),
        ("protocol=https\nhost=evil.com\npath=bitbucket.org\n", None),
        ("protocol=https\nhost=evilbitbucket.org\n", None),
        ("protocol=https\nhost=bitbucket.org.\n", None),
        ("protocol=https\nhost=bitbucket.org:8443\n", None),
        ("protocol=https\nhost=user@bitbucket.org\n", None),
        ("protocol=https\nhost=bitbucket.org@evil.com\n", None),
        ("protocol=https\nhost=bіtbucket.org\n", None),  # Cyrillic і
        ("protocol=https\nhost=xn--btbucket-k2g.org\n", None),
        ("protocol=https\nhost=git.example.com:8443\npath=teamX/repo.git\n", None),
        ("protocol=https\nhost=git.example.com:8443\n", None),
        ("protocol=https\nhost=git.example.com\npath=team/repo.git\n", None),
        ("protocol=http\nhost=127.0.0.1:7991\n", None),
        ("protocol=https\nhost=127.0.0.1:7990\n", None),
        ("protocol=ssh\nhost=bitbucket.org\n", None),
        ("protocol=https\nhost=\n", None),
        ("host=bitbucket.org\n", None),
        ("protocol=https\nhost=bitbucket.org/x\n", None),
        ("protocol=https\nhost=bitbucket.org:0\n", None),
        ("protocol=https\nhost=bitbucket.org:99999\n", None),
        ("protocol=https\nhost=[::1]:443\n", None),
        ("protocol=https\nhost=bitbucket..org\n", None),
        ("protocol=https\nhost=.bitbucket.org\n", None),
        ("protocol=https\nhost=-bitbucket.org\n", None),
        ("protocol=https\nhost=bitbucket.org:443:443\n", None),
        ("protocol=https\nhost=bitbucket.org:+443\n", None),
        ("protocol=https\nhost=bitbucket.org:٤٤٣\n", None),  # Arabic-Indic digits
        ("protocol=https\nhost=bitbucket.org%2eevil.com\n", None),
        ("protocol=https\nhost=bitbucket.org\thttps://evil\n", None),
        ("protocol=https\nhost=bitbucket.org \n", None),
        ("protocol=https\nhost= bitbucket.org\n", None),
        ("protocol=https\nhost=api.bitbucket.org\n", None),
        ("protocol=https\nhost=www.bitbucket.org\n", None),
        ("protocol=https\nhost=bitbucket.com\n", None),
        ("protocol=https\nhost=bitbucket.org\nhost=evil.com\n", None),  # the last host wins, as in git
        ("protocol=https\nhost=evil.com\nhost=bitbucket.org\n", "cloud"),
        ("protocol=HTTPS\nhost=bitbucket.org\n", "cloud"),
        ("protocol=https\nhost=git.example.com:8443\npath=/team/repo.git\n", "team"),
        ("protocol=https\nhost=git.example.com:8443\npath=team/\n", "team"),
        ("protocol=https\nhost=git.example.com:8443\npath=tea\n", None),
        ("protocol=https\nhost=git.example.com:8443\npath=../team/repo.git\n", None),
        ("protocol=https\nhost=GIT.EXAMPLE.COM:8443\npath=team/x\n", "team"),
        ("protocol=http\nhost=localhost:7990\n", None),
        ("protocol=http\nhost=127.0.0.1\n", None),
        ("protocol=http\nhost=127.0.0.2:7990\n", None),
        ("protocol=file\nhost=bitbucket.org\n", None),
    ],
)
def test_host_matching(request_text: str, expected: str | None) -> None:
    fields = _gitcred.parse_request(request_text.encode())
    assert fields is not None
    match = _gitcred.match_host(fields, HOSTS)
    assert (match["profile"] if match else None) == expected


@pytest.mark.parametrize(
    "data",
    [b"protocol=https\x00\nhost=bitbucket.org\n", b"\xff\xfe", b"x" * (_gitcred.MAX_REQUEST_BYTES + 1), b"noequals\n", b"=value\n", b"protocol=https\rhost=x\n"],
)
def test_garbage_requests_get_no_answer(data: bytes) -> None:
    assert _gitcred.parse_request(data) is None


def test_crlf_and_repeated_keys() -> None:
    fields = _gitcred.parse_request(b"protocol=https\r\nhost=bitbucket.org\r\ncapability[]=authtype\r\ncapability[]=state\r\n\r\nignored=after-blank\n")
    assert fields == {"protocol": ["https"], "host": ["bitbucket.org"], "capability[]": ["authtype", "state"]}


def test_answers() -> None:
    account = {"provider": "bitbucket-cloud", "username": "alice"}
    assert _gitcred.answer_fields({}, {}, account, "tok", 100, {})[:2] == [("username", "x-token-auth"), ("password", "tok")]
    bearer = _gitcred.answer_fields({"authtype": "bearer"}, {}, account, "tok", 100, {"capability[]": ["authtype"]})
    assert ("authtype", "Bearer") in bearer and ("credential", "tok") in bearer
    assert _gitcred.answer_fields({"authtype": "bearer"}, {}, account, "tok", 100, {})[0] == ("username", "x-token-auth")
    with pytest.raises(ValueError):
        _gitcred.format_response([("password", "a\nb")])


def test_erase_ignores_a_credential_that_is_not_ours(wired) -> None:
    idp, server, _ = wired
    host = server.url.split("//")[1]
    erase = [sys.executable, "-m", "bblogin", "git-credential", "erase"]
    before = bblogin("token", "--profile", "dev", "--access-token", "--no-login").stdout.strip()
    subprocess.run(erase, input=f"protocol=http\nhost={host}\nusername=alice\npassword=someone-elses\n\n", text=True, timeout=60, env=os.environ.copy(), check=True)
    assert bblogin("token", "--profile", "dev", "--access-token", "--no-login").stdout.strip() == before
    assert idp.count("/token", "refresh_token") == 0


def test_the_helper_answers_store_in_the_shell_and_starts_bblogin_for_the_rest() -> None:
    """git runs the helper for `get` and, after every accepted request, `store`; bblogin keeps
    nothing from a `store`, so the shell function drains it without starting Python."""
    from bblogin._commands.setup_git import helper_value

    helper = helper_value()
    assert helper.startswith("!") and shlex.quote(sys.executable) in helper
    script = helper[1:].replace(shlex.quote(sys.executable), "false")  # a Python that always fails
    request = "protocol=https\nhost=bitbucket.org\nusername=u\npassword=p\n" * 2000  # more than a pipe holds
    store = subprocess.run(["sh", "-c", f"{script} store"], input=request, capture_output=True, text=True, timeout=30)
    assert (store.returncode, store.stdout, store.stderr) == (0, "", "")
    for operation in ("get", "erase", "capability"):
        assert subprocess.run(["sh", "-c", f"{script} {operation}"], input="", capture_output=True, timeout=30).returncode != 0, operation
