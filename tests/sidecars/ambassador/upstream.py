"""A real HTTP/1.1 app for the ambassador to proxy to, on 127.0.0.1 in a thread.

Paths:
  /echo             the request body back (Content-Length); request may be chunked
  /echo-chunked     the request body back, chunked in 64 KiB pieces
  /bytes/N          N deterministic bytes (Content-Length); ?chunked=1 for chunked
  /say/TEXT         TEXT as the body (for ordering checks)
  /status/N         status N (no body for 1xx/204/304)
  /slow/S           waits S seconds, then 200
  /reset            resets the connection without answering
  /reset-mid        sends half a response, then resets
  /reset-in-head    sends half a response head, then resets
  /stream           text/event-stream: one event now, another after 1 s, then ends (chunked)
  /ws               WebSocket echo (text and binary frames, until a close frame)
  anything else     200 "ok"
It keeps a record of each request's headers so tests can see what arrived (traceparent, ...).
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def pattern_bytes(size: int) -> bytes:
    block = hashlib.sha256(str(size).encode()).digest() * 2048  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # the head and the body are separate writes
    server: UpstreamServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", *, chunked: bool = False,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        no_body = status in (204, 304) or status < 200
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif not no_body:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD" or no_body:
            return
        if chunked:
            for start in range(0, len(body), 65536):
                piece = body[start:start + 65536]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.write(body)

    def _any(self) -> None:
        self.server.seen.append((self.command, self.path, dict(self.headers.items())))
        path, _, query = self.path.partition("?")
        body = self._body()
        if path == "/echo":
            self._send(200, body)
        elif path == "/echo-chunked":
            self._send(200, body, chunked=True)
        elif path.startswith("/bytes/"):
            self._send(200, pattern_bytes(int(path[7:])), chunked="chunked=1" in query)
        elif path.startswith("/say/"):
            self._send(200, path[5:].encode())
        elif path.startswith("/status/"):
            self._send(int(path[8:]), b"status body")
        elif path.startswith("/slow/"):
            time.sleep(float(path[6:]))
            self._send(200, b"slow")
        elif path == "/reset":
            self._reset()
        elif path == "/reset-mid":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
            self.wfile.flush()
            time.sleep(0.05)
            self._reset()
        elif path == "/reset-in-head":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Len")
            self.wfile.flush()
            time.sleep(0.05)
            self._reset()
        elif path == "/stream":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for event in (b"data: one\n\n", b"data: two\n\n"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                self.wfile.flush()
                time.sleep(1.0)
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/ws":
            self._websocket()
        else:
            self._send(200, b"ok")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _any  # noqa: N815
    do_BREW = _any  # noqa: N815

    def _reset(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _websocket(self) -> None:
        key = self.headers["Sec-WebSocket-Key"].encode()
        accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        while True:
            header = self.rfile.read(2)
            if len(header) < 2:
                break
            opcode, length = header[0] & 0x0F, header[1] & 0x7F
            if length == 126:
                length = struct.unpack("!H", self.rfile.read(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", self.rfile.read(8))[0]
            mask = self.rfile.read(4) if header[1] & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(length)))
            self.wfile.write(ws_frame(opcode, data))
            self.wfile.flush()
            if opcode == 8:
                break
        self.close_connection = True


def ws_frame(opcode: int, data: bytes, mask: bytes | None = None) -> bytes:
    length = len(data)
    mask_bit = 0x80 if mask else 0
    if length < 126:
        head = bytes([0x80 | opcode, mask_bit | length])
    elif length < 65536:
        head = bytes([0x80 | opcode, mask_bit | 126]) + struct.pack("!H", length)
    else:
        head = bytes([0x80 | opcode, mask_bit | 127]) + struct.pack("!Q", length)
    if mask:
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        return head + mask + data
    return head + data


class UpstreamServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.port = self.server_address[1]
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def __enter__(self) -> UpstreamServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
