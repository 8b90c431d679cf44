"""A head that starts a chunk and repeats the connection's last head byte for byte is taken
without a scan for its end (RequestFraming._whole_head, UpstreamSide._whole_head): each request and
response arriving in its own chunk, as from a load generator or a polling client, is still
framed as it says when the heads differ in one byte, and when more follows the head in the
chunk."""

from __future__ import annotations

import pytest

from redline.exporters.red import CONNECTION_RESET
from tests.sidecars.ambassador.pair import Pair


def post(length: int, path: bytes = b"/pay") -> bytes:
    return (b"POST " + path + b" HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % length
            + b"x" * length)


def ok(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body


def test_each_request_in_its_own_chunk_is_framed_as_it_says() -> None:
    pair = Pair()
    pair.client.data_received(post(3))
    upstream, upstream_transport = pair.connect()
    # Heads one byte apart (the length, the path), each at the start of its chunk; the last
    # chunk holds a repeated head and, after its body, the start of the next request.
    chunks = [post(3), post(5), post(5), post(5, b"/pax"), post(3), post(3) + b"GET /a HTT"]
    sizes = [3, 3, 5, 5, 5, 3, 3]
    for chunk in chunks:
        pair.client.data_received(chunk)
    assert upstream_transport.take() == post(3) + b"".join(chunks)[:-len(b"GET /a HTT")]
    # Bodies as long as each head says: a head taken for the last one wrongly would frame its
    # body, and the next request, wrong.
    assert [exchange.request_body.size if exchange.request_body else 0
            for exchange in pair.client.pending] == sizes
    assert pair.client.body is None
    pair.client.data_received(b"P/1.1\r\nHost: t\r\n\r\n")
    assert upstream_transport.take() == b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
    for size in [*sizes, 0]:
        upstream.data_received(ok(b"r" * size))
    assert pair.finished == [(b"POST", 200, None)] * len(sizes) + [(b"GET", 200, None)]
    assert pair.client.idle()


def test_a_repeated_head_whose_body_comes_in_the_next_chunk() -> None:
    pair = Pair()
    pair.client.data_received(post(4))
    upstream, upstream_transport = pair.connect()
    upstream.data_received(ok(b"r"))
    head = post(4)[:-4]
    pair.client.data_received(head)  # the same head again, its body not sent yet
    assert pair.client.body is not None
    pair.client.data_received(b"xxxx")
    assert pair.client.body is None
    assert upstream_transport.take() == post(4) + head + b"xxxx"
    upstream.data_received(ok(b"r"))
    assert pair.finished == [(b"POST", 200, None)] * 2
    assert pair.client.idle()


def response(status: bytes, length: int, extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\nContent-Length: %d\r\n" % length + extra + b"\r\n"
            + b"r" * length)


def test_each_response_in_its_own_chunk_is_framed_as_it_says() -> None:
    pair = Pair()
    pair.client.data_received(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n" * 9)
    upstream, _ = pair.connect()
    # Heads one byte apart (the length, the status, a header's value), each at the start of
    # its chunk; a repeated head whose chunk ends before its body does, and one whose chunk
    # also holds the start of the next response's head.
    chunks = [response(b"200 OK", 3), response(b"200 OK", 5), response(b"200 OK", 5),
              response(b"201 OK", 5), response(b"201 OK", 5, b"A: b\r\n"),
              response(b"201 OK", 5, b"A: c\r\n"), response(b"201 OK", 5, b"A: c\r\n")[:-2],
              b"rr" + response(b"201 OK", 5, b"A: c\r\n") + b"HTTP/1.1 2", b"04 No\r\n\r\n"]
    pair.client_transport.take()
    for chunk in chunks:
        upstream.data_received(chunk)
    assert pair.client_transport.take() == b"".join(chunks)
    assert pair.finished == [(b"GET", status, None) for status in [200] * 3 + [201] * 5 + [204]]
    assert upstream.body is None and not upstream.held
    assert pair.client.idle()


@pytest.mark.parametrize(("request_bytes", "sent_again"), [
    (b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n", True),
    (post(0), False),
])
def test_a_repeated_head_is_sent_again_after_the_keep_alive_race_only_if_idempotent(
        request_bytes: bytes, sent_again: bool) -> None:
    # The second request's head is the first's again (the same parse): whether it may be sent
    # again is still its method's to say.
    pair = Pair()
    pair.client.data_received(request_bytes)
    upstream, _ = pair.connect()
    upstream.data_received(ok(b"r"))
    pair.client.data_received(request_bytes)
    upstream.connection_lost(None)  # closed by the app as idle, the request unanswered
    assert pair.owner.retries == (1 if sent_again else 0)
    if sent_again:
        assert len(pair.owner.connects) == 2
        _, transport = pair.connect()
        assert transport.take() == request_bytes
    else:
        assert pair.finished[-1] == (b"POST", 502, CONNECTION_RESET)
