"""A connection parses a head repeated byte for byte once (http1.REPEATED_HEAD_BYTES): heads
that differ in one byte, or are too large to be remembered, are still each framed as they say."""

from __future__ import annotations

from redline.sidecars.ambassador.http1 import REPEATED_HEAD_BYTES
from tests.sidecars.ambassador.pair import Pair


def post(length: int, extra: bytes = b"") -> bytes:
    return (b"POST /pay HTTP/1.1\r\nHost: t\r\n" + extra
            + b"Content-Length: %d\r\n\r\n" % length + b"x" * length)


def ok(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body


def test_request_heads_one_byte_apart_are_framed_each_as_it_says() -> None:
    pair = Pair()
    large = b"X-Padding: " + b"p" * REPEATED_HEAD_BYTES + b"\r\n"
    requests = [post(3), post(3), post(5), post(3), post(7, large), post(7, large), post(3)]
    pair.client.data_received(b"".join(requests))
    upstream, upstream_transport = pair.connect()
    assert upstream_transport.take() == b"".join(requests)
    # Bodies as long as each head says (a stale parse would frame them, and the next request,
    # wrong).
    sizes = [3, 3, 5, 3, 7, 7, 3]
    assert [exchange.request_body.size if exchange.request_body else 0
            for exchange in pair.client.pending] == sizes
    assert pair.client.body is None
    for size in sizes:
        upstream.data_received(ok(b"r" * size))
    assert pair.finished == [(b"POST", 200, None)] * len(requests)
    assert pair.client.idle()


def test_response_heads_one_byte_apart_are_framed_each_as_it_says() -> None:
    pair = Pair()
    get = b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
    pair.client.data_received(get * 5)
    upstream, _ = pair.connect()
    responses = [ok(b"ab"), ok(b"ab"), ok(b"abc"), ok(b"ab"),
                 b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\n\r\nab"]
    for response in responses:
        upstream.data_received(response)
    assert pair.client_transport.take() == b"".join(responses)
    assert pair.finished == [(b"GET", 200, None)] * 4 + [(b"GET", 503, None)]
    assert pair.client.idle()
