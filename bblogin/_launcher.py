"""Kubeconfigs and git configs that `bblogin setup` wrote before the hot path became the
``bblogin._hot`` package run this file; it hands over to ``bblogin/_hot/_launcher.py``, which
`bblogin setup` writes now."""

import sys

SEP = "\\" if sys.platform == "win32" else "/"
sys.path[0] = sys.path[0].rpartition(SEP)[0]  # .../bblogin -> the dir holding bblogin/
sys.path.insert(0, SEP.join((sys.path[0], "bblogin", "_hot")))  # what the launcher takes its own directory to be

from bblogin._hot import _launcher  # noqa: E402,F401  # runs the launcher, which exits
