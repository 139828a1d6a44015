"""Run a command as it runs in a terminal: a session whose controlling terminal is the
pseudo-terminal on fds 0-2 (the test holds its master side).

    pty_session.py [--background] -- COMMAND...

With ``--background`` COMMAND runs in a process group of its own, so it is a background job of
that terminal (as ``cmd &`` in an interactive shell, or a watcher an IDE started), with SIGTTIN
ignored: a read from the terminal fails at once (EIO) instead of stopping the job for good.
Without it, COMMAND is in the terminal's foreground process group. Exits with COMMAND's code (128 + N when signal N ended it)."""

from __future__ import annotations

import fcntl
import signal
import subprocess
import sys
import termios

fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # we are a session leader (start_new_session): the pty becomes our terminal
background = sys.argv[1] == "--background"
command = sys.argv[sys.argv.index("--") + 1 :]
if background:
    signal.signal(signal.SIGTTIN, signal.SIG_IGN)  # inherited through exec
signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for COMMAND, as a shell leaves it to its job


def default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


code = subprocess.call(command, process_group=0, preexec_fn=default_sigint) if background else subprocess.call(command, preexec_fn=default_sigint)
sys.exit(128 - code if code < 0 else code)  # a signal's end as a shell reports it (kill -9: 137)
