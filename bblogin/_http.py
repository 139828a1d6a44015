"""HTTP to identity providers: httpx with TLS always verified, bounded retries, and failures
mapped onto the bblogin error tree. Response bodies never reach an error message: an IdP's
error page may echo a code or a token back.
"""

from __future__ import annotations

import email.utils
import logging
import time
from typing import Any

import httpx

from bblogin import __version__
from bblogin._errors import IdPResponseError, IdPUnreachable, TLSError

log = logging.getLogger("bblogin.http")

RETRY_STATUSES = (429, 502, 503, 504)
MAX_RETRY_WAIT = 10.0


def make_client(*, ca_file: str | None = None, timeout: float = 10.0) -> httpx.Client:
    """A client for one IdP: certificate checks on (plus ``ca_file`` when given), no redirects."""
    verify: Any = True
    if ca_file:
        import ssl

        try:
            verify = ssl.create_default_context(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise TLSError(f"cannot load the CA file {ca_file}: {exc}", hint="pass a PEM file with --ca-file") from None
    return httpx.Client(verify=verify, timeout=timeout, follow_redirects=False, headers={"User-Agent": f"bblogin/{__version__}"})


def _retry_after(response: httpx.Response, attempt: int) -> float:
    value = response.headers.get("Retry-After", "")
    if value.isdigit():
        return float(value)
    if value:
        parsed = email.utils.parsedate_to_datetime(value) if "," in value else None
        if parsed is not None:
            return max(0.0, parsed.timestamp() - time.time())
    return 0.5 * 2**attempt


def send(client: httpx.Client, method: str, url: str, *, retries: int = 2, **kwargs: Any) -> httpx.Response:
    """Send with bounded retries on 429/502/503/504 (honouring Retry-After, 10 s at most in all)."""
    host = httpx.URL(url).host
    waited = 0.0
    for attempt in range(retries + 1):
        try:
            response = client.request(method, url, **kwargs)
        except httpx.ConnectError as exc:
            if "CERTIFICATE_VERIFY_FAILED" in str(exc) or "SSL" in str(exc):
                raise TLSError(f"TLS verification failed for {host}") from None
            raise IdPUnreachable(f"cannot connect to {host}") from None
        except httpx.TimeoutException:
            raise IdPUnreachable(f"{host} did not answer within {client.timeout.read or 0:g} s") from None
        except httpx.HTTPError as exc:
            raise IdPUnreachable(f"talking to {host} failed ({type(exc).__name__})") from None
        if response.status_code not in RETRY_STATUSES or attempt == retries:
            return response
        pause = _retry_after(response, attempt)
        if waited + pause > MAX_RETRY_WAIT:
            return response
        log.debug("%s answered %s; retrying in %.1f s", host, response.status_code, pause)
        time.sleep(pause)
        waited += pause
    raise AssertionError("unreachable")


def json_body(response: httpx.Response, what: str) -> dict[str, Any]:
    """The JSON object in ``response``, or IdPResponseError naming status and content type."""
    kind = response.headers.get("Content-Type", "no content type").split(";")[0]
    try:
        body = response.json()
    except ValueError:
        raise IdPResponseError(
            f"{what}: HTTP {response.status_code} with {kind} instead of JSON",
            hint="the identity provider or a proxy in front of it is failing; the cached tokens are untouched",
        ) from None
    if not isinstance(body, dict):
        raise IdPResponseError(f"{what}: HTTP {response.status_code}: the JSON is not an object")
    return body


def request_json(client: httpx.Client, method: str, url: str, what: str, **kwargs: Any) -> tuple[int, dict[str, Any], httpx.Headers]:
    response = send(client, method, url, **kwargs)
    return response.status_code, json_body(response, what), response.headers
