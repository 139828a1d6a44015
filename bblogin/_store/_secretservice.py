"""A minimal, standard-library-only D-Bus client that reads secrets from the Secret Service.

The hot path (kubectl, git) must answer in about two Python start-ups; importing keyring costs
about five, jeepney about one and a half. Reading one secret needs only a handful of D-Bus calls —
Hello, OpenSession("plain"), SearchItems, GetSecrets — so this module speaks the wire protocol
itself: little-endian marshalling of the few types those calls use, SASL EXTERNAL auth, and a
socket timeout on every read. It only reads; writes go through `keyring` on the slow path.

What it recognises as wrong raises :class:`SecretServiceUnavailable`; a socket timeout or a reply
it cannot parse may surface as another exception, so its caller on the hot path must treat *any*
failure here as a miss and fall back to the slow path, which reports the problem properly.
"""

from __future__ import annotations

import _socket  # socket.py pulls in enum and selectors: a fifth of a start-up for nothing here
import os
import struct

from bblogin._errors import StorageError

TYPE_CHECKING = False  # typing costs the hot path a fifth of a start-up
if TYPE_CHECKING:
    from typing import Any

BUS = ("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus")
SECRETS = ("org.freedesktop.secrets", "/org/freedesktop/secrets", "org.freedesktop.Secret.Service")
_ALIGN = {"y": 1, "b": 4, "n": 2, "q": 2, "i": 4, "u": 4, "x": 8, "t": 8, "d": 8, "s": 4, "o": 4, "g": 1, "a": 4, "(": 8, "{": 8, "v": 1, "h": 4}
_FIXED = {"y": "B", "b": "I", "n": "h", "q": "H", "i": "i", "u": "I", "x": "q", "t": "Q", "d": "d", "h": "I"}


class SecretServiceUnavailable(StorageError):
    """No session bus, no Secret Service, a locked item, or an answer this client cannot read."""


def _type_end(sig: str, i: int) -> int:
    """Index just past the complete type that starts at sig[i]."""
    c = sig[i]
    if c == "a":
        return _type_end(sig, i + 1)
    if c in "({":
        close = ")" if c == "(" else "}"
        j = i + 1
        while sig[j] != close:
            j = _type_end(sig, j)
        return j + 1
    return i + 1


def _split(sig: str) -> list[str]:
    out, i = [], 0
    while i < len(sig):
        j = _type_end(sig, i)
        out.append(sig[i:j])
        i = j
    return out


class _Writer:
    def __init__(self) -> None:
        self.buf = bytearray()

    def pad(self, n: int) -> None:
        self.buf += b"\0" * (-len(self.buf) % n)

    def put(self, t: str, value: Any) -> None:
        c = t[0]
        self.pad(_ALIGN[c])
        if c in _FIXED:
            self.buf += struct.pack("<" + _FIXED[c], value)
        elif c in "so":
            data = str(value).encode()
            self.buf += struct.pack("<I", len(data)) + data + b"\0"
        elif c == "g":
            data = str(value).encode()
            self.buf += bytes([len(data)]) + data + b"\0"
        elif c == "v":
            sig, inner = value
            self.put("g", sig)
            self.put(sig, inner)
        elif c == "a":
            elem = t[1:]
            at = len(self.buf)
            self.buf += b"\0\0\0\0"
            self.pad(_ALIGN[elem[0]])
            start = len(self.buf)
            items = value.items() if elem[0] == "{" else value
            for item in items:
                self.put(elem, item)
            struct.pack_into("<I", self.buf, at, len(self.buf) - start)
        elif c in "({":
            for sub, item in zip(_split(t[1:-1]), value, strict=True):  # type: ignore[call-overload]
                self.put(sub, item)
        else:
            raise SecretServiceUnavailable(f"cannot marshal D-Bus type {t!r}")


class _Reader:
    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data, self.pos = data, pos

    def align(self, n: int) -> None:
        self.pos += -self.pos % n

    def get(self, t: str) -> Any:
        c = t[0]
        self.align(_ALIGN[c])
        if c in _FIXED:
            fmt = "<" + _FIXED[c]
            (value,) = struct.unpack_from(fmt, self.data, self.pos)
            self.pos += struct.calcsize(fmt)
            return value
        if c in "so":
            (n,) = struct.unpack_from("<I", self.data, self.pos)
            self.pos += 4 + n + 1
            return self.data[self.pos - n - 1 : self.pos - 1].decode()
        if c == "g":
            n = self.data[self.pos]
            self.pos += 1 + n + 1
            return self.data[self.pos - n - 1 : self.pos - 1].decode()
        if c == "v":
            sig = str(self.get("g"))
            return self.get(sig)
        if c == "a":
            (n,) = struct.unpack_from("<I", self.data, self.pos)
            self.pos += 4
            elem = t[1:]
            self.align(_ALIGN[elem[0]])
            end = self.pos + n
            if elem == "y":
                self.pos = end
                return self.data[end - n : end]
            items = []
            while self.pos < end:
                items.append(self.get(elem))
            return dict(items) if elem[0] == "{" else items
        if c in "({":
            return tuple(self.get(sub) for sub in _split(t[1:-1]))
        raise SecretServiceUnavailable(f"cannot read D-Bus type {t!r}")


def _bus_sockets() -> list[tuple[int, object]]:
    """Socket addresses from DBUS_SESSION_BUS_ADDRESS (unix:path= and unix:abstract=)."""
    out: list[tuple[int, object]] = []
    for entry in os.environ.get("DBUS_SESSION_BUS_ADDRESS", "").split(";"):
        transport, _, params = entry.partition(":")
        if transport != "unix":
            continue
        kv = dict(p.partition("=")[::2] for p in params.split(","))
        if "path" in kv:
            out.append((_socket.AF_UNIX, kv["path"]))
        elif "abstract" in kv:
            out.append((_socket.AF_UNIX, "\0" + kv["abstract"]))
    if not out:
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        if runtime and os.path.exists(os.path.join(runtime, "bus")):
            out.append((_socket.AF_UNIX, os.path.join(runtime, "bus")))
    return out


class Connection:
    """One authenticated session-bus connection (use as a context manager)."""

    def __init__(self, timeout: float = 2.0) -> None:
        self.sock: _socket.socket | None = None
        self.serial = 0
        self.pending = b""
        for family, address in _bus_sockets():
            sock = _socket.socket(family, _socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(address)  # type: ignore[arg-type]
            except OSError:
                sock.close()
                continue
            self.sock = sock
            break
        if self.sock is None:
            raise SecretServiceUnavailable("no D-Bus session bus")
        try:
            self._auth()
            self.call(BUS, "Hello")
        except (OSError, struct.error, IndexError, ValueError, UnicodeDecodeError) as exc:
            self.close()
            raise SecretServiceUnavailable(f"D-Bus handshake failed ({type(exc).__name__})") from None

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _auth(self) -> None:
        assert self.sock is not None
        self.sock.sendall(b"\0AUTH EXTERNAL " + str(os.getuid()).encode().hex().encode() + b"\r\n")
        line = b""
        while not line.endswith(b"\r\n"):
            chunk = self.sock.recv(256)
            if not chunk:
                raise SecretServiceUnavailable("D-Bus closed the connection during authentication")
            line += chunk
        if not line.startswith(b"OK "):
            raise SecretServiceUnavailable("D-Bus refused authentication")
        self.sock.sendall(b"BEGIN\r\n")

    def _recv_exact(self, n: int) -> bytes:
        assert self.sock is not None
        while len(self.pending) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise SecretServiceUnavailable("D-Bus closed the connection")
            self.pending += chunk
        data, self.pending = self.pending[:n], self.pending[n:]
        return data

    def call(self, target: tuple[str, str, str], member: str, signature: str = "", *args: object) -> tuple:
        """Call ``member`` on (destination, path, interface) and return the reply's values."""
        assert self.sock is not None
        self.serial += 1
        body = _Writer()
        for t, value in zip(_split(signature), args, strict=True):
            body.put(t, value)
        fields = [(1, ("o", target[1])), (2, ("s", target[2])), (3, ("s", member)), (6, ("s", target[0]))]
        if signature:
            fields.append((8, ("g", signature)))
        head = _Writer()
        head.buf += struct.pack("<cBBBII", b"l", 1, 0, 1, len(body.buf), self.serial)
        head.put("a(yv)", fields)
        head.pad(8)
        self.sock.sendall(bytes(head.buf) + bytes(body.buf))
        while True:
            fixed = self._recv_exact(16)
            if fixed[:1] != b"l":
                raise SecretServiceUnavailable("big-endian D-Bus replies are not supported")
            kind = fixed[1]
            body_len, _serial, fields_len = struct.unpack_from("<III", fixed, 4)
            rest = self._recv_exact(fields_len + (-(16 + fields_len) % 8) + body_len)
            message = fixed + rest
            reader = _Reader(message, 12)
            header = dict(reader.get("a(yv)"))
            if header.get(5) != self.serial:
                continue  # a signal (NameAcquired…) or someone else's reply
            reader.align(8)
            values = tuple(reader.get(t) for t in _split(str(header.get(8, ""))))
            if kind == 3:
                raise SecretServiceUnavailable(f"D-Bus error {header.get(4)}")
            return values


class SecretReader:
    """Reads items over one connection and one "plain" session: ``with SecretReader() as r: r.read({...})``."""

    def __init__(self, timeout: float = 2.0) -> None:
        self.bus = Connection(timeout)
        try:
            _output, self.session = self.bus.call(SECRETS, "OpenSession", "sv", "plain", ("s", ""))
        except BaseException:
            self.bus.close()
            raise

    def __enter__(self) -> SecretReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bus.close()

    def read(self, attributes: dict[str, str]) -> bytes | None:
        """The secret of the first unlocked item with these attributes; None when there is none.

        Raises SecretServiceUnavailable when a matching item exists but is locked.
        """
        try:
            unlocked, locked = self.bus.call(SECRETS, "SearchItems", "a{ss}", attributes)
            if not unlocked:
                if locked:
                    raise SecretServiceUnavailable("the keyring item is locked")
                return None
            (secrets,) = self.bus.call(SECRETS, "GetSecrets", "aoo", unlocked[:1], self.session)
            secret = secrets.get(unlocked[0])
            return bytes(secret[2]) if secret else None
        except (OSError, struct.error, IndexError, ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
            raise SecretServiceUnavailable(f"Secret Service read failed ({type(exc).__name__})") from None
