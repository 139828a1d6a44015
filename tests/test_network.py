"""Corporate networks (#25): the OS trust store, proxies, and errors that name them.

Real parts: the dev IdP over https with a certificate from a CA made here, trusted only through
the system bundle (a private mount namespace, see tests/fixtures/corpnet.py), Debian's tinyproxy
with BasicAuth (its log proves the CONNECTs), microsocks for SOCKS, real git and kubectl, the real
Secret Service.
"""

from __future__ import annotations

import contextlib
from bblogin import _record
import json
import os
import pathlib
import socket
import ssl
import subprocess
import sys
import threading

import jwt
import pytest

from bblogin import _config, _paths, _proxy
from bblogin._errors import ConfigError, TLSError
from bblogin._http import client_for_url, make_client, request
from bblogin._neterrors import ProxyFailed
from tests.fixtures.corpnet import CA_NAME, PROXY_PASSWORD, CorpCA, canned_proxy, free_port  # noqa: F401  (canned_proxy: a fixture)
from tests.test_git import git_env  # noqa: F401  (a fixture)

# -- choosing the proxy (no network) -------------------------------------------------------------


def test_environment_proxies_lower_case_first_then_all_proxy() -> None:
    env = {"HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:2", "ALL_PROXY": "socks5://all:3"}
    assert _proxy.choose("https://dex.corp.example/dex", environ=env) == _proxy.ProxyChoice("http://lower:2", "https_proxy")
    assert _proxy.choose("https://dex.corp.example/dex", environ={"HTTPS_PROXY": "upper:8080"}) == _proxy.ProxyChoice("http://upper:8080", "HTTPS_PROXY")
    assert _proxy.choose("https://dex.corp.example/dex", environ={"ALL_PROXY": "socks5://all:3"}) == _proxy.ProxyChoice("socks5://all:3", "ALL_PROXY")
    assert _proxy.choose("http://dex.corp.example/dex", environ={"HTTP_PROXY": "http://p:1", "HTTPS_PROXY": "http://q:2"}).source == "HTTP_PROXY"
    assert _proxy.choose("https://dex.corp.example/dex", environ={"HTTP_PROXY": "http://p:1"}) is None  # http's proxy is not https's


# What curl 7.88.1 (Debian 12's, installed here) does with `curl -v https://dex.invalid/` in each environment:
# "proxy" = it connected to HTTPS_PROXY's 127.0.0.1:9, "direct" = it tried to resolve dex.invalid itself.
CURL_788 = [
    ({"https_proxy": "", "HTTPS_PROXY": "http://127.0.0.1:9"}, "https://dex.invalid/", "HTTPS_PROXY"),  # an empty variable counts as unset
    ({"https_proxy": "", "ALL_PROXY": "http://127.0.0.1:9"}, "https://dex.invalid/", "ALL_PROXY"),
    ({"all_proxy": "", "ALL_PROXY": "http://127.0.0.1:9"}, "https://dex.invalid/", "ALL_PROXY"),
    ({"https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.2:9"}, "https://dex.invalid/", "https_proxy"),
    ({"HTTPS_PROXY": "http://127.0.0.1:9", "no_proxy": "", "NO_PROXY": "dex.invalid"}, "https://dex.invalid/", None),  # an empty no_proxy hides nothing
    ({"HTTPS_PROXY": "http://127.0.0.1:9", "no_proxy": "other", "NO_PROXY": "dex.invalid"}, "https://dex.invalid/", "HTTPS_PROXY"),  # lower case first
    ({"HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "dex.invalid:443"}, "https://dex.invalid/", "HTTPS_PROXY"),  # 7.88 has no ports in no_proxy
    ({"HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "a dex.invalid"}, "https://dex.invalid/", None),  # spaces separate too
    ({"HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "*.invalid"}, "https://dex.invalid/", "HTTPS_PROXY"),  # no wildcards but "*" alone
    ({"HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "a,*"}, "https://dex.invalid/", "HTTPS_PROXY"),
    ({"HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "*"}, "https://dex.invalid/", None),
    ({"HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "DEX.INVALID."}, "https://dex.invalid./", None),
    ({"HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "[2001:db8::1]"}, "https://[2001:db8::1]/", "HTTPS_PROXY"),  # IPv6 entries without brackets
    ({"HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "2001:db8::1"}, "https://[2001:db8::1]/", None),
]


@pytest.mark.parametrize(("env", "url", "source"), CURL_788)
def test_the_environment_is_read_as_curl_reads_it(env: dict[str, str], url: str, source: str | None) -> None:
    choice = _proxy.choose(url, environ=env)
    assert (choice.source if choice else None) == source


@pytest.mark.parametrize(("env", "url", "source"), CURL_788)
def test_the_table_above_is_what_the_installed_curl_does(env: dict[str, str], url: str, source: str | None) -> None:
    done = subprocess.run(["curl", "-sv", "--max-time", "3", url], capture_output=True, text=True, timeout=30, env={"PATH": os.environ["PATH"], **env})
    proxied = "Trying 127.0.0.1:9" in done.stderr or "Trying 127.0.0.2:9" in done.stderr
    assert proxied == (source is not None), done.stderr


@pytest.mark.parametrize(
    ("no_proxy", "url", "bypassed"),
    [
        ("corp.example", "https://dex.corp.example/x", True),
        (".corp.example", "https://dex.corp.example/x", True),
        ("corp.example", "https://notcorp.example/x", False),
        ("*", "https://anything.example/x", True),
        ("10.0.0.0/8, other", "https://10.1.2.3/x", True),
        ("10.0.0.0/8", "https://11.1.2.3/x", False),
        ("dex.corp.example:8443", "https://dex.corp.example:8443/x", False),  # as curl 7.88: an entry with a port matches nothing
        ("2001:db8::1", "https://[2001:db8::1]/x", True),
        ("DEX.Corp.Example", "https://dex.corp.example/x", True),
    ],
)
def test_no_proxy_as_curl_reads_it(no_proxy: str, url: str, bypassed: bool) -> None:
    for name in ("NO_PROXY", "no_proxy"):
        choice = _proxy.choose(url, environ={"HTTPS_PROXY": "http://proxy:3128", name: no_proxy})
        assert (choice is None) is bypassed


def test_loopback_is_never_proxied_and_the_profile_proxy_overrides_the_environment() -> None:
    env = {"HTTPS_PROXY": "http://proxy:3128", "HTTP_PROXY": "http://proxy:3128", "NO_PROXY": "dex.corp.example"}
    for url in ("http://127.0.0.1:5556/dex", "http://localhost:8000/callback", "https://[::1]:8443/", "http://127.0.0.2/"):
        assert _proxy.choose(url, environ=env) is None
        assert _proxy.choose(url, profile_proxy="http://other:1", environ=env) is None
    assert _proxy.choose("https://dex.corp.example/dex", profile_proxy="http://mine:8080", environ=env) == _proxy.ProxyChoice("http://mine:8080", "the profile's proxy")
    assert _proxy.choose("https://elsewhere.example/dex", profile_proxy="direct", environ=env) is None


def test_git_proxy_applies_only_when_the_environment_names_none() -> None:
    assert _proxy.choose("https://bitbucket.corp.example/", git_proxy="gitproxy:3128", environ={}) == _proxy.ProxyChoice("http://gitproxy:3128", "git's http.proxy")
    assert _proxy.choose("https://bitbucket.corp.example/", git_proxy="gitproxy:3128", environ={"HTTPS_PROXY": "http://env:1"}).source == "HTTPS_PROXY"
    assert _proxy.choose("https://bitbucket.corp.example/", git_proxy="gitproxy:3128", environ={"NO_PROXY": "corp.example"}) is None
    assert _proxy.choose("https://bitbucket.corp.example/", git_proxy="", environ={}) is None  # git's empty http.proxy: none


def test_a_proxy_is_shown_with_its_password_masked() -> None:
    choice = _proxy.ProxyChoice("http://jo%40corp:p%3Ass@proxy.corp.example:3128", "HTTPS_PROXY")
    assert choice.shown() == "http://jo@corp:***@proxy.corp.example:3128"
    assert choice.address == "proxy.corp.example:3128" and choice.has_credentials
    assert _proxy.ProxyChoice("socks5://proxy", "ALL_PROXY").address == "proxy:1080"
    with pytest.raises(ConfigError) as info:
        _proxy.choose("https://dex.corp.example/", environ={"HTTPS_PROXY": "ftp://user:SECRET@host:21"})
    assert "HTTPS_PROXY" in info.value.message and "SECRET" not in info.value.render()


def test_profile_proxy_key_is_validated_with_its_line_and_never_shown(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[profiles.work]\nissuer = "https://dex.corp.example/dex"\nclient_id = "bblogin"\nproxy = "ftp://me:SECRET@proxy:21"\n')
    with pytest.raises(ConfigError, match=r"config.toml:4: profiles.work.proxy: must be a proxy URL") as info:
        _config.load(str(path))
    assert "SECRET" not in info.value.render()
    path.write_text('[profiles.work]\nissuer = "https://dex.corp.example/dex"\nclient_id = "bblogin"\nproxy = "http://me:SECRET@proxy:3128"\n')
    profile = _config.load(str(path)).profiles["work"]
    assert profile.proxy == "http://me:SECRET@proxy:3128" and "SECRET" not in repr(profile)


def test_git_http_reads_git_config_for_the_url(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text('[http]\n\tproxy = http://all:1\n[http "https://bitbucket.corp.example"]\n\tproxy = http://bb:2\n\tsslCAInfo = ~/corp-ca.pem\n')
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("GIT_SSL_CAINFO", raising=False)
    assert _proxy.git_http("https://bitbucket.corp.example/scm/x.git") == _proxy.GitHTTP(proxy="http://bb:2", ca_info=str(tmp_path / "corp-ca.pem"))
    assert _proxy.git_http("https://other.example/") == _proxy.GitHTTP(proxy="http://all:1", ca_info=None)
    monkeypatch.setenv("GIT_SSL_CAINFO", "/etc/corp.pem")
    assert _proxy.git_http("https://other.example/").ca_info == "/etc/corp.pem"


def test_certifi_is_the_fallback_where_no_os_store_can_be_read(monkeypatch: pytest.MonkeyPatch) -> None:
    import certifi

    from bblogin import _trust

    monkeypatch.setattr(_trust, "os_store", lambda: None)
    trust = _trust.trust()
    assert trust.store.startswith(f"certifi's bundle ({certifi.where()}") and not trust.is_os_store
    assert type(trust.context) is ssl.SSLContext  # not truststore's


# -- in this process: tinyproxy and microsocks resolve the company host names -------------------


def test_the_profile_proxy_overrides_a_dead_environment_proxy(corp_ca: CorpCA, corp_idp, tinyproxy, corp_env, monkeypatch: pytest.MonkeyPatch) -> None:
    idp = corp_idp()
    proxy = tinyproxy()
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    with make_client(ca_file=str(corp_ca.ca_file), proxy=proxy.url(), timeout=5) as http:
        assert request(http, "GET", f"{idp.issuer}/.well-known/openid-configuration").status_code == 200
    assert proxy.connects() == [f"dex.corp.internal:{idp.port}"]


def test_bitbucket_provider_follows_git_http_proxy_and_ssl_ca_info(corp_ca: CorpCA, corp_idp, tinyproxy, corp_env, git_env: pathlib.Path) -> None:
    from bblogin._providers._bitbucket import BitbucketDataCenter

    idp = corp_idp(host="bitbucket.corp.internal")
    proxy = tinyproxy()
    base = f"https://bitbucket.corp.internal:{idp.port}"
    with git_env.open("a") as fh:
        fh.write(f'[http "{base}"]\n\tproxy = {proxy.url()}\n\tsslCAInfo = {corp_ca.ca_file}\n')
    profile = _config.Profile(name="dc", issuer=f"{base}/dex", client_id="bblogin", provider="bitbucket-dc")
    http = BitbucketDataCenter(profile).http
    assert request(http, "GET", f"{base}/dex/.well-known/openid-configuration").status_code == 200
    assert proxy.connects() == [f"bitbucket.corp.internal:{idp.port}"]
    with pytest.raises(TLSError, match="issued by CN=Corp Test Root CA,O=Corp"):  # an oidc profile does not read git's settings
        request(make_client(timeout=5, proxy=proxy.url()), "GET", f"{base}/dex/keys")


def test_socks5_proxy_from_all_proxy(corp_ca: CorpCA, corp_idp, microsocks, corp_env, monkeypatch: pytest.MonkeyPatch) -> None:
    idp = corp_idp()
    monkeypatch.setenv("ALL_PROXY", microsocks.url(scheme="socks5h"))  # the proxy resolves dex.corp.internal (this process cannot)
    with make_client(ca_file=str(corp_ca.ca_file), timeout=5) as http:
        assert request(http, "GET", f"{idp.issuer}/keys").status_code == 200
    monkeypatch.setenv("ALL_PROXY", microsocks.url(scheme="socks5h", password="wrong"))
    with make_client(ca_file=str(corp_ca.ca_file), timeout=5) as http, pytest.raises(ProxyFailed, match=rf"the proxy 127.0.0.1:{microsocks.port} \(from ALL_PROXY\) requires authentication") as info:
        request(http, "GET", f"{idp.issuer}/keys")
    assert "wrong" not in info.value.render()


def test_socks5_resolves_names_here_and_socks5h_at_the_proxy(corp_ca: CorpCA, corp_idp, microsocks, corp_env, monkeypatch: pytest.MonkeyPatch) -> None:
    """As curl: socks5:// hands the proxy an address this machine resolved; TLS still checks the name."""
    idp = corp_idp()
    monkeypatch.setenv("ALL_PROXY", microsocks.url(scheme="socks5"))
    with make_client(ca_file=str(corp_ca.ca_file), timeout=5) as http, pytest.raises(ProxyFailed) as info:
        request(http, "GET", f"{idp.issuer}/keys")  # only the proxy (in the jail) knows dex.corp.internal
    assert info.value.message.startswith("cannot resolve dex.corp.internal on this machine: ") and "socks5h://" in info.value.hint
    real = socket.getaddrinfo
    here = lambda host, *a, **k: real("127.0.0.1" if host == "dex.corp.internal" else host, *a, **k)  # noqa: E731  (this machine's resolver now knows it)
    monkeypatch.setattr(socket, "getaddrinfo", here)
    with make_client(ca_file=str(corp_ca.ca_file), timeout=5) as http:
        assert request(http, "GET", f"{idp.issuer}/keys").status_code == 200  # via 127.0.0.1, the certificate checked for dex.corp.internal
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: real("127.0.0.1", *a, **k))
    with make_client(ca_file=str(corp_ca.ca_file), timeout=5) as http, pytest.raises(TLSError, match="hostname mismatch"):
        request(http, "GET", f"https://other.corp.example:{idp.port}/dex/keys")  # the same address under a name the certificate lacks


def test_a_proxy_that_cannot_reach_the_idp_is_named(corp_ca: CorpCA, tinyproxy, corp_env, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = tinyproxy()
    port = free_port()  # nothing listens at dex.corp.internal:port
    monkeypatch.setenv("HTTPS_PROXY", proxy.url())
    with make_client(ca_file=str(corp_ca.ca_file), timeout=5) as http, pytest.raises(ProxyFailed) as info:
        request(http, "GET", f"https://dex.corp.internal:{port}/dex/keys")
    assert info.value.message.startswith(f"the proxy 127.0.0.1:{proxy.port} (from HTTPS_PROXY) could not reach dex.corp.internal:{port} (HTTP 5")
    assert "NO_PROXY" in info.value.hint and PROXY_PASSWORD not in info.value.render()


def test_an_untrusted_certificate_names_subject_issuer_and_trust_store(corp_ca: CorpCA, corp_idp, corp_env) -> None:
    idp = corp_idp(host="127.0.0.1")
    with make_client(timeout=5) as http, pytest.raises(TLSError) as info:
        request(http, "GET", f"{idp.issuer}/keys")
    message = info.value.message
    assert f"the TLS certificate of 127.0.0.1 (subject CN=dex.corp.internal,O=Corp, issued by CN={CA_NAME},O=Corp) is not trusted: unable to get local issuer certificate" in message
    assert "checked against the OS trust store (/etc/ssl/certs/ca-certificates.crt)" in message
    assert info.value.hint.startswith(f"the issuer CN={CA_NAME},O=Corp is not trusted: install the issuing CA in the OS trust store")


def test_client_for_url_uses_the_same_trust_and_proxies(corp_ca: CorpCA, corp_idp, tinyproxy, corp_env, monkeypatch: pytest.MonkeyPatch) -> None:
    idp = corp_idp()
    proxy = tinyproxy()
    monkeypatch.setenv("https_proxy", proxy.url())
    url = f"{idp.issuer}/.well-known/openid-configuration"
    with client_for_url(url, ca_file=str(corp_ca.ca_file)) as http:
        assert request(http, "GET", url).status_code == 200
    assert proxy.connects() == [f"dex.corp.internal:{idp.port}"]
    with pytest.raises(ConfigError):
        client_for_url(url, proxy="gopher://x")


# -- bblogin itself, where the company CA is in the system bundle -------------------------------


def run(jail, *args: str, trusted: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(jail(*args, trusted=trusted), capture_output=True, text=True, timeout=90, env=env or os.environ.copy(), stdin=subprocess.DEVNULL)


def bb(jail, *args: str, **kw) -> subprocess.CompletedProcess[str]:
    return run(jail, sys.executable, "-m", "bblogin", *args, **kw)


def login_args(idp) -> tuple[str, ...]:
    return ("login", "--profile", "dev", "--issuer", idp.issuer, "--client-id", "bblogin", "--connector-id", "bitbucket-cloud", "--flow", "device", "--no-browser")


def test_login_refresh_kubectl_git_and_doctor_through_an_authenticating_proxy(
    jail, corp_ca: CorpCA, corp_idp, tinyproxy, corp_env, keyring_secret_service, kube_apiserver, kubectl_bin, git_server, git_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bblogin._commands.setup_kubectl import exec_entry
    from tests.test_session import make_expiring

    idp = corp_idp(id_token_ttl=3600)
    proxy = tinyproxy()
    monkeypatch.setenv("HTTPS_PROXY", proxy.url())
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # for kubectl's and git's own servers; bblogin never proxies loopback anyway
    target = f"dex.corp.internal:{idp.port}"

    done = bb(jail, "-vv", *login_args(idp))
    assert done.returncode == 0, done.stderr
    assert "Logged in as alice@" in done.stderr
    assert PROXY_PASSWORD not in done.stderr and f"via the proxy http://corp:***@127.0.0.1:{proxy.port} (from HTTPS_PROXY)" in done.stderr
    assert target in proxy.connects()
    assert _config.load().profiles["dev"].ca_file is None  # trusted through the system bundle alone

    make_expiring("dev")
    before = len(proxy.connects())
    done = bb(jail, "token", "--profile", "dev", "--no-login")
    assert done.returncode == 0, done.stderr
    assert idp.count("/token", "refresh_token") == 1 and len(proxy.connects()) > before

    server = kube_apiserver(issuer=idp.issuer, client_id="bblogin")
    keys = jwt.PyJWKClient(f"https://127.0.0.1:{idp.port}/dex/keys", ssl_context=ssl.create_default_context(cafile=str(corp_ca.ca_file)))
    server._jwks = keys  # the API server reaches the IdP directly, not through the jail
    entry = exec_entry("dev", use_access_token=False)
    entry["exec"]["interactiveMode"] = "Never"
    make_expiring("dev")
    done = run(jail, str(kubectl_bin), "--kubeconfig", str(server.kubeconfig(entry)), "get", "--raw", "/version")
    assert done.returncode == 0, done.stderr
    assert idp.count("/token", "refresh_token") == 2 and server.attempts[-1] == ("/version", True)

    def valid(user: str, token: str) -> bool:
        try:
            jwt.decode(token, keys.get_signing_key_from_jwt(token).key, algorithms=["RS256"], audience="bblogin", issuer=idp.issuer)
        except jwt.PyJWTError:
            return False
        return True

    repo = git_server(valid)
    assert bb(jail, "setup", "git", "--host", repo.url, "--profile", "dev").returncode == 0
    make_expiring("dev")
    done = run(jail, "git", "ls-remote", f"{repo.url}/repo.git")
    assert done.returncode == 0, done.stderr
    assert idp.count("/token", "refresh_token") == 3

    done = bb(jail, "doctor", "--json")
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["trust-store"] == {"name": "trust-store", "status": "ok", "detail": "the OS trust store (/etc/ssl/certs/ca-certificates.crt)", "fix": ""}
    network = checks["network:dev"]
    assert network["status"] == "ok", network
    assert network["detail"].startswith(f"{target} via the proxy http://corp:***@127.0.0.1:{proxy.port} (from HTTPS_PROXY): TLS handshake ok (TLSv1.")
    assert f"certificate for organizationName=Corp, commonName=dex.corp.internal, issued by organizationName=Corp, commonName={CA_NAME}" in network["detail"]
    assert PROXY_PASSWORD not in done.stdout + done.stderr


def test_no_proxy_goes_direct_past_a_dead_proxy(jail, corp_idp, corp_env, keyring_secret_service, monkeypatch: pytest.MonkeyPatch) -> None:
    idp = corp_idp()
    monkeypatch.setenv("https_proxy", f"http://corp:{PROXY_PASSWORD}@127.0.0.1:{free_port()}")
    monkeypatch.setenv("no_proxy", "localhost,.corp.internal")
    done = bb(jail, *login_args(idp))
    assert done.returncode == 0, done.stderr


def test_a_proxy_that_is_down_is_named_not_the_idp(jail, corp_idp, corp_env, keyring_secret_service, monkeypatch: pytest.MonkeyPatch) -> None:
    idp = corp_idp()
    port = free_port()
    monkeypatch.setenv("HTTPS_PROXY", f"http://corp:{PROXY_PASSWORD}@127.0.0.1:{port}")
    done = bb(jail, *login_args(idp))
    assert done.returncode == 5, done.stderr
    assert f"cannot connect to the proxy 127.0.0.1:{port} (from HTTPS_PROXY): Connection refused (on the way to dex.corp.internal)" in done.stderr
    assert PROXY_PASSWORD not in done.stderr and "Traceback" not in done.stderr
    assert idp.count("/device/code") == 0


def test_tinyproxy_refusing_the_credentials_says_the_proxy_wants_them(jail, corp_idp, tinyproxy, corp_env, keyring_secret_service, monkeypatch: pytest.MonkeyPatch) -> None:
    idp = corp_idp()
    proxy = tinyproxy()
    monkeypatch.setenv("HTTPS_PROXY", proxy.url(password="not-the-password"))
    done = bb(jail, *login_args(idp))
    assert done.returncode == 5
    assert f"the proxy 127.0.0.1:{proxy.port} (from HTTPS_PROXY) requires authentication (HTTP 401) for the connection to dex.corp.internal" in done.stderr  # tinyproxy's answer to a CONNECT
    assert "refused the user name and password in HTTPS_PROXY" in done.stderr and "not-the-password" not in done.stderr
    monkeypatch.setenv("HTTPS_PROXY", proxy.url(user=""))
    done = bb(jail, *login_args(idp))
    assert "put the proxy credentials into HTTPS_PROXY: http://USER:PASSWORD@127.0.0.1:" in done.stderr


def test_without_the_ca_in_the_system_bundle_the_error_names_it(jail, corp_idp, corp_env, keyring_secret_service) -> None:
    idp = corp_idp()
    done = bb(jail, *login_args(idp), trusted=False)
    assert done.returncode == 5
    assert f"the TLS certificate of dex.corp.internal (subject CN=dex.corp.internal,O=Corp, issued by CN={CA_NAME},O=Corp) is not trusted" in done.stderr
    assert "checked against the OS trust store (/etc/ssl/certs/ca-certificates.crt)" in done.stderr
    assert "update-ca-certificates" in done.stderr and "--ca-file" in done.stderr


def test_a_407_names_the_proxy_and_asks_for_credentials(corp_env, monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy that answers CONNECT with 407 as RFC 9110 (and squid) do."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def answer() -> None:
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="corp"\r\nContent-Length: 0\r\n\r\n')

        threading.Thread(target=answer, daemon=True).start()
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
        with make_client(timeout=5) as http, pytest.raises(ProxyFailed) as info:
            request(http, "GET", "https://dex.corp.example/dex/keys")
    assert info.value.message == f"the proxy 127.0.0.1:{port} (from HTTPS_PROXY) requires authentication (HTTP 407) for the connection to dex.corp.example"
    assert info.value.hint == f"put the proxy credentials into HTTPS_PROXY: http://USER:PASSWORD@127.0.0.1:{port} (%-encode special characters)"
    assert info.value.exit_code == 5


# -- each step of the way names its own party (#25 review: not the exception's class) ----------

TUNNEL = b"HTTP/1.1 200 Connection established\r\n\r\n"


@pytest.mark.parametrize(
    ("reply", "stall", "says", "hint"),
    [
        (b"", 8, "the proxy 127.0.0.1:{port} (from HTTPS_PROXY) accepted the connection but did not answer the CONNECT to dex.corp.example:443 within 2 s", "the proxy is overloaded"),
        (b"GARBAGE\r\n\r\n", 0, "the proxy 127.0.0.1:{port} (from HTTPS_PROXY) closed the connection without answering the CONNECT to dex.corp.example:443", "is a proxy of that kind"),
        (TUNNEL, 8, "the proxy 127.0.0.1:{port} (from HTTPS_PROXY) opened a tunnel to dex.corp.example:443, but the TLS handshake with dex.corp.example through it did not finish within 2 s", "the proxy blocks or inspects"),
        (TUNNEL, 0, "the proxy 127.0.0.1:{port} (from HTTPS_PROXY) opened a tunnel to dex.corp.example:443, but the TLS handshake with dex.corp.example through it failed: ", "dex.corp.example is not answering TLS there"),
        (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html><body>Blocked by Corp Web Filter</body></html>", 1, "opened a tunnel to dex.corp.example:443, but the TLS handshake with dex.corp.example through it failed: ", "a web filter answering with its own page"),
    ],
    ids=["accepts-never-answers", "not-http", "tunnel-then-stall", "tunnel-then-close", "tunnel-then-html"],
)
def test_the_step_that_failed_names_the_party(canned_proxy, corp_env, monkeypatch: pytest.MonkeyPatch, reply: bytes, stall: float, says: str, hint: str) -> None:
    port = canned_proxy(reply, stall)
    monkeypatch.setenv("HTTPS_PROXY", f"http://corp:{PROXY_PASSWORD}@127.0.0.1:{port}")
    with make_client(timeout=2) as http, pytest.raises(ProxyFailed) as info:
        request(http, "GET", "https://dex.corp.example/dex/keys")
    assert says.format(port=port) in info.value.message and hint in info.value.hint
    assert PROXY_PASSWORD not in info.value.render()


def test_peer_text_in_an_error_cannot_drive_the_terminal(canned_proxy, corp_env, monkeypatch: pytest.MonkeyPatch) -> None:
    port = canned_proxy(b"HTTP/1.1 502 \x1b]0;title\x07Bad \x1b[2JGateway" + b"x" * 400 + b"\r\nContent-Length: 0\r\n\r\n")
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
    with make_client(timeout=5) as http, pytest.raises(ProxyFailed) as info:
        request(http, "GET", "https://dex.corp.example/dex/keys")
    rendered = info.value.render()
    assert "(HTTP 502 \\x1b]0;title\\x07Bad \\x1b[2JGateway" in rendered and "\x1b" not in rendered and "\x07" not in rendered
    assert "x" * 200 not in rendered and "…" in rendered  # capped


def test_an_https_proxys_own_certificate_is_named_as_the_proxys(tmp_path: pathlib.Path, corp_ca: CorpCA, corp_env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The proxy speaks TLS with a certificate nobody trusts: nothing reached the IdP, so the IdP is not named as untrusted."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def answer() -> None:
            for _ in range(2):  # the request, then bblogin reading the refused certificate
                connection, _ = listener.accept()
                with contextlib.suppress(OSError), corp_ca.server_context().wrap_socket(connection, server_side=True) as tls:
                    tls.recv(1000)

        threading.Thread(target=answer, daemon=True).start()
        monkeypatch.setenv("HTTPS_PROXY", f"https://corp:{PROXY_PASSWORD}@127.0.0.1:{port}")
        with make_client(timeout=5) as http, pytest.raises(ProxyFailed) as info:
            request(http, "GET", "https://dex.corp.example/dex/keys")
    message = info.value.message
    assert message.startswith(f"the TLS certificate of the proxy 127.0.0.1:{port} (from HTTPS_PROXY) (subject CN=dex.corp.internal,O=Corp, issued by CN={CA_NAME},O=Corp) is not trusted")
    assert "dex.corp.example" not in message and "TLS-inspecting" not in info.value.hint and PROXY_PASSWORD not in info.value.render()


@pytest.mark.parametrize("bad", ["socks4://proxy.corp.example:1080", "http://corp:pa#ss@proxy.corp.example:3128"])
def test_an_unusable_proxy_variable_serves_a_still_valid_token_and_fails_a_login(jail, corp_idp, corp_env, keyring_secret_service, monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    """#24's rule: a refresh that is only early and cannot be sent serves the cached token; a login names the setting (exit 3)."""
    from tests.test_session import make_expiring

    idp = corp_idp(id_token_ttl=3600)
    assert bb(jail, *login_args(idp)).returncode == 0
    make_expiring("dev")  # 30 s left: inside the margin, so this call refreshes first
    env = {**os.environ, "HTTPS_PROXY": bad}
    done = bb(jail, "token", "--profile", "dev", "--no-login", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(".") == 2 and "Traceback" not in done.stderr  # the cached ID token
    assert done.stderr.startswith("bblogin: cannot refresh early (the proxy in HTTPS_PROXY is not a proxy URL): serving the cached ID token, valid until ")
    assert "pa#ss" not in done.stderr and idp.count("/token", "refresh_token") == 0
    done = bb(jail, *login_args(idp), env=env)
    assert done.returncode == 3 and "the proxy in HTTPS_PROXY is not a proxy URL" in done.stderr, done.stderr


def test_each_profile_fetches_signing_keys_through_its_own_client(devidp) -> None:
    """Two profiles of one IdP in one process (the TUI): B's JWKS fetches must not use A's proxy (and its password) or CA."""
    from bblogin._providers._oidc import OIDCProvider

    a = OIDCProvider(_config.Profile(name="a", issuer=devidp.issuer, client_id="bblogin", proxy="http://alice:A-SECRET@proxy-a.corp.example:3128"))
    b = OIDCProvider(_config.Profile(name="b", issuer=devidp.issuer, client_id="bblogin", proxy="direct"))
    assert a.jwks.http is a.http and b.jwks.http is b.http and a.http is not b.http


# -- doctor: the git probe goes the way git goes; a redirecting root is a working route ---------


def test_doctors_network_check_takes_a_redirecting_issuer_root_as_reached(corp_env) -> None:
    """A Bitbucket Data Center root answers 302 to /dashboard: the way and TLS work, so the check is ok."""
    import http.server

    from bblogin._commands import _doctor_network

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", "/dashboard")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        check = _doctor_network._route(_config.Profile(name="dc", issuer=base, client_id="x", provider="bitbucket-dc"))
        assert check.status == "ok", check
        with make_client(timeout=5) as http, pytest.raises(Exception, match=r"answered HTTP 302, a redirect to 127\.0\.0\.1;"):  # relative: this host, not "elsewhere"
            request(http, "GET", base)
    finally:
        server.shutdown()
        server.server_close()


def _probe(monkeypatch: pytest.MonkeyPatch, profile: _config.Profile, url: str) -> object:
    """doctor's git-auth probe of ``url`` for ``profile`` with a stand-in credential (no login: the way there is under test)."""
    from bblogin import _index, _session
    from bblogin._commands import doctor

    account = _index.Account(id="a1", provider=profile.provider, issuer=profile.issuer, client_id=profile.client_id, sub="u1", profiles=[profile.name])
    monkeypatch.setattr(_session, "get_credential", lambda *a, **k: _session.Credential(account, "access_token", "tok", 2**31))
    return doctor._probe(_config.GitHost(url=url, profile=profile.name), profile, account, "access_token")


def test_doctors_git_probe_uses_the_profiles_ca_file_and_proxy(corp_ca: CorpCA, corp_idp, tinyproxy, corp_env, git_env, monkeypatch: pytest.MonkeyPatch) -> None:
    idp = corp_idp(host="bitbucket.corp.internal")  # only tinyproxy (in the jail) resolves this name: an answer proves the proxy was used
    proxy = tinyproxy()
    base = f"https://bitbucket.corp.internal:{idp.port}"
    profile = _config.Profile(name="dc", issuer=base, client_id="bblogin", provider="bitbucket-dc", ca_file=str(corp_ca.ca_file), proxy=proxy.url())
    assert isinstance(_probe(monkeypatch, profile, base), int)
    assert proxy.connects() == [f"bitbucket.corp.internal:{idp.port}"]
    dead = free_port()
    failed = _probe(monkeypatch, _record.replace(profile, proxy=f"http://corp:{PROXY_PASSWORD}@127.0.0.1:{dead}"), base)
    assert isinstance(failed, ProxyFailed) and failed.message.startswith(f"cannot connect to the proxy 127.0.0.1:{dead} (from the profile's proxy)")
    untrusted = _probe(monkeypatch, _record.replace(profile, ca_file=None), base)
    assert isinstance(untrusted, TLSError) and f"issued by CN={CA_NAME},O=Corp" in untrusted.message


def test_doctors_git_probe_follows_gits_http_proxy_and_ssl_ca_info(corp_ca: CorpCA, corp_idp, tinyproxy, corp_env, git_env: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    idp = corp_idp(host="bitbucket.corp.internal")
    proxy = tinyproxy()
    base = f"https://bitbucket.corp.internal:{idp.port}"
    with git_env.open("a") as fh:
        fh.write(f'[http "{base}"]\n\tproxy = {proxy.url()}\n\tsslCAInfo = {corp_ca.ca_file}\n')
    profile = _config.Profile(name="dc", issuer=base, client_id="bblogin", provider="bitbucket-dc")
    assert isinstance(_probe(monkeypatch, profile, base), int)
    assert proxy.connects() == [f"bitbucket.corp.internal:{idp.port}"]


def test_bblogin_aws_with_a_profile_asks_sts_through_the_profiles_proxy(keyring_secret_service, devidp, canned_proxy, corp_env) -> None:
    from tests.test_session import bblogin, login

    login(devidp)
    port = canned_proxy(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    config = pathlib.Path(_paths.config_file())
    config.write_text(config.read_text().replace("[profiles.dev]\n", f'[profiles.dev]\nproxy = "http://corp:{PROXY_PASSWORD}@127.0.0.1:{port}"\n', 1))
    done = bblogin("aws", "--profile", "dev", "--role-arn", "arn:aws:iam::123456789012:role/ci", "--sts-endpoint", "https://sts.corp.example/")
    assert done.returncode == 5, done.stderr
    assert f"the proxy 127.0.0.1:{port} (from the profile's proxy) could not reach sts.corp.example:443 (HTTP 403 Forbidden)" in done.stderr
    assert PROXY_PASSWORD not in done.stderr


def test_a_token_served_while_the_proxy_is_down_names_the_proxy(jail, corp_idp, corp_env, keyring_secret_service) -> None:
    from tests.test_session import make_expiring

    idp = corp_idp(id_token_ttl=3600)
    assert bb(jail, *login_args(idp)).returncode == 0
    make_expiring("dev")
    port = free_port()
    env = {**os.environ, "HTTPS_PROXY": f"http://corp:{PROXY_PASSWORD}@127.0.0.1:{port}"}
    for _ in range(2):  # the failing refresh, then a call inside the backoff window (the hot path's line)
        done = bb(jail, "token", "--profile", "dev", "--no-login", env=env)
        assert done.returncode == 0, done.stderr
        assert done.stderr.startswith(f"bblogin: the proxy 127.0.0.1:{port} is failing (since "), done.stderr
        assert PROXY_PASSWORD not in done.stderr


# -- the features themselves, end to end (#25 review: these passed with the feature removed) ----


def test_a_ca_file_adds_to_the_os_store_never_replaces_it(jail, corp_idp, corp_env, keyring_secret_service) -> None:
    """The IdP is trusted through the system bundle only; an unrelated --ca-file must not take that trust away."""
    import certifi

    idp = corp_idp()
    done = bb(jail, *login_args(idp), "--ca-file", certifi.where())
    assert done.returncode == 0, done.stderr
    assert _config.load().profiles["dev"].ca_file == certifi.where()


def test_the_profiles_proxy_carries_login_refresh_and_doctor_past_a_dead_environment_proxy(jail, corp_idp, tinyproxy, corp_env, keyring_secret_service, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_session import make_expiring

    idp = corp_idp(id_token_ttl=3600)
    proxy = tinyproxy()
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    config = pathlib.Path(_paths.config_file())
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'[profiles.dev]\nissuer = "{idp.issuer}"\nclient_id = "bblogin"\nconnector_id = "bitbucket-cloud"\nflow = "device"\nproxy = "{proxy.url()}"\n')
    target = f"dex.corp.internal:{idp.port}"
    done = bb(jail, "login", "--profile", "dev", "--no-browser")
    assert done.returncode == 0, done.stderr
    logins = len(proxy.connects())
    assert logins >= 1 and set(proxy.connects()) == {target}
    make_expiring("dev")
    done = bb(jail, "token", "--profile", "dev", "--no-login")
    assert done.returncode == 0 and not done.stderr, done.stderr  # refreshed, not served from the cache with a note
    assert idp.count("/token", "refresh_token") == 1 and len(proxy.connects()) > logins
    done = bb(jail, "doctor", "--json")
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["idp:dev"]["status"] == "ok", checks["idp:dev"]
    assert checks["network:dev"]["detail"].startswith(f"{target} via the proxy http://corp:***@127.0.0.1:{proxy.port} (from the profile's proxy): TLS handshake ok")
    assert PROXY_PASSWORD not in done.stdout + done.stderr


def test_a_bitbucket_profiles_proxy_carries_its_requests(corp_ca: CorpCA, corp_idp, tinyproxy, corp_env, git_env, monkeypatch: pytest.MonkeyPatch) -> None:
    from bblogin._providers._bitbucket import BitbucketDataCenter

    idp = corp_idp(host="bitbucket.corp.internal")  # only tinyproxy resolves it
    proxy = tinyproxy()
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{free_port()}")  # dead
    base = f"https://bitbucket.corp.internal:{idp.port}"
    profile = _config.Profile(name="dc", issuer=base, client_id="bblogin", provider="bitbucket-dc", ca_file=str(corp_ca.ca_file), proxy=proxy.url())
    assert request(BitbucketDataCenter(profile).http, "GET", f"{base}/dex/keys").status_code == 200
    assert proxy.connects() == [f"bitbucket.corp.internal:{idp.port}"]
