"""Run one interactive login: pick the flow, drive the browser or the device code, return tokens.

    flow = loopback  →  127.0.0.1 listener, state + nonce + PKCE S256, one browser launch
    flow = device    →  RFC 8628 user code (providers that have it: dex)
    flow = auto      →  device over SSH or without a browser, loopback otherwise; a provider
                        without a device flow (Bitbucket) falls back to pasting the redirect URL
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bblogin._record import record

if TYPE_CHECKING:
    from bblogin._config import Profile
    from bblogin._providers import Provider
    from bblogin._tokens import Identity, TokenSet


@record(frozen=True)
class LoginOptions:
    flow: str | None = None  # None: the profile's flow
    open_browser: bool = True
    listen_port: int | None = None  # None: the profile's listen_port, else random
    timeout: int | None = None  # None: the profile's login_timeout
    on_device_prompt: Callable[[Any], None] | None = None  # a UI that renders the user code itself
    on_url: Callable[[str], None] | None = None  # a UI that shows the loopback URL itself


def choose_flow(profile: Profile, provider: Provider, options: LoginOptions) -> str:
    """loopback, device or paste."""
    from bblogin._oidc._browser import can_open_browser

    flow = options.flow or profile.flow
    browser = options.open_browser and can_open_browser()
    if flow == "device" or (flow == "auto" and not browser and provider.supports_device_flow):
        if not provider.supports_device_flow:
            from bblogin._errors import UsageError

            raise UsageError(f"{profile.issuer} offers no device-code login", hint="use --flow loopback")
        return "device"
    if flow == "auto" and not browser:
        return "paste"
    return "loopback"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _listen_on(profile: Profile, options: LoginOptions) -> tuple[int, str, str | None]:
    """(port, path, registered callback URL or None): where the loopback listener must wait.

    A callback URL registered with the IdP fixes the port; ``--listen`` may only repeat it.
    Bitbucket accepts nothing else, so a Bitbucket profile must name one."""
    from urllib.parse import urlsplit

    from bblogin._config import BITBUCKET_PROVIDERS, registered_redirect
    from bblogin._errors import UsageError

    registered = registered_redirect(profile)
    if registered is None:
        if profile.provider in BITBUCKET_PROVIDERS:
            raise UsageError(
                f"profile {profile.name!r}: Bitbucket sends the browser back only to the callback URL registered for the "
                "OAuth consumer (Cloud) or incoming application link (Data Center), and this profile names none",
                hint=f'add redirect_uri = "http://127.0.0.1:8400/callback" (the registered URL) to [profiles.{profile.name}] in config.toml',
            )
        port = options.listen_port if options.listen_port is not None else (profile.listen_port or 0)
        return port, "/callback", None
    port, url = registered
    if options.listen_port is not None and options.listen_port != port:
        raise UsageError(f"--listen {options.listen_port} does not match the callback URL registered with the identity provider ({url})", hint=f"use --listen {port}, or leave --listen out")
    return port, urlsplit(url).path, url


def _loopback(profile: Profile, provider: Provider, options: LoginOptions, timeout: int, paste: bool) -> TokenSet:
    from bblogin._oidc._browser import open_browser
    from bblogin._oidc._loopback import LoopbackListener
    from bblogin._oidc._pkce import make_pkce

    verifier, challenge = make_pkce()
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    port, path, registered = _listen_on(profile, options)
    with LoopbackListener(port, path=path) as listener:
        redirect_uri = registered or listener.redirect_uri
        url = provider.authorization_url(redirect_uri=redirect_uri, state=state, nonce=nonce, code_challenge=challenge)
        if options.on_url is not None:
            options.on_url(url)
        if paste:
            from bblogin._errors import LoginFailed
            from bblogin._interactive import typed_lines
            from bblogin._providers._paste import parse_pasted_redirect

            with typed_lines() as typed:
                warning = getattr(provider, "paste_warning", None)
                if warning:
                    _say(f"Note: {warning}\n")
                _say(f"Open this URL in a browser on any machine and sign in:\n\n  {url}\n")
                _say("The browser then fails to load a 127.0.0.1 page: copy that page's full address and paste it here.")
                print("Redirect URL: ", end="", file=sys.stderr, flush=True)
                pasted = typed.readline()
            if not pasted:
                raise LoginFailed("no redirect address was pasted: the input ended", hint=f"run `bblogin login --profile {profile.name}` and paste the address the browser shows")
            code = parse_pasted_redirect(pasted, state, redirect_uri)
        else:
            if not (options.open_browser and open_browser(url)):
                _say(f"Open this URL in your browser to sign in:\n\n  {url}\n")
            else:
                _say(f"Opened your browser to sign in. If it did not open, visit:\n\n  {url}\n")
            _say(f"Waiting up to {timeout} s for the browser to come back (Ctrl-C to cancel)…")
            code = listener.wait(state, timeout)
    return provider.exchange_code(code=code, redirect_uri=redirect_uri, code_verifier=verifier, nonce=nonce)


def interactive_login(profile: Profile, options: LoginOptions) -> tuple[TokenSet, Identity]:
    """Log in now (a person is present) and return the verified tokens and who they belong to."""
    from bblogin._providers import for_profile

    provider = for_profile(profile)
    flow = choose_flow(profile, provider, options)
    timeout = options.timeout or profile.login_timeout
    if flow == "device":
        tokens = provider.device_login(open_browser=options.open_browser, on_prompt=options.on_device_prompt, timeout=timeout)  # type: ignore[attr-defined]
    else:
        tokens = _loopback(profile, provider, options, timeout, paste=flow == "paste")
    return tokens, provider.identity(tokens)
