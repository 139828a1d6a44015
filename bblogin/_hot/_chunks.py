"""Splitting long secrets across keyring entries, and putting them back together safely.

Windows Credential Manager holds about 2.5 KB (UTF-16) per entry and Bitbucket's rotating
refresh tokens are longer. A value over CHUNK_SIZE characters is stored as a header
``bblogin-chunks:1:<n>:<sha256 hex 16>`` plus n parts; the digest makes a torn write (a crash
between writing parts and header) read as "missing", never as a wrong token. Stdlib only.
"""

SERVICE = "bblogin"  # the keyring service name every entry lives under
CHUNK_SIZE = 1000
HEADER_PREFIX = "bblogin-chunks:1:"


def entry_name(account_id: str, kind: str, part: int | None = None) -> str:
    return f"{account_id}/{kind}" if part is None else f"{account_id}/{kind}/{part}"


def digest(value: str) -> str:
    from bblogin._hot._mirror import _sha256  # the C module, not hashlib: ID tokens with groups are often chunked

    return str(_sha256()(value.encode()).hexdigest()[:16])


def split(value: str) -> tuple[str, list[str]]:
    """(what goes under the main name, the parts) — no parts when the value fits in one entry."""
    if len(value) <= CHUNK_SIZE and not value.startswith(HEADER_PREFIX):
        return value, []
    parts = [value[i : i + CHUNK_SIZE] for i in range(0, len(value), CHUNK_SIZE)]
    return f"{HEADER_PREFIX}{len(parts)}:{digest(value)}", parts


def parse_header(stored: str) -> tuple[int, str] | None:
    """(number of parts, digest) when ``stored`` is a chunk header, else None."""
    if not stored.startswith(HEADER_PREFIX):
        return None
    count, _, want = stored[len(HEADER_PREFIX) :].partition(":")
    if not count.isdigit() or len(want) != 16:
        return None
    return int(count), want


def join(header: tuple[int, str], parts: list[str | None]) -> str | None:
    """The value, or None when a part is missing or the digest disagrees (a torn write)."""
    if len(parts) != header[0] or any(p is None for p in parts):
        return None
    value = "".join(p for p in parts if p is not None)
    return value if digest(value) == header[1] else None
