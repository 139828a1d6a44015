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


class LoginRequired(BbloginError):
    """No usable tokens, and this call may not start an interactive login."""

    exit_code = EXIT_LOGIN_REQUIRED


class RefreshTokenDead(LoginRequired):
    """The IdP refused the refresh token for good (invalid_grant, or dex's "already claimed")."""


class IdPError(BbloginError):
    """The identity provider could not be reached or answered something unusable. Transient."""

    exit_code = EXIT_IDP


class IdPUnreachable(IdPError):
    default_hint = "check the network and the issuer URL; the cached tokens are untouched"


class IdPResponseError(IdPError):
    """Malformed JSON, an HTML error page, a 5xx or an unexpected status."""


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


class LockTimeout(BbloginError):
    """Another bblogin process held the account lock for longer than the lock timeout."""

    exit_code = EXIT_TIMEOUT
    default_hint = "another bblogin is logging in or refreshing this account; finish or cancel it and retry"


class Cancelled(BbloginError):
    exit_code = EXIT_CANCELLED
