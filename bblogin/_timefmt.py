"""Time formatting shared by the protocol adapters and the CLI. Stdlib only."""

import time


LAST_SECOND = 253_402_300_799  # 9999-12-31T23:59:59Z: gmtime refuses much beyond (any int can come in a signed token)


def _gmtime(ts: int) -> time.struct_time:
    """``time.gmtime``, with ``ts`` held within 1970..9999 (beyond, it raises OverflowError/OSError)."""
    return time.gmtime(min(max(ts, 0), LAST_SECOND))


def rfc3339(ts: int) -> str:
    """Unix seconds as RFC 3339 UTC (``2026-11-22T13:45:00Z``), as kubectl and git expect."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", _gmtime(ts))


def describe_expiry(ts: int | None, now: int) -> str:
    """``valid 42 min (until 14:27 UTC)`` / ``expired 3 h ago`` / ``unknown``."""
    if ts is None:
        return "unknown"
    delta = ts - now
    amount = _amount(abs(delta))
    when = time.strftime("%Y-%m-%d %H:%M UTC", _gmtime(ts))
    return f"valid {amount} more (until {when})" if delta > 0 else f"expired {amount} ago ({when})"


def _amount(span: int) -> str:
    return f"{span} s" if span < 120 else f"{span // 60} min" if span < 7200 else f"{span // 3600} h" if span < 172800 else f"{span // 86400} d"


def relative(ts: int, now: int) -> str:
    """``in 23 h`` / ``5 min ago`` / ``now``."""
    if ts == now:
        return "now"
    return f"in {_amount(ts - now)}" if ts > now else f"{_amount(now - ts)} ago"
