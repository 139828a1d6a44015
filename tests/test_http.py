"""bblogin._http against real servers on 127.0.0.1: every failure maps onto the error tree,
and no response body ever reaches a message."""

from __future__ import annotations

import email.utils
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from bblogin import __version__
from bblogin._errors import IdPResponseError, IdPUnreachable, TLSError
from bblogin._http import make_client, request, request_json, retry_delay
from tests.fixtures.oidc import TLSServer

SECRET_BODY = "<html><body>500: refresh_token=SECRET-VALUE-123 echoed</body></html>"


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with make_client(timeout=5) as c:
        yield c


def test_json_answer_with_status_and_headers_and_our_user_agent(httpserver: HTTPServer, client: httpx.Client) -> None:
    httpserver.expect_request("/x", method="POST", headers={"User-Agent": f"bblogin/{__version__}"}).respond_with_json({"error": "invalid_grant"}, status=400, headers={"X-Test": "1"})
    status, body, headers = request_json(client, "POST", httpserver.url_for("/x"), data={"a": "b"})
    assert (status, body, headers["X-Test"]) == (400, {"error": "invalid_grant"}, "1")


def test_html_error_page_is_an_idp_response_error_without_the_body(httpserver: HTTPServer, client: httpx.Client) -> None:
    httpserver.expect_request("/token").respond_with_data(SECRET_BODY, status=500, content_type="text/html")
    with pytest.raises(IdPResponseError) as info:
        request_json(client, "POST", httpserver.url_for("/token"), what="refreshing")
    message = info.value.render()
    assert "HTTP 500" in message and "text/html" in message and "127.0.0.1" in message
    assert "SECRET" not in message and "<html>" not in message
    assert len(httpserver.log) == 1  # a plain 500 is not retried


def test_html_with_status_200_is_not_json(httpserver: HTTPServer, client: httpx.Client) -> None:
    httpserver.expect_request("/d").respond_with_data(SECRET_BODY, content_type="text/html; charset=utf-8")
    with pytest.raises(IdPResponseError, match=r"HTTP 200 with text/html that is not valid JSON") as info:
        request_json(client, "GET", httpserver.url_for("/d"))
    assert "SECRET" not in info.value.render()


def test_truncated_json_is_an_idp_response_error(httpserver: HTTPServer, client: httpx.Client) -> None:
    httpserver.expect_request("/token").respond_with_data('{"access_token": "SECRET-VALUE-123", "id_tok', content_type="application/json")
    with pytest.raises(IdPResponseError, match="application/json that is not valid JSON") as info:
        request_json(client, "POST", httpserver.url_for("/token"))
    assert "SECRET" not in info.value.render()


def test_json_that_is_not_an_object(httpserver: HTTPServer, client: httpx.Client) -> None:
    httpserver.expect_request("/d").respond_with_json(["a"])
    with pytest.raises(IdPResponseError, match="not an object"):
        request_json(client, "GET", httpserver.url_for("/d"))


def test_body_cut_short_by_the_server_is_an_idp_response_error(client: httpx.Client) -> None:
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"access_token": "SECRET')

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with pytest.raises(IdPResponseError, match="closed the connection before its answer was complete") as info:
            request_json(client, "POST", f"http://127.0.0.1:{listener.getsockname()[1]}/token")
        assert "SECRET" not in info.value.render()
    finally:
        thread.join(5)
        listener.close()


def test_429_with_retry_after_is_retried_then_succeeds(httpserver: HTTPServer, client: httpx.Client) -> None:
    httpserver.expect_ordered_request("/t").respond_with_json({"error": "slow"}, status=429, headers={"Retry-After": "1"})
    httpserver.expect_ordered_request("/t").respond_with_json({"ok": True})
    started = time.monotonic()
    status, body, _ = request_json(client, "POST", httpserver.url_for("/t"))
    assert (status, body) == (200, {"ok": True})
    assert time.monotonic() - started >= 1.0  # Retry-After honoured
    assert len(httpserver.log) == 2


def test_retry_after_beyond_the_total_cap_fails_at_once(httpserver: HTTPServer, client: httpx.Client) -> None:
    httpserver.expect_request("/t").respond_with_data("busy", status=429, headers={"Retry-After": "3600"})
    started = time.monotonic()
    with pytest.raises(IdPResponseError, match="rate-limiting") as info:
        request(client, "POST", httpserver.url_for("/t"))
    assert time.monotonic() - started < 2
    assert len(httpserver.log) == 1 and "wait" in (info.value.hint or "")


def test_503_is_retried_with_backoff_then_reported(httpserver: HTTPServer, client: httpx.Client) -> None:
    httpserver.expect_request("/t").respond_with_json({"error": "temporarily_unavailable"}, status=503)
    with pytest.raises(IdPResponseError, match=r"HTTP 503 \(temporarily_unavailable\)"):
        request(client, "POST", httpserver.url_for("/t"), retries=1)
    assert len(httpserver.log) == 2


def test_retry_after_forms() -> None:
    def response(value: str | None) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": value} if value is not None else {})

    assert retry_delay(response("7"), 0) == 7.0
    assert retry_delay(response(None), 0) == 0.5 and retry_delay(response(None), 2) == 2.0
    assert retry_delay(response("garbage"), 1) == 1.0
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert retry_delay(response(date), 0, now=1_000_000) == pytest.approx(30)


def test_redirect_is_never_followed(httpserver: HTTPServer, client: httpx.Client) -> None:
    httpserver.expect_request("/token").respond_with_response(Response(status=302, headers={"Location": "https://evil.example/collect"}))
    httpserver.expect_request("/collect").respond_with_json({"access_token": "x"})
    with pytest.raises(IdPResponseError, match=r"HTTP 302, a redirect to evil\.example") as info:
        request_json(client, "POST", httpserver.url_for("/token"), data={"code": "c"})
    assert "issuer" in (info.value.hint or "")
    assert len(httpserver.log) == 1


def test_connection_refused_names_the_host() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with make_client(timeout=2) as c, pytest.raises(IdPUnreachable, match=r"cannot connect to 127\.0\.0\.1: Connection refused") as info:
        request(c, "GET", f"http://127.0.0.1:{port}/.well-known/openid-configuration")
    assert "network" in (info.value.hint or "")


def test_a_server_that_never_answers_times_out_quickly() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent, make_client(timeout=0.3) as c:
        started = time.monotonic()
        with pytest.raises(IdPUnreachable, match=r"127\.0\.0\.1 did not answer: timed out after 0\.3 s"):
            request(c, "GET", f"http://127.0.0.1:{silent.getsockname()[1]}/")
        assert time.monotonic() - started < 2


def test_self_signed_certificate_is_refused_naming_it_the_trust_store_and_the_ca_file_hint(tls_server: TLSServer) -> None:
    tls_server.server.expect_request("/d").respond_with_json({"ok": True})
    with make_client(timeout=5) as c, pytest.raises(TLSError) as info:
        request_json(c, "GET", tls_server.server.url_for("/d"))
    message = info.value.message
    assert "TLS certificate of 127.0.0.1 (subject CN=bblogin test 127.0.0.1, issued by CN=bblogin test 127.0.0.1, self-signed) is not trusted: self-signed certificate" in message
    assert "checked against the OS trust store (" in message
    assert "--ca-file" in (info.value.hint or "") and "update-ca-certificates" in (info.value.hint or "")
    assert len(tls_server.server.log) == 0  # reading the refused certificate sent no request


def test_ca_file_makes_the_private_ca_trusted(tls_server: TLSServer) -> None:
    tls_server.server.expect_request("/d").respond_with_json({"ok": True})
    assert tls_server.server.url_for("/d").startswith("https://127.0.0.1:")
    with make_client(ca_file=tls_server.ca_file, timeout=5) as c:
        assert request_json(c, "GET", tls_server.server.url_for("/d"))[1] == {"ok": True}


def test_unreadable_ca_file(tmp_path) -> None:
    with pytest.raises(TLSError, match="cannot use the CA file .*missing.pem"):
        make_client(ca_file=str(tmp_path / "missing.pem"))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(TLSError, match="not a PEM certificate bundle"):
        make_client(ca_file=str(garbage))


def test_a_budget_sends_each_request_once_and_shares_one_deadline_from_the_first(httpserver: HTTPServer, client: httpx.Client) -> None:
    """An early refresh (#24): no retry against a 503, and a hanging server costs what is left of
    the budget, counted from the first request (imports before it do not spend it)."""
    from bblogin._http import budget

    seen: list[str] = []

    def busy(request: object) -> Response:
        seen.append("busy")
        return Response("", status=503, headers={"Retry-After": "7"})

    def slow(request: object) -> Response:
        seen.append("slow")
        time.sleep(2.5)
        return Response("late")

    httpserver.expect_request("/busy").respond_with_handler(busy)
    httpserver.expect_request("/slow").respond_with_handler(slow)
    httpserver.expect_request("/down").respond_with_data("", status=503)
    with budget(0.8):
        time.sleep(1.0)  # before the first request: not counted
        with pytest.raises(IdPResponseError) as refused:
            request(client, "GET", httpserver.url_for("/busy"))
        start = time.monotonic()
        with pytest.raises(IdPUnreachable, match="timed out"):
            request(client, "GET", httpserver.url_for("/slow"))
        assert time.monotonic() - start < 1.5
        with pytest.raises(IdPUnreachable, match="time for an early refresh was spent"):
            request(client, "GET", httpserver.url_for("/busy"))
    assert refused.value.retry_after == 7
    assert seen == ["busy", "slow"]  # the 503 once: no retries; the last one not sent
    with pytest.raises(IdPResponseError):
        request(client, "GET", httpserver.url_for("/down"), retries=1)  # outside a budget: retried
    assert [entry[0].path for entry in httpserver.log].count("/down") == 2
