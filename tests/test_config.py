from __future__ import annotations

import os
import pathlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bblogin import _config, _configedit, _mirrors, _paths
from bblogin._hot import _mirror as _hotcache
from bblogin._errors import ConfigError, ProfileNotFound


def write(text: str) -> str:
    path = _paths.config_file()
    pathlib.Path(path).write_text(text)
    return path


def test_missing_file_is_empty_config() -> None:
    config = _config.load()
    assert config.profiles == {} and config.git_hosts == ()
    with pytest.raises(ProfileNotFound):
        config.profile(None)


def test_profiles_defaults_and_git_hosts() -> None:
    write(
        """
default_profile = "work"
[profiles.work]
issuer = "https://dex.example.com/dex"
client_id = "bblogin"
connector_id = "bitbucket-cloud"
[profiles.cloud]
provider = "bitbucket-cloud"
client_id = "abc"
client_secret = "s3cret"
[profiles.dc]
provider = "bitbucket-dc"
issuer = "https://git.example.com/bitbucket"
client_id = "dc"
[git."https://bitbucket.org"]
profile = "cloud"
"""
    )
    config = _config.load()
    work = config.profile(None)
    assert work.name == "work" and work.connector_id == "bitbucket-cloud"
    assert work.scopes == _config.DEFAULT_OIDC_SCOPES and work.flow == "auto" and work.refresh_margin == 60
    assert config.profiles["cloud"].issuer == "https://bitbucket.org"
    assert "s3cret" not in repr(config.profiles["cloud"])
    assert config.profiles["dc"].scopes == ("REPO_READ", "REPO_WRITE")
    assert config.git_hosts[0].profile == "cloud" and config.git_hosts[0].token == "access_token"


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ('[profiles.a]\nissuer = "https://x"\nclient_id = 3\n', 3, "profiles.a.client_id: must be a string, not an integer"),
        ('[profiles.a]\nissuer = "https://x"\nclient_id = "c"\nrefresh_margin = "60"\n', 4, "profiles.a.refresh_margin: must be an integer, not a string"),
        ('[profiles.a]\nissuer = "http://evil.example"\nclient_id = "c"\n', 2, "profiles.a.issuer: must be an https://"),
        ('[profiles.a]\nissuer = "https://x"\nclient_id = "c"\nflow = "magic"\n', 4, "flow: must be one of auto, loopback, device"),
        ('[profiles.a]\nissuer = "https://x"\nclient_id = "c"\ncolour = "red"\n', 4, "colour: unknown key"),
        ('[profiles.a]\nclient_id = "c"\n', 1, "missing required key 'issuer'"),
        ('default_profile = 3\n', 1, "default_profile: must be a string"),
        ('[profiles.a]\nissuer = "https://x"\nclient_id = "c"\nlisten_port = 70000\n', 4, "must be a port number"),
    ],
)
def test_invalid_config_names_file_line_and_key(text: str, line: int, fragment: str) -> None:
    path = write(text)
    with pytest.raises(ConfigError) as info:
        _config.load()
    assert f"{path}:{line}:" in str(info.value)
    assert fragment in str(info.value)
    assert info.value.exit_code == 3


@pytest.mark.parametrize(
    ("key", "fragment"),
    [("http://h.example", "is plain http://, which is allowed only for 127.0.0.1/localhost"), ("https://bob@h.example", "has a user name (bob@)"), ("ftp://h.example", "has the scheme ftp://"), ("https://h.example/my team", "has a space")],
)
def test_a_bad_git_host_key_fails_that_host_only(key: str, fragment: str) -> None:
    path = write(f'[profiles.a]\nissuer = "https://x"\nclient_id = "c"\n[git."{key}"]\nprofile = "a"\n[git."https://ok.example"]\nprofile = "a"\n')
    config = _config.load()
    bad, ok = config.git_hosts
    assert ok.problem is None and bad.problem is not None
    assert bad.problem[0].startswith(f"{path}:4: ") and fragment in bad.problem[0] and "--remove --host" in bad.problem[1]


def test_syntax_error_names_file_line_and_column_and_shows_the_line() -> None:
    path = write('[profiles.a]\nissuer = "https://x"\nclient_id "c"\n')
    with pytest.raises(ConfigError) as info:
        _config.load()
    assert info.value.message.startswith(f"{path}:3:11: invalid TOML: Expected '='")
    assert '\n    client_id …\n              ^' in info.value.message  # the key (its value masked), a caret under column 11
    assert "line 3, column 11" in info.value.hint


@pytest.mark.parametrize(
    "line",
    [
        'client_secret = "s3cr3t-V@lue-1234',  # unterminated: Illegal character
        'client_secret = "s3cr3t-V@lue-1234" x',  # Expected newline
        'client_secret = "s3cr3t-V@lue-1234"\nclient_secret = "s3cr3t-V@lue-1234"',  # Cannot overwrite a value
        '"s3cr3t-V@lue-1234"',  # a secret pasted on a line of its own
    ],
)
def test_a_syntax_error_never_shows_a_secret(line: str) -> None:
    """The helper prints config errors on every git call, and doctor --json goes into bug reports:
    the line shown has its value masked."""
    import json
    import subprocess
    import sys

    write(f'[profiles.work]\nissuer = "https://idp.example.com"\nclient_id = "bblogin"\n{line}\n')
    helper = pathlib.Path(sys.executable).parent / "git-credential-bblogin"
    get = subprocess.run([str(helper), "get"], input="protocol=https\nhost=x.example.com\n\n", capture_output=True, text=True, timeout=60)
    doctor = subprocess.run([sys.executable, "-m", "bblogin", "doctor", "--json"], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert get.returncode == 3 and "invalid TOML" in get.stderr
    assert "invalid TOML" in json.dumps(json.loads(doctor.stdout))
    for out in (get.stdout, get.stderr, doctor.stdout, doctor.stderr):
        assert "s3cr3t" not in out


def test_git_host_keys_are_normalised_and_old_spellings_keep_working() -> None:
    write('[profiles.a]\nissuer = "https://x"\nclient_id = "c"\n[git."HTTPS://Git.Example.com:443/team/"]\nprofile = "a"\n')
    (host,) = _config.load().git_hosts
    assert host.url == "https://git.example.com/team" and host.problem is None
    for given, normal in [
        ("HTTP://LOCALHOST:47483", "http://localhost:47483"),
        ("https://h.example:8443/", "https://h.example:8443"),
        ("http://127.0.0.1:80/x/", "http://127.0.0.1/x"),
        ("https://h.example/Team", "https://h.example/Team"),  # a path keeps its case, as git's does
    ]:
        assert _config.normalize_git_url(given) == normal and _config.git_url_problem(given) is None
    for bad in ("https://git.example.com/a\n", "https://git.example.com/a b", "https://git.example.com/\x1b[31m"):
        assert "has a space or control character" in (_config.git_url_problem(bad) or "")


def test_two_spellings_of_one_host_that_disagree_serve_neither() -> None:
    path = write(
        '[profiles.a]\nissuer = "https://x"\nclient_id = "c"\n[profiles.b]\nissuer = "https://x"\nclient_id = "c"\n'
        '[git."https://git.example.com:443/team"]\nprofile = "a"\n[git."https://git.example.com/team/"]\nprofile = "b"\n'
    )
    (host,) = _config.load().git_hosts
    assert host.problem is not None and f"{path}: 2 entries are the same git host https://git.example.com/team" in host.problem[0]
    assert "line 7, profile a" in host.problem[0] and "line 9, profile b" in host.problem[0]


def test_a_deleted_profile_breaks_only_what_names_it() -> None:
    path = write('default_profile = "gone"\n[profiles.a]\nissuer = "https://x"\nclient_id = "c"\n[git."https://h.example"]\nprofile = "gone"\n[git."https://ok.example"]\nprofile = "a"\n')
    config = _config.load()  # loads: other hosts and --profile a keep working
    gone, ok = config.git_hosts
    assert gone.problem is not None and f"{path}:6: git.\"https://h.example\" names the profile 'gone'" in gone.problem[0]
    assert "--remove --host https://h.example" in gone.problem[1] and ok.problem is None
    assert config.profile("a").name == "a"
    with pytest.raises(ConfigError) as info:
        config.profile(None)
    assert "default_profile names 'gone'" in info.value.message and info.value.exit_code == 3


def test_save_profile_keeps_comments_and_compiles_snapshot() -> None:
    write('# my settings\n[profiles.old]\nissuer = "https://old.example"  # keep me\nclient_id = "o"\n')
    _configedit.save_profile(_config.Profile(name="new", issuer="https://dex.example/dex", client_id="bblogin", scopes=("openid", "email")), make_default=True)
    text = pathlib.Path(_paths.config_file()).read_text()
    assert "# my settings" in text and "# keep me" in text
    config = _config.load()
    assert config.default_profile == "new" and config.profiles["new"].scopes == ("openid", "email")
    snapshot = _hotcache.read(_hotcache.config_path())
    assert snapshot["fingerprint"] == _hotcache.stamp(_paths.config_file())
    assert snapshot["profiles"]["new"]["issuer"] == "https://dex.example/dex"
    assert "client_secret" not in snapshot["profiles"]["new"]
    assert os.stat(_paths.config_file()).st_mode & 0o777 == 0o600


def test_snapshot_recompiled_when_config_changes() -> None:
    write('[profiles.a]\nissuer = "https://a.example"\nclient_id = "a"\n')
    _mirrors.load_config()
    write('[profiles.a]\nissuer = "https://b.example"\nclient_id = "a"\n')
    os.utime(_paths.config_file(), ns=(1, 1))
    _mirrors.load_config()
    assert _hotcache.read(_hotcache.config_path())["profiles"]["a"]["issuer"] == "https://b.example"


def test_no_home_and_no_passwd_entry_is_a_clear_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A container running as a uid with no passwd entry and no HOME: say what to set (exit 3), not
    "internal error (KeyError)" from the password database."""
    import pwd

    from bblogin import _paths

    for var in ("HOME", "XDG_CONFIG_HOME", "BBLOGIN_CONFIG_DIR", "BBLOGIN_CONFIG"):
        monkeypatch.delenv(var, raising=False)

    def no_entry(uid: int) -> pwd.struct_passwd:
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    with pytest.raises(ConfigError, match="HOME"):
        _paths.config_file()


PARSED_TWICE = """
default_profile = "work"
[profiles.work]
issuer = "https://dex.example.com/dex"
client_id = "bblogin"
scopes = ["openid", "email"]
refresh_margin = 120
[git."https://bitbucket.org"]
profile = "work"
"""


def test_config_toml_parsed_before_is_read_from_its_cache_and_any_edit_misses() -> None:
    """A cached kubectl or git call reads config.toml without tomllib: what tomllib returned for
    these very bytes (keyed by their SHA-256), validated again — the same Config. An edit that
    keeps size and mtime still misses; a text with a TOML date is never cached."""
    import subprocess
    import sys

    path = write(PARSED_TWICE)
    first = _config.load()
    probe = "import sys; from bblogin import _config; c = _config.load(); print('tomllib' in sys.modules, repr((c.default_profile, c.profiles, c.git_hosts)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=os.environ.copy(), check=True)
    assert done.stdout.split(" ", 1) == ["False", repr((first.default_profile, first.profiles, first.git_hosts)) + "\n"]

    st = os.stat(path)
    pathlib.Path(path).write_text(PARSED_TWICE.replace('"email"', '"groups"'))  # same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert _config.load().profiles["work"].scopes == ("openid", "groups")

    cache = pathlib.Path(_mirrors.parsed_toml_path())
    cache.unlink()
    write(PARSED_TWICE.replace("refresh_margin = 120", "refresh_margin = 1979-05-27"))
    with pytest.raises(ConfigError, match="refresh_margin"):
        _config.load()
    assert not cache.exists()


@given(st.lists(st.sampled_from(["http://", "https://", "127.0.0.1", "localhost", "[::1]", ":", "0", "9", "\u0663", "/", "\n", "x", "?", " "]), max_size=8).map("".join))
def test_is_allowed_issuer_says_what_its_regular_expression_said(url: str) -> None:
    import re

    for candidate in (url, "http://" + url):
        said = candidate.startswith("https://") and len(candidate) > len("https://") or bool(re.match(r"^http://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?(/|$)", candidate))
        assert _config.is_allowed_issuer(candidate) == said, candidate


@given(st.lists(st.sampled_from(["http://", "https://", "127.0.0.1", "localhost", ":", "0", "8", "4", "\u0668", "/", "\n", "x", "?", "#", " ", "\u2003", "."]), max_size=9).map("".join))
def test_a_loopback_redirect_uri_is_read_as_its_regular_expression_read_it(url: str) -> None:
    """``_config._loopback_port`` is string code (a cached Bitbucket answer compiles no regular
    expression): the port the expression it replaced found, with ASCII digits and no trailing
    newline (where that expression took "\u0668400" for 8400, or a newline after the path)."""
    import re

    for candidate in (url, "http://127.0.0.1:" + url, "http://localhost:" + url):
        m = re.fullmatch(r"http://(127\.0\.0\.1|localhost):([0-9]{1,5})(/[^?#\s]*)", candidate)
        assert _config._loopback_port(candidate) == (int(m.group(2)) if m else None), candidate


def test_a_redirect_uri_and_listen_port_must_agree() -> None:
    assert _config.redirect_problem("http://127.0.0.1:8400/callback", None) is None and _config.redirect_problem("http://127.0.0.1:8400/callback", 8400) is None
    assert "listen_port 8401 does not match" in (_config.redirect_problem("http://127.0.0.1:8400/callback", 8401) or "")
    for bad in ("http://127.0.0.1:0/cb", "http://127.0.0.1:8400", "https://127.0.0.1:8400/cb", "http://127.0.0.2:8400/cb", "http://localhost.evil:8400/cb", "http://127.0.0.1:8400/cb\n"):
        assert "must be the callback URL registered with the IdP" in (_config.redirect_problem(bad, None) or ""), bad
