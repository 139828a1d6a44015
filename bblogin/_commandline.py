"""The command line another program runs bblogin with, without a shell and often without the
user's PATH: google-auth's executable ``command``, botocore's ``credential_process``.

Python's google-auth and gcloud read it with ``shlex.split`` (botocore too, on POSIX), Go and
Java split it on whitespace, botocore on Windows splits as ``CommandLineToArgvW``. A word
without whitespace, quotes or backslashes reads the same under all of them."""

from __future__ import annotations

import os
import shlex
import shutil
import sys

from bblogin._errors import UsageError


def bblogin_command() -> list[str]:
    """The absolute command that starts this bblogin: the `bblogin` script beside this
    interpreter (same installation), else the one on PATH, else this interpreter with -m."""
    beside = os.path.join(os.path.dirname(os.path.abspath(sys.executable)), "bblogin")
    if os.access(beside, os.X_OK):
        return [beside]
    found = shutil.which("bblogin")
    return [os.path.abspath(found)] if found else [os.path.abspath(sys.executable), "-m", "bblogin"]


def command_line(words: list[str], *, windows: bool = os.name == "nt") -> str:
    """``words`` as one command line every splitter above reads back as ``words``: no whitespace,
    quotes or backslashes in a word (a Windows path gets ``/``, which Windows takes as well)."""
    if windows:
        words = [words[0].replace("\\", "/"), *words[1:]]
    line = " ".join(words)
    if any(not w or any(c.isspace() or c in "\"'\\" for c in w) for w in words) or shlex.split(line) != words:
        raise UsageError(
            f"the command {line!r} has a word with a space, a quote or a backslash: the program that runs it splits it without a shell, on whitespace or as a POSIX shell would",
            hint="install bblogin where its path has none of those (pipx, a venv under /opt), and use profile and account names without them",
        )
    return line
