"""-v/--verbose logging to stderr, with a last line of defence against printing a token.

bblogin never passes token values to the logger; the filter below also masks anything shaped
like a JWT or a long opaque secret, in case a library (httpx, authlib) logs one.
"""

from __future__ import annotations

import logging
import re

_SECRETISH = re.compile(
    r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"  # JWS compact serialisation
    r"|(?i:(?:access_token|refresh_token|id_token|code|client_secret|password|subject_token|device_code)=)[^&\s\"']+"
)


def redact(text: str) -> str:
    return _SECRETISH.sub(lambda m: m.group(0).split("=", 1)[0] + "=[redacted]" if "=" in m.group(0) else "[redacted-jwt]", text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        return True


def configure(verbosity: int) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("bblogin: %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    logging.getLogger("bblogin").setLevel(logging.DEBUG)
    # httpx/httpcore request lines only at -vv; they carry URLs, never bodies
    root.setLevel(logging.DEBUG if verbosity > 1 else logging.WARNING)
