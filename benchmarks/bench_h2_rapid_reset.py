"""What one read of a rapid-reset attack (CVE-2023-44487) costs the HTTP/2 observer: the
client's bytes of N streams opened and reset at once (HEADERS + RST_STREAM each) fed to
h2streams.Http2Streams with the recorder, in one chunk, as one socket read hands them over.
Two kinds of header block: the same request each time (hpack-encoded with indexing, so the
observer's cache decodes it once), and a new block each time (literals never indexed with a
unique value), the costliest. Wall time per read, median of rounds; the tree measured is this
checkout's, or `--tree DIR` (another checkout, e.g. the commit before the bounds).

    python benchmarks/bench_h2_rapid_reset.py [--streams 4000] [--rounds 5] [--tree DIR]
"""

from __future__ import annotations

import argparse
import statistics
import struct
import sys
import time
from pathlib import Path

from hpack import Encoder

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_FRAME = struct.Struct(">HBBBL")
HEADERS, RST_STREAM, SETTINGS = 0x1, 0x3, 0x4
END_HEADERS = 0x4
CANCEL = (8).to_bytes(4, "big")
REQUEST = [(":method", "POST"), (":scheme", "http"), (":path", "/bench.Echo/Echo"),
           (":authority", "127.0.0.1"), ("content-type", "application/grpc"),
           ("te", "trailers")]


def frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    length = len(payload)
    return _FRAME.pack(length >> 8, length & 0xFF, kind, flags, stream) + payload


def fresh_block(stream: int) -> bytes:
    """Literals never indexed, names literal too, and a unique x-id: nothing to cache."""
    fields = [*REQUEST, ("x-id", str(stream))]
    out = bytearray()
    for name, value in fields:
        out += b"\x10" + bytes((len(name),)) + name.encode() + bytes((len(value),))
        out += value.encode()
    return bytes(out)


def attack(streams: int, fresh: bool) -> bytes:
    encoder = Encoder()
    out = bytearray()
    for stream in range(1, 2 * streams, 2):
        block = fresh_block(stream) if fresh else encoder.encode(REQUEST)
        out += frame(HEADERS, END_HEADERS, stream, block) + frame(RST_STREAM, 0, stream, CANCEL)
    return bytes(out)


def one_read(chunk: bytes) -> tuple[float, str | None]:
    from redline.exporters.red import ServerRecorder
    from redline.exporters.routes import RouteTemplater
    from redline.exporters.rpc import RpcServerRecorder
    from redline.sidecars.ambassador.h2record import StreamRecorder
    from redline.sidecars.ambassador.h2streams import Http2Streams

    recorder = StreamRecorder(ServerRecorder("bench"), RpcServerRecorder("bench"),
                              RouteTemplater())
    observer = Http2Streams(recorder, max_block=65536, max_streams=1024, max_table_size=65536)
    observer.client_bytes(PREFACE + frame(SETTINGS, 0, 0, b""), 0.0)
    observer.server_bytes(frame(SETTINGS, 0, 0, b""), 0.0)
    started = time.perf_counter()
    stopped = observer.client_bytes(chunk, 1.0)
    return time.perf_counter() - started, stopped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    sys.path.insert(0, str(args.tree))
    for fresh in (False, True):
        chunk = attack(args.streams, fresh)
        runs = [one_read(chunk) for _ in range(args.rounds)]
        took = statistics.median(seconds for seconds, _ in runs)
        print(f"{args.streams} streams opened and reset in one {len(chunk):,}-byte read, "
              f"{'a new' if fresh else 'the same'} header block each: {took * 1e3:.1f} ms "
              f"(rounds: {', '.join(f'{s * 1e3:.1f}' for s, _ in runs)}); "
              f"stopped: {runs[0][1]}")


if __name__ == "__main__":
    main()
