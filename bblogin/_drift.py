"""Expiration drift: cloud credentials bought with a CI step's identity token that would outlive
that token. A step gets one token for its whole run; when the credentials run out after it
expired, the SDK's renewal (botocore 15 minutes before Expiration, google-auth 3 min 45 s before
expiry) sends an expired token and fails, and until then the credentials stay usable although
the step's own identity has expired. bblogin says so, once per call, with both times."""

from __future__ import annotations

from bblogin._timefmt import rfc3339

TOLERANCE = 60  # seconds: a session ending within a minute of the token is the same lifetime, not drift


def drift_warning(what: str, session_end: int, token_exp: int, *, renews_before: int, now: int) -> str | None:
    """The warning for credentials (``what``) valid until ``session_end`` bought with a token that
    expires at ``token_exp``, renewed by their consumer ``renews_before`` seconds before they end;
    None when the token outlives them."""
    if session_end <= token_exp + TOLERANCE:
        return None
    renew_at = session_end - renews_before
    if token_exp <= now:
        consequence = "the token has already expired: it buys nothing"
    elif renew_at > token_exp:
        consequence = f"their renewal (from {rfc3339(renew_at)}) will fail: a step still running then loses them"
    else:
        consequence = "they stay valid after the step's identity expired"
    return (
        f"bblogin: warning: the {what} last until {rfc3339(session_end)}, past the step token's expiry "
        f"{rfc3339(token_exp)}; {consequence}\n"
        f"  hint: ask for at most {max(token_exp - now, 0)} s (the token's remaining lifetime), or keep the step shorter than the token"
    )
