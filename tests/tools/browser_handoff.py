"""$BROWSER for the real-browser tests: hand the URL to the test, which opens it in Chromium."""

from __future__ import annotations

import os
import sys

with open(os.environ["BBLOGIN_TEST_BROWSER_HANDOFF"], "a") as fh:
    fh.write(sys.argv[1] + "\n")
