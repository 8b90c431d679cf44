"""Raw HTTP/2 frames (RFC 9113 section 4) for the abuse suite: what a hostile or broken client
writes, byte for byte, which no well-behaved client library would. No IO: bytes out, frames
in. Header blocks are encoded with the `hpack` package."""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from hpack import Decoder, Encoder, NeverIndexedHeaderTuple

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
FRAME_HEAD = 9
MAX_FRAME_PAYLOAD = 16_384  # SETTINGS_MAX_FRAME_SIZE's initial value

DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = (
    0x0, 0x1, 0x3, 0x4, 0x6, 0x7, 0x8, 0x9)
END_STREAM = 0x1  # DATA, HEADERS
ACK = 0x1  # SETTINGS, PING
END_HEADERS = 0x4  # HEADERS, CONTINUATION
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
MAX_WINDOW = 2**31 - 1
DEFAULT_WINDOW = 65_535
CANCEL = 0x8  # RST_STREAM error code

Headers = Sequence[tuple[str, str]]


class Frame(NamedTuple):
    kind: int
    flags: int
    stream: int
    payload: bytes


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return (struct.pack(">I", len(payload))[1:] + bytes((kind, flags))
            + struct.pack(">I", stream & 0x7FFF_FFFF) + payload)


def settings(*values: tuple[int, int]) -> bytes:
    """A SETTINGS frame with (identifier, value) pairs."""
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", key, value)
                                          for key, value in values))


def window_update(stream: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream, struct.pack(">I", increment))


def rst_stream(stream: int, code: int = CANCEL) -> bytes:
    return frame(RST_STREAM, 0, stream, struct.pack(">I", code))


def ping(data: bytes = b"abusive!") -> bytes:
    return frame(PING, 0, 0, data)


def grpc_request(path: str) -> list[tuple[str, str]]:
    return [(":method", "POST"), (":scheme", "http"), (":path", path),
            (":authority", "127.0.0.1"), ("content-type", "application/grpc"),
            ("te", "trailers")]


def grpc_message(payload: bytes) -> bytes:
    """A length-prefixed gRPC message, uncompressed."""
    return b"\x00" + struct.pack(">I", len(payload)) + payload


def literal_block(headers: Headers) -> bytes:
    """A header block that leaves the dynamic table as it was (literals never indexed), so a
    block sent after it can still name entries by their index."""
    return Encoder().encode([NeverIndexedHeaderTuple(name, value) for name, value in headers],
                            huffman=False)


def header_frames(stream: int, block: bytes, *, end_stream: bool, end_headers: bool = True,
                  fragment: int = MAX_FRAME_PAYLOAD) -> bytes:
    """HEADERS then as many CONTINUATION frames as `block` needs; END_HEADERS on the last one
    only if `end_headers`."""
    pieces = [block[i:i + fragment] for i in range(0, len(block), fragment)] or [b""]
    out = []
    for index, piece in enumerate(pieces):
        last = index == len(pieces) - 1
        flags = END_HEADERS if last and end_headers else 0
        if index == 0:
            out.append(frame(HEADERS, flags | (END_STREAM if end_stream else 0), stream, piece))
        else:
            out.append(frame(CONTINUATION, flags, stream, piece))
    return b"".join(out)


def take_frames(buffer: bytearray) -> Iterator[Frame]:
    """The complete frames at the start of `buffer`, removed from it as they are yielded."""
    while len(buffer) >= FRAME_HEAD:
        length = int.from_bytes(buffer[:3], "big")
        if len(buffer) < FRAME_HEAD + length:
            return
        kind, flags = buffer[3], buffer[4]
        stream = int.from_bytes(buffer[5:9], "big") & 0x7FFF_FFFF
        payload = bytes(buffer[FRAME_HEAD:FRAME_HEAD + length])
        del buffer[:FRAME_HEAD + length]
        yield Frame(kind, flags, stream, payload)


class Response:
    """One stream's response as a client sees it: header blocks decoded (with the
    connection's decoder), DATA payloads joined, ended by END_STREAM or RST_STREAM."""

    def __init__(self) -> None:
        self.headers: list[tuple[str, str]] = []
        self.body = bytearray()
        self.ended = False
        self.reset = False

    def feed(self, item: Frame, decoder: Decoder) -> None:
        if item.kind == HEADERS:
            self.headers += [(str(n), str(v)) for n, v in decoder.decode(item.payload)]
        elif item.kind == DATA:
            self.body += item.payload
        elif item.kind == RST_STREAM:
            self.reset = True
        self.ended = self.ended or self.reset or (
            item.kind in (HEADERS, DATA) and bool(item.flags & END_STREAM))

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name), None)
