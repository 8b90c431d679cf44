"""HTTP/1.1 framing, sans IO: heads, bodies and the cases where strictness matters."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redline.sidecars.ambassador.http1 import (
    LimitError,
    ProtocolError,
    error_response,
    parse_request_head,
    parse_response_head,
)
from redline.sidecars.ambassador.http1_body import (
    FREE_CHUNKS,
    ChunkedBody,
    LengthBody,
    UntilCloseBody,
    request_body,
    response_body,
)


def test_request_head_fields() -> None:
    head = parse_request_head(
        b"POST /users/1?x=2 HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n"
        b"User-Agent: kube-probe/1.29\r\ntraceparent: 00-abc-def-01\r\n"
        b"tracestate: a=1\r\nTraceState: b=2\r\n\r\n")
    assert (head.method, head.target, head.minor_version) == (b"POST", b"/users/1?x=2", 1)
    assert head.content_length == 12 and not head.chunked and not head.upgrade
    assert head.user_agent == b"kube-probe/1.29"
    assert head.traceparent == b"00-abc-def-01"
    assert head.tracestate == b"a=1,b=2"
    assert not head.close


def test_connection_semantics() -> None:
    assert parse_request_head(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
                              ).close
    assert parse_request_head(b"GET / HTTP/1.0\r\n\r\n").close  # 1.0 may omit Host
    assert not parse_request_head(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").close
    upgrade = parse_request_head(
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n"
        b"Upgrade: websocket\r\n\r\n")
    assert upgrade.upgrade
    assert parse_request_head(b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n").upgrade
    assert not parse_request_head(
        b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n").upgrade


@pytest.mark.parametrize(
    "head",
    [
        b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n",  # space in a field name
        b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",  # space before the colon
        b"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n",
        b"GET / HTTP/2.0\r\n\r\n",
        b"GET  / HTTP/1.1\r\n\r\n",
        b"GET /a b HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n folded: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: 3\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # TLS sent to a plain port
        b"GET / HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host
        b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",  # two authorities
        b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n",
    ],
)
def test_malformed_request_heads_are_refused(head: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_request_head(head)
    assert info.value.status == 400


@pytest.mark.parametrize(
    ("head", "reason"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", "no Host header"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: y\r\nhost: b\r\n\r\n", "2 Host headers"),
        (b"GET / HTTP/1.0\r\nHOST: a\r\nHost: a\r\nhOsT: a\r\n\r\n", "3 Host headers"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost : b\r\n\r\n", "malformed request head"),
    ],
)
def test_refused_heads_say_why(head: bytes, reason: str) -> None:
    """Host lines are counted by the validating match; the error still names the cause."""
    with pytest.raises(ProtocolError, match=f"^{reason}$"):
        parse_request_head(head)


def test_fields_that_only_start_like_host_are_not_host() -> None:
    head = parse_request_head(b"GET / HTTP/1.1\r\nHostname: x\r\nHost: a\r\nX-Host: b\r\n"
                              b"Host-Ish: c\r\nContent-Length: 2\r\n\r\n")
    assert head.content_length == 2 and head.minor_version == 1
    with pytest.raises(ProtocolError, match="no Host header"):
        parse_request_head(b"GET / HTTP/1.1\r\nHostname: x\r\n\r\n")


def test_same_content_length_twice_is_fine() -> None:
    head = parse_request_head(
        b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\n")
    assert head.content_length == 3


def test_request_bodies() -> None:
    assert request_body(parse_request_head(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")) is None
    assert request_body(
        parse_request_head(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")) is None
    chunked = parse_request_head(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
    assert isinstance(request_body(chunked), ChunkedBody)


@pytest.mark.parametrize(
    ("head", "method", "kind"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", b"GET", LengthBody),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", b"HEAD", None),
        (b"HTTP/1.1 204 No Content\r\n\r\n", b"GET", None),
        (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", b"GET", None),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"GET", ChunkedBody),
        (b"HTTP/1.1 200 OK\r\n\r\n", b"GET", UntilCloseBody),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", b"GET", None),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", b"GET", UntilCloseBody),
    ],
)
def test_response_bodies(head: bytes, method: bytes, kind: type | None) -> None:
    body = response_body(parse_response_head(head), method)
    assert (None if body is None else type(body)) is kind


def test_response_heads() -> None:
    head = parse_response_head(b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n")
    assert (head.status, head.close) == (503, True)
    assert parse_response_head(b"HTTP/1.1 200\r\n\r\n").status == 200  # no reason phrase
    assert parse_response_head(b"HTTP/1.0 200 OK\r\n\r\n").close
    with pytest.raises(ProtocolError) as info:
        parse_response_head(b"HTTP/1.1 20 OK\r\n\r\n")
    assert info.value.status == 502


def feed(body: LengthBody | ChunkedBody, data: bytes, step: int) -> int:
    """Feed in pieces of `step` bytes; returns how many bytes belonged to the body."""
    used = 0
    for start in range(0, len(data), step):
        piece = data[start:start + step]
        end = body.consume(piece, 0)
        used += end
        if body.done:
            return used
    return used


CHUNKED = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"


@pytest.mark.parametrize("step", [1, 2, 3, 7, 1000])
def test_chunked_body_in_any_pieces(step: int) -> None:
    body = ChunkedBody()
    assert feed(body, CHUNKED + b"GET /next", step) == len(CHUNKED)
    assert body.done


@settings(deadline=None)  # pure, but timed by a shared machine's scheduler
@given(st.lists(st.binary(min_size=1, max_size=300), max_size=8), st.integers(1, 50))
def test_chunked_property(chunks: list[bytes], step: int) -> None:
    encoded = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    body = ChunkedBody()
    assert feed(body, encoded + b"NEXT", step) == len(encoded)


@pytest.mark.parametrize(
    "data",
    [b"zz\r\n", b"5\r\nhelloXX\r\n", b"5\nhello\r\n", b"1" * 5000, b"\r\n",
     b" 5\r\nhello\r\n", b"5 \r\nhello\r\n", b"0x5\r\nhello\r\n", b"+5\r\nhello\r\n",
     b"5;a=\rb\r\nhello\r\n",  # a bare CR in an extension
     b"5;a=\x01\r\nhello\r\n",
     b"0\r\nGET /smuggled HTTP/1.1\r\n\r\n",  # a request line in the trailer section
     b"0\r\nX-Trailer : 1\r\n\r\n", b"0\r\nX: a\rb\r\n\r\n"],
)
def test_bad_chunked_bodies(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        ChunkedBody().consume(data, 0)


def test_chunk_extensions_with_spaces_before_the_semicolon_pass() -> None:
    body = ChunkedBody()
    data = b"5 ;name=\"v\"\r\nhello\r\n5\t;n\r\nworld\r\n0\r\nX-A: 1\r\n\r\n"
    assert body.consume(data, 0) == len(data) and body.done


def test_small_chunks_past_the_free_ones_must_average_the_minimum() -> None:
    tiny = b"1\r\nx\r\n"
    free = ChunkedBody(min_average=256)
    assert free.consume(tiny * FREE_CHUNKS + b"0\r\n\r\n", 0) and free.done
    mixed = ChunkedBody(min_average=256)  # large chunks make up for the small ones
    big = b"%x\r\n%s\r\n" % (400 * 1024, b"y" * 400 * 1024)
    data = big + tiny * (FREE_CHUNKS + 200) + b"0\r\n\r\n"
    assert mixed.consume(data, 0) == len(data) and mixed.done
    attack = ChunkedBody(min_average=256)
    with pytest.raises(LimitError) as info:
        attack.consume(tiny * (FREE_CHUNKS + 1), 0)
    assert (info.value.limit, info.value.status) == ("small_chunks", 400)
    assert ChunkedBody().consume(tiny * 5000, 0) == 5000 * len(tiny)  # responses: no minimum


def test_length_body_stops_at_its_end() -> None:
    body = LengthBody(4)
    assert body.consume(b"ab", 0) == 2 and not body.done
    assert body.consume(b"xxcdGET", 2) == 4 and body.done


def test_error_responses_close() -> None:
    response = error_response(502, "the upstream refused the connection")
    head, body = response.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 502 Bad Gateway\r\n")
    assert b"connection: close" in head
    assert f"content-length: {len(body)}".encode() in head


def test_event_streams_are_recognised() -> None:
    head = parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Type: Text/Event-Stream; x=1\r\n\r\n")
    assert head.event_stream
    assert not parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n") \
        .event_stream
