"""Expiration drift: cloud credentials bought with a CI step's identity token that would outlive
that token. A step gets one token for its whole run; when the credentials run out after it
expired, the SDK's renewal (botocore 15 minutes before Expiration, google-auth 3 min 45 s before
expiry) sends an expired token and fails, and until then the credentials stay usable although
the step's own identity has expired. bblogin says so, once per call, with both times and advice
that fits the target (a flag value the service accepts, or why none helps).

Also the step token's own expiry on this machine's clock (:func:`step_token_expiry`): there is
no answer from the issuer to measure its clock by (``_clock``), but a token issued "in the
future" shows the runner's clock is behind by at least that much."""

from __future__ import annotations

from typing import Any

from bblogin._errors import UsageError
from bblogin._timefmt import rfc3339

TOLERANCE = 60  # seconds: a session ending within a minute of the token is the same lifetime, not drift
MAX_LIFETIME = 48 * 3600  # seconds: no CI token lives longer (Google's STS refuses longer-lived tokens)
MAX_CLOCK_BEHIND = 86400  # seconds (_clock.CAP): a token issued further in the future is not believed


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def step_token_expiry(claims: dict[str, Any], now: int, what: str) -> int:
    """The token's expiry on this machine's clock: ``min(exp, now + (exp - iat))`` — never later
    than the token's real life, whichever clock is behind. ``what`` names the token in errors.
    Raises :class:`UsageError` for a token without ``exp`` or with a lifetime no issuer gives."""
    exp, iat = claims.get("exp"), claims.get("iat")
    hint = "it should be the step's own token: set `oidc: true` on the step and leave the variable alone"
    if not _is_int(exp):
        raise UsageError(f"{what} is not a JWT with an exp claim", hint=hint)
    if _is_int(iat):
        if exp - iat > MAX_LIFETIME:
            raise UsageError(f"{what} claims a lifetime of {exp - iat} s (iat {iat}, exp {exp}): no CI token lives that long", hint=hint)
        if iat - now > MAX_CLOCK_BEHIND:
            raise UsageError(f"{what} was issued at {rfc3339(iat)}, more than a day ahead of this machine's clock", hint="set this machine's clock (NTP), or check where the token comes from")
        return min(exp, now + (exp - iat))
    if exp - now > MAX_LIFETIME:
        raise UsageError(f"{what} expires at {rfc3339(exp)}, more than {MAX_LIFETIME // 3600} h from now: no CI token lives that long", hint=hint)
    return exp


def shorter(flag: str, minimum: int, remaining: int) -> str:
    """Advice for a lifetime the user asks for with ``flag`` (at least ``minimum`` seconds)."""
    if remaining <= 0:
        return "the token has expired: a new step gets a new one"
    if remaining < minimum:
        return f"the token has less than {minimum} s left and {flag} is at least {minimum}: no {flag} avoids this; keep the step shorter or split it into steps"
    return f"ask for {flag} {remaining} or less (the token's remaining lifetime), or keep the step shorter than the token"


def drift_warning(what: str, session_end: int, token_exp: int, *, renews_before: int, now: int, hint: str) -> str | None:
    """The warning for credentials (``what``) valid until ``session_end`` bought with a token that
    expires at ``token_exp``, renewed by their consumer ``renews_before`` seconds before they end;
    None when the token outlives them. ``hint`` is the target's advice (e.g. :func:`shorter`)."""
    if session_end <= token_exp + TOLERANCE:
        return None
    renew_at = session_end - renews_before
    if token_exp <= now:
        consequence = "the token has already expired: it buys nothing"
    elif renew_at > token_exp:
        consequence = f"their renewal (from {rfc3339(renew_at)}) will fail: a step still running then loses them"
    else:
        consequence = "they stay valid after the step's identity expired"
    return f"bblogin: warning: the {what} last until {rfc3339(session_end)}, past the step token's expiry {rfc3339(token_exp)}; {consequence}\n  hint: {hint}"
