"""Raw HTTP/2 for the abuse suite, beside the frame builders of the sans-IO tests
(tests/sidecars/ambassador/h2bytes.py, used as they are): what only a hostile client writes (a
header block cut into CONTINUATIONs that may never end, literals that leave the HPACK table as
it was so a later block can name an entry by its index), and a client's view of the answers
(frames taken from the bytes read, one stream's response). No IO. The protocol's numbers are
RFC 9113's, as the ambassador's own frame reader names them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

from hpack import Decoder, Encoder, NeverIndexedHeaderTuple

from redline.sidecars.ambassador.h2frames import (
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    FRAME_HEADER,
    HEADERS,
    RST_STREAM,
)
from tests.sidecars.ambassador.h2bytes import frame

MAX_FRAME_PAYLOAD = 16_384  # SETTINGS_MAX_FRAME_SIZE's initial value
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
MAX_WINDOW = 2**31 - 1
DEFAULT_WINDOW = 65_535

Headers = Sequence[tuple[str, str]]


class Frame(NamedTuple):
    kind: int
    flags: int
    stream: int
    payload: bytes


def grpc_request(path: str) -> list[tuple[str, str]]:
    return [(":method", "POST"), (":scheme", "http"), (":path", path),
            (":authority", "127.0.0.1"), ("content-type", "application/grpc"),
            ("te", "trailers")]


def literal_block(headers: Headers) -> bytes:
    """A header block that leaves the dynamic table as it was (literals never indexed), so a
    block sent after it can still name entries by their index."""
    return Encoder().encode([NeverIndexedHeaderTuple(name, value) for name, value in headers],
                            huffman=False)


def header_frames(stream: int, block: bytes, *, end_stream: bool, end_headers: bool = True,
                  fragment: int = MAX_FRAME_PAYLOAD) -> bytes:
    """HEADERS then as many CONTINUATION frames as `block` needs; END_HEADERS on the last one
    only if `end_headers` (without it the block never ends)."""
    pieces = [block[i:i + fragment] for i in range(0, len(block), fragment)] or [b""]
    out = []
    for index, piece in enumerate(pieces):
        flags = END_HEADERS if index == len(pieces) - 1 and end_headers else 0
        if index == 0:
            out.append(frame(HEADERS, flags | (END_STREAM if end_stream else 0), stream, piece))
        else:
            out.append(frame(CONTINUATION, flags, stream, piece))
    return b"".join(out)


def take_frames(buffer: bytearray) -> Iterator[Frame]:
    """The complete frames at the start of `buffer`, removed from it as they are yielded."""
    while len(buffer) >= FRAME_HEADER:
        length = int.from_bytes(buffer[:3], "big")
        if len(buffer) < FRAME_HEADER + length:
            return
        kind, flags = buffer[3], buffer[4]
        stream = int.from_bytes(buffer[5:9], "big") & 0x7FFF_FFFF
        payload = bytes(buffer[FRAME_HEADER:FRAME_HEADER + length])
        del buffer[:FRAME_HEADER + length]
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
