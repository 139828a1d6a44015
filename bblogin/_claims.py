"""Read a JWT's payload without verifying it: for display and for expiry checks on tokens that
were verified when they were stored. Never use this to decide whom to trust. Stdlib only.
"""

from __future__ import annotations

import base64
import json


def unverified_claims(token: str) -> dict | None:
    """The payload of a compact JWS, or None when ``token`` is not one (opaque tokens)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, TypeError):
        return None
    return claims if isinstance(claims, dict) else None
