"""`bblogin doctor`'s network checks: the trust store in use, and for each profile's issuer the
proxy that applies (password masked) and a TLS handshake through it.

The handshake is a real request to the issuer URL through the same client a login uses, so what
it reports (the TLS version, the certificate's subject and issuer, or the error naming the proxy or
the untrusted certificate) is what a login or refresh would meet.
"""

from __future__ import annotations

import os
import urllib.parse
from typing import Any

from bblogin._commands.doctor import Check
from bblogin._config import BITBUCKET_PROVIDERS, Config, Profile
from bblogin._errors import BbloginError


def checks(config: Config) -> list[Check]:
    from bblogin import _trust

    try:
        trust = _trust.trust()
    except BbloginError as exc:
        return [Check("trust-store", "fail", exc.message, exc.hint)]
    if trust.is_os_store:
        out = [Check("trust-store", "ok", trust.described())]
    else:
        out = [Check("trust-store", "warn", trust.described(), "install the OS CA certificates (Debian/Ubuntu: apt-get install ca-certificates) so that CAs your IT installs are trusted")]
    for profile in config.profiles.values():
        out.append(_route(profile))
    return out


def _route(profile: Profile) -> Check:
    from bblogin import _proxy
    from bblogin._http import make_client, reach

    name = f"network:{profile.name}"
    git_url = profile.issuer if profile.provider in BITBUCKET_PROVIDERS else None
    try:
        git = _proxy.git_http(git_url) if git_url else _proxy.GitHTTP()
        choice = _proxy.choose(profile.issuer, profile_proxy=profile.proxy, git_proxy=git.proxy)
        with make_client(ca_file=profile.ca_file, proxy=profile.proxy, git_url=git_url, timeout=5) as http:
            way = f"via the proxy {choice.shown()} (from {choice.source})" if choice else _direct_reason(profile)
            response = reach(http, profile.issuer)  # any answer, a redirect too (a Bitbucket root): the way and TLS work
            if not profile.issuer.startswith("https://"):
                return Check(name, "ok", f"{profile.issuer}: {way}; plain http on loopback, no TLS")
            return Check(name, "ok", f"{urllib.parse.urlsplit(profile.issuer).netloc} {way}: TLS handshake ok{_tls_summary(response)}")
    except BbloginError as exc:
        return Check(name, "fail", exc.message, exc.hint)


def _direct_reason(profile: Profile) -> str:
    from bblogin import _proxy

    parts = urllib.parse.urlsplit(profile.issuer)
    host = parts.hostname or ""
    if _proxy.is_loopback(host):
        return "direct (loopback is never proxied)"
    if profile.proxy is not None:
        return "direct (the profile's proxy = \"direct\")"
    if _proxy.bypassed(host, _proxy.no_proxy_of(os.environ)):
        return "direct (NO_PROXY names it)"
    return "direct (no proxy set)"


def _tls_summary(response: Any) -> str:
    stream = response.extensions.get("network_stream")
    ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
    if ssl_object is None:
        return ""
    cert = ssl_object.getpeercert() or {}

    def name(field: str) -> str:
        return ", ".join(f"{k}={v}" for rdn in cert.get(field, ()) for k, v in rdn) or "?"

    return f" ({ssl_object.version()}; certificate for {name('subject')}, issued by {name('issuer')})"
