"""Kubeconfigs and git configs that `bblogin setup` wrote before the hot path became the
``bblogin._hot`` package run this file; it hands over to ``bblogin/_hot/_launcher.py``, which
`bblogin setup` writes now."""

import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the dir holding bblogin/

from bblogin._hot import _launcher  # noqa: E402,F401  # runs the launcher, which exits
