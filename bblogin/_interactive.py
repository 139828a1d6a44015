"""The one answer to "may this process start an interactive login now?" — open a browser or show
a device code, and wait for a person.

Yes only when every test passes, in this order (the first that fails is the reason given):

1. nothing said no: ``--no-login``, ``BBLOGIN_NO_LOGIN=1``, kubectl's ``spec.interactive`` false
   (or no ``KUBERNETES_EXEC_INFO`` at all), a library that runs us non-interactively (google-auth);
2. not a Bitbucket Pipelines step (``BITBUCKET_STEP_OIDC_TOKEN``/``BITBUCKET_BUILD_NUMBER``);
3. git: ``GIT_TERMINAL_PROMPT`` is not ``0`` (git's "nobody may be asked"), and no askpass
   program in git's own order (prompt.c): ``GIT_ASKPASS``, ``core.askPass`` (git's config, ``-c``
   included: ``git config`` answers as git would), ``SSH_ASKPASS`` — git then asks through that
   program (an IDE's dialog, KDE's ksshaskpass), never the terminal, and so would we;
   ``SSH_ASKPASS`` with ``SSH_ASKPASS_REQUIRE=force`` counts the same for everyone;
4. standard error is a terminal (where the URL or the code appears), and so is standard input —
   except for git, whose helper always reads git's pipe: there the process must have a
   controlling terminal (``/dev/tty``), as git's own prompts need. A login that needs a line
   typed (the browser-less paste flow) reads it with :func:`typed_lines`: standard input when it
   is a terminal, else the controlling terminal — as git's prompts read it;
5. the process is in the foreground process group of its controlling terminal
   (``tcgetpgrp == getpgrp``): a background job (``kubectl … &``, an editor's file watcher, a
   tool under ``setsid``) never opens a tab the person did not ask for. (POSIX only: Windows
   consoles have no background jobs, and no ``/dev/tty``.)
6. in tmux (``TMUX``/``TMUX_PANE``), the pane's session has a client attached: a loop left
   running in a detached session (``while :; do kubectl get pods; sleep 60; done``) is in the
   foreground of its pane, yet nobody sees it. GNU screen has no such query that does not
   depend on its version and socket directory: a detached screen window counts as a terminal.

Who asks: kubectl, git, ``bblogin token``, aws, gcp and ``bblogin setup --from`` (its logins). One
exception, on purpose: ``bblogin login`` and the TUI's login never ask — the person typed the
command, which is the consent; they share the login lock and its result all the same.

The callers evaluate it lazily (:class:`Gate`): a cached token never gets here, and the full
path asks only when a login would be the next step. Stdlib only, a few system calls.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # no typing, no dataclass: the full path's cached answer imports this module
if TYPE_CHECKING:
    from collections.abc import Mapping

CALLERS = ("cli", "kubectl", "git", "gcp", "aws")


class Decision:
    __slots__ = ("allowed", "reason")

    def __init__(self, allowed: bool, reason: str = "") -> None:
        self.allowed = allowed
        self.reason = reason  # why not, for the "login required" message: "standard input is not a terminal"

    def __bool__(self) -> bool:
        return self.allowed

    def __repr__(self) -> str:
        return f"Decision({self.allowed!r}, {self.reason!r})"


YES = Decision(True)


def _foreground(fd: int) -> bool:
    """Whether this process's group is the foreground one of the terminal ``fd`` refers to."""
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False


def _controlling_terminal_foreground() -> str:
    """"" when this process has a controlling terminal and is in its foreground group; else why not.
    Windows has neither (a console has no background jobs): there the terminal tests above decide."""
    if os.name != "posix":
        return ""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)  # never waits for a line
    except OSError:
        return "the process has no controlling terminal"
    try:
        return "" if _foreground(fd) else "the process runs in the background of its terminal (not its foreground process group)"
    finally:
        os.close(fd)


def decide(caller: str, *, no_login: bool = False, said_no: str = "", env: Mapping[str, str] | None = None) -> Decision:
    """The decision for ``caller`` (one of :data:`CALLERS`). ``no_login``: the command's
    ``--no-login``; ``said_no``: a reason the caller already has ("kubectl says the session is
    not interactive")."""
    env = os.environ if env is None else env
    if no_login:
        return Decision(False, "--no-login was given")
    if said_no:
        return Decision(False, said_no)
    if env.get("BBLOGIN_NO_LOGIN") == "1":
        return Decision(False, "BBLOGIN_NO_LOGIN=1 is set")
    if env.get("BITBUCKET_STEP_OIDC_TOKEN") or env.get("BITBUCKET_BUILD_NUMBER"):
        return Decision(False, "this is a Bitbucket Pipelines step")
    if caller == "git":
        if env.get("GIT_TERMINAL_PROMPT") == "0":
            return Decision(False, "git said nobody may be asked (GIT_TERMINAL_PROMPT=0)")
        askpass = _git_askpass(env)
        if askpass:
            return Decision(False, f"git asks through {askpass} (an IDE or a GUI), not a terminal")
    if env.get("SSH_ASKPASS") and env.get("SSH_ASKPASS_REQUIRE") == "force":
        return Decision(False, "SSH_ASKPASS_REQUIRE=force: the person is asked through SSH_ASKPASS, not a terminal")
    if not _isatty(sys.stderr):
        return Decision(False, "standard error is not a terminal")
    if caller != "git" and not _isatty(sys.stdin):
        return Decision(False, "standard input is not a terminal")
    why = _controlling_terminal_foreground() or _detached_tmux(env)
    return Decision(False, why) if why else YES


def _detached_tmux(env: Mapping[str, str]) -> str:
    """Why not, when this runs in a tmux pane whose session no client is attached to; else ""
    (also when tmux cannot be asked: then the terminal tests alone decide)."""
    pane = env.get("TMUX_PANE")
    if not (env.get("TMUX") and pane):
        return ""
    import subprocess

    try:
        attached = subprocess.run(["tmux", "display-message", "-p", "-t", pane, "#{session_attached}"], env=dict(env), capture_output=True, text=True, timeout=5, stdin=subprocess.DEVNULL).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return "the tmux session is detached: nobody sees this terminal" if attached == "0" else ""


def _git_askpass(env: Mapping[str, str]) -> str:
    """Which askpass program git would ask through (its order: ``GIT_ASKPASS``, ``core.askPass``,
    ``SSH_ASKPASS``; an empty value is none), named for the message; "" for none."""
    if env.get("GIT_ASKPASS"):
        return "GIT_ASKPASS"
    import subprocess

    try:  # git's answer for this repository, its config files and -c (GIT_CONFIG_PARAMETERS/COUNT)
        found = subprocess.run(["git", "config", "--get", "core.askPass"], env=dict(env), capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        found = ""
    if found:
        return "core.askPass"
    return "SSH_ASKPASS" if env.get("SSH_ASKPASS") else ""


def _isatty(stream: object) -> bool:
    try:
        return bool(stream is not None and stream.isatty())  # type: ignore[attr-defined]
    except (OSError, ValueError):  # closed
        return False


class Gate:
    """A decision taken when first asked (``bool(gate)``), then kept: what callers hand to
    ``_session.get_credential`` as ``interactive``, so a cached answer costs no system call."""

    def __init__(self, caller: str, *, no_login: bool = False, said_no: str = "") -> None:
        if caller not in CALLERS:
            raise ValueError(f"unknown caller {caller!r}")
        self.caller, self.no_login, self.said_no = caller, no_login, said_no
        self._decision: Decision | None = None

    @property
    def decision(self) -> Decision:
        if self._decision is None:
            self._decision = decide(self.caller, no_login=self.no_login, said_no=self.said_no)
        return self._decision

    def __bool__(self) -> bool:
        return self.decision.allowed

    def __repr__(self) -> str:
        return f"Gate({self.caller!r}, {self._decision!r})"


def typed_lines():  # type: ignore[no-untyped-def]
    """Where the person types a line a login needs (the paste flow's redirect address), as a
    context manager: standard input when it is a terminal, else the controlling terminal, which
    git's own prompts read too (git's helper has git's request pipe on stdin). Without either, a
    LoginFailed before anything is shown: a login nobody can finish is not started."""
    import contextlib

    from bblogin._errors import LoginFailed

    if _isatty(sys.stdin):
        return contextlib.nullcontext(sys.stdin)
    try:
        return open("/dev/tty", encoding="utf-8", errors="replace")  # noqa: SIM115 (the caller's with closes it)
    except OSError:
        raise LoginFailed(
            "this login needs the redirect address pasted into a terminal, and there is none here",
            hint="run `bblogin login` on a terminal, or give this machine a browser (BROWSER) for flow = loopback",
        ) from None


def why_not(interactive: object) -> str:
    """The reason a ``get_credential(interactive=…)`` value said no, for the error message."""
    if isinstance(interactive, Gate | Decision):
        decision = interactive.decision if isinstance(interactive, Gate) else interactive
        return decision.reason
    return ""
