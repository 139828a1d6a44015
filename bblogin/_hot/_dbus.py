"""A minimal, standard-library-only D-Bus client that reads secrets from the Secret Service.

The hot path (kubectl, git) must answer in little more than a Python start-up; importing keyring
costs about five, jeepney about one and a half. Reading one secret needs only a handful of D-Bus
calls — Hello, a property Get, OpenSession("plain"), SearchItems, GetSecrets — so this module
speaks the wire protocol itself: little-endian marshalling of the few types those calls use (with
int.to_bytes: even `struct` costs a shared-library load), SASL EXTERNAL auth, and the calls
pipelined so that the whole read is three round trips to the bus (see ``Connection`` and
``SecretReader``: the third keeps gnome-keyring from aborting). It only reads; writes go
through `keyring` on the full path.

Anything unexpected raises :class:`SecretServiceUnavailable`; the hot path then declines and the
full path, going through `keyring`, reports the problem properly. No ``from __future__ import
annotations`` here or anywhere on the hot path: that import alone is a module load.
"""

import _socket  # socket.py pulls in enum and selectors: a fifth of a start-up for nothing here
import time
from posix import getuid  # not os: see _paths

from bblogin import _paths

TYPE_CHECKING = False  # typing costs the hot path a fifth of a start-up
if TYPE_CHECKING:
    from typing import Any

BUS = ("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus")
SECRETS = ("org.freedesktop.secrets", "/org/freedesktop/secrets", "org.freedesktop.Secret.Service")
_ALIGN = {"y": 1, "b": 4, "n": 2, "q": 2, "i": 4, "u": 4, "x": 8, "t": 8, "d": 8, "s": 4, "o": 4, "g": 1, "a": 4, "(": 8, "{": 8, "v": 1, "h": 4}
MAX_MESSAGE = 1 << 20  # header fields + body; a secret is a few KiB (D-Bus itself allows 128 MiB)
MAX_AUTH_LINE = 1024
_FIXED = {"y": (1, False), "b": (4, False), "n": (2, True), "q": (2, False), "i": (4, True), "u": (4, False), "x": (8, True), "t": (8, False), "h": (4, False)}  # size, signed


def _u32(data: bytes, pos: int) -> int:
    if pos + 4 > len(data):
        raise SecretServiceUnavailable("D-Bus message cut short")
    return int.from_bytes(data[pos : pos + 4], "little")


class SecretServiceUnavailable(Exception):
    """No session bus, no Secret Service, a locked item, or an answer this client cannot read."""


class SecretServiceTimeout(SecretServiceUnavailable):
    """The bus or the Secret Service did not answer before the deadline."""


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

    def put(self, t: str, value: "Any") -> None:
        c = t[0]
        self.pad(_ALIGN[c])
        if c in _FIXED:
            size, signed = _FIXED[c]
            self.buf += int(value).to_bytes(size, "little", signed=signed)
        elif c in "so":
            data = str(value).encode()
            self.buf += len(data).to_bytes(4, "little") + data + b"\0"
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
            self.buf[at : at + 4] = (len(self.buf) - start).to_bytes(4, "little")
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

    def _check(self) -> None:
        if self.pos > len(self.data):
            raise SecretServiceUnavailable("D-Bus string longer than its message")

    def get(self, t: str) -> "Any":
        c = t[0]
        self.align(_ALIGN[c])
        if c in _FIXED:
            size, signed = _FIXED[c]
            if self.pos + size > len(self.data):
                raise SecretServiceUnavailable("D-Bus message cut short")
            self.pos += size
            return int.from_bytes(self.data[self.pos - size : self.pos], "little", signed=signed)
        if c in "so":
            n = _u32(self.data, self.pos)
            self.pos += 4 + n + 1
            self._check()
            return self.data[self.pos - n - 1 : self.pos - 1].decode()
        if c == "g":
            n = self.data[self.pos]
            self.pos += 1 + n + 1
            self._check()
            return self.data[self.pos - n - 1 : self.pos - 1].decode()
        if c == "v":
            sig = str(self.get("g"))
            return self.get(sig)
        if c == "a":
            n = _u32(self.data, self.pos)
            self.pos += 4
            elem = t[1:]
            self.align(_ALIGN[elem[0]])
            end = self.pos + n
            if end > len(self.data):
                raise SecretServiceUnavailable("D-Bus array longer than its message")
            if elem == "y":
                self.pos = end
                return self.data[end - n : end]
            items = []
            while self.pos < end:
                at = self.pos
                items.append(self.get(elem))
                if self.pos == at:
                    raise SecretServiceUnavailable("D-Bus array of empty elements")
            return dict(items) if elem[0] == "{" else items
        if c in "({":
            return tuple(self.get(sub) for sub in _split(t[1:-1]))
        raise SecretServiceUnavailable(f"cannot read D-Bus type {t!r}")


_HEX = b"0123456789abcdefABCDEF"


def unescape(value: str) -> bytes:
    """An address value as the D-Bus specification escapes it ("Server Addresses": any byte may
    be written ``%`` and two hex digits, and every byte outside ``[-0-9A-Za-z_/.\\*]`` must be):
    the bytes it stands for. A socket path is bytes, not necessarily UTF-8, so ``%c3%a9`` is the
    two bytes of "é". Bytes that should have been escaped but were not are kept as they are, as
    jeepney (keyring's D-Bus library) keeps them."""
    raw, out, i = value.encode("utf-8", "surrogateescape"), bytearray(), 0
    while i < len(raw):
        digits = raw[i + 1 : i + 3]
        if raw[i] == 0x25 and len(digits) == 2 and digits[0] in _HEX and digits[1] in _HEX:  # %XX
            out.append(int(digits, 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return bytes(out)


def _bus_sockets() -> list[tuple[int, object]]:
    """Socket addresses from DBUS_SESSION_BUS_ADDRESS (unix:path= and unix:abstract=, values
    %-unescaped), else $XDG_RUNTIME_DIR/bus."""
    out: list[tuple[int, object]] = []
    for entry in (_paths.getenv("DBUS_SESSION_BUS_ADDRESS") or "").split(";"):
        transport, _, params = entry.partition(":")
        if transport != "unix":
            continue
        kv = dict(p.partition("=")[::2] for p in params.split(","))
        if "path" in kv:
            out.append((_socket.AF_UNIX, unescape(kv["path"])))
        elif "abstract" in kv:
            out.append((_socket.AF_UNIX, b"\0" + unescape(kv["abstract"])))
    if not out:
        runtime = _paths.getenv("XDG_RUNTIME_DIR")
        if runtime and _paths.exists(_paths.join(runtime, "bus")):
            out.append((_socket.AF_UNIX, _paths.join(runtime, "bus")))
    return out


class Connection:
    """One authenticated session-bus connection (use as a context manager), pipelined.

    ``send`` only queues a call and returns its serial; ``reply`` sends everything queued in one
    write and reads until that call's reply. The SASL exchange, BEGIN and Hello are queued too, so
    the handshake and the first call cost one round trip together, as with sd-bus. dbus-daemon and dbus-broker accept BEGIN and the
    first messages before they answer AUTH; they refuse any call before Hello, so Hello stays.

    Bounded in every way a misbehaving peer could stretch it: one deadline for the whole
    connection (not per read, so a peer trickling bytes cannot keep us), MAX_MESSAGE bytes per
    message, MAX_AUTH_LINE for the SASL answer.
    """

    def __init__(self, timeout: float = 2.0) -> None:
        self.deadline = time.monotonic() + timeout
        self.sock: _socket.socket | None = None
        self.serial = 0
        self.pending = b""
        self.replies: dict[int, tuple[int, dict, bytes]] = {}
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
        self.outbox = bytearray(b"\0AUTH EXTERNAL " + str(getuid()).encode().hex().encode() + b"\r\nBEGIN\r\n")
        self.authenticated = False
        self.send(BUS, "Hello")

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _recv(self) -> bytes:
        assert self.sock is not None
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise SecretServiceTimeout("the Secret Service did not answer in time")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            raise SecretServiceTimeout("the Secret Service did not answer in time") from None
        if not chunk:
            raise SecretServiceUnavailable("D-Bus closed the connection")
        return chunk

    def _recv_exact(self, n: int) -> bytes:
        while len(self.pending) < n:
            self.pending += self._recv()
        data, self.pending = self.pending[:n], self.pending[n:]
        return data

    def _auth_answer(self) -> None:
        while b"\r\n" not in self.pending:
            if len(self.pending) > MAX_AUTH_LINE:
                raise SecretServiceUnavailable("D-Bus sent an overlong authentication line")
            self.pending += self._recv()
        line, _, self.pending = self.pending.partition(b"\r\n")
        if not line.startswith(b"OK "):
            raise SecretServiceUnavailable("D-Bus refused authentication")
        self.authenticated = True

    def send(self, target: tuple[str, str, str], member: str, signature: str = "", *args: object) -> int:
        """Queue a call of ``member`` on (destination, path, interface); its serial."""
        self.serial += 1
        body = _Writer()
        for t, value in zip(_split(signature), args, strict=True):
            body.put(t, value)
        fields = [(1, ("o", target[1])), (2, ("s", target[2])), (3, ("s", member)), (6, ("s", target[0]))]
        if signature:
            fields.append((8, ("g", signature)))
        head = _Writer()
        head.buf += b"l\1\0\1" + len(body.buf).to_bytes(4, "little") + self.serial.to_bytes(4, "little")
        head.put("a(yv)", fields)
        head.pad(8)
        self.outbox += head.buf + body.buf
        return self.serial

    def reply(self, serial: int) -> tuple:
        """Send what is queued; the values of call ``serial``'s reply (a D-Bus error raises)."""
        assert self.sock is not None
        if self.outbox:
            self.sock.settimeout(max(self.deadline - time.monotonic(), 0.001))
            self.sock.sendall(self.outbox)
            self.outbox = bytearray()
        if not self.authenticated:
            self._auth_answer()
        while serial not in self.replies:
            fixed = self._recv_exact(16)
            if fixed[:1] != b"l":
                raise SecretServiceUnavailable("big-endian D-Bus replies are not supported")
            body_len, fields_len = _u32(fixed, 4), _u32(fixed, 12)
            if fields_len + body_len > MAX_MESSAGE:
                raise SecretServiceUnavailable("D-Bus sent an oversized message")
            message = fixed + self._recv_exact(fields_len + (-(16 + fields_len) % 8) + body_len)
            reader = _Reader(message, 12)
            header = dict(reader.get("a(yv)"))
            if fixed[1] in (2, 3) and isinstance(header.get(5), int):  # a reply or an error; signals are skipped
                reader.align(8)
                self.replies[header[5]] = (fixed[1], header, message[reader.pos :])
        kind, header, body = self.replies.pop(serial)
        if kind == 3:
            raise SecretServiceUnavailable(f"D-Bus error {header.get(4)}")
        reader = _Reader(body)
        return tuple(reader.get(t) for t in _split(str(header.get(8, ""))))


DEFAULT_COLLECTION = "/org/freedesktop/secrets/aliases/default"


class SecretReader:
    """Reads items over one connection and one "plain" session: ``with SecretReader() as r: r.read([{...}])``.

    The first ``read`` costs three round trips: the handshake with a Properties.Get of the
    service's Collections (its answer is not used), then OpenSession with the SearchItems, then one
    GetSecrets for all the items found; a later ``read`` on the same reader two. It searches the
    whole service (the hot path: a value it finds is served only when its SHA-256 is the verified
    token's), or with ``collection`` one collection, as keyring's Secret Service backend does (the
    default one: ``DEFAULT_COLLECTION``).

    Why OpenSession waits for an answer: gnome-keyring-daemon (42) registers a caller in an idle
    callback that its D-Bus message filter schedules for every incoming message, and GLib can
    dispatch that message's method before the callback has run. For OpenSession from a caller it
    has not registered, the daemon aborts (``gkd_secret_service_get_pkcs11_session: assertion
    'client' failed``, then a fatal GLib error in g_variant_new), and the bus starts a new daemon
    whose login keyring is locked: every later read says "locked". With OpenSession as the first
    call this hit about one connection in 3,000; a Get of Collections needs no registered caller,
    and once the daemon has answered it from its main loop, the callback scheduled before it runs
    before any later call. (secretstorage starts with a property read too.)
    """

    def __init__(self, timeout: float = 2.0, collection: str | None = None) -> None:
        self.bus = Connection(timeout)
        self.greeting: int | None = self.bus.send((SECRETS[0], SECRETS[1], "org.freedesktop.DBus.Properties"), "Get", "ss", SECRETS[2], "Collections")
        self.session = ""
        self.search = SECRETS if collection is None else (SECRETS[0], collection, "org.freedesktop.Secret.Collection")

    def __enter__(self) -> "SecretReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.bus.close()

    def read(self, queries: list[dict[str, str]]) -> list[bytes | None]:
        """For each query (item attributes), the secret of the first unlocked item that has them,
        or None when there is none. Raises SecretServiceUnavailable when a matching item is
        locked, and for anything this client cannot make sense of."""
        try:
            opening = None
            if self.greeting is not None:
                self.bus.reply(self.greeting)
                self.greeting = None
                opening = self.bus.send(SECRETS, "OpenSession", "sv", "plain", ("s", ""))
            searches = [self.bus.send(self.search, "SearchItems", "a{ss}", q) for q in queries]
            if opening is not None:
                opened = self.bus.reply(opening)
                if len(opened) != 2 or not isinstance(opened[1], str) or not opened[1].startswith("/"):
                    raise SecretServiceUnavailable("the Secret Service opened no session")
                self.session = opened[1]
            if not self.session:
                raise SecretServiceUnavailable("the Secret Service opened no session")
            found: list[str | None] = []
            for serial in searches:
                result = self.bus.reply(serial)
                if self.search is SECRETS:
                    unlocked, locked = result
                    if not unlocked and locked:
                        raise SecretServiceUnavailable("the keyring item is locked")
                else:  # a collection's SearchItems: one list, locked items in it too
                    (unlocked,) = result
                found.append(str(unlocked[0]) if unlocked else None)
            paths = [p for p in found if p is not None]
            if not paths:
                return [None] * len(queries)
            (secrets,) = self.bus.reply(self.bus.send(SECRETS, "GetSecrets", "aoo", paths, self.session))
            out: list[bytes | None] = []
            for path in found:
                secret = secrets.get(path) if path is not None else None
                if path is not None and secret is None:
                    raise SecretServiceUnavailable("the keyring item is locked")  # GetSecrets leaves locked items out
                out.append(bytes(secret[2]) if secret is not None else None)
            return out
        except SecretServiceUnavailable:
            raise
        except (OSError, IndexError, ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError, RecursionError, MemoryError) as exc:
            raise SecretServiceUnavailable(f"Secret Service read failed ({type(exc).__name__})") from None
