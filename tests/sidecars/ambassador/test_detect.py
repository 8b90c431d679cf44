"""Protocol detection from a client's first bytes, and the ClientHello peek: bytes alone."""

from __future__ import annotations

import ssl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from redline.sidecars.ambassador.detect import (
    H2_PREFACE,
    HTTP1,
    HTTP2,
    MAX_REQUEST_LINE,
    OPAQUE,
    TLS,
    ClientHello,
    client_hello,
    detect,
)


def real_client_hello(server_name: str | None, alpn: list[str] | None = None) -> bytes:
    """The first flight of Python's own TLS client (OpenSSL), as a server would receive it."""
    context = ssl.create_default_context()
    if alpn:
        context.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    if server_name is None:
        context.check_hostname = False
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    return outgoing.read()


def decision_when_fed_byte_by_byte(data: bytes) -> tuple[str | None, int]:
    """What detect() decides and after how many bytes, fed one byte more each time."""
    for count in range(1, len(data) + 1):
        found = detect(data[:count])
        if found is not None:
            return found, count
    return None, len(data)


@pytest.mark.parametrize(("data", "expected"), [
    (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1),
    (b"POST /api/checkout?x=1 HTTP/1.0\r\n", HTTP1),
    (b"OPTIONS * HTTP/1.1\r\n", HTTP1),
    (b"BREW /pot HTTP/1.1\n", HTTP1),  # unknown methods are still HTTP (recorded as _OTHER)
    (H2_PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00", HTTP2),
    (b"*1\r\n$4\r\nPING\r\n", OPAQUE),  # Redis (RESP)
    (b"GET key\r\n", OPAQUE),  # Redis inline command: no HTTP version
    (b"PING\r\n", OPAQUE),
    (b"\x00\x00\x00\x08\x04\xd2\x16\x2f", OPAQUE),  # PostgreSQL SSLRequest
    (b"GET / HTTP/2.0\r\n", OPAQUE),  # not a version an HTTP/1 parser may take
    (b"GET  / HTTP/1.1\r\n", OPAQUE),
    (b"GET /a\x00b HTTP/1.1\r\n", OPAQUE),
    (b"\x16\x03\x01\x00\x05\x02", OPAQUE),  # a TLS handshake, but not a ClientHello
    (b"\x16\x07", OPAQUE),
    (b"PRI * HTTP/1.1\r\n", HTTP1),  # the preface's first bytes, then an HTTP/1 line
])
def test_first_bytes_decide(data: bytes, expected: str) -> None:
    found, _ = decision_when_fed_byte_by_byte(data)
    assert found == expected


def test_a_real_client_hello_is_tls_after_six_bytes() -> None:
    hello = real_client_hello("shop.example", ["h2", "http/1.1"])
    assert decision_when_fed_byte_by_byte(hello) == (TLS, 6)


def test_http2_needs_the_whole_preface() -> None:
    assert decision_when_fed_byte_by_byte(H2_PREFACE) == (HTTP2, len(H2_PREFACE))


def test_undecided_until_the_version_is_seen() -> None:
    assert detect(b"GET /users/1 HTTP/1.") is None
    assert detect(b"GET /users/1 HTTP/1.1\r") is None
    assert detect(b"GET") is None
    assert detect(b"") is None


def test_a_request_line_longer_than_the_limit_is_not_waited_for() -> None:
    start = b"GET /" + b"a" * MAX_REQUEST_LINE
    assert detect(start) == OPAQUE
    assert detect(b"A" * 33) == OPAQUE  # no method is that long


@given(st.binary(max_size=64))
def test_a_decision_never_changes_with_more_bytes(data: bytes) -> None:
    decided: str | None = None
    for count in range(1, len(data) + 1):
        found = detect(data[:count])
        if decided is not None:
            assert found == decided, data[:count]
        decided = found


@given(st.sampled_from([b"GET", b"POST", b"HEAD", b"PUT"]),
       st.from_regex(rb"\A/[a-z0-9/?=&%.-]{0,40}\Z"), st.sampled_from([b"1.0", b"1.1"]))
def test_every_request_line_is_http1(method: bytes, target: bytes, version: bytes) -> None:
    line = method + b" " + target + b" HTTP/" + version + b"\r\n"
    assert decision_when_fed_byte_by_byte(line) == (HTTP1, len(line))


def test_client_hello_gives_sni_and_alpn() -> None:
    hello = real_client_hello("shop.example", ["h2", "http/1.1"])
    assert client_hello(hello) == ClientHello("shop.example", ("h2", "http/1.1"))
    assert client_hello(real_client_hello(None)) == ClientHello("", ())


def test_client_hello_waits_for_the_whole_record() -> None:
    hello = real_client_hello("shop.example")
    assert client_hello(hello[:4]) is None
    assert client_hello(hello[:-1]) is None
    assert client_hello(hello) is not None


@pytest.mark.parametrize("data", [
    b"GET / HTTP/1.1\r\n",
    b"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00",  # a ServerHello
    b"\x16\x03\x01\x00\x06\x01\x00\x00\xff\x03\x03",  # declares more than the record holds
])
def test_not_a_client_hello_is_an_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        client_hello(data)


@given(st.binary(min_size=0, max_size=300))
def test_garbage_after_a_record_header_never_crashes(tail: bytes) -> None:
    data = b"\x16\x03\x01" + len(tail).to_bytes(2, "big") + tail
    try:
        result = client_hello(data)
    except ValueError:
        return
    assert result is None or isinstance(result, ClientHello)
