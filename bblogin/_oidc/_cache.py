"""A small disk cache for the IdP's public documents (discovery, JWKS) that honours Cache-Control.

Each document lives in ``<cache dir>/oidc/<sha256(url)[:24]>.json`` (atomic 0600 writes):

- ``no-store``: never written, and any older copy is deleted;
- ``max-age=N`` (minus ``Age``), else ``Expires`` (minus the answer's ``Date``: immune to this
  machine's clock skew): fresh for that long;
- neither: fresh for the caller's default (dex sends nothing on discovery: 1 hour there);
- ``no-cache`` / ``must-revalidate``: fresh only for max-age (0 for no-cache) and never used stale.

A stale copy may stand in for a document the IdP cannot serve right now (unreachable, 5xx) when
the caller allows it (discovery does: endpoints change rarely, and the token endpoint's own answer
is what decides whether a refresh works), for at most :data:`MAX_STALE` seconds and never against
``must-revalidate``/``no-cache``. Nothing here is secret: these documents are public.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import logging
import os
import re
import time
from typing import Any

import httpx

from bblogin import _files, _http, _paths
from bblogin._clock import parse_date
from bblogin._errors import IdPError, IdPResponseError, StorageError
from bblogin._record import record

log = logging.getLogger("bblogin.oidc")

MAX_STALE = 7 * 86400


@record(frozen=True)
class Freshness:
    ttl: int | None  # seconds the answer is fresh; None: no-store
    stale_ok: bool  # may stand in when the IdP is down


def freshness(headers: httpx.Headers, default_ttl: int, now: float) -> Freshness:
    """What RFC 9111 lets a private cache do with an answer carrying ``headers``."""
    directives: dict[str, str] = {}
    for part in headers.get("Cache-Control", "").split(","):
        name, _, value = part.strip().partition("=")
        if name:
            directives[name.strip().lower()] = value.strip().strip('"')
    if "no-store" in directives:
        return Freshness(None, False)
    stale_ok = not ({"no-cache", "must-revalidate"} & directives.keys())
    if "no-cache" in directives:
        return Freshness(0, False)
    age = int(headers["Age"]) if headers.get("Age", "").isdigit() else 0
    if re.fullmatch(r"\d+", directives.get("max-age", "")):
        return Freshness(max(0, int(directives["max-age"]) - age), stale_ok)
    if "Expires" in headers:
        try:
            expires = email.utils.parsedate_to_datetime(headers["Expires"]).timestamp()
        except (TypeError, ValueError):
            expires = 0.0  # an invalid Expires means "already expired" (RFC 9111 5.3)
        # RFC 9111 4.2.1: Expires minus the server's own Date, so this machine's clock skew cancels out
        date = parse_date(headers.get("Date"))
        return Freshness(max(0, int(expires - (date if date is not None else now))), stale_ok)
    return Freshness(default_ttl, stale_ok)


def _path(url: str) -> str:
    return os.path.join(_paths.cache_dir(), "oidc", hashlib.sha256(url.encode()).hexdigest()[:24] + ".json")


def _read(url: str) -> dict[str, Any] | None:
    entry = _files.read_json(_path(url))
    if (
        isinstance(entry, dict)
        and entry.get("url") == url
        and isinstance(entry.get("body"), dict)
        and isinstance(entry.get("expires_at"), (int, float))
        and isinstance(entry.get("fetched_at"), (int, float))
    ):
        return entry
    return None


def get_json(http: httpx.Client, url: str, what: str, *, default_ttl: int, allow_stale: bool = False, force: bool = False) -> dict[str, Any]:
    """The JSON object at ``url``: the cached copy while fresh (unless ``force``), else fetched."""
    now = time.time()
    cached = _read(url)
    if cached is not None and not force and cached["expires_at"] > now:
        return dict(cached["body"])
    try:
        response = _http.request(http, "GET", url, what=what)
        body = _http.parse_json(response, what) if response.status_code == 200 else None
    except IdPError as exc:  # transient: unreachable, TLS, 429/5xx, a broken body
        if not (allow_stale and cached is not None and cached.get("stale_ok") is True and now - cached["fetched_at"] < MAX_STALE):
            raise
        log.debug("%s unavailable (%s); using the copy cached %d s ago", url, exc.message, int(now - cached["fetched_at"]))
        return dict(cached["body"])
    if body is None:
        raise IdPResponseError(
            f"{what}: {response.request.url.host} answered HTTP {response.status_code} for {url}",
            hint="check the issuer URL in the profile; the cached tokens are untouched",
        )
    fresh = freshness(response.headers, default_ttl, now)
    if fresh.ttl is None:
        with contextlib.suppress(OSError):
            os.unlink(_path(url))
    elif fresh.ttl > 0 or fresh.stale_ok:
        entry = {"url": url, "fetched_at": now, "expires_at": now + fresh.ttl, "stale_ok": fresh.stale_ok, "body": body}
        try:
            _files.atomic_write_json(_path(url), entry)
        except StorageError as exc:  # a cache is an optimisation: never fail a login over it
            log.debug("not caching %s: %s", url, exc.message)
    return body
