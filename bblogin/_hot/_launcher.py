"""The lean launcher kubectl and git run (written by `bblogin setup kubectl|git`):

    python -S /path/to/bblogin/_hot/_launcher.py kubectl --profile work

pip's console-script wrapper imports `re` before bblogin gets control, and `site` costs a fifth
of a start-up; together about as much as the whole cached answer. Started like this, the hot path
runs on the bare interpreter; when it must fall back to the full command, ``_cli.run`` brings
`site` in first, so the installed dependencies are importable again.
"""

import sys

# sys.path[0] is this file's directory, absolute: .../bblogin/_hot. Two levels up holds bblogin/
# (string operations, not os.path: the hot path runs without `os`, see bblogin/_paths.py).
for _ in range(2):
    sys.path[0] = sys.path[0].rpartition("\\" if sys.platform == "win32" else "/")[0]

from bblogin._hot._answer import answer  # noqa: E402

code = answer(sys.argv[1:])
if code is None:
    from bblogin._cli import run

    raise SystemExit(run(sys.argv[1:]))
# Answered, and the answer is flushed: leave without the interpreter's clean-up (module teardown,
# garbage collection), which costs about a tenth of a start-up and has nothing left to do here.
if sys.platform != "win32":
    from posix import _exit

    _exit(code)
raise SystemExit(code)
