"""A stand-in for a person's browser, for $BROWSER in tests: GET the URL and follow redirects
(the dev IdP in auto-approve mode sends the browser straight back to bblogin's loopback page).
Writes the last page it saw to $BBLOGIN_TEST_BROWSER_LOG, if set."""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

url = sys.argv[1]
try:
    with urllib.request.urlopen(url, timeout=20) as response:
        page = response.read().decode(errors="replace")
except urllib.error.HTTPError as exc:
    page = exc.read().decode(errors="replace")
log = os.environ.get("BBLOGIN_TEST_BROWSER_LOG")
if log:
    with open(log, "a") as fh:
        fh.write(page + "\n----\n")
