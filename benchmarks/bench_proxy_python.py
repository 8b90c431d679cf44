"""The ambassador's per-request Python cost without IO: the real ClientSide/UpstreamSide pair
driven with fake transports (one keep-alive request/response exchange per iteration).
`--distinct-heads`: every request and response head differs from the one before (an id
header), as for a client that never repeats a head; by default each repeats (wrk, nginx).

    .venv/bin/python benchmarks/bench_proxy_python.py [--requests 200000] [--profile]
        [--distinct-heads]

Wall-clock figures follow the machine's load. The load-independent figure is machine
instructions per exchange under callgrind, (N=12,000 minus N=2,000) / 10,000 so that start-up
cancels (DISTINCT: False, or True as --distinct-heads):

    cd /tmp && PYTHONHASHSEED=0 valgrind --tool=callgrind $TREE/.venv/bin/python -c \
      "import sys; sys.path.insert(0, '$TREE/benchmarks'); import bench_proxy_python as b; \
      b.run(N, DISTINCT)"

The fake transports' write and is_closing are interpreted methods (~2k instructions per
exchange) where the server has uvloop's C transport.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import time
from collections.abc import Iterable

from redline.sidecars.ambassador.config import AmbassadorConfig, PortConfig, Upstream
from redline.sidecars.ambassador.http1_client import ClientSide
from redline.sidecars.ambassador.http1_upstream import UpstreamSide
from redline.sidecars.ambassador.proxy import Ambassador

REQUEST = b"GET /users/1 HTTP/1.1\r\nHost: 127.0.0.1:18082\r\n\r\n"
RESPONSE = (b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 26 Nov 2026 16:33:00 GMT\r\n"
            b"Content-Type: application/octet-stream\r\nContent-Length: 3\r\n"
            b"Connection: keep-alive\r\n\r\nok\n")


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += len(data)

    def writelines(self, chunks: Iterable[bytes | bytearray | memoryview]) -> None:
        for chunk in chunks:
            self.write(bytes(chunk))

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def build() -> tuple[ClientSide, UpstreamSide]:
    proxy = Ambassador(AmbassadorConfig(
        ports=(PortConfig(("127.0.0.1", 0), Upstream("127.0.0.1", 1), "http1"),), admin=None))
    port = proxy.ports[0]  # what a connection's owner is
    client = ClientSide(port)
    client.connection_made(FakeTransport())
    upstream = UpstreamSide(client, client.pending, port)  # as if connected by the proxy
    upstream.connection_made(FakeTransport())
    client.upstream = upstream
    return client, upstream


def distinct(message: bytes, count: int) -> list[bytes]:
    """`count` copies of a message, each with its own id header after the first line."""
    line, rest = message.split(b"\r\n", 1)
    return [b"%s\r\nX-Request-Id: %08d\r\n%s" % (line, index, rest) for index in range(count)]


def run(requests: int, distinct_heads: bool = False) -> float:
    client, upstream = build()
    client_data, upstream_data = client.data_received, upstream.data_received
    # Made before the clock starts, and cycled: the same work per exchange whatever `requests`.
    count = 1000 if distinct_heads else 1
    pairs = list(zip(distinct(REQUEST, count), distinct(RESPONSE, count), strict=True)) \
        if distinct_heads else [(REQUEST, RESPONSE)]
    begin = time.perf_counter()
    for index in range(requests):
        request, response = pairs[index % count]
        client_data(request)
        upstream_data(response)
    elapsed = time.perf_counter() - begin
    assert not client.pending
    return elapsed / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--distinct-heads", action="store_true")
    args = parser.parse_args()
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(run, args.requests, args.distinct_heads)
        pstats.Stats(profile).sort_stats("tottime").print_stats(15)
        return
    results = sorted(run(args.requests, args.distinct_heads) for _ in range(5))
    print(f"per request (median of 5): {results[2]:.2f} us")


if __name__ == "__main__":
    main()
