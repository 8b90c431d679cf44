"""HTTP/2 bytes for the sans-IO tests, built by hand (RFC 9113 section 4.1) with hpack's
encoder: what a client and a server would put on the wire."""

from __future__ import annotations

from hpack import Encoder

from redline.sidecars.ambassador import h2frames
from redline.sidecars.ambassador.h2frames import PREFACE

Headers = list[tuple[bytes, bytes]]


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return (len(payload).to_bytes(3, "big") + bytes((kind, flags))
            + stream_id.to_bytes(4, "big") + payload)


def settings(*pairs: tuple[int, int], ack: bool = False) -> bytes:
    payload = b"".join(k.to_bytes(2, "big") + v.to_bytes(4, "big") for k, v in pairs)
    return frame(h2frames.SETTINGS, h2frames.ACK if ack else 0, 0, payload)


def data(stream_id: int, payload: bytes, *, end: bool = False) -> bytes:
    return frame(h2frames.DATA, h2frames.END_STREAM if end else 0, stream_id, payload)


def rst(stream_id: int, code: int) -> bytes:
    return frame(h2frames.RST_STREAM, 0, stream_id, code.to_bytes(4, "big"))


def ping() -> bytes:
    return frame(h2frames.PING, 0, 0, b"12345678")


def window_update(stream_id: int, increment: int) -> bytes:
    return frame(h2frames.WINDOW_UPDATE, 0, stream_id, increment.to_bytes(4, "big"))


class Peer:
    """One side's encoder: its header blocks as HEADERS (+ CONTINUATION) frames."""

    def __init__(self) -> None:
        self.encoder = Encoder()

    def headers(self, stream_id: int, headers: Headers, *, end: bool = False,
                split: int = 0, pad: int = 0, priority: bool = False) -> bytes:
        """`split`: the block in pieces of that many bytes (CONTINUATIONs); `pad`: padding."""
        block = self.encoder.encode(headers)
        pieces = ([block[i:i + split] for i in range(0, len(block), split)] if split
                  else [block]) or [b""]
        flags = h2frames.END_STREAM if end else 0
        first = pieces[0]
        if priority:
            flags |= h2frames.PRIORITY_FLAG
            first = b"\x00\x00\x00\x00\x10" + first
        if pad:
            flags |= h2frames.PADDED
            first = bytes((pad,)) + first + b"\x00" * pad
        if len(pieces) == 1:
            flags |= h2frames.END_HEADERS
        out = frame(h2frames.HEADERS, flags, stream_id, first)
        for index, piece in enumerate(pieces[1:], start=2):
            last = index == len(pieces)
            out += frame(h2frames.CONTINUATION, h2frames.END_HEADERS if last else 0,
                         stream_id, piece)
        return out


def request(method: bytes = b"POST", path: bytes = b"/test.Echo/Unary",
            content_type: bytes = b"application/grpc", **extra: bytes) -> Headers:
    return [(b":method", method), (b":scheme", b"http"), (b":path", path),
            (b":authority", b"shop"), (b"content-type", content_type),
            *((name.replace("_", "-").encode(), value) for name, value in extra.items())]


def client_start() -> bytes:
    return PREFACE + settings((h2frames.SETTINGS_HEADER_TABLE_SIZE, 4096))


def grpc_message(payload: bytes) -> bytes:
    return b"\x00" + len(payload).to_bytes(4, "big") + payload
