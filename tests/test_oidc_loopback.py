"""The loopback listener over real HTTP (urllib as the browser): every callback case, and the
port released whatever happened."""

from __future__ import annotations

import signal
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest

from bblogin._errors import Cancelled, LoginFailed, LoginTimeout, UsageError
from bblogin._oidc._loopback import LoopbackListener

STATE = "state-0123456789"
CODE = "code-SECRET-abcdef"


def get(url: str, method: str = "GET") -> tuple[int, str]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def callback(listener: LoopbackListener, **params: str) -> tuple[int, str]:
    return get(listener.redirect_uri + "?" + urllib.parse.urlencode(params))


def in_background(fn, *args, **kwargs) -> threading.Thread:
    thread = threading.Thread(target=fn, args=args, kwargs=kwargs, daemon=True)
    thread.start()
    return thread


def assert_port_free(port: int) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))  # raises if the listener still held it


@pytest.fixture
def listener() -> Iterator[LoopbackListener]:
    with LoopbackListener() as lst:
        yield lst
    assert_port_free(lst.port)


def test_redirect_uri_is_the_ipv4_loopback_literal(listener: LoopbackListener) -> None:
    assert listener.redirect_uri == f"http://127.0.0.1:{listener.port}/callback"
    assert listener._server.socket.getsockname()[0] == "127.0.0.1"


def test_only_the_matching_callback_completes_the_login(listener: LoopbackListener, capfd) -> None:
    results: dict[str, object] = {}
    waiter = in_background(lambda: results.setdefault("code", listener.wait(STATE, 10)))
    base = f"http://127.0.0.1:{listener.port}"

    status, page = get(f"{base}/favicon.ico")
    assert (status, page) == (404, "")
    status, page = get(f"{base}/other?code={CODE}&state={STATE}")
    assert status == 404 and "Nothing here" in page
    status, page = callback(listener, code=CODE, state="someone-elses")
    assert status == 400 and "does not belong to the login in progress" in page
    status, page = callback(listener, code=CODE)
    assert status == 400 and "does not belong to the login in progress" in page
    status, page = get(listener.redirect_uri + f"?code={CODE}&state={STATE}", method="POST")
    assert status == 405 and "code" not in results
    assert get(listener.redirect_uri, method="HEAD")[0] == 405

    status, page = callback(listener, code=CODE, state=STATE)
    assert status == 200 and "You are signed in" in page and "close this tab" in page
    waiter.join(5)
    assert results["code"] == CODE

    status, page = callback(listener, code="second-code", state=STATE)
    assert status == 200 and "already finished" in page and "close this tab" in page
    assert listener.wait(STATE, 1) == CODE  # the first code stays the answer

    pages = capfd.readouterr()
    assert CODE not in pages.out + pages.err  # nothing logged


def test_pages_never_show_the_code_and_carry_safe_headers(listener: LoopbackListener) -> None:
    in_background(listener.wait, STATE, 10)
    with urllib.request.urlopen(listener.redirect_uri + f"?code={CODE}&state={STATE}", timeout=5) as response:
        page = response.read().decode()
        assert response.headers["Cache-Control"] == "no-store" and response.headers["Referrer-Policy"] == "no-referrer"
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert CODE not in page and "<script" not in page and "<style>" in page


def test_access_denied_ends_the_login_with_the_idps_error(listener: LoopbackListener) -> None:
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            listener.wait(STATE, 10)
        except LoginFailed as exc:
            errors.append(exc)

    waiter = in_background(wait)
    status, page = callback(listener, state=STATE, error="access_denied", error_description="The user <b>denied</b> access")
    waiter.join(5)
    assert status == 200 and "access_denied" in page and "&lt;b&gt;denied" in page and "<b>" not in page
    [error] = errors
    assert isinstance(error, LoginFailed) and error.exit_code == 8
    assert "access_denied: The user <b>denied</b> access" in error.message
    assert "already finished" in callback(listener, code=CODE, state=STATE)[1]


def test_the_matching_state_without_code_or_error_ends_the_login(listener: LoopbackListener) -> None:
    errors: list[BaseException] = []
    waiter = in_background(lambda: errors.append(pytest.raises(LoginFailed, listener.wait, STATE, 10).value))
    status, page = callback(listener, state=STATE)
    waiter.join(5)
    assert status == 400 and "without a sign-in code" in page
    assert "without a code" in errors[0].args[0]


def test_repeated_parameters_are_refused(listener: LoopbackListener) -> None:
    answers: list[tuple[int, str]] = []
    browser = in_background(lambda: answers.append(get(listener.redirect_uri + f"?state={STATE}&code=a&code=b")))
    with pytest.raises(LoginTimeout):
        listener.wait(STATE, 0.5)
    browser.join(5)
    assert answers[0][0] == 400 and "does not belong" in answers[0][1]


def test_a_callback_before_wait_is_held_until_wait_is_called(listener: LoopbackListener) -> None:
    answers: list[tuple[int, str]] = []
    browser = in_background(lambda: answers.append(callback(listener, code=CODE, state=STATE)))
    time.sleep(0.3)  # the IdP was faster than the terminal
    assert listener.wait(STATE, 5) == CODE
    browser.join(5)
    assert answers[0][0] == 200


def test_an_idle_preconnection_does_not_stall_the_callback(listener: LoopbackListener) -> None:
    with socket.create_connection(("127.0.0.1", listener.port)):  # a browser's speculative connection
        in_background(callback, listener, code=CODE, state=STATE)
        started = time.monotonic()
        assert listener.wait(STATE, 5) == CODE
        assert time.monotonic() - started < 2


def test_timeout_releases_the_port() -> None:
    listener = LoopbackListener()
    started = time.monotonic()
    with pytest.raises(LoginTimeout, match="did not come back within 0.3 s") as info, listener:
        listener.wait(STATE, 0.3)
    assert 0.3 <= time.monotonic() - started < 2 and info.value.exit_code == 9
    assert_port_free(listener.port)


def test_a_timeout_after_a_foreign_state_says_it_was_refused(listener: LoopbackListener) -> None:
    in_background(lambda: (time.sleep(0.1), callback(listener, code="injected", state="someone-elses")))
    with pytest.raises(LoginFailed, match="1 callback\\(s\\) with a foreign or missing state were refused") as info:
        listener.wait(STATE, 1.0)  # the foreign callback did not end the wait: only the timeout did
    assert info.value.exit_code == 8 and "injected" not in info.value.render()


def test_ctrl_c_cancels_and_releases_the_port() -> None:
    listener = LoopbackListener()
    timer = threading.Timer(0.2, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT))  # a real Ctrl-C
    timer.start()
    started = time.monotonic()
    with pytest.raises(Cancelled) as info, listener:
        listener.wait(STATE, 10)
    assert info.value.exit_code == 130 and time.monotonic() - started < 2
    assert_port_free(listener.port)


def test_a_fixed_port_is_reusable_right_after_a_login() -> None:
    with LoopbackListener() as first:
        port = first.port
        in_background(callback, first, code=CODE, state=STATE)
        assert first.wait(STATE, 5) == CODE
    with LoopbackListener(port) as second:  # connections in TIME_WAIT do not block the next login
        in_background(callback, second, code="code-2", state="state-2")
        assert second.wait("state-2", 5) == "code-2"


def test_a_port_in_use_is_a_clear_error() -> None:
    with LoopbackListener() as busy, pytest.raises(UsageError, match=f"cannot listen on 127.0.0.1:{busy.port}") as info:
        LoopbackListener(busy.port)
    assert "--listen" in (info.value.hint or "")


def test_close_is_idempotent_and_frees_held_callbacks() -> None:
    listener = LoopbackListener()
    answers: list[tuple[int, str]] = []
    browser = in_background(lambda: answers.append(callback(listener, code=CODE, state=STATE)))
    time.sleep(0.2)
    listener.close()
    listener.close()
    browser.join(5)
    assert answers and answers[0][0] == 400  # no login was waiting for it
    assert_port_free(listener.port)
