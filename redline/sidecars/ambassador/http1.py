"""HTTP/1.1 heads, sans IO: what the ambassador reads of each request and response head.

The ambassador forwards bytes unchanged; it only needs to *observe* them: the request line and a
few headers (for labels, tracing and framing) and where each message ends (to time it). So these
functions read heads over the original buffers and never rebuild a message; http1_body.py
counts the bodies that follow them. httptools cannot be told that a response to HEAD has no
body and gives no byte offsets, which inserting `traceparent` into a head needs; hence these
modules.

Parsing is strict where a lenient reading could let the ambassador and the app disagree about
message boundaries or the request's authority (RFC 9112 sections 3.2 and 6.3): both
Content-Length and Transfer-Encoding, differing Content-Lengths, a final transfer coding other
than chunked in a request, an HTTP/1.1 request without exactly one Host, and malformed header
lines are all ProtocolErrors. ProtocolError and LimitError are also what http1_body.py raises.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from redline.compiled import pure_forced


class ProtocolError(Exception):
    """The peer broke HTTP/1.1 framing; `status` is what to answer a client with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class LimitError(ProtocolError):
    """Valid HTTP that costs more than a limit allows; `limit` names it (the `limit` label of
    redline_ambassador_limits_total)."""

    def __init__(self, message: str, limit: str, status: int = 400) -> None:
        super().__init__(message, status)
        self.limit = limit


# Regex pieces, shared with http1_body.py's trailer and chunk lines.
TOKEN: Final = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
# Field values: visible characters, obs-text, spaces and tabs; no CR, LF, NUL or other controls.
FIELD_TEXT: Final = rb"[^\x00-\x08\x0a-\x1f\x7f]*"
_FIELD_VALUE = FIELD_TEXT + rb"\r\n"
_FIELD = TOKEN + rb":" + _FIELD_VALUE
_REQUEST_LINE = rb"(" + TOKEN + rb") ([^\x00-\x20\x7f]+) HTTP/1\.([01])\r\n"
# The head is validated and its Host lines counted in one pass: at most one Host (group 4, its
# name) among fields that are not Host, so a second Host fails the match like a malformed line
# (told apart afterwards, on the error path only, by _ANY_HOSTS_HEAD). The field repeats are
# possessive (`*+`): lines end at CRLF and no value holds one, so giving a line back never
# helps a match, and not keeping backtrack points is cheaper.
_NOT_HOST_FIELD = rb"(?!(?i:host):)" + _FIELD
_REQUEST_HEAD: Final = re.compile(
    _REQUEST_LINE + rb"(?:" + _NOT_HOST_FIELD + rb")*+"
    rb"(?:((?i:host)):" + _FIELD_VALUE + rb"(?:" + _NOT_HOST_FIELD + rb")*+)?\r\n"
)
_ANY_HOSTS_HEAD: Final = re.compile(_REQUEST_LINE + rb"(?:" + _FIELD + rb")*\r\n")
_HOST_LINE: Final = re.compile(rb"\r\nhost:", re.IGNORECASE)
_STATUS_LINE: Final = re.compile(
    rb"HTTP/1\.([01]) ([1-9][0-9][0-9])(?: " + FIELD_TEXT + rb")?\r\n")
_DIGITS: Final = re.compile(rb"[0-9]+")


def header_values(lowered: bytes, head: bytes, name: bytes) -> list[bytes]:
    """Every value of a header, trimmed. `lowered` is head.lower(); `name` is lower case + ':'."""
    values: list[bytes] = []
    needle = b"\r\n" + name
    start = lowered.find(needle)
    while start >= 0:
        value_start = start + len(needle)
        value_end = head.find(b"\r\n", value_start)
        values.append(head[value_start:value_end].strip(b" \t"))
        start = lowered.find(needle, value_end)
    return values


def _tokens(values: list[bytes]) -> list[bytes]:
    """Comma-separated list elements of header values, lower case."""
    return [item.strip(b" \t").lower() for value in values for item in value.split(b",")
            if item.strip(b" \t")]


def _content_length(values: list[bytes]) -> int | None:
    if not values:
        return None
    if len(values) == 1 and values[0].isdigit() and len(values[0]) <= 18:
        return int(values[0])  # the common case, without building a set
    lengths = {item.strip(b" \t") for value in values for item in value.split(b",")}
    if len(lengths) != 1:
        raise ProtocolError(f"conflicting Content-Length values {sorted(lengths)}")
    (length,) = lengths
    if not _DIGITS.fullmatch(length) or len(length) > 18:
        raise ProtocolError(f"Content-Length {length!r} is not a number")
    return int(length)


# A connection remembers the last head it parsed (each direction) up to this size, so that a
# head repeated byte for byte (a client polling one URL, a probe, a load generator; an app's
# identical answers) is parsed once: the same bytes give the same parse, which is never
# changed after parsing. Bounded so that idle connections hold little (2 KiB each way).
REPEATED_HEAD_BYTES: Final = 2048


# The heads are plain classes, not dataclasses: mypyc compiles a dataclass's generated
# __init__ as interpreted code (3.7k instructions per request head, 2.1k per response head).
class RequestHead:
    __slots__ = ("chunked", "close", "content_length", "method", "minor_version", "target",
                 "traceparent", "tracestate", "upgrade", "upgrade_to", "user_agent")

    def __init__(self, method: bytes, target: bytes, minor_version: int,
                 content_length: int | None, chunked: bool, upgrade: bool,
                 upgrade_to: bytes | None, close: bool, user_agent: bytes | None,
                 traceparent: bytes | None, tracestate: bytes | None) -> None:
        self.method = method
        self.target = target
        self.minor_version = minor_version
        self.content_length = content_length
        self.chunked = chunked
        self.upgrade = upgrade
        self.upgrade_to = upgrade_to  # the Upgrade header's value (the protocols asked for)
        self.close = close
        self.user_agent = user_agent
        self.traceparent = traceparent
        self.tracestate = tracestate


# One scan finds every header the ambassador reads; values keep their original case.
_REQUEST_FIELDS: Final = re.compile(
    rb"\r\n(content-length|transfer-encoding|connection|upgrade|user-agent|traceparent|"
    rb"tracestate)[ \t]*:[ \t]*([^\r\n]*)", re.IGNORECASE)
# Read in the lowered head: a response's names and values are compared in lower case, so one
# copy of the head replaces two per field (ASCII only, as re.IGNORECASE on bytes).
_RESPONSE_FIELDS: Final = re.compile(
    rb"\r\n(content-length|transfer-encoding|connection|content-type)[ \t]*:[ \t]*([^\r\n]*)")


# What _h1head.c returns for a head it is sure of: RequestHead's and ResponseHead's fields, in
# their constructors' order (None: the reference parse below decides).
RequestFields = tuple[bytes, bytes, int, int | None, bool, bool, bytes | None, bool,
                      bytes | None, bytes | None, bytes | None]
ResponseFields = tuple[int, bool, int | None, bool, bool]


def _load_h1head() -> tuple[Callable[[bytes], RequestFields | None] | None,
                            Callable[[bytes], ResponseFields | None] | None,
                            Callable[[bytes, int], int] | None]:
    """_h1head's two readers and its head_end, or None for all three: not built (no C compiler
    at install), or REDLINE_PURE=1 (the pure build, whose tests must run the regexes)."""
    if pure_forced():
        return None, None, None
    try:
        from redline.sidecars.ambassador import _h1head
    except ImportError:
        return None, None, None
    return _h1head.request_head, _h1head.response_head, _h1head.head_end


# The C reader of heads (_h1head.c): the same parse without the regex engine, for the heads it
# is sure of, and the search for a head's end; bench_proxy_python.py --distinct-heads under
# callgrind: see _h1head.c. Final: compiled, a C static, not a module dict lookup per call.
_READERS: Final = _load_h1head()
READ_REQUEST_HEAD: Final = _READERS[0]
READ_RESPONSE_HEAD: Final = _READERS[1]
FIND_HEAD_END: Final = _READERS[2]


def find_head_end(data: bytes, pos: int) -> int:
    """Where the head at data[pos] ends: the index of its CRLFCRLF, or -1 when it is not all
    there yet (data.find's answer; pos is in data). bytes.find is a generic call from compiled
    code (~1.1k instructions more a head); _h1head's head_end a vector call and memchr."""
    if FIND_HEAD_END is not None:
        return FIND_HEAD_END(data, pos)
    return data.find(b"\r\n\r\n", pos)


def whole_head(data: bytes, pos: int, last: bytes) -> bytes | None:
    """The head at data[pos], CRLFs included, or None when its end is not in data yet. `last`
    is the connection's last head in this direction (REPEATED_HEAD_BYTES): a chunk that starts
    with it holds it again (an app's identical answers, a load generator, a probe, polling):
    a head holds one CRLFCRLF, its end, so this one ends where that one did. No scan of the
    chunk for its end, no copy, and the caller reuses the parse."""
    if pos == 0 and last and data.startswith(last):
        return last
    head_end = find_head_end(data, pos)
    return data[pos:head_end + 4] if head_end >= 0 else None


def parse_request_head(head: bytes) -> RequestHead:
    """Parse a complete request head (request line to the empty line, CRLFs included)."""
    if READ_REQUEST_HEAD is not None:
        fields = READ_REQUEST_HEAD(head)
        if fields is not None:
            method, target, minor, length, chunked, upgrade, upgrade_to, close, agent, parent, \
                state = fields
            return RequestHead(method, target, minor, length, chunked, upgrade, upgrade_to,
                               close, agent, parent, state)
    return request_head_reference(head)


def request_head_reference(head: bytes) -> RequestHead:
    """parse_request_head in Python: the specification _h1head.c follows, and the fallback.

    The whole head is validated, since the client is untrusted; then one regex scan picks out
    the few headers that framing, labels and tracing need.
    """
    match = _REQUEST_HEAD.fullmatch(head)
    if match is None:
        if _ANY_HOSTS_HEAD.fullmatch(head) is not None:
            # RFC 9112 3.2: two let the app and the ambassador (outbound rewrites Host) read
            # different authorities.
            raise ProtocolError(f"{len(_HOST_LINE.findall(head))} Host headers")
        raise ProtocolError("malformed request head")
    method, target, minor, host = match.groups()
    if host is None and minor == b"1":
        raise ProtocolError("no Host header")  # RFC 9112 3.2: exactly one in HTTP/1.1
    close = minor == b"0"
    upgrade = method == b"CONNECT"
    chunked = False
    upgrade_to = None
    lengths: list[bytes] = []
    transfer: list[bytes] = []
    connection: list[bytes] = []
    user_agent = traceparent = tracestate = None
    parents = 0
    # Typed: compiled, the loop then reads a list of bytes pairs natively (to mypy, findall
    # returns list[Any]: generic iteration, unpacking and comparisons).
    fields: list[tuple[bytes, bytes]] = _REQUEST_FIELDS.findall(head)
    for raw_name, raw_value in fields:
        name = raw_name.lower()
        value = raw_value.rstrip(b" \t")
        if name == b"content-length":
            lengths.append(value)
        elif name == b"transfer-encoding":
            transfer.append(value)
        elif name == b"connection":
            connection.append(value)
        elif name == b"upgrade":
            upgrade_to = value
        elif name == b"user-agent":
            user_agent = user_agent or value
        elif name == b"traceparent":
            traceparent = value
            parents += 1
        else:
            tracestate = value if tracestate is None else tracestate + b"," + value
    content_length = _content_length(lengths) if lengths else None
    if transfer:
        codings = _tokens(transfer)
        if content_length is not None:
            raise ProtocolError("both Transfer-Encoding and Content-Length")
        if not codings or codings[-1] != b"chunked" or codings.count(b"chunked") != 1:
            raise ProtocolError(f"unsupported Transfer-Encoding {b', '.join(codings)!r}")
        chunked = True
    if connection:
        options = _tokens(connection)
        close = b"close" in options or (close and b"keep-alive" not in options)
        upgrade = upgrade or (b"upgrade" in options and upgrade_to is not None)
    version = 1 if minor == b"1" else 0  # the request line matched HTTP/1.[01]
    return RequestHead(method, target, version, content_length, chunked, upgrade, upgrade_to,
                       close, user_agent, traceparent if parents == 1 else None, tracestate)


class ResponseHead:
    __slots__ = ("chunked", "close", "content_length", "event_stream", "status")

    def __init__(self, status: int, close: bool, content_length: int | None, chunked: bool,
                 event_stream: bool) -> None:
        self.status = status
        self.close = close
        self.content_length = content_length
        self.chunked = chunked
        self.event_stream = event_stream  # text/event-stream: timed to the first byte


def parse_response_head(head: bytes) -> ResponseHead:
    """Read what framing and timing need from a response head."""
    if READ_RESPONSE_HEAD is not None:
        fields = READ_RESPONSE_HEAD(head)
        if fields is not None:
            status, close, length, chunked, event_stream = fields
            return ResponseHead(status, close, length, chunked, event_stream)
    return response_head_reference(head)


def response_head_reference(head: bytes) -> ResponseHead:
    """parse_response_head in Python: the specification _h1head.c follows, and the fallback.

    Unlike requests, responses come from the app the ambassador serves and go back unchanged,
    so only the status line and the framing headers are checked, not every header line.
    """
    match = _STATUS_LINE.match(head)
    if match is None:
        raise ProtocolError("malformed response status line", status=502)
    minor: bytes
    digits: bytes
    minor, digits = match.groups()
    # Three digits (the regex): their value without int()'s generic parse of bytes (~0.8k).
    status = (digits[0] - 48) * 100 + (digits[1] - 48) * 10 + digits[2] - 48
    close = minor == b"0"
    lengths: list[bytes] = []
    transfer = b""
    event_stream = False
    fields: list[tuple[bytes, bytes]] = _RESPONSE_FIELDS.findall(head.lower())  # typed: as above
    for name, raw_value in fields:
        value = raw_value.rstrip(b" \t")
        if name == b"content-length":
            lengths.append(value)
        elif name == b"transfer-encoding":
            transfer = value  # the last one holds the final coding
        elif name == b"connection":
            # find(), not `in`: `bytes in bytes` first tries the needle as an int, and the
            # TypeError it formats and clears costs ~1k instructions.
            close = value.find(b"close") >= 0 or (close and value.find(b"keep-alive") < 0)
        else:
            event_stream = value.startswith(b"text/event-stream")
    if transfer:  # RFC 9112 6.3: chunked, or delimited by the close; Content-Length ignored
        chunked = transfer.endswith(b"chunked")
        return ResponseHead(status, close, None, chunked, event_stream)
    try:
        content_length = _content_length(lengths)
    except ProtocolError as exc:
        raise ProtocolError(str(exc), status=502) from exc
    return ResponseHead(status, close, content_length, False, event_stream)


_REASONS = {400: "Bad Request", 405: "Method Not Allowed", 408: "Request Timeout",
            431: "Request Header Fields Too Large", 502: "Bad Gateway",
            503: "Service Unavailable", 504: "Gateway Timeout"}


def error_response(status: int, detail: str) -> bytes:
    """A complete response the ambassador itself sends; it always closes the connection."""
    body = f"{status} {_REASONS.get(status, 'Error')}: {detail}\n".encode()
    return (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
        f"content-type: text/plain; charset=utf-8\r\ncontent-length: {len(body)}\r\n"
        f"connection: close\r\nserver: redline-ambassador\r\n\r\n"
    ).encode() + body
