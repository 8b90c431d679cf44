"""HTTP/2 frame reading, sans IO (RFC 9113 section 4 and 6): where frames start and end in one
direction's byte stream, whatever its chunking.

The ambassador forwards HTTP/2 bytes unchanged and only watches them, so this reader never
builds a frame and never keeps a DATA payload: it reads the 9-byte frame headers, skips the
payloads it does not need (DATA, PING, WINDOW_UPDATE, PRIORITY, unknown types) as they stream
past, and hands out only what observation needs: whole header blocks (HEADERS or PUSH_PROMISE
with their CONTINUATIONs, padding and priority fields removed), the END_STREAM of DATA frames,
RST_STREAM, SETTINGS and GOAWAY. What it keeps is bounded by `max_block` (a header block, or
the payload of a frame that is kept); past it, or on a frame that breaks RFC 9113's framing
rules, `feed` raises FramingError and the caller stops reading that connection.
"""

from __future__ import annotations

import base64
import re
import struct
from collections.abc import Iterator, Sequence
from itertools import chain
from typing import NamedTuple

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
FRAME_HEADER = 9

# Frame types (RFC 9113 section 6).
DATA = 0x0
HEADERS = 0x1
PRIORITY = 0x2
RST_STREAM = 0x3
SETTINGS = 0x4
PUSH_PROMISE = 0x5
PING = 0x6
GOAWAY = 0x7
WINDOW_UPDATE = 0x8
CONTINUATION = 0x9

# Flags.
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

# SETTINGS identifiers observation applies.
SETTINGS_HEADER_TABLE_SIZE = 0x1

# Error codes (RFC 9113 section 7) that say more than "reset".
NO_ERROR = 0x0
REFUSED_STREAM = 0x7
CANCEL = 0x8

# A frame header: 24-bit length (as 16 + 8 bits), type, flags, reserved bit + stream id.
_HEADER = struct.Struct(">HBBBL")
# The flags that make a HEADERS frame more than a whole header block by itself.
_WHOLE_BLOCK = END_HEADERS | PADDED | PRIORITY_FLAG

# The base64url alphabet (RFC 4648 section 5), with the padding HTTP2-Settings may keep.
_BASE64URL = re.compile(rb"[A-Za-z0-9_-]*={0,2}")

# Frames whose payload is read; every other type is skipped as it streams past.
_KEPT = frozenset({HEADERS, PUSH_PROMISE, CONTINUATION, RST_STREAM, SETTINGS, GOAWAY})
# Frames that only exist on a stream / only on the connection (stream 0).
_ON_STREAM = frozenset({DATA, HEADERS, PRIORITY, RST_STREAM, PUSH_PROMISE, CONTINUATION})
_ON_CONNECTION = frozenset({SETTINGS, PING, GOAWAY})


class FramingError(Exception):
    """The bytes are not HTTP/2 framing the reader can follow (or exceed what it keeps)."""


class Frame(NamedTuple):
    """A frame as observation sees it. For HEADERS and PUSH_PROMISE `payload` is the whole
    header block (CONTINUATIONs joined, padding and priority removed; PUSH_PROMISE's promised
    stream id is `promised`); for DATA it is empty, and `size` is the payload's length
    (padding included: reading the pad length would mean keeping a DATA byte)."""

    type: int
    flags: int
    stream_id: int
    payload: bytes
    promised: int = 0
    size: int = 0


class FrameReader:
    """One direction of one connection. `preface`: the client's direction, which starts with
    the connection preface (checked, then skipped)."""

    def __init__(self, *, preface: bool, max_block: int) -> None:
        self.max_block = max_block
        self._preface = PREFACE if preface else b""
        # Each side's first frame is SETTINGS (RFC 9113 section 3.4): what tells HTTP/2 from
        # bytes that only look like frames (an app answering the preface in HTTP/1.1).
        self._first = True
        self._pending = bytearray()  # an incomplete frame header or kept payload
        self._need = FRAME_HEADER  # bytes _pending must reach before it can be read on
        self._skip = 0  # payload bytes of a skipped frame still to come
        self._skipped: Frame | None = None  # the DATA frame being skipped, reported at its end
        # A header block in progress: its frame (type, flags, stream, promised) and fragments.
        self._block: Frame | None = None
        self._fragments: list[bytes] = []
        self._block_size = 0

    @property
    def at_boundary(self) -> bool:
        """Every byte fed so far belongs to a complete frame (and no header block is open): a
        frame of our own could be written to this direction now without splitting one."""
        return (not self._preface and not self._pending and not self._skip
                and self._block is None)

    def feed(self, data: bytes) -> list[Frame]:
        """The frames `data` completes, in order."""
        return list(self.frames(data))

    def frames(self, data: bytes) -> Iterator[Frame]:
        """The frames `data` completes, in order, each read as it is asked for: a caller that
        stops observing (a bound reached mid-read) stops the parsing of the rest with it, and
        must not feed this reader again. (Not a generator itself: what comes before the
        first whole frame is done at once, so a read costs one generator, not two.)"""
        done: Frame | None = None  # a skipped DATA frame that ends in `data`
        if self._preface:
            data = self._read_preface(data)
        if self._skip:
            if len(data) <= self._skip:
                self._skip -= len(data)
                return iter(() if self._skip or self._skipped is None
                            else (self._skip_done(),))
            data = data[self._skip:]
            self._skip = 0
            if self._skipped is not None:
                done = self._skip_done()
        if self._pending:
            if len(self._pending) + len(data) < self._need:
                self._pending += data  # amortised: a slow trickle is not quadratic
                return iter(() if done is None else (done,))
            self._pending += data
            data = bytes(self._pending)
            self._pending.clear()
        parsed = self._parse(data)
        return parsed if done is None else chain((done,), parsed)

    def _read_preface(self, data: bytes) -> bytes:
        expected = self._preface[:len(data)]
        if data[:len(expected)] != expected:
            raise FramingError("the client's bytes do not start with the HTTP/2 preface")
        self._preface = self._preface[len(expected):]
        return data[len(expected):]

    def _skip_done(self) -> Frame:
        frame = self._skipped
        assert frame is not None
        self._skipped = None
        return frame

    def _parse(self, data: bytes) -> Iterator[Frame]:
        pos, end = 0, len(data)
        kept, max_block, unpack = _KEPT, self.max_block, _HEADER.unpack_from
        while True:
            if end - pos < FRAME_HEADER:
                self._keep(data, pos, FRAME_HEADER)
                return
            high, low, kind, flags, stream_id = unpack(data, pos)
            length = high << 8 | low
            stream_id &= 0x7FFFFFFF
            start = pos + FRAME_HEADER
            if self._block is not None or self._first:
                self._check_order(kind, flags, stream_id)
            if (kind in _ON_STREAM and not stream_id) or (kind in _ON_CONNECTION and stream_id):
                raise FramingError(f"frame type {kind} on stream {stream_id}")
            if kind in kept:
                if length > max_block:
                    raise FramingError(f"a frame of type {kind} of {length} bytes: more than "
                                       f"the {max_block} bytes kept")
                if end - start < length:
                    self._keep(data, pos, FRAME_HEADER + length)
                    return
                payload = data[start:start + length]
                if kind == HEADERS and flags & _WHOLE_BLOCK == END_HEADERS:
                    # The usual request or response head: one frame, neither padded nor
                    # prioritised, is its own header block.
                    pos = start + length
                    yield Frame(kind, flags, stream_id, payload)
                    continue
                whole = self._kept(Frame(kind, flags, stream_id, payload))
                pos = start + length
                if whole is not None:
                    yield whole
                continue
            frame = Frame(kind, flags, stream_id, b"", size=length) if kind == DATA else None
            if end - start < length:
                self._skip = length - (end - start)
                self._skipped = frame
                return
            pos = start + length
            if frame is not None:
                yield frame

    def _check_order(self, kind: int, flags: int, stream_id: int) -> None:
        """Inside a header block only its CONTINUATIONs may come; first of all, SETTINGS."""
        if self._block is not None and (kind != CONTINUATION
                                        or stream_id != self._block.stream_id):
            raise FramingError(f"frame type {kind} inside a header block of stream "
                               f"{self._block.stream_id} (expected CONTINUATION)")
        if self._first:
            if kind != SETTINGS or flags & ACK:
                raise FramingError(f"the first frame is of type {kind}, not SETTINGS")
            self._first = False

    def _keep(self, data: bytes, pos: int, need: int) -> None:
        self._pending += data[pos:]
        self._need = need

    def _kept(self, frame: Frame) -> Frame | None:
        """A kept frame as observation sees it; None while a header block is not whole."""
        kind = frame.type
        if kind in (HEADERS, PUSH_PROMISE):
            self._start_block(frame)
        elif kind == CONTINUATION:
            if self._block is None:
                raise FramingError(f"CONTINUATION on stream {frame.stream_id} without HEADERS")
            self._add_fragment(frame.payload)
        else:
            return frame
        if not frame.flags & END_HEADERS:
            return None
        block = self._block
        assert block is not None
        self._block = None
        fragments, self._fragments = self._fragments, []
        self._block_size = 0
        return block._replace(payload=b"".join(fragments))

    def _start_block(self, frame: Frame) -> None:
        payload = frame.payload
        if frame.flags & PADDED:
            if not payload or payload[0] >= len(payload):
                raise FramingError(f"padding longer than the frame on stream {frame.stream_id}")
            payload = payload[1:len(payload) - payload[0]]
        promised = 0
        if frame.type == PUSH_PROMISE:
            if len(payload) < 4:
                raise FramingError(f"PUSH_PROMISE on stream {frame.stream_id} too short")
            promised = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
            payload = payload[4:]
        elif frame.flags & PRIORITY_FLAG:
            if len(payload) < 5:
                raise FramingError(f"HEADERS on stream {frame.stream_id} too short for "
                                   f"its priority")
            payload = payload[5:]
        self._block = Frame(frame.type, frame.flags, frame.stream_id, b"", promised)
        self._fragments = []
        self._block_size = 0
        self._add_fragment(payload)

    def _add_fragment(self, fragment: bytes) -> None:
        self._block_size += len(fragment)
        if self._block_size > self.max_block:
            raise FramingError(f"a header block of more than {self.max_block} bytes")
        self._fragments.append(fragment)


def goaway(last_stream_id: int, error_code: int = NO_ERROR) -> bytes:
    """A GOAWAY frame (no debug data): the one frame the ambassador may write itself, at a
    frame boundary, when it drains (it changes no HPACK or flow-control state)."""
    return (b"\x00\x00\x08" + bytes((GOAWAY, 0)) + b"\x00\x00\x00\x00"
            + (last_stream_id & 0x7FFFFFFF).to_bytes(4, "big") + error_code.to_bytes(4, "big"))


def settings(payload: bytes) -> list[tuple[int, int]]:
    """A SETTINGS payload's (identifier, value) pairs."""
    if len(payload) % 6:
        raise FramingError(f"a SETTINGS payload of {len(payload)} bytes (expected a multiple "
                           f"of 6)")
    return [(int.from_bytes(payload[i:i + 2], "big"), int.from_bytes(payload[i + 2:i + 6], "big"))
            for i in range(0, len(payload), 6)]


def upgrade_settings(values: Sequence[bytes]) -> list[tuple[int, int]]:
    """The client's first settings, from the values of an h2c upgrade request's HTTP2-Settings
    header (RFC 7540 section 3.2.1): exactly one, a SETTINGS payload in base64url (the
    trailing `=` omitted, or not). No header: none (the defaults). FramingError for more than
    one, or for one that is not such a payload."""
    if not values:
        return []
    if len(values) > 1:
        raise FramingError(f"{len(values)} HTTP2-Settings headers (expected one)")
    if not _BASE64URL.fullmatch(values[0]):
        raise FramingError("an HTTP2-Settings header that is not base64url")
    text = values[0].rstrip(b"=")
    if len(text) % 4 == 1:  # six bits left over: no whole byte
        raise FramingError("an HTTP2-Settings header that is not base64url")
    return settings(base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4)))


def goaway_fields(payload: bytes) -> tuple[int, int]:
    """A GOAWAY payload's last stream id and error code."""
    if len(payload) < 8:
        raise FramingError(f"a GOAWAY payload of {len(payload)} bytes (expected at least 8)")
    return (int.from_bytes(payload[:4], "big") & 0x7FFFFFFF,
            int.from_bytes(payload[4:8], "big"))


def error_code(payload: bytes) -> int:
    """A RST_STREAM payload's error code."""
    if len(payload) != 4:
        raise FramingError(f"a RST_STREAM payload of {len(payload)} bytes (expected 4)")
    return int.from_bytes(payload, "big")
