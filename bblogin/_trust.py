"""Which certificates bblogin trusts: the OS trust store, plus the CA files a profile names.

The OS store is read through ``truststore`` (the package pip uses): the macOS Keychain and the
Windows certificate store through their own verifiers (so a CA that IT or MDM installed, or a
TLS-inspecting proxy's CA, is trusted as the browser trusts it), on Linux and the BSDs OpenSSL's
system bundle (``/etc/ssl/certs/ca-certificates.crt`` on Debian; ``SSL_CERT_FILE`` when set).
Where no OS store can be read (a container without ca-certificates, truststore missing),
certifi's Mozilla bundle is the fallback. ``ca_file`` (``--ca-file``) and git's ``http.sslCAInfo``
are trusted in addition, never instead.

Not on the hot path: imported by ``_http`` only when a request is about to be made.
"""

from __future__ import annotations

import os
import re
import ssl
import sys

from bblogin._errors import TLSError
from bblogin._record import record

_CA_FILE_CANDIDATES = (  # where Linux distributions keep the system bundle (truststore looks there too)
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/pki/tls/cert.pem",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
)
_HASHED = re.compile(r"^[0-9a-fA-F]{8}\.[0-9]$")


@record(frozen=True)
class Trust:
    """An SSL context and the words for what it trusts (doctor, TLS errors)."""

    context: ssl.SSLContext
    store: str  # "the OS trust store (/etc/ssl/certs/ca-certificates.crt)", "certifi's bundle (…)"
    extra: tuple[str, ...] = ()  # CA files trusted in addition

    @property
    def is_os_store(self) -> bool:
        return not self.store.startswith("certifi")

    def described(self) -> str:
        return self.store + (f" plus {', '.join(self.extra)}" if self.extra else "")


def os_store() -> str | None:
    """Words for the OS trust store truststore would use, or None when there is none to read."""
    if sys.platform == "darwin":
        return "the OS trust store (macOS Keychain)"
    if sys.platform == "win32":
        return "the OS trust store (Windows certificate store)"
    paths = ssl.get_default_verify_paths()
    if paths.cafile:  # named as the file it is (Debian's /usr/lib/ssl/cert.pem is a link to its bundle)
        via = " from SSL_CERT_FILE" if os.environ.get(paths.openssl_cafile_env) == paths.cafile else ""
        return f"the OS trust store ({os.path.realpath(paths.cafile)}{via})"
    if paths.capath and os.path.isdir(paths.capath) and any(_HASHED.match(n) for n in os.listdir(paths.capath)):
        return f"the OS trust store ({paths.capath})"
    found = next((f for f in _CA_FILE_CANDIDATES if os.path.isfile(f)), None)
    return f"the OS trust store ({found})" if found else None


def _base() -> tuple[ssl.SSLContext, str]:
    where = os_store()
    if where is not None:
        try:
            import truststore
        except ImportError:
            truststore = None
        if truststore is not None:
            return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT), where
    import certifi

    bundle = certifi.where()
    return ssl.create_default_context(cafile=bundle), f"certifi's bundle ({bundle}; no OS trust store could be read)"


def trust(ca_files: tuple[str, ...] = ()) -> Trust:
    """Verification against the OS trust store (else certifi's) plus ``ca_files``; hostnames checked."""
    context, store = _base()
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    for ca_file in ca_files:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            reason = "not a PEM certificate bundle" if isinstance(exc, ssl.SSLError) else exc.strerror or "unreadable"
            raise TLSError(f"cannot use the CA file {ca_file}: {reason}", hint="pass a readable PEM file with --ca-file (or ca_file in the profile)") from None
    return Trust(context, store, tuple(ca_files))


@record(frozen=True)
class Certificate:
    subject: str
    issuer: str
    names: tuple[str, ...]  # subjectAltName DNS names and addresses

    @property
    def self_signed(self) -> bool:
        return self.subject == self.issuer


def describe(der: bytes) -> Certificate | None:
    """Subject, issuer and names of a DER certificate (None if it cannot be parsed)."""
    try:
        from cryptography import x509

        cert = x509.load_der_x509_certificate(der)
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            names = tuple(str(n) for n in san.get_values_for_type(x509.DNSName)) + tuple(str(a) for a in san.get_values_for_type(x509.IPAddress))
        except x509.ExtensionNotFound:
            names = ()
        return Certificate(cert.subject.rfc4514_string() or "(empty)", cert.issuer.rfc4514_string() or "(empty)", names)
    except Exception:  # noqa: BLE001 -- a certificate we cannot read is described as unknown, never a crash
        return None


def unverified_context() -> ssl.SSLContext:
    """For reading a refused certificate's subject and issuer, nothing else: no request is sent."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
