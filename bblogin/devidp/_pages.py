"""The dev IdP's HTML: dex's pages (same texts and forms), Bitbucket's login, each small,
self-contained and labelled as a development double."""

from __future__ import annotations

from html import escape
from http import HTTPStatus

BANNER = "bblogin dev IdP — a development double of dex, not a real identity provider"

_CSS = """body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#172b4d}
.banner{background:#fff4e5;border:1px solid #f5a623;padding:.4rem .7rem;font-size:.85rem;border-radius:4px}
h1{font-size:1.4rem} form{margin:.3rem 0} .error{color:#bf2600}
button{font:inherit;padding:.5rem 1rem;border-radius:4px;border:1px solid #0052cc;background:#0052cc;color:#fff;cursor:pointer}
button.secondary{background:#fff;color:#0052cc} a.connector{display:inline-block;padding:.5rem 1rem;border-radius:4px;text-decoration:none;background:#0052cc;color:#fff} input{font:inherit;padding:.4rem;letter-spacing:.1em}
.user{display:block;width:100%;text-align:left;margin:.3rem 0} .muted{color:#5e6c84;font-size:.9rem} .user .muted{color:#deebff}"""


def page(title: str, body: str, *, site: str = "dex") -> bytes:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
        f"<title>{escape(title)} · {escape(site)} · bblogin dev IdP</title><style>{_CSS}</style></head>"
        f'<body><p class="banner">{BANNER}</p><h1>{escape(title)}</h1>{body}</body></html>\n'
    ).encode()


def error_page(status: int, message: str) -> bytes:
    """dex's error template: the status text as the heading, then the message."""
    return page(HTTPStatus(status).phrase, f"<p>{escape(message)}</p>")


def landing(discovery_url: str) -> bytes:
    return page("Dex IdP", f'<p>A Federated OpenID Connect Provider</p><p><a href="{escape(discovery_url)}">Discovery</a></p>')


def chooser(issuer_name: str, connectors: list[tuple[str, str]]) -> bytes:
    """dex's login template: one "Log in with NAME" link per connector."""
    links = "".join(f'<p><a class="connector" href="{escape(url)}">Log in with {escape(name)}</a></p>' for name, url in connectors)
    return page(f"Log in to {issuer_name}", links)


def bitbucket_login(users: list[tuple[str, str, str]]) -> bytes:
    """Bitbucket Cloud's login and consent, played by the double: (login, display name, details)."""
    buttons = "".join(
        f'<button class="user" name="user" value="{escape(login)}">{escape(name)} <span class="muted">({escape(details)})</span></button>'
        for login, name, details in users
    )
    return page(
        "Log in to Bitbucket",
        "<p>This page plays Bitbucket Cloud's login and its consent to share your account with dex. "
        f"Choose a fake Bitbucket user:</p><form method=\"post\">{buttons}"
        '<button class="secondary" name="deny" value="1">Cancel</button></form>',
        site="fake Bitbucket Cloud",
    )


def approval(user: str, client: str, accesses: list[str]) -> bytes:
    """dex's approval template; both forms post back to this URL (req and hmac in the query)."""
    if accesses:
        asks = f"<p>{escape(client)} would like to:</p><ul>" + "".join(f"<li>{escape(a)}</li>" for a in accesses) + "</ul>"
    else:
        asks = f"<p>{escape(client)} has not requested any personal information</p>"
    return page(
        "Grant Access",
        f'<p class="muted">Logged in as {escape(user)}</p>{asks}'
        '<form method="post"><input type="hidden" name="approval" value="approve"><button>Grant Access</button></form>'
        '<form method="post"><input type="hidden" name="approval" value="rejected"><button class="secondary">Cancel</button></form>',
    )


def oob(code: str) -> bytes:
    return page(
        "Login Successful",
        f'<p>Please copy this code, switch to your application and paste it there:</p><input type="text" value="{escape(code)}" size="30">',
    )


def device(post_url: str, user_code: str, invalid: bool) -> bytes:
    problem = '<p class="error">Invalid or Expired User Code</p>' if invalid else ""
    value = f'value="{escape(user_code)}"' if user_code else 'placeholder="XXXX-XXXX"'
    return page(
        "Enter User Code",
        f'<form method="post" action="{escape(post_url)}"><input required name="user_code" type="text" autocomplete="off" {value}> '
        f"<button>Submit</button></form>{problem}",
    )


def device_success(client: str) -> bytes:
    return page(f"Login Successful for {client}", "<p>Login successful. Return to your device to continue; you can close this window.</p>")
