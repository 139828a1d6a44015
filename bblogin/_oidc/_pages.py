"""The loopback listener's pages: small, self-contained HTML (inline CSS, no script, no external
resource), each saying what to do next. They never show the authorization code or any token."""

from __future__ import annotations

from html import escape

_STYLE = (
    "body{font:16px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem;"
    "color:#172b4d;background:#fff}h1{font-size:1.35rem;margin:0 0 .5rem}p{margin:.5rem 0}.ok{color:#006644}"
    ".bad{color:#bf2600}small{color:#5e6c84}code{font-size:.95em}"
    "@media(prefers-color-scheme:dark){body{background:#1d2125;color:#c7d1db}.ok{color:#7ee2b8}.bad{color:#fd9891}small{color:#8c9bab}}"
)


def _page(title: str, ok: bool, *paragraphs: str) -> bytes:
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>bblogin: {escape(title)}</title><style>{_STYLE}</style></head>"
        f'<body><h1 class="{"ok" if ok else "bad"}">{escape(title)}</h1>{body}'
        "<p><small>bblogin sign-in</small></p></body></html>"
    ).encode()


def success() -> bytes:
    return _page("You are signed in", True, "bblogin has received your sign-in. You can close this tab and return to your terminal.")


def already_finished() -> bytes:
    return _page("This login has already finished", True, "This login has already finished; you can close this tab. Nothing more happens here.")


def wrong_state() -> bytes:
    return _page(
        "This sign-in link does not belong to the login in progress",
        False,
        "It may come from an older login or another browser tab. Nothing was signed in.",
        "Finish the sign-in in the tab bblogin opened, or start the login again from your terminal.",
    )


def idp_error(error: str, description: str) -> bytes:
    detail = f"The identity provider answered: {error}" + (f" — {description}" if description else "") + "."
    return _page("Sign-in did not complete", False, detail, "Nothing was signed in. Return to your terminal for what to do next.")


def missing_code() -> bytes:
    return _page("Sign-in did not complete", False, "The identity provider came back without a sign-in code.", "Return to your terminal and start the login again.")


def not_found() -> bytes:
    return _page("Nothing here", False, "This address only receives the browser's return from the sign-in page. Return to your terminal.")


def method_not_allowed() -> bytes:
    return _page("Not allowed", False, "This address only receives the browser's return from the sign-in page (a GET request).")
