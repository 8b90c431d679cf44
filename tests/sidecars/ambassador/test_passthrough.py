"""Every byte of every request and response arrives unchanged, and every request is counted."""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import socket
from collections.abc import Iterator

import pytest

from tests.sidecars.ambassador.conftest import AmbassadorProcess
from tests.sidecars.ambassador.upstream import UpstreamServer, pattern_bytes, ws_frame

SIZES = [0, 1024, 1024 * 1024, 10 * 1024 * 1024]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def connect(ambassador: AmbassadorProcess) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", ambassador.port, timeout=30)


def pieces(data: bytes, size: int = 100_000) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("request_chunked", [False, True])
@pytest.mark.parametrize("response_path", ["/echo", "/echo-chunked"])
def test_request_bodies_arrive_byte_identical(
    ambassador: AmbassadorProcess, counted: list[int], size: int, request_chunked: bool,
    response_path: str,
) -> None:
    body = os.urandom(size)
    conn = connect(ambassador)
    if request_chunked:
        conn.request("POST", response_path, body=pieces(body), encode_chunked=True,
                      headers={"Transfer-Encoding": "chunked"})
    else:
        conn.request("POST", response_path, body=body)
    response = conn.getresponse()
    echoed = response.read()
    conn.close()
    counted.append(1)
    assert response.status == 200
    assert (len(echoed), sha(echoed)) == (size, sha(body))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("chunked", [False, True])
def test_response_bodies_arrive_byte_identical(
    ambassador: AmbassadorProcess, counted: list[int], size: int, chunked: bool
) -> None:
    conn = connect(ambassador)
    conn.request("GET", f"/bytes/{size}" + ("?chunked=1" if chunked else ""))
    response = conn.getresponse()
    data = response.read()
    conn.close()
    counted.append(1)
    assert response.status == 200
    assert response.getheader("Transfer-Encoding") == ("chunked" if chunked else None)
    assert sha(data) == sha(pattern_bytes(size))


def test_raw_bytes_are_not_rewritten(
    ambassador: AmbassadorProcess, upstream: UpstreamServer, counted: list[int]
) -> None:
    """Odd but valid header spelling and order reach the app exactly as sent."""
    request = (b"GET /say/raw HTTP/1.1\r\nhOsT: example.test\r\nX-Odd:   spaced value \r\n"
               b"x-dup: 1\r\nX-Dup: 2\r\nConnection: close\r\n\r\n")
    with socket.create_connection(("127.0.0.1", ambassador.port), timeout=10) as sock:
        sock.sendall(request)
        received = read_all(sock)
    counted.append(1)
    assert received.endswith(b"\r\n\r\nraw")
    method, path, headers = upstream.seen[-1]
    assert (method, path) == ("GET", "/say/raw")
    # http.server drops the leading spaces of a value and keeps the trailing one we sent.
    assert list(headers.items())[:4] == [("hOsT", "example.test"), ("X-Odd", "spaced value "),
                                         ("x-dup", "1"), ("X-Dup", "2")]


def test_a_thousand_requests_on_one_keep_alive_connection(
    ambassador: AmbassadorProcess, counted: list[int]
) -> None:
    opened = ambassador.value("redline_ambassador_connections_opened_total", side="client")
    conn = connect(ambassador)
    for i in range(1000):
        conn.request("GET", f"/say/{i}")
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, str(i).encode())
    conn.close()
    counted.append(1000)
    after = ambassador.value("redline_ambassador_connections_opened_total", side="client")
    assert after - opened == 1


def test_a_hundred_pipelined_requests_are_answered_in_order(
    ambassador: AmbassadorProcess, counted: list[int]
) -> None:
    requests = b"".join(b"GET /say/%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(100))
    requests += b"GET /say/last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", ambassador.port), timeout=10) as sock:
        sock.sendall(requests)
        received = read_all(sock)
    counted.append(101)
    bodies = [part.split(b"\r\n\r\n", 1)[1] for part in received.split(b"HTTP/1.1 200 OK")[1:]]
    assert bodies == [str(i).encode() for i in range(100)] + [b"last"]


def test_head_204_304_and_100_continue(
    ambassador: AmbassadorProcess, counted: list[int]
) -> None:
    # Pipelined on one connection: a body-less response must not swallow the next one.
    requests = (
        b"HEAD /bytes/5000 HTTP/1.1\r\nHost: t\r\n\r\n"
        b"GET /status/204 HTTP/1.1\r\nHost: t\r\n\r\n"
        b"GET /status/304 HTTP/1.1\r\nHost: t\r\n\r\n"
        b"GET /say/after HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", ambassador.port), timeout=10) as sock:
        sock.sendall(requests)
        received = read_all(sock)
    counted.append(4)
    assert received.count(b"HTTP/1.1 ") == 4
    assert b"Content-Length: 5000" in received
    assert received.endswith(b"\r\n\r\nafter")
    with socket.create_connection(("127.0.0.1", ambassador.port), timeout=10) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                     b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
        interim = sock.recv(1024)
        assert interim.startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(b"hello")
        final = interim + read_all(sock)
    counted.append(1)
    assert final.endswith(b"\r\n\r\nhello")
    assert ambassador.wait_recorded(1, http_request_method="HEAD", http_route="/bytes/{id}") == 1
    assert ambassador.wait_recorded(1, http_response_status_code="304") >= 1


def test_websocket_echo_through_the_tunnel(
    ambassador: AmbassadorProcess, counted: list[int]
) -> None:
    key = base64.b64encode(os.urandom(16))
    with socket.create_connection(("127.0.0.1", ambassador.port), timeout=10) as sock:
        sock.sendall(b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key +
                     b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101")
        counted.append(1)
        with sock.makefile("rb") as reader:
            for message in (b"hello", os.urandom(70_000), b"x" * 200):
                sock.sendall(ws_frame(2, message, mask=os.urandom(4)))
                header = reader.read(2)
                length = header[1] & 0x7F
                if length == 126:
                    length = int.from_bytes(reader.read(2), "big")
                elif length == 127:
                    length = int.from_bytes(reader.read(8), "big")
                assert reader.read(length) == message
            sock.sendall(ws_frame(8, b"", mask=os.urandom(4)))
    # The upgrade is timed to the 101 and recorded once.
    assert ambassador.wait_recorded(1, http_response_status_code="101") >= 1


def test_ignored_paths_are_forwarded_but_not_counted(
    ambassador: AmbassadorProcess, counted: list[int]
) -> None:
    conn = connect(ambassador)
    for path, agent in (("/healthz", "curl/8"), ("/metrics", "curl/8"),
                        ("/api/probe", "kube-probe/1.30")):
        conn.request("GET", path, headers={"User-Agent": agent})
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"ok")
    conn.close()
    counted.append(0)


def read_all(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)
