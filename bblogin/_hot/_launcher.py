"""The lean launcher kubectl and git run (written by `bblogin setup kubectl|git`):

    python -S /path/to/bblogin/_hot/_launcher.py kubectl --profile work

pip's console-script wrapper imports `re` before bblogin gets control, and `site` costs a fifth
of a start-up; together about as much as the whole cached answer. Started like this, the hot path
runs on the bare interpreter; when it must fall back to the full command, ``_cli.run`` brings
`site` in first, so the installed dependencies are importable again.
"""

import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the dir holding bblogin/

from bblogin._hot._answer import answer  # noqa: E402

code = answer(sys.argv[1:])
if code is None:
    from bblogin._cli import run

    code = run(sys.argv[1:])
raise SystemExit(code)
