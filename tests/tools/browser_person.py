"""$BROWSER for the login-storm tests: records each launch (a line "PID PARENT-PID URL" in
$BBLOGIN_TEST_BROWSER_RECORD), then does what $BBLOGIN_TEST_BROWSER_ACT says a person does, after
$BBLOGIN_TEST_BROWSER_DELAY s (a comma-separated list: the first launch does the first, and so on;
the last goes on for every later launch):

- ``deny``: the person refuses consent at an OP that reports it as RFC 6749 §4.1.2.1 says (Okta,
  Entra ID, Keycloak, Bitbucket Cloud itself): the browser lands on the client's redirect_uri with
  ``error=access_denied`` and the request's ``state``. (dex does not: a denial at its approval
  screen or upstream is an HTML 500 page and the client hears nothing — that is ``cancel``.)
- ``cancel``: the person clicks Cancel on the dev IdP's Bitbucket page; dex shows its 500 page
  "Authentication failed" and never redirects, so the login runs into its timeout.
- ``ignore``: nothing; the person never comes back.
- ``approve`` (default): follow the redirects (the dev IdP in auto-approve mode signs alice in).
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

url = sys.argv[1]
record = os.environ["BBLOGIN_TEST_BROWSER_RECORD"]
with open(record, "a") as fh:
    fh.write(f"{os.getpid()} {os.getppid()} {url}\n")
with open(record) as fh:
    launch = len(fh.read().splitlines()) - 1


def nth(variable: str, default: str) -> str:
    values = os.environ.get(variable, default).split(",")
    return values[min(launch, len(values) - 1)]


time.sleep(float(nth("BBLOGIN_TEST_BROWSER_DELAY", "0")))
act = nth("BBLOGIN_TEST_BROWSER_ACT", "approve")


def get(address: str, data: bytes | None = None) -> None:
    try:
        with urllib.request.urlopen(urllib.request.Request(address, data=data), timeout=20) as response:
            response.read()
    except urllib.error.HTTPError:
        pass  # an error page: the person sees it, nothing more happens


if act == "deny":
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    back = {"error": "access_denied", "error_description": "The user denied access", "state": query["state"]}
    get(f"{query['redirect_uri']}?{urllib.parse.urlencode(back)}")
elif act == "cancel":
    opener = urllib.request.build_opener()
    with opener.open(url, timeout=20) as page:  # dex → /auth/bitbucket-cloud → the Bitbucket page
        at = page.url
    get(at, urllib.parse.urlencode({"deny": "1"}).encode())  # Cancel: Bitbucket → dex /callback?error=access_denied → dex's 500
elif act == "approve":
    get(url)
