"""The command line: one argparse parser (the source of the completions and the man page) and main().

kubectl and git spawn bblogin on every call, so ``main`` first offers the call to ``_hot._answer``
(standard library only: answers from the cache when it can) and builds the argparse parser and
imports a command module only when it must.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not `from typing import …`: typing costs the hot path a fifth of a Python start-up
if TYPE_CHECKING:
    import argparse

PROG = "bblogin"


# Shell functions (defined in the completion scripts' preamble) that list profile names.
PROFILE_COMPLETION = {"bash": "_bblogin_profiles", "zsh": "_bblogin_profiles"}


def _add_profile(p: argparse.ArgumentParser, *, account: bool = True) -> None:
    action = p.add_argument("--profile", "-p", metavar="NAME", help="profile from config.toml (default: default_profile)")
    action.complete = PROFILE_COMPLETION  # type: ignore[attr-defined]  # read by shtab in tools/generate.py
    if account:
        p.add_argument("--account", "-a", metavar="ACCOUNT", help="account id, email or user name (default: the profile's active account)")


def _add_idp(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("identity provider", "Saved into the profile when given with --profile NAME.")
    g.add_argument("--issuer", metavar="URL", help="OIDC issuer (dex), or the Bitbucket base URL")
    g.add_argument("--client-id", metavar="ID", help="OAuth 2.0 client id")
    g.add_argument("--client-secret", metavar="SECRET", help="client secret (confidential clients; prefer the config file)")
    g.add_argument("--provider", choices=("oidc", "bitbucket-cloud", "bitbucket-dc"), help="kind of identity provider (default oidc)")
    g.add_argument("--connector-id", metavar="ID", help="dex connector to use, skipping dex's chooser (e.g. bitbucket-cloud)")
    g.add_argument("--scope", dest="scopes", action="append", metavar="SCOPE", help="scope to request (repeatable; default: openid email profile groups offline_access)")
    g.add_argument("--ca-file", metavar="PEM", help="extra CA certificates for the IdP's TLS")


def _add_aws_options(p: argparse.ArgumentParser, *, default: object = None) -> None:
    """What `bblogin aws` asks STS with; `aws config` takes the same (``default=SUPPRESS``: given
    before or after `config`, either counts) and writes them into the credential_process."""
    p.add_argument("--profile", "-p", metavar="NAME", default=default, help="profile from config.toml (default: default_profile)").complete = PROFILE_COMPLETION  # type: ignore[attr-defined]
    p.add_argument("--account", "-a", metavar="ACCOUNT", default=default, help="account id, email or user name (default: the profile's active account)")
    p.add_argument("--role-arn", metavar="ARN", default=default, help="role to assume (required)")
    p.add_argument("--duration", type=int, default=default, metavar="SECONDS", help="session duration (900..max; default 3600)")
    p.add_argument("--session-name", metavar="NAME", default=default, help="role session name (default: derived from the identity)")
    p.add_argument("--from-env", metavar="VAR", default=default, help="use the token in this environment variable (default: BITBUCKET_STEP_OIDC_TOKEN when set, else the profile's ID token)")
    p.add_argument("--sts-endpoint", metavar="URL", default=default, help="STS endpoint (default: the regional endpoint from AWS_REGION)")


def _step_identity_parser(sub: argparse._SubParsersAction, name: str, help_text: str) -> argparse.ArgumentParser:
    """A trust-condition printer: the step from its token (in the step, or --token-file) or from flags."""
    s = sub.add_parser(name, help=help_text, description=help_text)
    s.set_defaults(_module="trust", trust_target="aws" if name == "trust-policy" else "gcp")
    s.add_argument("--token-file", metavar="FILE", help="a step's BITBUCKET_STEP_OIDC_TOKEN in a file (default: the variable, inside a step)")
    g = s.add_argument_group("without a token")
    g.add_argument("--workspace", metavar="NAME", help="workspace ID (the slug in bitbucket.org/WORKSPACE)")
    g.add_argument("--workspace-uuid", metavar="UUID", help="workspace UUID (Workspace settings > OpenID Connect: the audience)")
    g.add_argument("--repository-uuid", metavar="UUID", help="repository UUID")
    g.add_argument("--environment-uuid", metavar="UUID", help="deployment environment UUID: admit only that environment's steps")
    return s


class _Skipped:
    """What ``build_parser(only=…)`` hands out for the other commands: accepts every call a
    command's set-up makes, and builds nothing."""

    def __getattr__(self, name: str) -> _Skipped:
        return self

    def __call__(self, *args: object, **kwargs: object) -> _Skipped:
        return self


def build_parser(prog: str = PROG, *, only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``only``, one whose only command is that one (the same parser for
    it: same usage, errors and help). Building all of them costs about a Python start-up (each
    argument makes argparse format its metavar), which kubectl and git would pay on every call."""
    import argparse

    from bblogin import __version__

    parser = argparse.ArgumentParser(
        prog=prog,
        description="Log in with your Bitbucket identity and hand the tokens to kubectl, git and you.",
        epilog="Run `bblogin COMMAND --help` for a command's options, `man bblogin` for exit codes and files.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="say more on stderr (never prints tokens)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, module: str, help_text: str, **kw: object) -> argparse.ArgumentParser:
        if only is not None and name != only:
            return _Skipped()  # type: ignore[return-value]
        p = sub.add_parser(name, help=help_text, description=help_text, **kw)  # type: ignore[arg-type]
        p.set_defaults(_module=module, _parser=p)
        p.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        return p

    p = command("login", "login", "log in (loopback browser redirect or device code) and cache the tokens")
    _add_profile(p, account=False)
    _add_idp(p)
    p.add_argument("--flow", choices=("auto", "loopback", "device"), help="auto: device code over SSH or without a browser, loopback otherwise")
    p.add_argument("--no-browser", action="store_true", help="print the URL instead of opening a browser")
    p.add_argument("--listen", type=int, metavar="PORT", help="loopback port for the redirect (default: random)")
    p.add_argument("--timeout", type=int, metavar="SECONDS", help="give up on the browser after this long (default 180)")
    p.add_argument("--insecure-storage", action="store_true", help="store tokens in a plaintext file (0600) instead of the OS keyring")
    p.add_argument("--default", action="store_true", help="make --profile the default profile")

    p = command("token", "token", "print a valid token (refreshing it when needed)")
    _add_profile(p)
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--id-token", dest="kind", action="store_const", const="id_token", help="the ID token (default)")
    kind.add_argument("--access-token", dest="kind", action="store_const", const="access_token", help="the access token")
    p.add_argument("--json", action="store_true", help="print JSON with the token and its expiry")
    p.add_argument("--no-login", action="store_true", help="fail instead of starting a login when no valid token is cached")
    p.add_argument("--refresh", action="store_true", help="refresh now, even when the cached token is valid or a backoff window is open; says what changed on stderr")

    p = command("refresh", "refresh", "refresh an account's tokens now (new groups, a new expiry), whatever the backoff after an outage says")
    _add_profile(p)
    p.add_argument("--json", action="store_true", help="print JSON with the expiry and groups before and after")

    p = command("status", "status", "who is logged in, where, until when, and where the tokens are stored")
    _add_profile(p, account=False)
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = command("accounts", "accounts", "list accounts by profile")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    command("profiles", "profiles", "list profile names, one per line (for scripts and shell completion); an ad-hoc profile (from kubeconfig flags) is followed by a tab and what it is")

    p = command("use", "use", "make an account the active one (for --profile, else for every profile it is logged in to)")
    p.add_argument("account", metavar="ACCOUNT", help="account id, email or user name")
    _add_profile(p, account=False)

    p = command("logout", "logout", "log a profile out of an account (tokens no other profile uses are deleted, and revoked where the IdP can)")
    p.add_argument("account", metavar="ACCOUNT", nargs="?", help="account id, email or user name (default: the profile's active account; with no --profile, out of every profile)")
    _add_profile(p, account=False)
    p.add_argument("--all", action="store_true", help="log out every account")

    p = command("kubectl", "kubectl", "kubectl exec credential plugin: print an ExecCredential")
    _add_profile(p)
    _add_idp(p)
    p.add_argument("--use-access-token", action="store_true", help="send the access token instead of the ID token")
    p.add_argument("--no-login", action="store_true", help="fail instead of starting a login even on a terminal (as kubectl's interactiveMode: Never)")

    p = command("git-credential", "git_credential", "git credential helper (git runs it; see `bblogin setup git`)")
    p.add_argument("operation", metavar="OPERATION", help="what git asks: get, store, erase or capability (any other is ignored, as gitcredentials(7) asks)")

    p = command("setup", "setup_team", "wire bblogin into kubectl or git; or all of a team's set-up from its bundle (--from)")
    p.add_argument("--from", dest="source", metavar="URL|FILE", help="apply a team bundle (docs/team.md): profiles, kubeconfig clusters and contexts, git hosts; then log in and check")
    p.add_argument("--yes", "-y", action="store_true", help="with --from: apply without asking")
    p.add_argument("--dry-run", action="store_true", help="with --from: show the plan, change nothing")
    p.add_argument("--undo", action="store_true", help="with --from: remove what this bundle added (entries changed since are kept)")
    p.add_argument("--no-login", action="store_true", help="with --from: do not log in afterwards")
    p.add_argument("--export", action="store_true", help="print a bundle of this set-up (no secrets) for your team")
    setup = p.add_subparsers(dest="target", metavar="TARGET")
    s = setup.add_parser("kubectl", help="write the kubeconfig exec entry", description="write the kubeconfig exec entry")
    s.set_defaults(_module="setup_kubectl", _parser=s)
    s.add_argument("--profile", "-p", metavar="NAME", required=True, help="profile to log in with").complete = PROFILE_COMPLETION  # type: ignore[attr-defined]
    s.add_argument("--kubeconfig", metavar="PATH", help="kubeconfig to edit (default: $KUBECONFIG or ~/.kube/config)")
    s.add_argument("--user", metavar="NAME", help="kubeconfig user name (default: bblogin-PROFILE)")
    s.add_argument("--context", metavar="NAME", help="also write a context with this name (needs --cluster)")
    s.add_argument("--cluster", metavar="NAME", help="cluster for --context (must exist in the kubeconfig)")
    s.add_argument("--set-current", action="store_true", help="make --context kubectl's current context")
    s.add_argument("--use-access-token", action="store_true", help="send the access token instead of the ID token")
    s.add_argument("--print", dest="print_only", action="store_true", help="show the entry, change nothing")
    s = setup.add_parser("git", help="write the scoped git credential helper config", description="write the scoped git credential helper config")
    s.set_defaults(_module="setup_git", _parser=s)
    s.add_argument("--host", metavar="URL", required=True, help="remote prefix, e.g. https://bitbucket.org (scheme and host in any case; a default port and trailing slash are dropped)")
    s.add_argument("--profile", "-p", metavar="NAME", help="profile whose account serves this host (required unless --remove)").complete = PROFILE_COMPLETION  # type: ignore[attr-defined]
    s.add_argument("--file", metavar="PATH", help="git config file to edit (default: the global one); a repository's own config file cannot move a host that config.toml binds to another profile")
    s.add_argument("--remove", action="store_true", help="undo: remove the host from config.toml and the helper entries setup wrote to the git config file")
    s.add_argument("--authtype", choices=("basic", "bearer"), help="bearer: send the token as Bearer when git supports it (default: as configured, else basic)")
    s.add_argument("--account", "-a", metavar="ACCOUNT", help="account (id, email or user name) of the profile that serves this host (default: the profile's active one; a user name in the remote URL picks another)")
    s.add_argument("--username", metavar="NAME", help="user name to send with the token (default: as configured for this profile; \"\" for the account's own)")
    s.add_argument("--token", choices=("access_token", "id_token"), help="which token git sends (default: as configured, else access_token; id_token for servers that accept only ID tokens)")
    s.add_argument("--print", dest="print_only", action="store_true", help="show the config, change nothing")

    p = command("demo", "demo", "run the whole flow against the embedded dev IdP, then clean up")
    p.add_argument("--flow", choices=("device", "loopback"), default="device", help="device (auto-approved) or loopback (opens a browser or prints the URL)")
    p.add_argument("--no-browser", action="store_true", help="print the URL instead of opening a browser (loopback)")
    p.add_argument("--timeout", type=int, metavar="SECONDS", help="give up on the browser after this long (loopback; default 180)")

    p = command("dev-idp", "dev_idp", "run the development IdP (a double of dex with the bitbucket-cloud connector)")
    p.add_argument("--port", type=int, default=5556, help="port on 127.0.0.1 (0: random; default 5556)")
    p.add_argument("--auto-approve", action="store_true", help="log in the default user without pages (tests, demos)")
    p.add_argument("--user", default="alice", help="default fake Bitbucket user (alice, bob, carol, dave)")
    p.add_argument("--token-ttl", type=int, default=86400, metavar="SECONDS", help="ID token lifetime")
    p.add_argument("--ephemeral", action="store_true", help="keep the signing keys in memory only (default: kept in the state dir, so a restart still verifies earlier tokens, as dex with persistent storage)")

    p = command("tui", "tui", "open the account switcher (Textual)")

    p = command("exchange", "exchange", "exchange a CI identity token (Bitbucket Pipelines) for IdP tokens (RFC 8693)")
    _add_profile(p, account=False)
    p.add_argument("--from-env", metavar="VAR", default="BITBUCKET_STEP_OIDC_TOKEN", help="environment variable holding the subject token")
    p.add_argument("--json", action="store_true", help="print JSON instead of the token")

    p = command("aws", "aws", "AWS credential_process: AssumeRoleWithWebIdentity with a Pipelines or IdP token")
    _add_aws_options(p)
    p.add_argument("--no-login", action="store_true", help="fail instead of starting a login when no valid token is cached")
    aws = p.add_subparsers(dest="aws_action", metavar="ACTION")
    s = aws.add_parser("config", help="print the ~/.aws/config profile whose credential_process runs `bblogin aws`; in a step, check --duration against the step token", description="print the ~/.aws/config profile whose credential_process runs `bblogin aws`; in a step, check --duration against the step token")
    s.set_defaults(_module="aws_config")
    _add_aws_options(s, default=argparse.SUPPRESS)
    s.add_argument("--name", default="bblogin", metavar="NAME", help="the AWS profile's name (default bblogin): AWS_PROFILE=NAME or --profile NAME for the AWS CLI")
    s = _step_identity_parser(aws, "trust-policy", "print the IAM role trust policy that admits exactly this step's repository")
    s.add_argument("--account-id", required=True, metavar="ID", help="the AWS account (12 digits) that holds the IAM OIDC provider")

    p = command("gcp", "gcp", "Google Cloud executable-sourced credential: print the Pipelines or IdP token for google-auth and gcloud")
    _add_profile(p)
    p.add_argument("--no-login", action="store_true", help="fail instead of starting a login when no valid token is cached")
    gcp = p.add_subparsers(dest="gcp_action", metavar="ACTION")
    s = gcp.add_parser("config", help="write the external_account credential configuration that runs `bblogin gcp`", description="write the external_account credential configuration that runs `bblogin gcp`")
    s.set_defaults(_module="gcp_config")
    s.add_argument("--audience", required=True, metavar="PROVIDER", help="the workload identity provider's full resource name, //iam.googleapis.com/projects/N/... (docs/pipelines.md)")
    s.add_argument("--service-account", metavar="EMAIL", help="service account to impersonate (generateAccessToken)")
    s.add_argument("--profile", "-p", metavar="NAME", default=argparse.SUPPRESS, help="profile whose ID token to use off Pipelines").complete = PROFILE_COMPLETION  # type: ignore[attr-defined]
    s.add_argument("--account", "-a", metavar="ACCOUNT", default=argparse.SUPPRESS, help="account of that profile to use (default: its active account at the time)")
    s.add_argument("--output", metavar="FILE", help="write the configuration here (default: stdout)")
    s.add_argument("--executable-output-file", metavar="FILE", help="where the library may cache bblogin's answer (0600) until it expires")
    s.add_argument("--timeout-millis", type=int, default=30000, metavar="MS", help="how long the library waits for bblogin (5000..120000, default 30000)")
    s.add_argument("--token-lifetime", type=int, metavar="SECONDS", help="service account token lifetime (600..43200; with --service-account)")
    _step_identity_parser(gcp, "provider-condition", "print the workload identity provider (attribute mapping, CEL condition) that admits exactly this step's repository").add_argument(
        "--json", action="store_true", help="machine-readable output"
    )

    p = command("completion", "completion", "print the shell completion script: source <(bblogin completion bash)")
    p.add_argument("shell", choices=("bash", "zsh", "fish"), help="the shell to complete in")

    p = command("doctor", "doctor", "check config, keyring, IdP reachability, clock and wiring; say what to fix")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def _configure_logging(verbosity: int) -> None:
    if verbosity:
        from bblogin._log import configure

        configure(verbosity)


def _ensure_site() -> None:
    """Started by the lean launcher (python -S): load site now, so dependencies import."""
    if sys.flags.no_site and "site" not in sys.modules:
        import site

        site.main()


def launcher_command(*args: str) -> list[str]:
    """The fastest way for kubectl or git to start bblogin: the bare interpreter and _launcher.py."""
    return [sys.executable, "-S", os.path.join(os.path.dirname(os.path.abspath(__file__)), "_hot", "_launcher.py"), *args]


def _helper_parser(command: str, prog: str) -> argparse.ArgumentParser:
    """The parser of `bblogin COMMAND` presented as the helper program ``prog`` that runs it
    (git-credential-bblogin, kubectl-bblogin): its usage names ``prog``, and it has --version."""
    import argparse

    from bblogin import __version__

    commands = next(a for a in build_parser(only=command)._actions if isinstance(a, argparse._SubParsersAction))
    parser: argparse.ArgumentParser = commands.choices[command]
    parser.prog = prog
    parser.add_argument("--version", action="version", version=f"{prog} {__version__} (bblogin {command})")
    return parser


def _parser_for(argv: list[str]) -> argparse.ArgumentParser:
    """The parser for ``bblogin COMMAND …``: only COMMAND's when it names one, else the whole one
    (options first, help, an unknown command: what argparse says lists every command)."""
    if argv and not argv[0].startswith("-"):
        import argparse

        parser = build_parser(only=argv[0])
        if any(argv[0] in a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)):
            return parser
    return build_parser()


def run(argv: list[str], *, prog: str | None = None) -> int:
    """Parse ``argv`` and run the command; errors become messages and documented exit codes.

    ``prog``: the helper program that was invoked to run the command ``argv[0]``. A reader that
    went away (``bblogin doctor | head -1``) is a quiet exit, EXIT_BROKEN_PIPE, as for a program
    that SIGPIPE ended: whatever is still buffered goes nowhere, with no "Exception ignored" at exit.
    """
    try:
        code = _run(argv, prog=prog)
        if sys.stdout is not None:  # a closed stdout (>&-): nothing to flush
            sys.stdout.flush()
        return code
    except BrokenPipeError:
        from bblogin._errors import EXIT_BROKEN_PIPE

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


# The commands kubectl and git run on every call: their helper program, and the arguments that
# make a complete command line (tools/generate.py records argparse's namespace for them).
QUICK_COMMANDS = {"kubectl": ("kubectl-bblogin", []), "git-credential": ("git-credential-bblogin", ["get"])}


def _quick_args(argv: list[str], prog: str | None) -> object | None:
    """The namespace argparse gives for ``argv`` — ``kubectl`` with options of the hot path's
    strict subset (``_answer._parse``), ``git-credential get|store`` — built from the namespace
    tools/generate.py recorded (``_helperargs``) without importing argparse: with building the
    parser that is about a third of a Python start-up on every cached call. None for any other
    command line, which argparse then parses (and judges)."""
    import types

    from bblogin import _helperargs
    from bblogin._hot import _answer

    command = argv[0] if argv else None
    if command == "kubectl":
        given = _answer._parse(argv[1:], _answer._KUBECTL_VALUE_FLAGS, ("--use-access-token",))
        options = _helperargs.OPTIONS["kubectl"]
        if given is None or not set(given) <= set(options):
            return None
        values = {options[flag]: value for flag, value in given.items()}
    elif command == "git-credential" and argv[1:] in (["get"], ["store"]):
        values = {"operation": argv[1]}
    else:
        return None
    namespace = _helperargs.NAMESPACES[f"{command} {prog or ''}".strip()]
    return types.SimpleNamespace(**{**namespace, **values})


def _run(argv: list[str], *, prog: str | None) -> int:
    _ensure_site()
    from bblogin._errors import EXIT_CANCELLED, EXIT_USAGE, BbloginError

    quick = _quick_args(argv, prog)
    if quick is not None:
        args, extra = quick, []
    else:
        parser = _parser_for(argv) if prog is None else _helper_parser(argv[0], prog)
        args, extra = parser.parse_known_args(argv if prog is None else argv[1:])
    if extra:  # the command's own usage, not the top-level one (argparse reports extras at the top)
        getattr(args, "_parser", parser).error(f"unrecognized arguments: {' '.join(extra)}")
    args.verbose = getattr(args, "verbose", 0)
    _configure_logging(args.verbose)
    module = getattr(args, "_module", None)
    team_flags = [flag for flag, dest in (("--from", "source"), ("--export", "export"), ("--undo", "undo"), ("--yes", "yes"), ("--dry-run", "dry_run"), ("--no-login", "no_login")) if getattr(args, dest, None)]
    if module in ("setup_kubectl", "setup_git") and team_flags:  # `setup --from X kubectl …` would run setup kubectl alone
        args._parser.error(f"{team_flags[0]} belongs to `bblogin setup --from`, not to `bblogin setup {module[6:]}`")
    try:
        if module is None:
            if sys.stdin.isatty() and sys.stdout.isatty():
                module = "tui"
            else:
                parser.print_usage(sys.stderr)
                print(
                    "bblogin: plain `bblogin` opens the account switcher (the TUI), which needs a terminal on stdin and stdout\n"
                    "  hint: in a script name a command: `bblogin status`, `bblogin accounts`, `bblogin token`; `bblogin --help` lists them",
                    file=sys.stderr,
                )
                return EXIT_USAGE
        import importlib

        return int(importlib.import_module(f"bblogin._commands.{module}").run(args) or 0)
    except BbloginError as exc:
        print(exc.render(), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("bblogin: cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    except BrokenPipeError:
        raise  # not a bug: the reader went away (run)
    except Exception as exc:  # a bug: say so plainly, show the traceback only with -v
        from bblogin._log import redact

        if args.verbose:
            import traceback

            print(redact("".join(traceback.format_exception(exc))), file=sys.stderr)
        print(f"bblogin: internal error ({type(exc).__name__}): this is a bug in bblogin.", file=sys.stderr)
        print("  hint: rerun with -v for details and report it; the message never contains your tokens", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None, *, prog: str | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from bblogin._hot._answer import answer

    code = answer(argv)
    return run(argv, prog=prog) if code is None else code


def _invoked_as(default: str) -> str:
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else default


def git_credential_main() -> int:
    """``git-credential-bblogin OP``: what git runs for ``credential.helper = bblogin``."""
    return main(["git-credential", *sys.argv[1:]], prog=_invoked_as("git-credential-bblogin"))


def kubectl_main() -> int:
    """``kubectl-bblogin``: lets ``kubectl bblogin ...`` run bblogin as a kubectl plugin: with no
    arguments or only options it is the exec credential plugin, else ``kubectl bblogin COMMAND``."""
    args = sys.argv[1:]
    if args and not args[0].startswith("-"):
        return main(args)
    return main(["kubectl", *args], prog=_invoked_as("kubectl-bblogin"))
