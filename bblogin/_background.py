"""An early refresh in a detached child: kubectl and git never wait for a hanging IdP.

A refresh that is only early (the caller holds a token that lives ``_outage.FLOOR`` more seconds)
runs in a child process started here. The caller waits :data:`WAIT` seconds for the child's
outcome on a pipe: in time, it serves exactly what the in-process refresh would have served (the
new token, re-read from the store; the child's stderr lines and -v log relayed); too late, it
serves its still-valid cached token with one line on stderr and exits, while the child carries
on under the token set's lock — a rotated refresh token is stored the moment it arrives and a
failure opens the backoff window, exactly as in-process (``_session._renewed``) — and ends by
itself: the normal timeout plus the lock wait, and never later than :data:`LIFETIME`.

What the child is given, on its stdin (never argv or the environment): the profile (its client
secret, when it has one, stays in a pipe between two processes of the same user), the token
set's id, the token kind and the verbosity. Tokens it reads from the store itself. Its stdin,
stdout and stderr are pipes of its own — never kubectl's or git's, which wait for EOF on the
stdout they gave bblogin — and it runs in a session (Windows: a process group) of its own, so a
Ctrl-C in the terminal does not cut it off mid-refresh (docs/architecture.md, "A refresh that is
only early").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from bblogin._config import Profile
    from bblogin._errors import BbloginError
    from bblogin._index import Account

__all__ = ["KNOWN_FIELDS", "LIFETIME", "WAIT", "error_fields", "main", "printable_lines", "rebuilt", "start"]

WAIT = 1.2  # seconds the caller waits for the child's outcome (its start-up included) before serving the cache
WRONG_CODE = 70  # the child's exit status when the bblogin it imports is not its caller's (EX_SOFTWARE)
LIFETIME = 120.0  # seconds after which a child ends whatever it is doing (the lock dies with it; a rotated token is stored on arrival)


class Child:
    """A started child: :meth:`outcome` waits for it at most :data:`WAIT` seconds."""

    def __init__(self, process: subprocess.Popen[bytes], request: bytes) -> None:
        self.process = process
        self.request = request

    def outcome(self) -> dict[str, Any] | None:
        """The child's outcome, or None when it is still at work after :data:`WAIT` seconds
        (it carries on alone; the caller does not wait for its exit). A child that ended without
        an answer (it could not start, or was killed) is a ``crash``, never one still at work."""
        try:
            out, _err = self.process.communicate(self.request, timeout=WAIT)
        except subprocess.TimeoutExpired:
            return None
        try:
            answer = json.loads(out.decode("utf-8", "replace"))
        except ValueError:
            answer = None
        if not (isinstance(answer, dict) and isinstance(answer.get("outcome"), str)):
            answer = {"outcome": "crash", "type": f"no answer, exit status {self.process.returncode}"}
        return answer


def error_fields(exc: BaseException) -> dict[str, Any]:
    """What rebuilds ``exc`` (a ``BbloginError``) in the caller: its class, its exit code and
    every plain attribute (message, hint, an OAuth error's code, ``retry_after``, ``party``)."""
    plain = {k: v for k, v in vars(exc).items() if v is None or isinstance(v, (str, int, float, bool))}
    return {"type": type(exc).__name__, "exit_code": getattr(exc, "exit_code", 1), "fields": plain}


# What the caller takes of a child's error (``error_fields``), each only of these types: the
# child is bblogin's own code on a private pipe, but its output is still parsed, never trusted.
KNOWN_FIELDS: dict[str, tuple[type, ...]] = {
    "message": (str,), "hint": (str, type(None)), "error": (str,), "description": (str,),
    "retry_after": (int, float, type(None)), "party": (str, type(None)),
}


def printable_lines(text: str) -> str:
    """``text`` from the child with nothing that drives a terminal (``_errors.printable``, line by line)."""
    from bblogin._errors import printable

    return "\n".join(printable(line) for line in text.split("\n"))


def rebuilt(error: dict[str, Any]) -> BbloginError:
    """The child's error (``error_fields``) as the exception the in-process refresh would have
    raised: the same class (``BbloginError`` when it names none), text, hint and exit code. Only
    :data:`KNOWN_FIELDS` of their types are taken, and an exit code only when it is a documented
    one of an error (``_errors.EXIT_CODES``, not 0); anything else in the answer is ignored."""
    from bblogin import _errors

    cls = getattr(_errors, str(error.get("type")), None)
    if not (isinstance(cls, type) and issubclass(cls, _errors.BbloginError)):
        cls = _errors.BbloginError
    given = error.get("fields") if isinstance(error.get("fields"), dict) else {}
    fields = {k: given[k] for k, types in KNOWN_FIELDS.items() if k in given and isinstance(given[k], types) and not isinstance(given[k], bool)}
    if isinstance(fields.get("retry_after"), (int, float)) and not 0 <= fields["retry_after"] < float("inf"):
        del fields["retry_after"]  # JSON's NaN and Infinity parse too
    for name, value in fields.items():
        if isinstance(value, str):
            fields[name] = printable_lines(value)
    if issubclass(cls, _errors.OAuthError):
        fields = {"error": "", "description": "", **fields}  # what its own __init__ always sets
    exc = cls.__new__(cls)
    message = fields.pop("message", "")
    Exception.__init__(exc, message)
    exc.__dict__.update(fields)
    exc.message, exc.hint = message, fields.get("hint", cls.default_hint)
    code = error.get("exit_code")
    if type(code) is int and code != cls.exit_code and code != _errors.EXIT_OK and code in {known for known, *_rest in _errors.EXIT_CODES}:
        exc.exit_code = code
    return exc


def start(profile: Profile, account: Account, kind: str) -> Child:
    """Start the child that refreshes ``account`` for ``profile`` (its ``kind`` token)."""
    from bblogin._record import asdict

    verbosity = 0
    if "logging" in sys.modules:  # -v configured it (``_log.configure``)
        import logging

        verbosity = (2 if logging.getLogger().level <= logging.DEBUG else 1) if logging.getLogger("bblogin").level == logging.DEBUG else 0
    from bblogin import _paths

    request = json.dumps({"profile": asdict(profile), "account": account.id, "kind": kind, "verbosity": verbosity}).encode("utf-8")
    parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # Appended, never ahead of the standard library: the child runs the caller's code, not a module
    # that shadows one. Another bblogin found first (an older install in site-packages) is not the
    # caller's code either: the child ends at once without an answer (the caller refreshes itself).
    # (find_spec locates a top-level package without running any of it.)
    code = (
        f"import importlib.util, os, sys; sys.path.append({parent!r}); spec = importlib.util.find_spec('bblogin'); "
        f"spec is not None and spec.origin is not None and os.path.dirname(os.path.dirname(os.path.abspath(spec.origin))) == {parent!r} or os._exit({WRONG_CODE}); "
        "from bblogin._background import main; main()"
    )
    detached: dict[str, Any] = (
        {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS} if sys.platform == "win32" else {"start_new_session": True}
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, close_fds=True,
        cwd=_paths.state_dir(), **detached,  # not the caller's cwd: a repository git ran in stays free to unmount or delete
    )
    return Child(process, request)


def main() -> None:
    """The child: refresh under the token set's lock, answer on stdout, end."""
    import io
    import threading

    bound = threading.Timer(LIFETIME, os._exit, (75,))  # a bound on everything below, whatever hangs
    bound.daemon = True
    bound.start()
    try:
        request = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    except ValueError:
        os._exit(65)  # the caller died while writing: nothing was asked, nothing sent
    captured = io.StringIO()
    sys.stderr = captured  # what an in-process refresh would print goes to the caller, who relays it when it still waits
    if request.get("verbosity"):
        from bblogin import _log

        _log.configure(int(request["verbosity"]))
    try:
        answer = run(request)
    except BaseException as exc:  # a bug, an unwrapped keyring error: said, so the caller never takes it for a refresh at work
        answer = {"outcome": "crash", "type": type(exc).__name__}
    answer["stderr"] = captured.getvalue()
    try:
        sys.stdout.write(json.dumps(answer))
        sys.stdout.flush()
    except (BrokenPipeError, OSError):
        pass  # the caller served its cached token and left: the outcome is in the store
    os._exit(0)  # no clean-up left to do


def run(request: dict[str, Any]) -> dict[str, Any]:
    from bblogin import _http, _index, _session
    from bblogin._config import Profile
    from bblogin._errors import BbloginError, StorageError
    from bblogin._lock import account_lock
    from bblogin._outage import EARLY_LOCK_WAIT, record_sent, settle_in_flight
    from bblogin._store import SecretStore

    fields = dict(request["profile"])
    fields["scopes"] = tuple(fields.get("scopes") or ())
    profile = Profile(**fields)
    kind = str(request["kind"])
    account = _index.load().accounts.get(str(request["account"]))
    if account is None:
        return {"outcome": "none"}
    store = SecretStore(profile.storage)
    try:
        with account_lock(account.id, EARLY_LOCK_WAIT, what=f"{account.label} (profile {profile.name})"):
            settle_in_flight(account)  # this refresh's own provisional window, or what an earlier child left (a lost answer: its window)
            answered = False
            try:
                with _http.before_sending(lambda: record_sent(account.id)):
                    cached, _account = _session._renewed(profile, account, store, kind, False)
                answered = True
            except StorageError:
                raise  # the answer could not be stored (its rotated refresh token with it): lost
            except BbloginError:
                answered = True  # the IdP's answer or failure (recorded as in-process), a refusal, a token that failed its checks
                raise
            finally:  # any other end after the request went out (a store that failed, a bug) lost its answer: a window
                settle_in_flight(account, answered=answered)
    except BbloginError as exc:
        return {"outcome": "error", "error": error_fields(exc)}
    return {"outcome": "served" if cached is not None else "none"}
