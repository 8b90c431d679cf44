"""Micro-benchmark of what observing HTTP/2 costs the ambassador per stream: the sans-IO core
(frame reader + mirrored HPACK decoders + stream table, h2streams.Http2Streams) alone, and with
the recorder that turns its events into RED observations (h2record.StreamRecorder), on the
bytes of gRPC unary calls as grpc-python sends them (one call's client bytes in one chunk, the
server's in one), and on the same bytes cut in 1,400-byte pieces (MTU-sized reads).

CPU time per stream (process_time), median of alternating rounds:

    .venv/bin/python benchmarks/bench_h2_observer.py [--rounds 5] [--streams 20000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from hpack import Encoder

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from redline.exporters.red import ServerRecorder
from redline.exporters.routes import RouteTemplater
from redline.exporters.rpc import RpcServerRecorder
from redline.sidecars.ambassador import h2frames
from redline.sidecars.ambassador.h2record import StreamRecorder
from redline.sidecars.ambassador.h2streams import Http2Streams, Stream


def _frame(kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    return (len(payload).to_bytes(3, "big") + bytes((kind, flags))
            + stream_id.to_bytes(4, "big") + payload)


def conversation(streams: int, *, timeouts: bool = False) -> list[tuple[bool, bytes]]:
    """(from the client?, bytes) in order: the prefaces, then each call's two directions.
    `timeouts`: each call sends its own grpc-timeout (a client's deadline counting down), so no
    two request blocks are the same bytes; else every call sends the same headers."""
    client, server = Encoder(), Encoder()
    message = b"\x00\x00\x00\x00\x20" + b"x" * 32
    parts = [(True, h2frames.PREFACE + _frame(h2frames.SETTINGS, 0, 0, b"")),
             (False, _frame(h2frames.SETTINGS, 0, 0, b"")),
             (True, _frame(h2frames.SETTINGS, h2frames.ACK, 0, b"")),
             (False, _frame(h2frames.SETTINGS, h2frames.ACK, 0, b""))]
    both = h2frames.END_HEADERS | h2frames.END_STREAM
    for index in range(streams):
        sid = 2 * index + 1
        request = client.encode([
            (b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/bench.Echo/Echo"),
            (b":authority", b"127.0.0.1:50051"), (b"te", b"trailers"),
            (b"content-type", b"application/grpc"), (b"user-agent", b"grpc-python/1.85.0"),
            (b"grpc-accept-encoding", b"identity,deflate,gzip"),
            (b"grpc-timeout", b"%dm" % (9000 - index % 9000 if timeouts else 9000))])
        head = server.encode([(b":status", b"200"), (b"content-type", b"application/grpc"),
                              (b"grpc-accept-encoding", b"identity,deflate,gzip")])
        trailers = server.encode([(b"grpc-status", b"0"), (b"grpc-message", b"")])
        parts.append((True, _frame(h2frames.HEADERS, h2frames.END_HEADERS, sid, request)
                      + _frame(h2frames.DATA, h2frames.END_STREAM, sid, message)))
        parts.append((False, _frame(h2frames.HEADERS, h2frames.END_HEADERS, sid, head)
                      + _frame(h2frames.DATA, 0, sid, message)
                      + _frame(h2frames.HEADERS, both, sid, trailers)))
    return parts


def pieces(parts: list[tuple[bool, bytes]], size: int) -> list[tuple[bool, bytes]]:
    return [(side, data[i:i + size]) for side, data in parts for i in range(0, len(data), size)]


class _NoEvents:
    def request_started(self, stream: Stream, now: float) -> None: ...
    def response_started(self, stream: Stream, now: float) -> None: ...
    def stream_ended(self, stream: Stream, now: float, error: str | None) -> None: ...
    def stream_abandoned(self, stream: Stream) -> None: ...


def run(parts: list[tuple[bool, bytes]], streams: int, record: bool) -> float:
    """CPU microseconds per stream."""
    routes = RouteTemplater()
    events = (StreamRecorder(ServerRecorder("bench", routes=routes),
                             RpcServerRecorder("bench"), routes) if record else _NoEvents())
    observer = Http2Streams(events, max_block=65536, max_streams=1024, max_table_size=65536)
    client, server = observer.client_bytes, observer.server_bytes
    begin = time.process_time()
    for from_client, data in parts:
        if (client if from_client else server)(data, 0.0) is not None:
            raise SystemExit(f"observation stopped: {observer.stopped}")
    return (time.process_time() - begin) / streams * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--streams", type=int, default=20_000)
    args = parser.parse_args()
    whole = conversation(args.streams)
    cut = pieces(whole, 1400)
    cases = {"core, a chunk per call and direction": (whole, False),
             "core + recorder": (whole, True),
             "core, 1,400-byte pieces": (cut, False),
             "core + recorder, grpc-timeout per call": (
                 conversation(args.streams, timeouts=True), True)}
    results: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, (parts, record) in cases.items():
            results[name].append(run(parts, args.streams, record))
    for name, values in results.items():
        print(f"{name:42s} {statistics.median(values):6.2f} us CPU per stream "
              f"(rounds: {', '.join(f'{v:.2f}' for v in values)})")


if __name__ == "__main__":
    main()
