"""The C reader of HTTP/1.1 heads (_h1head.c) against http1.py's reference parse: random heads
built from realistic pieces, then broken (control characters, obs-text, bare CR or LF, spaces
around names, duplicated Host and framing headers, names in odd cases, long values, random
bytes anywhere). Where the reader answers, every field must be the reference's (type included);
wherever the reference raises, the reader must decline; and common heads must be answered, so
that the comparisons are not idle."""

from __future__ import annotations

import gc
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redline.compiled import pure_forced
from redline.sidecars.ambassador import http1
from redline.sidecars.ambassador.http1 import (
    ProtocolError,
    RequestHead,
    ResponseHead,
    request_head_reference,
    response_head_reference,
)
from tests.compiled.optional import load_optional

h1head = load_optional("redline.sidecars.ambassador._h1head")

# The constructors' argument order: the order of the reader's tuples.
REQUEST_FIELDS = ("method", "target", "minor_version", "content_length", "chunked", "upgrade",
                  "upgrade_to", "close", "user_agent", "traceparent", "tracestate")
RESPONSE_FIELDS = ("status", "close", "content_length", "chunked", "event_stream")

Typed = list[tuple[type, object]]


def typed(values: object) -> Typed:
    """Values with their types: True must not pass for 1, nor b"" for None."""
    assert isinstance(values, tuple)
    return [(type(value), value) for value in values]


def reference_request(head: bytes) -> Typed | None:
    try:
        parsed: RequestHead = request_head_reference(head)
    except ProtocolError:
        return None
    return typed(tuple(getattr(parsed, name) for name in REQUEST_FIELDS))


def reference_response(head: bytes) -> Typed | None:
    try:
        parsed: ResponseHead = response_head_reference(head)
    except ProtocolError:
        return None
    return typed(tuple(getattr(parsed, name) for name in RESPONSE_FIELDS))


def check_request(head: bytes) -> bool:
    """The reader against the reference on one request head; whether the reader answered."""
    answer = h1head.request_head(head)
    expected = reference_request(head)
    if answer is None:
        return False
    assert expected is not None, (head, answer)  # the reference refused it: so must the reader
    assert typed(answer) == expected, head
    return True


def check_response(head: bytes) -> bool:
    answer = h1head.response_head(head)
    expected = reference_response(head)
    if answer is None:
        return False
    assert expected is not None, (head, answer)
    assert typed(answer) == expected, head
    return True


# --- random heads ------------------------------------------------------------------------------

# Bytes that end, split or poison a line, and some no grammar expects.
ODD = b" \t\r\n:,;\x00\x01\x08\x0b\x1f\x7f\x80\xc3\xa9\xff\"(){}@/=?"
odd_bytes = st.binary(max_size=4).map(lambda raw: bytes(ODD[b % len(ODD)] for b in raw))


def mostly(usual: list[bytes], odd: list[bytes]) -> st.SearchStrategy[bytes]:
    """One of `usual`, one in sixteen times one of `odd`."""
    return st.integers(0, 15).flatmap(lambda roll: st.sampled_from(odd if roll == 7 else usual))


def cases(name: bytes) -> st.SearchStrategy[bytes]:
    """`name` as sent, in lower case, upper case or mixed."""
    return st.sampled_from([name, name.lower(), name.upper(), name.swapcase()])


HEADER_VALUES: dict[bytes, list[bytes]] = {
    b"Host": [b"example.com", b"127.0.0.1:8080", b"", b"a b", b"[::1]:80"],
    b"Content-Length": [b"0", b"12", b" 7 ", b"007", b"1" * 18, b"1" * 19, b"5, 5", b"-1", b"",
                        b"1e3", b"\xd9\xa3", b"5,6"],
    b"Transfer-Encoding": [b"chunked", b"Chunked", b" chunked\t", b"gzip, chunked",
                           b"chunked, gzip", b"chunked,", b"identity", b"", b"chunked, chunked"],
    b"Connection": [b"keep-alive", b"close", b"Upgrade", b"keep-alive, Upgrade", b"Close",
                    b"upgrade,close", b" , ", b"", b"closed", b"xkeep-alive", b"TE, close"],
    b"Upgrade": [b"websocket", b"h2c", b"", b"WebSocket "],
    b"User-Agent": [b"curl/8.5.0", b"Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", b"",
                    b"wrk", b"\xc3\xa9l\xc3\xa8ve"],
    b"traceparent": [b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", b"", b"x"],
    b"tracestate": [b"rojo=00f067aa0ba902b7", b"congo=t61rcWkgMzE", b"", b"a=1,b=2"],
    b"Content-Type": [b"text/event-stream", b"Text/Event-Stream; charset=utf-8",
                      b"text/html", b"text/event-strea", b""],
    b"Accept": [b"*/*", b"text/html,application/xhtml+xml;q=0.9"],
    b"X-Request-Id": [b"00000042", b"a\tb"],
    b"Hostx": [b"a"],
    b"Content-Lengthx": [b"3"],
}
NAMES = list(HEADER_VALUES)


@st.composite
def header_line(draw: st.DrawFn) -> bytes:
    """A header line with its CRLF: mostly well-formed, one in sixteen broken somewhere."""
    name = draw(st.sampled_from(NAMES))
    value = draw(st.sampled_from(HEADER_VALUES[name]))
    sent_name = draw(cases(name))
    separator, ending = b":", b"\r\n"
    broken = (draw(st.integers(0, 127)) - 60) % 128  # not 0 at hypothesis's favourite 0
    if broken == 0:
        sent_name = draw(st.sampled_from([b" ", b"", b"\t"])) + sent_name + \
            draw(st.sampled_from([b" ", b"\t", b"", b"\x00"]))
    elif broken == 1:
        value += draw(odd_bytes)
    elif broken == 2:
        value = draw(odd_bytes) + value
    elif broken == 3:
        ending = draw(st.sampled_from([b"\n", b"\r", b"\r\r\n", b"\n\r", b""]))
    elif broken == 4:
        value = b"v" * draw(st.integers(200, 5000))  # long
    elif broken == 5:
        separator = draw(st.sampled_from([b" :", b"::", b"", b": ", b":\t"]))
    elif broken == 6:
        sent_name = draw(st.binary(min_size=1, max_size=6))
    elif broken == 7:
        value = draw(st.binary(max_size=12))
    if draw(st.integers(0, 63)) == 30:  # obs-fold: a continuation line
        ending += draw(st.sampled_from([b" folded\r\n", b"\tfolded\r\n"]))
    return sent_name + separator + b" " + value + ending


request_line = st.builds(
    lambda method, target, version, ending: method + b" " + target + b" " + version + ending,
    mostly([b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT",
            b"get", b"M-SEARCH", b"PROPFIND"], [b"", b"GE T", b"G\x00", b"\xff", b"GET\t"]),
    mostly([b"/", b"/users/1?x=y&z", b"*", b"example.com:443", b"/\xc3\xa9", b"http://a/b",
            b"/" + b"p" * 3000], [b"", b"/a b", b"/\x7f", b"/\x01"]),
    mostly([b"HTTP/1.1", b"HTTP/1.0"],
           [b"HTTP/1.2", b"HTTP/2.0", b"http/1.1", b"HTTP/1.1 ", b"HTTP/1.", b"HTTP/11"]),
    mostly([b"\r\n"], [b"\n", b"\r", b" \r\n"]))

status_line = st.builds(
    lambda version, status, reason, ending: version + b" " + status + reason + ending,
    mostly([b"HTTP/1.1", b"HTTP/1.0"], [b"HTTP/1.2", b"HTTP/2", b"http/1.1"]),
    mostly([b"200", b"204", b"304", b"101", b"404", b"503", b"999"],
           [b"099", b"2000", b"20", b"abc"]),
    mostly([b" OK", b"", b" ", b" Not Found", b" \xc3\xa9", b" a\tb", b"  x"],
           [b" a\x01", b" a\x7f", b"OK"]),
    mostly([b"\r\n"], [b"\n", b"\r"]))


@st.composite
def mutated(draw: st.DrawFn, head: bytes) -> bytes:
    """The head, one in six times with a random byte inserted, replaced or removed."""
    if not head or draw(st.integers(0, 5)) != 3:
        return head
    at = draw(st.integers(0, len(head) - 1))
    byte = bytes([draw(st.integers(0, 255))])
    edit = draw(st.sampled_from(["insert", "replace", "remove"]))
    if edit == "insert":
        return head[:at] + byte + head[at:]
    if edit == "replace":
        return head[:at] + byte + head[at + 1:]
    return head[:at] + head[at + 1:]


@st.composite
def request_head(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(header_line(), max_size=8))
    if draw(st.integers(0, 7)) != 3:  # usually one Host at a random place
        lines.insert(draw(st.integers(0, len(lines))), b"Host: example.com\r\n")
    end = draw(mostly([b"\r\n"], [b"\n", b"", b"\r\nX", b"\r\n\r\n",
                                    b"\r\nContent-Length: 5\r\n\r\n"]))
    return draw(mutated(draw(request_line) + b"".join(lines) + end))


@st.composite
def response_head(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(header_line(), max_size=8))
    end = draw(mostly([b"\r\n"], [b"\n", b"", b"\r\nX", b"\r\nContent-Length: 5\r\n\r\n"]))
    return draw(mutated(draw(status_line) + b"".join(lines) + end))


@settings(max_examples=4000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request_head())
def test_the_reader_gives_the_reference_request_or_declines(head: bytes) -> None:
    check_request(head)


@settings(max_examples=4000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(response_head())
def test_the_reader_gives_the_reference_response_or_declines(head: bytes) -> None:
    check_response(head)


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=200), st.binary(max_size=40))
def test_random_bytes_in_a_head(head: bytes, tail: bytes) -> None:
    check_request(head)
    check_response(head)
    for prefix in (b"GET / HTTP/1.1\r\nHost: a\r\nX: ", b"HTTP/1.1 200 OK\r\nX: "):
        check_request(prefix + head + b"\r\n\r\n")
        check_response(prefix + head + b"\r\n" + tail + b"\r\n\r\n")


# --- what it must answer, and what it must decline ---------------------------------------------

COMMON_REQUESTS = [
    b"GET / HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n",
    b"GET /users/1 HTTP/1.1\r\nHost: 127.0.0.1:18082\r\n\r\n",  # wrk
    b"GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux "
    b"x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\nAccept: text/html,application/xhtml+xml,"
    b"*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n"
    b"Connection: keep-alive\r\nCookie: a=1; b=2\r\nUpgrade-Insecure-Requests: 1\r\n"
    b"Sec-Fetch-Dest: document\r\nSec-Fetch-Mode: navigate\r\n\r\n",
    b"POST /api/items HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
    b"Content-Length: 27\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    b"\r\ntracestate: rojo=00f067aa0ba902b7\r\n\r\n",
    b"PUT /upload HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",  # ab, health checkers
    b"HEAD /healthz HTTP/1.1\r\nHost: pod\r\nUser-Agent: kube-probe/1.29\r\nConnection: close"
    b"\r\n\r\n",
    b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
]
COMMON_RESPONSES = [
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 26 Nov 2026 16:33:00 GMT\r\n"
    b"Content-Type: application/octet-stream\r\nContent-Length: 3\r\nConnection: keep-alive\r\n"
    b"\r\n",
    b"HTTP/1.1 200 OK\r\nServer: gunicorn\r\nDate: Thu, 26 Nov 2026 16:33:00 GMT\r\n"
    b"Connection: close\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 1234\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX-Powered-By: Express\r\nContent-Type: application/json; charset=utf-8"
    b"\r\nContent-Length: 2\r\nETag: W/\"2-vyGp6PvFo4RvsFtPoIWeCReyIC8\"\r\nDate: Thu, 26 Nov "
    b"2026 16:33:00 GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n",
    b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"X-Content-Type-Options: nosniff\r\nDate: Thu, 26 Nov 2026 16:33:00 GMT\r\n"
    b"Content-Length: 19\r\n\r\n",  # Go net/http
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 204\r\n\r\n",
]


@pytest.mark.parametrize("head", COMMON_REQUESTS)
def test_common_requests_are_read_in_c(head: bytes) -> None:
    assert check_request(head)
    assert check_request(head.replace(b"\r\n\r\n", b"\r\nX-Request-Id: 42\r\n\r\n"))


@pytest.mark.parametrize("head", COMMON_RESPONSES)
def test_common_responses_are_read_in_c(head: bytes) -> None:
    assert check_response(head)


# Valid heads whose fields take the reference's less common paths: the reader must answer them
# with the same fields (random heads seldom combine these).
ODD_BUT_VALID_REQUESTS = [
    b"GET / HTTP/1.1\r\nHost: a\r\nUser-Agent:\r\nUser-Agent: b\r\nuser-agent: c\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: \t \r\nUser-Agent:\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\ntraceparent: x\r\nTraceparent: y\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\ntracestate: a=1\r\ntracestate:\r\ntracestate: b=2\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: , Keep-Alive ,\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: CLOSE\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\n\r\n",  # no Connection: upgrade
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n",  # no Upgrade
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade:\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: a\r\nUpgrade: b\r\nConnection: Upgrade\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 000000000000000042\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \tCHUNKED \r\n\r\n",
    b"GET / HTTP/1.1\r\nX-a: \x80\xff\t\r\nHost:\r\n\r\n",  # obs-text, an empty Host
    b"GET /\xc3\xa9?\xff HTTP/1.1\r\nHOST: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n" + b"tracestate: k=v\r\n" * 8 + b"\r\n",  # the most kept
]
ODD_BUT_VALID_RESPONSES = [
    b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nConnection: x-keep-alive-y\r\n\r\n",  # substrings, as the reference
    b"HTTP/1.1 200 OK\r\nConnection: closed\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Type: text/html\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding:\r\n"
    b"Content-Length: 4\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 4\r\n\r\n",
    b"HTTP/1.1 200 \xc3\xa9\t\r\nX: \xff\r\n\r\n",
    b"HTTP/1.1 999\r\n\r\n",
    # Lines the reference does not validate, read as it reads them (a CRLF, a name, [ \t]*:).
    b"HTTP/1.1 200 OK\r\nContent-Length \t: 1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX: a\nContent-Length: 1\r\ncontent-length:2\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX: a\rContent-Length: 2\r\n\x00\x7f\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n folded\r\n\r\nTransfer-Encoding: chunked\r\n",  # after the head
    b"HTTP/1.1 200 OK\r\n\r\r\nconnection: close\x00x\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Type:\ttext/event-stream\x00\r\n\r\n",
]


@pytest.mark.parametrize("head", ODD_BUT_VALID_REQUESTS)
def test_odd_but_valid_requests_are_read_in_c(head: bytes) -> None:
    assert check_request(head)


@pytest.mark.parametrize("head", ODD_BUT_VALID_RESPONSES)
def test_odd_but_valid_responses_are_read_in_c(head: bytes) -> None:
    assert check_response(head)


@pytest.mark.parametrize("head", [
    b"GET / HTTP/1.1\r\n\r\n",  # no Host
    b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",
    b"GET / HTTP/1.0\r\nHost: a\r\nHOST: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX: \x00\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX : a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n folded\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n\r\n",  # something after the head
    b"GET / HTTP/1.1\nHost: a\n\n",
    b"GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.2\r\nHost: a\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",  # repeated
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",  # a list
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1" + b"0" * 18 + b"\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n" + b"tracestate: k=v\r\n" * 9 + b"\r\n",  # one too many
])
def test_heads_the_reader_leaves_to_the_reference(head: bytes) -> None:
    assert h1head.request_head(head) is None
    check_request(head)


def test_responses_the_reader_leaves_to_the_reference() -> None:
    for head in [b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                 b"HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\n",
                 b"HTTP/1.1 200 OK\nContent-Length: 1\r\n\r\n",
                 b"HTTP/1.1 099 OK\r\n\r\n", b"HTTP/1.1 200 O\x01K\r\n\r\n"]:
        assert h1head.response_head(head) is None
        check_response(head)
    # Framing the reader is sure of: a Transfer-Encoding makes the Content-Lengths moot.
    assert h1head.response_head(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: x\r\n"
                                b"Transfer-Encoding: chunked\r\n\r\n") == (
        200, False, None, True, False)


def test_not_bytes_is_declined() -> None:
    assert h1head.request_head(bytearray(COMMON_REQUESTS[0])) is None
    assert h1head.response_head("HTTP/1.1 200 OK\r\n\r\n") is None
    # A subclass may hold anything past its bytes: the reader reads exact bytes objects only.
    assert h1head.request_head(type("Sub", (bytes,), {})(COMMON_REQUESTS[0])) is None
    assert h1head.response_head(type("Sub", (bytes,), {})(COMMON_RESPONSES[0])) is None
    assert h1head.request_head(b"") is None
    assert h1head.response_head(b"") is None


def test_allocation_failures_raise_and_leak_nothing() -> None:
    # Every allocation of a tuple's items made to fail in turn: MemoryError, and the items
    # already made released (blocks in use and None's references as before).
    testcapi = pytest.importorskip("_testcapi")
    request = (b"POST /x HTTP/1.1\r\nHost: a\r\nUser-Agent: u\r\nUpgrade: ws\r\nConnection: "
               b"upgrade\r\nContent-Length: 123456789012\r\ntraceparent: t\r\ntracestate: a\r\n"
               b"tracestate: b\r\n\r\n")
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 123456789012\r\n\r\n"
    gc.disable()
    try:
        for read, head in ((h1head.request_head, request), (h1head.response_head, response)):
            failures = 0
            for failing in [0, *range(12)]:  # the first MemoryError warms the interpreter up
                before = (sys.getallocatedblocks(), sys.getrefcount(None))
                testcapi.set_nomemory(failing, 0)
                try:
                    read(head)
                except MemoryError:
                    failures += 1
                finally:
                    testcapi.remove_mem_hooks()
                if failing:
                    assert (sys.getallocatedblocks(), sys.getrefcount(None)) == before, failing
            assert failures > 1
    finally:
        gc.enable()


def test_every_prefix_of_a_head() -> None:
    # Each cut is a new bytes object ending where the scans must stop (its NUL): a scan that
    # trusted a CRLF or a name to come would read past it (the sanitizer build would say so).
    for head in [*COMMON_REQUESTS, *ODD_BUT_VALID_REQUESTS]:
        for cut in range(len(head)):
            check_request(head[:cut])
    for head in [*COMMON_RESPONSES, *ODD_BUT_VALID_RESPONSES]:
        for cut in range(len(head)):
            check_response(head[:cut])


def test_megabyte_heads() -> None:
    mib = 1 << 20
    for head in [b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"v" * mib + b"\r\n\r\n",
                 b"GET /" + b"a" * mib + b" HTTP/1.1\r\nHost: a\r\n\r\n",
                 b"GET / HTTP/1.1\r\nHost: a\r\n" + b"Connection: a,b, close\r\n" * 40_000 +
                 b"User-Agent: " + b"u \t" * 300_000 + b"\r\n\r\n"]:
        assert check_request(head)
    for head in [b"HTTP/1.1 200 " + b"r" * mib + b"\r\n\r\n",
                 b"HTTP/1.1 200 OK\r\n" + b"\n" * mib + b"\r\n",
                 b"HTTP/1.1 200 OK\r\n" + b"Connection: kee\r\n" * 60_000 +
                 b"Transfer-Encoding: chunked\r\n\r\n"]:
        assert check_response(head)


def test_http1_uses_the_reader_unless_pure() -> None:
    expected = (None, None) if pure_forced() else (h1head.request_head, h1head.response_head)
    readers = (http1.READ_REQUEST_HEAD, http1.READ_RESPONSE_HEAD)
    assert readers == expected
    # Through either path, the same heads (an object of the same fields).
    for head in COMMON_REQUESTS:
        parsed = http1.parse_request_head(head)
        assert typed(tuple(getattr(parsed, name) for name in REQUEST_FIELDS)) == \
            reference_request(head)
