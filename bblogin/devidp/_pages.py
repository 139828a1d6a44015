"""The dev IdP's HTML: small, self-contained, and labelled as a development double."""

from __future__ import annotations

from html import escape

BANNER = "bblogin dev IdP — a development double of dex, not a real identity provider"


def page(title: str, body: str) -> bytes:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{escape(title)} · bblogin dev IdP</title>
<style>
body{{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#172b4d}}
.banner{{background:#fff4e5;border:1px solid #f5a623;padding:.4rem .7rem;font-size:.85rem;border-radius:4px}}
h1{{font-size:1.4rem}} button{{font:inherit;padding:.5rem 1rem;margin:.2rem;border-radius:4px;border:1px solid #0052cc;background:#0052cc;color:#fff;cursor:pointer}}
button.secondary{{background:#fff;color:#0052cc}} input{{font:inherit;padding:.4rem;letter-spacing:.1em}}
.user{{display:block;width:100%;text-align:left}} .muted{{color:#5e6c84;font-size:.9rem}} .user .muted{{color:#deebff}}
</style></head><body><p class="banner">{BANNER}</p><h1>{escape(title)}</h1>{body}</body></html>""".encode()


def error_page(message: str) -> bytes:
    return page("Error", f"<p>{escape(message)}</p>")


def chooser(connectors: list[str], query: str) -> bytes:
    links = "".join(f'<p><a href="auth/{escape(c)}?{escape(query)}">Log in with {escape(c)}</a></p>' for c in connectors)
    return page("Log in to dex", links)


def bitbucket_login(connector: str, req: str, users: dict[str, tuple[str, str, tuple[str, ...]]]) -> bytes:
    buttons = "".join(
        f'<button class="user" name="user" value="{escape(login)}">{escape(name)} <span class="muted">({escape(email)}; '
        f'workspaces: {escape(", ".join(ws) or "none")})</span></button>'
        for login, (name, email, ws) in users.items()
    )
    return page(
        "Log in to Bitbucket",
        f'<p>This page plays Bitbucket Cloud\'s login. Choose a fake Bitbucket user:</p>'
        f'<form method="post" action="{escape(connector)}/login?req={escape(req)}">{buttons}</form>',
    )


def approval(req: str, hmac: str, client: str, scopes: list[str]) -> bytes:
    items = "".join(f"<li>{escape(s)}</li>" for s in scopes)
    return page(
        "Grant access",
        f"<p><b>{escape(client)}</b> would like to:</p><ul>{items}</ul>"
        f'<form method="post" action="approval?req={escape(req)}&amp;hmac={escape(hmac)}">'
        f'<button name="approval" value="approve">Grant access</button>'
        f'<button class="secondary" name="approval" value="rejected">Cancel</button></form>',
    )


def device_entry(prefill: str = "", problem: str = "") -> bytes:
    note = f'<p class="muted">{escape(problem)}</p>' if problem else ""
    return page(
        "Enter the code shown on your device",
        f'{note}<form method="post" action="device/auth/verify_code"><input name="user_code" value="{escape(prefill)}" '
        f'autocomplete="off" placeholder="XXXX-XXXX"> <button>Submit</button></form>',
    )


def device_done() -> bytes:
    return page("Login successful", "<p>Return to your device to continue. You can close this window.</p>")
