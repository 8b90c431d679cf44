"""HTTP/1.1 message bodies, sans IO: where each body ends in a byte stream, and its size.

The ambassador times a message to its last byte, so it counts each body over the original
buffers (never copying or rebuilding it) by the framing its head declared (http1.py): a
Content-Length, chunked, or until the connection closes (RFC 9112 6.3; a response to HEAD, a
1xx, a 204 or a 304 has none, which httptools cannot be told).

Chunked framing is read strictly, since a lenient reading could let the ambassador and the app
disagree about where a message ends (RFC 9112 7.1): chunk sizes that are padded or not
hexadecimal, control characters in chunk extensions, chunk data longer than its size, lines
not ended by CRLF, and malformed trailer lines are ProtocolErrors; chunks too small on average
in a request body are a LimitError.
"""

from __future__ import annotations

import re
from typing import Final

from redline.sidecars.ambassador.http1 import (
    FIELD_TEXT,
    TOKEN,
    LimitError,
    ProtocolError,
    RequestHead,
    ResponseHead,
)

# Module constants are Final: compiled, mypyc reads them as C statics (or inlines them), not
# from the module's dict at every use.
MAX_CHUNK_LINE: Final = 4096
MAX_TRAILER: Final = 32768
# A trailer line is a header field line (RFC 9112 7.1.2); the CRLF is already cut off.
_TRAILER_FIELD: Final = re.compile(TOKEN + rb":" + FIELD_TEXT)
# chunk-size [ chunk-ext ] (RFC 9112 7.1): hex digits with no padding, then extensions with no
# control character but tab (a bare CR is where parsers disagree about the line's end).
_CHUNK_SIZE_LINE: Final = re.compile(rb"([0-9A-Fa-f]{1,15})(?:[ \t]*;" + FIELD_TEXT + rb")?")

# Each body reader counts bytes over the caller's buffer: consume(data, pos) returns the
# position after what belongs to this body, and sets `done` once the body ended. `size` is the
# body's length as its framing gives it (--record-sizes): the Content-Length, the chunk sizes
# read so far, or the bytes read so far of a body delimited by the close.


class LengthBody:
    __slots__ = ("done", "remaining", "size")

    def __init__(self, length: int) -> None:
        self.size = self.remaining = length
        self.done = length == 0

    def consume(self, data: bytes, pos: int) -> int:
        take = min(self.remaining, len(data) - pos)
        self.remaining -= take
        self.done = self.remaining == 0
        return pos + take


class UntilCloseBody:
    """A response delimited by the connection closing (no length, not chunked)."""

    __slots__ = ("done", "size")

    def __init__(self) -> None:
        self.done = False
        self.size = 0

    def consume(self, data: bytes, pos: int) -> int:
        end = len(data)
        self.size += end - pos
        return end


_SIZE: Final = 0
_DATA: Final = 1
_DATA_END: Final = 2
_TRAILER: Final = 3
# Chunks a body may have before `min_average` applies: small ones at the start (a client
# flushing its first events) are ordinary; only a body made of them is an attack.
FREE_CHUNKS: Final = 1024


class ChunkedBody:
    """A chunked body (RFC 9112 7.1). `min_average` (request bodies; 0: none): past FREE_CHUNKS
    chunks, their average data size must stay at least this many bytes, so that framing costs
    per byte, not per chunk (a 13 MiB body of 1-byte chunks took 2.8 s of CPU)."""

    __slots__ = ("_chunks", "_line", "_min_average", "_partial", "_remaining", "_state",
                 "_trailer_bytes", "done", "size")

    def __init__(self, min_average: int = 0) -> None:
        self._state = _SIZE
        self._remaining = 0
        self._partial = b""  # a line cut by the end of a buffer
        self._line = b""  # the last complete line, without CRLF
        self._trailer_bytes = 0
        self._min_average = min_average
        self._chunks = 0
        self.size = 0  # the chunk sizes read so far: the data bytes, without the framing
        self.done = False

    def consume(self, data: bytes, pos: int) -> int:
        end = len(data)
        while pos < end and not self.done:
            state = self._state
            if state == _DATA:
                take = min(self._remaining, end - pos)
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    self._state = _DATA_END
                continue
            pos = self._read_line(data, pos)
            if pos < 0:
                return end
            line = self._line
            if state == _DATA_END:
                if line:
                    raise ProtocolError("chunk data longer than its size")
                self._state = _SIZE
            elif state == _SIZE:
                self._chunk_size(line)
            else:  # trailer fields, then an empty line
                self._trailer_bytes += len(line) + 2
                if self._trailer_bytes > MAX_TRAILER:
                    raise ProtocolError("trailer section too large")
                if not line:
                    self.done = True
                elif _TRAILER_FIELD.fullmatch(line) is None:
                    raise ProtocolError(f"malformed trailer line {line[:40]!r}")
        return pos

    def _chunk_size(self, line: bytes) -> None:
        match = _CHUNK_SIZE_LINE.fullmatch(line)
        if match is None:
            raise ProtocolError(f"bad chunk size line {line[:40]!r}")
        size = self._remaining = int(match.group(1), 16)
        self._state = _DATA if size else _TRAILER
        self.size += size
        if self._min_average:
            self._chunks += 1
            if self._chunks > FREE_CHUNKS and size and \
                    self.size < self._chunks * self._min_average:
                raise LimitError(
                    f"chunks average {self.size // self._chunks} bytes after "
                    f"{self._chunks}, below --min-average-chunk-bytes {self._min_average}",
                    "small_chunks")

    def _read_line(self, data: bytes, pos: int) -> int:
        """Read up to CRLF into self._line; -1 when the line continues in the next buffer."""
        newline = data.find(b"\n", pos)
        if newline < 0:
            self._partial += data[pos:]
            if len(self._partial) > MAX_CHUNK_LINE:
                raise ProtocolError("chunk line too long")
            return -1
        line = self._partial + data[pos:newline] if self._partial else data[pos:newline]
        self._partial = b""
        if not line.endswith(b"\r"):
            raise ProtocolError("chunk line not ended by CRLF")
        if len(line) > MAX_CHUNK_LINE:
            raise ProtocolError("chunk line too long")
        self._line = line[:-1]
        return newline + 1


Body = LengthBody | ChunkedBody | UntilCloseBody
# The body of a response that has none (to HEAD, a 204, a 304): framed, and 0 bytes long.
NO_BODY: Final = LengthBody(0)


def request_body(head: RequestHead, min_average_chunk: int = 0) -> Body | None:
    if head.chunked:
        return ChunkedBody(min_average_chunk)
    if head.content_length:
        return LengthBody(head.content_length)
    return None


def response_body(head: ResponseHead, request_method: bytes) -> Body | None:
    """The body reader for a final response; None when the response has no body."""
    status = head.status
    if request_method == b"HEAD" or status in (204, 304) or status < 200:
        return None
    if head.chunked:
        return ChunkedBody()
    if head.content_length is not None:
        return LengthBody(head.content_length) if head.content_length else None
    return UntilCloseBody()
