"""A small disk cache for IdP documents (discovery, JWKS) that honours Cache-Control."""

from __future__ import annotations

import hashlib
import os
import re
import time
from typing import Any

import httpx

from bblogin import _files, _http, _paths

DEFAULT_TTL = 3600  # dex sends no Cache-Control on discovery: an hour, refetched on any doubt


def _max_age(header: str, default: int) -> int | None:
    """Seconds the answer may be reused: None for no-store, 0 for no-cache, else max-age/default."""
    directives = {d.strip().split("=")[0].lower(): d.strip() for d in header.split(",") if d.strip()}
    if "no-store" in directives:
        return None
    if "no-cache" in directives:
        return 0
    if "max-age" in directives:
        m = re.match(r"max-age\s*=\s*\"?(\d+)", directives["max-age"], re.I)
        if m:
            return int(m.group(1))
    return default


def _path(url: str) -> str:
    return os.path.join(_paths.cache_dir(), "http", hashlib.sha256(url.encode()).hexdigest()[:24] + ".json")


def get_json(client: httpx.Client, url: str, what: str, *, force: bool = False, default_ttl: int = DEFAULT_TTL) -> dict[str, Any]:
    """The JSON document at ``url`` from the cache while fresh, else from the network."""
    path = _path(url)
    if not force:
        cached = _files.read_json(path)
        if isinstance(cached, dict) and cached.get("url") == url and cached.get("expires_at", 0) > time.time() and isinstance(cached.get("body"), dict):
            return cached["body"]
    response = _http.send(client, "GET", url)
    if response.status_code != 200:
        raise _http_error(response, what)
    body = _http.json_body(response, what)
    ttl = _max_age(response.headers.get("Cache-Control", ""), default_ttl)
    if ttl:
        _files.atomic_write_json(path, {"url": url, "expires_at": int(time.time()) + ttl, "body": body})
    return body


def _http_error(response: httpx.Response, what: str) -> Exception:
    from bblogin._errors import IdPResponseError

    return IdPResponseError(f"{what}: HTTP {response.status_code} from {response.request.url.host}", hint="check the issuer URL; the cached tokens are untouched")
