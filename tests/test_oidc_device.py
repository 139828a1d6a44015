"""The device flow against a scripted token endpoint (pytest-httpserver), with the clock and
sleep injected: polling cadence, slow_down, expiry, denial, the prompt, Ctrl-C."""

from __future__ import annotations

import io
import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from werkzeug import Request, Response

from bblogin._errors import Cancelled, LoginFailed, LoginTimeout, OAuthError
from bblogin._http import make_client
from bblogin._oidc._device import DevicePrompt, run_device_flow
from bblogin._oidc._discovery import ProviderMetadata
from bblogin._oidc._grants import ClientAuth
from tests.fixtures.oidc import MiniIdP

T0 = 1_700_000_000.0
COMPLETE = "https://idp.example/device?user_code=BCDF-GHJK"


class FakeTime:
    def __init__(self) -> None:
        self.now = T0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Script:
    """The token endpoint's answers in order (the last one repeats); records the poll times."""

    def __init__(self, idp: MiniIdP, fake: FakeTime, answers: list[tuple[int, dict[str, Any]]], device: dict[str, Any] | None = None) -> None:
        self.polls: list[float] = []
        self.answers = answers
        idp.server.expect_request("/idp/device/code", method="POST").respond_with_json(
            device
            or {
                "device_code": "dc-SECRET",
                "user_code": "BCDF-GHJK",
                "verification_uri": "https://idp.example/device",
                "verification_uri_complete": COMPLETE,
                "expires_in": 300,
                "interval": 5,
            }
        )

        def token(request: Request) -> Response:
            self.polls.append(fake.now - T0)
            status, body = self.answers[min(len(self.polls), len(self.answers)) - 1]
            return Response(json.dumps(body), status=status, content_type="application/json")

        idp.server.expect_request("/idp/token", method="POST").respond_with_handler(token)


PENDING = (400, {"error": "authorization_pending"})
SLOW_DOWN = (400, {"error": "slow_down"})
TOKENS = (200, {"access_token": "at", "token_type": "bearer", "expires_in": 60, "id_token": "h.p.s"})


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with make_client(timeout=5) as client:
        yield client


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


@pytest.fixture
def metadata(mini_idp: MiniIdP) -> ProviderMetadata:
    return ProviderMetadata.from_document(mini_idp.document(), issuer=mini_idp.issuer, source="test")


def run(http: httpx.Client, metadata: ProviderMetadata, fake: FakeTime, **kwargs: Any):
    kwargs.setdefault("out", io.StringIO())
    kwargs.setdefault("open_browser", False)
    return run_device_flow(http, metadata, ClientAuth("bblogin"), scope="openid email", sleep=fake.sleep, clock=fake.clock, **kwargs)


def test_polls_at_the_interval_and_slows_down_when_told(mini_idp: MiniIdP, http, metadata, fake: FakeTime) -> None:
    script = Script(mini_idp, fake, [PENDING, PENDING, SLOW_DOWN, PENDING, TOKENS])
    tokens = run(http, metadata, fake)
    assert tokens.access_token == "at" and tokens.id_token == "h.p.s"
    assert script.polls == [5, 10, 15, 25, 35]  # interval 5, then 10 after slow_down


def test_expired_token_ends_the_login(mini_idp: MiniIdP, http, metadata, fake: FakeTime) -> None:
    Script(mini_idp, fake, [PENDING, (400, {"error": "expired_token"})])
    with pytest.raises(LoginFailed, match="the code expired") as info:
        run(http, metadata, fake)
    assert info.value.exit_code == 8 and "new code" in (info.value.hint or "")


def test_access_denied_ends_the_login(mini_idp: MiniIdP, http, metadata, fake: FakeTime) -> None:
    Script(mini_idp, fake, [(400, {"error": "access_denied"})])
    with pytest.raises(LoginFailed, match="denied"):
        run(http, metadata, fake)


def test_other_errors_surface_as_oauth_errors(mini_idp: MiniIdP, http, metadata, fake: FakeTime) -> None:
    Script(mini_idp, fake, [(401, {"error": "invalid_client"})])
    with pytest.raises(OAuthError, match="invalid_client"):
        run(http, metadata, fake)


def test_the_codes_own_expiry_stops_polling(mini_idp: MiniIdP, http, metadata, fake: FakeTime) -> None:
    device = {"device_code": "d", "user_code": "U", "verification_uri": "https://idp.example/device", "expires_in": 12, "interval": 5}
    script = Script(mini_idp, fake, [PENDING], device)
    with pytest.raises(LoginFailed, match="the code expired"):
        run(http, metadata, fake)
    assert script.polls == [5, 10] and fake.now - T0 == pytest.approx(12)


def test_the_login_time_limit_is_a_timeout(mini_idp: MiniIdP, http, metadata, fake: FakeTime) -> None:
    script = Script(mini_idp, fake, [PENDING])
    with pytest.raises(LoginTimeout, match="not approved within 20 s"):
        run(http, metadata, fake, timeout=20)
    assert script.polls == [5, 10, 15, 20]


def test_ctrl_c_cancels(mini_idp: MiniIdP, http, metadata, fake: FakeTime) -> None:
    Script(mini_idp, fake, [PENDING])

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(Cancelled):
        run_device_flow(http, metadata, ClientAuth("bblogin"), scope="openid", out=io.StringIO(), open_browser=False, sleep=interrupted, clock=fake.clock)


def test_prompt_on_a_pipe_user_code_first_no_qr_no_countdown(mini_idp: MiniIdP, http, metadata, fake: FakeTime) -> None:
    Script(mini_idp, fake, [TOKENS])
    out = io.StringIO()
    run(http, metadata, fake, out=out)
    text = out.getvalue()
    assert text.index("BCDF-GHJK") < text.index("https://idp.example/device") < text.index(COMPLETE)
    assert "\r" not in text and "█" not in text and "▀" not in text
    assert "dc-SECRET" not in text
    assert fake.sleeps == [5]  # one sleep per interval when nobody watches a countdown


def test_prompt_on_a_terminal_has_a_qr_code_and_a_countdown(mini_idp: MiniIdP, http, metadata, fake: FakeTime) -> None:
    Script(mini_idp, fake, [PENDING, TOKENS])
    out = Terminal()
    run(http, metadata, fake, out=out)
    text = out.getvalue()
    assert any(block in text for block in "█▀▄")  # segno's compact terminal rendering
    assert "\rWaiting for you to approve the sign-in… 4:59 left (Ctrl-C to cancel)" in text
    assert "4:51 left" in text and text.endswith("\r\033[K")  # updated each second, cleared at the end
    assert set(fake.sleeps) == {1.0}


def test_a_ui_renders_the_prompt_itself(mini_idp: MiniIdP, http, metadata, fake: FakeTime) -> None:
    Script(mini_idp, fake, [TOKENS])
    prompts: list[DevicePrompt] = []
    out = Terminal()
    run(http, metadata, fake, out=out, on_prompt=prompts.append)
    assert prompts == [DevicePrompt("BCDF-GHJK", "https://idp.example/device", COMPLETE, T0 + 300)]
    assert out.getvalue() == ""


def test_the_browser_opens_once_on_the_complete_uri(mini_idp: MiniIdP, http, metadata, fake: FakeTime, tmp_path: Path, monkeypatch, fresh_webbrowser) -> None:
    record = tmp_path / "opened"
    script = tmp_path / "browser"
    script.write_text(f"#!/bin/sh\necho \"$1\" >> {record}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("BROWSER", f"{script} %s")
    Script(mini_idp, fake, [TOKENS])
    run(http, metadata, fake, open_browser=True)
    assert record.read_text().splitlines() == [COMPLETE]


def test_no_device_endpoint(http, mini_idp: MiniIdP, fake: FakeTime) -> None:
    metadata = ProviderMetadata.from_document(mini_idp.document(device_authorization_endpoint=None), issuer=mini_idp.issuer, source="test")
    with pytest.raises(LoginFailed, match="offers no device-code login"):
        run(http, metadata, fake)
