"""A person at a browser, inside the process: enters a device's user code at dex, follows
dex's redirects, picks the first connector, logs in at the Bitbucket double and answers the
approval screen, exactly through the same handlers a real browser reaches (but unlogged)."""

from __future__ import annotations

from collections.abc import Callable

from bblogin._record import record
from bblogin.devidp._bitbucket import AUTHORIZE_PATH
from bblogin.devidp._web import (
    HTMLError,
    RedirectedError,
    Reply,
    Request,
    TokenError,
    go_encode,
    internal_request,
)

_MAX_STEPS = 12


@record(frozen=True)
class Outcome:
    status: int
    message: str  # what the last page said


def device_login(dispatch: Callable[[Request], Reply], issuer_path: str, connector_id: str, user_code: str, username: str, *, approve: bool, approval_screen: bool) -> Outcome:
    """Walk the device login for ``username``. ``approve=False`` declines: at dex's approval
    screen when there is one, else at Bitbucket."""
    request = internal_request("POST", issuer_path + "/device/auth/verify_code", [("user_code", user_code)])
    for _ in range(_MAX_STEPS):
        try:
            reply = dispatch(request)
        except HTMLError as exc:
            return Outcome(exc.status, exc.message)
        except TokenError as exc:
            return Outcome(exc.status, f"{exc.error}: {exc.description}")
        except RedirectedError as exc:
            return Outcome(303, f"sent back to the client with {exc.error}: {exc.description}")
        location = reply.headers.get("Location")
        if reply.status in (302, 303) and location:
            request = internal_request("GET", location)
        elif reply.status == 200 and request.path == issuer_path + "/auth":  # the connector chooser
            request = internal_request("GET", f"{issuer_path}/auth/{connector_id}?{go_encode(request.query)}")
        elif reply.status == 200 and request.path == AUTHORIZE_PATH:
            decline_here = not approve and not approval_screen
            choice = [("deny", "1")] if decline_here else [("user", username)]
            request = internal_request("POST", f"{request.path}?{go_encode(request.query)}", choice)
        elif reply.status == 200 and request.path == issuer_path + "/approval":
            answer = [("approval", "approve" if approve else "rejected")]
            request = internal_request("POST", f"{request.path}?{go_encode(request.query)}", answer)
        elif reply.status == 200 and request.path == issuer_path + "/device/callback":
            return Outcome(200, "Login Successful")
        elif reply.status == 400 and request.path == issuer_path + "/device/auth/verify_code":  # the entry page again
            return Outcome(400, "Invalid or Expired User Code")
        else:
            return Outcome(reply.status, f"an unexpected page at {request.path}")
    return Outcome(508, "too many redirects")
