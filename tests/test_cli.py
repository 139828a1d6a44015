from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bblogin import __version__, _cli
from bblogin._hot import _answer as _fast

HEAVY = ("argparse", "json", "re", "tomllib", "platformdirs", "keyring", "httpx", "authlib", "jwt", "textual", "typing", "dataclasses", "secretstorage", "jeepney")


def bblogin(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bblogin", *args], input=stdin, capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})})


def test_version() -> None:
    done = bblogin("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"bblogin {__version__}"


def test_every_command_has_help() -> None:
    parser = _cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    names = sorted(sub.choices)  # type: ignore[union-attr]
    assert {"login", "token", "status", "accounts", "use", "logout", "kubectl", "git-credential", "setup", "demo", "dev-idp", "tui", "exchange", "aws", "doctor"} <= set(names)
    for name in names:
        with pytest.raises(SystemExit) as info:
            parser.parse_args([name, "--help"])
        assert info.value.code == 0


def test_usage_error_exit_code() -> None:
    done = bblogin("login", "--flow", "sideways")
    assert done.returncode == 2 and "invalid choice" in done.stderr


def test_config_error_is_rendered_with_hint_and_exit_3(bblogin_home) -> None:
    (bblogin_home / "config" / "config.toml").write_text("[profiles.x]\nissuer = 5\n")
    done = bblogin("status")
    assert done.returncode == 3
    assert "config.toml:2: profiles.x.issuer: must be a string, not an integer" in done.stderr and "hint:" in done.stderr
    assert "Traceback" not in done.stderr


def test_no_profile_is_a_clear_error() -> None:
    done = bblogin("token", "--no-login")
    assert done.returncode == 3 and "no profile given" in done.stderr and "bblogin login --profile NAME" in done.stderr


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], {}),
        (["--profile", "work"], {"--profile": "work"}),
        (["--profile=work", "--use-access-token"], {"--profile": "work", "--use-access-token": True}),
        (["-p", "w", "-a", "me@example.com"], {"--profile": "w", "--account": "me@example.com"}),
        (["--profile"], None),
        (["--profile", "a", "-p", "b"], None),
        (["-p", "a", "--profile=b"], None),
        (["--account", "x", "-a", "x"], None),
        (["--use-access-token", "--use-access-token"], None),
        (["--profile", "--account"], None),
        (["-p=work"], None),
        (["--help"], None),
        (["--bogus"], None),
        (["positional"], None),
    ],
)
def test_fast_path_parses_a_strict_subset(argv: list[str], expected: dict | None) -> None:
    assert _fast._parse(argv, _fast._KUBECTL_VALUE_FLAGS, ("--use-access-token",)) == expected


KUBECTL_DESTS = {"--profile": "profile", "--account": "account", "--issuer": "issuer", "--client-id": "client_id", "--client-secret": "client_secret", "--connector-id": "connector_id", "--ca-file": "ca_file", "--use-access-token": "use_access_token", "--scope": "scopes", "--provider": "provider"}
FLAG_WORDS = [*_fast._KUBECTL_VALUE_FLAGS, "--use-access-token", "--provider", "--scope", "--prof", "--use-access", "-v", "--", "-h"]
VALUE_WORDS = ["dev", "work", "", "-x", "-1", "a=b", "oidc", "bitbucket-cloud", "bogus", "--profile", "a b", "ünï"]


@st.composite
def kubectl_argv(draw: st.DrawFn) -> list[str]:
    """Command lines made of the kubectl command's own flags, joined and separated, repeated,
    abbreviated, with values that look like flags: where a hand-written parser goes wrong."""
    argv: list[str] = []
    for _ in range(draw(st.integers(0, 6))):
        flag = draw(st.sampled_from(FLAG_WORDS))
        form = draw(st.sampled_from(["separate", "joined", "bare", "attached"]))
        value = draw(st.sampled_from(VALUE_WORDS) | st.text(max_size=6))
        argv += {"separate": [flag, value], "joined": [f"{flag}={value}"], "bare": [flag], "attached": [flag + value]}[form]
    return argv


@settings(max_examples=1500, deadline=None)
@given(kubectl_argv())
def test_fast_path_never_disagrees_with_the_full_parser(argv: list[str]) -> None:
    """Whatever the hot path accepts, argparse accepts too, with the same value for every flag;
    anything else the hot path declines."""
    hot = _fast._parse(argv, _fast._KUBECTL_VALUE_FLAGS, ("--use-access-token",))
    if hot is None:
        return
    with contextlib.redirect_stderr(io.StringIO()):
        try:
            args = _cli.build_parser().parse_args(["kubectl", *argv])
        except SystemExit:
            pytest.fail(f"the hot path accepts {argv!r}, argparse refuses it")
    for flag, dest in KUBECTL_DESTS.items():
        assert hot.get(flag, False if flag == "--use-access-token" else None) == getattr(args, dest), (argv, flag)


def test_fast_path_flags_agree_with_the_parser() -> None:
    """Every flag the hot path accepts exists on the real `kubectl` subcommand."""
    parser = _cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    kubectl = sub.choices["kubectl"]  # type: ignore[index]
    known = {s for a in kubectl._actions for s in a.option_strings}
    assert set(_fast._KUBECTL_VALUE_FLAGS) | {"--use-access-token"} <= known
    from bblogin import _config

    assert _fast._CHOICES["--provider"] == _config.PROVIDERS  # the hot path's copy of argparse's choices


@pytest.mark.parametrize("module", ["bblogin._cli", "bblogin._hot._answer", "bblogin"])
def test_hot_path_modules_import_nothing_heavy(module: str) -> None:
    code = f"import sys, {module}; print(' '.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_adhoc_profile_name_is_the_request_shape() -> None:
    from bblogin._shape import shape_of

    a = _fast.adhoc_profile_name(shape_of("oidc", "https://dex.example/dex", "kube", ["openid", "email"]))
    assert a == _fast.adhoc_profile_name(shape_of("oidc", "https://dex.example/dex", "kube", ["email", "openid", "email"]))  # scopes are a set
    assert a != _fast.adhoc_profile_name(shape_of("oidc", "https://dex.example/dex", "kube2", ["openid", "email"]))
    assert a != _fast.adhoc_profile_name(shape_of("oidc", "https://dex.example/dex", "kube", ["openid", "email", "groups"]))
    assert a != _fast.adhoc_profile_name(shape_of("oidc", "https://dex.example/dex", "kube", ["openid", "email"], "bitbucket-cloud"))


@pytest.mark.parametrize("argv", [["kubectl", "--profile", "w"], ["kubectl", "--bogus"], ["git-credential", "get"], ["git-credential", "nope"], ["setup", "git", "--host", "h"], ["token", "--json", "--id-token"], ["kubectl", "--help"]])
def test_only_the_named_commands_parser_parses_as_the_whole_one(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """`run` builds only the command it is given (building all costs about a Python start-up):
    same namespace, same errors, same help."""
    outcomes = []
    for parser in (_cli.build_parser(), _cli.build_parser(only=argv[0])):
        try:
            outcomes.append({k: (v.prog if k == '_parser' else v) for k, v in vars(parser.parse_args(argv)).items()})  # the subcommand's parser: a new object each build
        except SystemExit as exc:
            outcomes.append((exc.code, capsys.readouterr()))
    assert outcomes[0] == outcomes[1]
