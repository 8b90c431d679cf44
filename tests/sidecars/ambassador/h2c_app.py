"""A small h2c (prior knowledge) server for the tests, written from RFC 9113 with hpack: the
plain HTTP/2 app that grpcio is not (it resets anything but gRPC). Not a general server: one
thread per connection, requests answered in turn, flow control kept exactly (it must send
10 MiB against the client's windows and take 10 MiB within its own).

- `GET /bytes/N`: N bytes of `pattern_bytes`;
- `POST /echo`: the request body;
- `GET /status/NNN`: an empty response with that status;
- `GET /headers/N`: an empty 200 with a header `x-filler` of N bytes, new on each stream (its
  HPACK entry fills the table the client allowed);
- anything else: 404.

A connection may also start in HTTP/1.1 with `Upgrade: h2c` (RFC 7540 section 3.2, as
`curl --http2` sends it): the app answers 101, its SETTINGS, and the request as stream 1, and
applies the request's `HTTP2-Settings` (the client's first settings: a larger HPACK table
there is used by its encoder from then on).
"""

from __future__ import annotations

import base64
import contextlib
import socket
import ssl
import threading

from hpack import Decoder, Encoder

from redline.sidecars.ambassador import h2frames
from tests.sidecars.ambassador.h2bytes import frame, settings, window_update
from tests.sidecars.ambassador.upstream import pattern_bytes

MAX_FRAME = 16384


class _Connection:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.decoder = Decoder()
        self.encoder = Encoder()
        self.send_window = 65535  # the connection's
        self.initial_window = 65535  # each new stream's, from the client's SETTINGS
        self.stream_windows: dict[int, int] = {}
        self.requests: dict[int, tuple[list[tuple[bytes, bytes]], bytearray]] = {}

    def read_exact(self, size: int) -> bytes:
        while len(self.buffer) < size:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def next_frame(self) -> tuple[int, int, int, bytes]:
        header = self.read_exact(9)
        length = int.from_bytes(header[:3], "big")
        stream_id = int.from_bytes(header[5:9], "big") & 0x7FFFFFFF
        return header[3], header[4], stream_id, self.read_exact(length)

    def serve(self) -> None:
        upgraded = None
        first = self.read_exact(3)
        data, self.buffer = first + self.buffer, b""
        if first != h2frames.PREFACE[:3]:  # HTTP/1.1: an h2c upgrade
            while b"\r\n\r\n" not in data:
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    raise ConnectionError("closed")
                data += chunk
            head, data = data.split(b"\r\n\r\n", 1)
            upgraded = self.upgrade(head)
        self.buffer = data
        self.sock.sendall(settings())
        assert self.read_exact(len(h2frames.PREFACE)) == h2frames.PREFACE
        if upgraded is not None:
            self.requests[1] = (upgraded, bytearray())
            self.stream_windows[1] = self.initial_window
            self.answer(1)
        while True:
            self.handle(*self.next_frame())

    def upgrade(self, head: bytes) -> list[tuple[bytes, bytes]]:
        """The HTTP/1.1 request (without a body, as curl sends it) that asks for h2c: 101."""
        request_line, *fields = head.split(b"\r\n")
        method, target, _ = request_line.split(b" ")
        assert b"upgrade: h2c" in head.lower(), head
        for field in fields:
            name, _, value = field.partition(b":")
            if name.lower() == b"http2-settings":  # base64url, its padding left out
                token = value.strip()
                self.apply_settings(base64.urlsafe_b64decode(token + b"=" * (-len(token) % 4)))
        self.sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                          b"Upgrade: h2c\r\n\r\n")
        return [(b":method", method), (b":path", target)]

    def handle(self, kind: int, flags: int, stream_id: int, payload: bytes) -> None:
        """One frame from the client; a request that ended is answered at once."""
        if kind == h2frames.SETTINGS and not flags & h2frames.ACK:
            self.apply_settings(payload)
            self.sock.sendall(settings(ack=True))
        elif kind == h2frames.WINDOW_UPDATE:
            increment = int.from_bytes(payload, "big") & 0x7FFFFFFF
            if stream_id:
                self.stream_windows[stream_id] = self.stream_windows.get(stream_id, 0) + increment
            else:
                self.send_window += increment
        elif kind == h2frames.PING and not flags & h2frames.ACK:
            self.sock.sendall(frame(h2frames.PING, h2frames.ACK, 0, payload))
        elif kind in (h2frames.HEADERS, h2frames.CONTINUATION):
            self.headers(flags, stream_id, payload)
        elif kind == h2frames.DATA:
            if flags & h2frames.PADDED:
                payload = payload[1:len(payload) - payload[0]]
            self.requests[stream_id][1].extend(payload)
            if payload:  # give back what it used, so the client may send on
                self.sock.sendall(window_update(0, len(payload))
                                  + window_update(stream_id, len(payload)))
            if flags & h2frames.END_STREAM:
                self.answer(stream_id)
        elif kind == h2frames.GOAWAY:
            raise ConnectionError("goaway")

    def apply_settings(self, payload: bytes) -> None:
        """The client's SETTINGS (a frame's payload, or HTTP2-Settings)."""
        for identifier, value in h2frames.settings(payload):
            if identifier == h2frames.SETTINGS_HEADER_TABLE_SIZE:
                self.encoder.header_table_size = value
            elif identifier == 0x4:  # SETTINGS_INITIAL_WINDOW_SIZE
                for sid in self.stream_windows:
                    self.stream_windows[sid] += value - self.initial_window
                self.initial_window = value

    def headers(self, flags: int, stream_id: int, payload: bytes) -> None:
        if flags & h2frames.PADDED:
            payload = payload[1:len(payload) - payload[0]]
        if flags & h2frames.PRIORITY_FLAG:
            payload = payload[5:]
        block = payload
        while not flags & h2frames.END_HEADERS:  # CONTINUATIONs follow at once
            _, flags, _, more = self.next_frame()
            block += more
        headers = [(bytes(n), bytes(v)) for n, v in self.decoder.decode(block, raw=True)]
        self.stream_windows.setdefault(stream_id, self.initial_window)
        self.requests[stream_id] = (headers, bytearray())
        if flags & h2frames.END_STREAM:
            self.answer(stream_id)

    def answer(self, stream_id: int) -> None:
        headers, body = self.requests.pop(stream_id)
        fields = dict(headers)
        method, path = fields[b":method"], fields[b":path"]
        status, content = 404, b""
        extra: list[tuple[bytes, bytes]] = []
        if method == b"GET" and path.startswith(b"/headers/"):
            status = 200
            extra.append((b"x-filler", (b"%d:" % stream_id).ljust(int(path[9:]), b"f")))
        elif method == b"GET" and path.startswith(b"/bytes/"):
            status, content = 200, pattern_bytes(int(path[7:]))
        elif method == b"POST" and path == b"/echo":
            status, content = 200, bytes(body)
        elif path.startswith(b"/status/"):
            status = int(path[8:])
        head = self.encoder.encode([(b":status", b"%d" % status),
                                    (b"content-length", b"%d" % len(content)), *extra])
        end = h2frames.END_STREAM if not content else 0
        self.sock.sendall(frame(h2frames.HEADERS, h2frames.END_HEADERS | end, stream_id, head))
        sent = 0
        while sent < len(content):
            window = min(self.send_window, self.stream_windows[stream_id])
            if window <= 0:
                self.handle(*self.next_frame())  # wait for a WINDOW_UPDATE
                continue
            piece = content[sent:sent + min(window, MAX_FRAME)]
            sent += len(piece)
            self.send_window -= len(piece)
            self.stream_windows[stream_id] -= len(piece)
            last = h2frames.END_STREAM if sent == len(content) else 0
            self.sock.sendall(frame(h2frames.DATA, last, stream_id, piece))
        self.stream_windows.pop(stream_id, None)


class H2cApp:
    """Listens on a port of its own, in this process, a thread per connection."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        """`tls`: serve HTTP/2 over TLS with that server context (offering ALPN h2) instead
        of h2c."""
        self.tls = tls
        if tls is not None:
            tls.set_alpn_protocols(["h2"])
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        # The client went away (ConnectionError), or its TLS failed (SSLError): both OSErrors.
        with contextlib.suppress(OSError), sock:
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_side=True)
            with sock:
                _Connection(sock).serve()

    def __enter__(self) -> H2cApp:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        self.listener.close()
        self.thread.join(5)
