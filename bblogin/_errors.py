"""The one exception tree of bblogin.

Every error a user can meet is a :class:`BbloginError`. Each class carries the process exit code
(documented in docs/exit-codes.md and the man page) and a ``hint``: the next thing the user should
do. Messages never contain a token, a code or a secret: callers pass descriptions, not values.

Stdlib only: the hot path imports this module.
"""

from __future__ import annotations

# Exit codes. Stable: scripts, kubectl and git read them.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_LOGIN_REQUIRED = 4
EXIT_IDP = 5
EXIT_STORAGE = 6
EXIT_VERIFICATION = 7
EXIT_LOGIN_FAILED = 8
EXIT_TIMEOUT = 9
EXIT_CHECK_FAILED = 10  # `bblogin doctor`: at least one check failed (it printed what to fix)
EXIT_CANCELLED = 130
EXIT_BROKEN_PIPE = 141  # stdout's reader went away (`bblogin status | head -3`): 128 + SIGPIPE, as the shell reports for a program SIGPIPE ended

# The one table of what each exit code means and what to do about it: tools/generate.py writes it
# into README.md, docs/exit-codes.md and the man page's EXIT STATUS (tests check they are current).
# (code, name, meaning, what to do)
EXIT_CODES: tuple[tuple[int, str, str, str], ...] = (
    (EXIT_OK, "ok", "success; for `git-credential` also \"not a host bblogin serves\" (no answer) and an operation it does not know (ignored)", ""),
    (EXIT_ERROR, "error", "an unexpected error: a bug in bblogin", "rerun with `-v` and report it"),
    (EXIT_USAGE, "usage", "bad command line; `bblogin tui` (or plain `bblogin`) without a terminal", "see `--help`; in scripts use `status`, `accounts`, `use`"),
    (EXIT_CONFIG, "config", "configuration error: config.toml invalid (the message names file, line and key), or an unknown profile or account; `setup kubectl`: a kubeconfig it cannot edit or a `--cluster` it does not have", "fix the file, or name a profile (`bblogin profiles`) or account (`bblogin accounts`) that exists"),
    (EXIT_LOGIN_REQUIRED, "login required", "no valid tokens and this call may not start a login (not interactive, or the refresh token was refused)", "run the `bblogin login --profile …` the message names"),
    (EXIT_IDP, "identity provider", "the identity provider is unreachable, slow or failing (5xx, HTML, truncated JSON), refused the request, or TLS failed, or a background refresh ended after sending its request without the answer, and no cached token lives 10 s more (one that does is served); during the backoff window after a failure such calls fail at once, naming the next try; cached tokens are untouched", "retry after the time the message names, or `bblogin refresh` now; see troubleshooting.md"),
    (EXIT_STORAGE, "storage", "the keyring is missing, locked or not answering, or the state directory is not writable (disk full)", "unlock or start a keyring, free space"),
    (EXIT_VERIFICATION, "verification", "a token failed verification; nothing was stored", "check the issuer and client id; report it to the IdP's operators"),
    (EXIT_LOGIN_FAILED, "login failed", "the login did not complete: denied, a wrong state (also a loopback login that timed out after refusing a callback with a foreign or missing state), an expired device code, STS refused the role; also every process that waited for that login (they share its result, exit code and message)", "start again in a fresh browser tab; check access rules"),
    (EXIT_TIMEOUT, "timeout", "the browser did not come back in time (no callback at all), or another bblogin held the account lock too long", "finish or cancel the other login"),
    (EXIT_CHECK_FAILED, "check failed", "`bblogin doctor` found at least one failed check (it printed what to fix; warnings alone exit 0)", "do what its `fix:` lines say, then run it again"),
    (EXIT_CANCELLED, "cancelled", "cancelled (Ctrl-C)", ""),
    (EXIT_BROKEN_PIPE, "broken pipe", "the reader of standard output went away (`bblogin doctor | head -1`): bblogin stops quietly, as a program SIGPIPE ended (128 + 13)", "nothing; under `set -o pipefail` the pipeline reports it, as for any such program"),
)


def unprintable(char: str) -> bool:
    """A control, format, surrogate, private-use, unassigned or line/paragraph separator character."""
    import unicodedata

    return unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def printable(text: object, limit: int | None = None) -> str:
    """``text`` with every :func:`unprintable` character escaped (``\\x1b``): a value from a
    file, or text a proxy or a certificate supplied, is shown as it is, never as terminal
    commands; cut to ``limit`` characters (ending in "…") when given."""
    shown = "".join(c if not unprintable(c) else (f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}") for c in str(text))
    return shown if limit is None or len(shown) <= limit else shown[: limit - 1] + "…"


class BbloginError(Exception):
    """Base of every bblogin error: a message, a hint for what to do next and an exit code."""

    exit_code = EXIT_ERROR
    default_hint = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = self.default_hint if hint is None else hint

    def __str__(self) -> str:
        return self.message

    def render(self) -> str:
        """The text shown to the user: the message, then the hint on its own line."""
        if self.hint:
            return f"bblogin: {self.message}\n  hint: {self.hint}"
        return f"bblogin: {self.message}"


class UsageError(BbloginError):
    """The command line asks for something impossible (argparse handles plain syntax errors)."""

    exit_code = EXIT_USAGE


class ConfigError(BbloginError):
    """config.toml is unreadable or invalid, or names a profile/account that does not exist."""

    exit_code = EXIT_CONFIG


class ProfileNotFound(ConfigError):
    default_hint = "list profiles with `bblogin profiles`, or create one with `bblogin login --profile NAME --issuer URL --client-id ID`"


class AccountNotFound(ConfigError):
    default_hint = "list accounts with `bblogin accounts`"


class ProxySettingError(ConfigError):
    """A proxy setting this request needs is unusable: a variable in the environment (or git's
    ``http.proxy``) that is not a proxy URL, or a SOCKS proxy without the socksio package. A
    login fails with it (exit 3); a refresh that is only early serves the cached token instead."""


class LoginRequired(BbloginError):
    """No usable tokens, and this call may not start an interactive login."""

    exit_code = EXIT_LOGIN_REQUIRED


class RefreshTokenDead(LoginRequired):
    """The IdP refused the refresh token for good (invalid_grant, or dex's "already claimed")."""


class IdPError(BbloginError):
    """The identity provider could not be reached or answered something unusable. Transient.
    ``retry_after``: seconds the IdP asked to wait (its Retry-After), when it said."""

    exit_code = EXIT_IDP
    retry_after: float | None = None


class IdPUnreachable(IdPError):
    default_hint = "check the network and the issuer URL; the cached tokens are untouched"


class IdPResponseError(IdPError):
    """Malformed JSON, an HTML error page, a 5xx or an unexpected status."""


class IdentityUnchecked(IdPError):
    """A refresh succeeded, but asking the provider who the new tokens belong to failed (a
    Bitbucket user API down): the tokens are kept and the identity is checked later."""


class TLSError(IdPUnreachable):
    default_hint = "if the IdP uses a private CA, pass --ca-file PEM (or set ca_file in the profile)"


class OAuthError(IdPError):
    """A well-formed OAuth 2.0 error response (RFC 6749 section 5.2)."""

    def __init__(self, error: str, description: str = "", *, hint: str | None = None) -> None:
        text = f"the identity provider answered {error}"
        if description:
            text += f": {description}"
        super().__init__(text, hint=hint)
        self.error = error
        self.description = description


class StorageError(BbloginError):
    """The OS keyring or the state directory cannot be used."""

    exit_code = EXIT_STORAGE


class KeyringUnavailable(StorageError):
    default_hint = (
        "install and start a Secret Service (gnome-keyring, KeePassXC) or another keyring backend; "
        "or, knowingly, store tokens in a plaintext file with --insecure-storage"
    )


class KeyringLocked(StorageError):
    default_hint = "unlock your keyring (log in to the desktop session, or run `gnome-keyring-daemon --unlock`) and try again"


class KeyringTimeout(StorageError):
    default_hint = "the keyring did not answer in time; it may be waiting for an unlock prompt on another screen"


class TokenVerificationError(BbloginError):
    """A token from the IdP failed verification: signature, iss, aud, exp, nonce, at_hash, alg."""

    exit_code = EXIT_VERIFICATION
    default_hint = "the identity provider sent a token bblogin must not trust; nothing was stored"


class LoginFailed(BbloginError):
    """The interactive login did not complete: denied, state mismatch, expired device code."""

    exit_code = EXIT_LOGIN_FAILED


class LoginTimeout(LoginFailed):
    exit_code = EXIT_TIMEOUT
    default_hint = "run the login again and finish it in the browser within the time limit (--timeout)"


class LoginEnded(BbloginError):
    """This process waited for the login another bblogin ran for the same account, and that login
    failed: its message, hint and exit code, instead of a second login (``_loginresult``)."""

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int = EXIT_LOGIN_FAILED) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code


class LockTimeout(BbloginError):
    """Another bblogin process held the account lock for longer than the lock timeout."""

    exit_code = EXIT_TIMEOUT
    default_hint = "another bblogin is logging in or refreshing this account; finish or cancel it and retry"


class Cancelled(BbloginError):
    exit_code = EXIT_CANCELLED
