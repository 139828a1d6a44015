"""A misbehaving D-Bus peer on a unix socket, for the hot path's robustness tests.

The real Secret Service cannot be made to hang on OpenSession or to answer it with nothing, so
these tests talk to this peer instead. It speaks just enough of the protocol (SASL EXTERNAL, then
messages framed and built by jeepney, the maintained pure-Python D-Bus library) for a client to
get as far as the behaviour under test:

  hang      answers AUTH and Hello, then never answers anything else
  empty     answers every call after Hello with an empty method return (no body at all)
  huge      answers Hello with a header that announces a 1 GiB body, and streams it
  trickle   answers AUTH, then sends the start of a reply one byte every 0.2 s, forever
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import threading
from collections.abc import Iterator

from jeepney import new_method_return
from jeepney.low_level import Parser


def _serve(conn: socket.socket, behaviour: str, stop: threading.Event) -> None:
    with conn:
        _talk(conn, behaviour, stop)


def _talk(conn: socket.socket, behaviour: str, stop: threading.Event) -> None:
    conn.settimeout(0.2)
    buf = b""
    parser = Parser()
    serial = 1000
    authed = ok_sent = False

    def send(data: bytes) -> None:
        with contextlib.suppress(OSError):
            conn.sendall(data)

    while not stop.is_set():
        try:
            chunk = conn.recv(65536)
        except TimeoutError:
            chunk = None
        except OSError:
            return
        if chunk == b"":
            return
        if chunk:
            buf += chunk
        if not authed:
            if not ok_sent and b"\r\n" in buf:  # the AUTH line: answered before BEGIN, as a real bus does
                send(b"OK 0123456789abcdef0123456789abcdef\r\n")
                ok_sent = True
            if b"BEGIN\r\n" not in buf:
                continue
            _, _, buf = buf.partition(b"BEGIN\r\n")
            authed = True
            if behaviour == "trickle":
                send(b"l\x02\x01\x01")
                while not stop.wait(0.2):
                    send(b"\x00")
                return
        if buf:
            parser.add_data(buf)
            buf = b""
        while (msg := parser.get_next_message()) is not None:
            serial += 1
            if msg.header.fields.get(3) == "Hello":  # HeaderFields.member
                if behaviour == "huge":
                    reply = bytearray(new_method_return(msg, "s", (":1.99",)).serialise(serial))
                    reply[4:8] = (1 << 30).to_bytes(4, "little")  # the announced body length
                    send(bytes(reply))
                    while not stop.is_set():  # and stream it, as fast as the client reads
                        try:
                            conn.sendall(b"\0" * 65536)
                        except TimeoutError:
                            continue
                        except OSError:
                            return
                    return
                send(new_method_return(msg, "s", (":1.99",)).serialise(serial))
            elif behaviour == "empty":
                send(new_method_return(msg).serialise(serial))
            # "hang" and "huge": say nothing more


@contextlib.contextmanager
def fake_bus(behaviour: str) -> Iterator[str]:
    """Yields a DBUS_SESSION_BUS_ADDRESS for a peer with this behaviour; stops it on exit."""
    assert behaviour in ("hang", "empty", "huge", "trickle")
    root = tempfile.mkdtemp(prefix="bblogin-fakebus-")
    path = os.path.join(root, "bus")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(16)
    server.settimeout(0.2)
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            t = threading.Thread(target=_serve, args=(conn, behaviour, stop), daemon=True)
            t.start()
            threads.append(t)

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield f"unix:path={path}"
    finally:
        stop.set()
        acceptor.join(5)
        for t in threads:
            t.join(5)
        server.close()
        with contextlib.suppress(OSError):
            os.unlink(path)
            os.rmdir(root)
