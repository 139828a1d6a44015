"""The loopback listener's pages: small, self-contained, saying what to do next. No code, no token."""

from __future__ import annotations

from html import escape

_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#172b4d}"
    "h1{font-size:1.3rem}.ok{color:#006644}.bad{color:#bf2600}@media(prefers-color-scheme:dark){body{background:#1d2125;color:#c7d1db}}"
)


def _page(title: str, cls: str, message: str) -> bytes:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
        f"<title>bblogin: {escape(title)}</title><style>{_STYLE}</style></head>"
        f'<body><h1 class="{cls}">{escape(title)}</h1><p>{escape(message)}</p></body></html>'
    ).encode()


def success() -> bytes:
    return _page("Signed in", "ok", "bblogin has your login. You can close this tab and return to your terminal.")


def already_finished() -> bytes:
    return _page("Already signed in", "ok", "This login has already finished; nothing more happens here. You can close this tab.")


def error(message: str) -> bytes:
    return _page("Sign-in not completed", "bad", message)
