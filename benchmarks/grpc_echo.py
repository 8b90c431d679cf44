"""gRPC unary calls for bench_h2.py and bench_grpc_outbound.py: an echo server and a
closed-loop client, each run as a process of its own (grpcio, no generated code: the messages
are raw bytes); over TLS when given a directory with ca.pem, server.pem and server.key.

    python benchmarks/grpc_echo.py serve PORT [CERT_DIR]
    python benchmarks/grpc_echo.py call PORT [CERT_DIR] --concurrency N --seconds S
The client prints one JSON line: calls, seconds, p50_ms, p99_ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import grpc
from grpc import aio

SERVICE = "bench.Echo"
METHOD = f"/{SERVICE}/Echo"
PAYLOAD = b"x" * 32
# No proxy from the environment: the benchmark chooses the path (direct or the ambassador).
CHANNEL_OPTIONS = [("grpc.enable_http_proxy", 0)]


async def _echo(request: bytes, context: aio.ServicerContext) -> bytes:
    return request


async def serve(port: int, certs: Path | None = None) -> None:
    server = aio.server(options=CHANNEL_OPTIONS)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        SERVICE, {"Echo": grpc.unary_unary_rpc_method_handler(_echo)}),))
    if certs is None:
        server.add_insecure_port(f"127.0.0.1:{port}")
    else:
        server.add_secure_port(f"127.0.0.1:{port}", grpc.ssl_server_credentials(
            [((certs / "server.key").read_bytes(), (certs / "server.pem").read_bytes())]))
    await server.start()
    await server.wait_for_termination()


async def call(port: int, concurrency: int, seconds: float, certs: Path | None = None
               ) -> dict[str, float]:
    """`concurrency` calls in flight on one channel (one HTTP/2 connection) for `seconds`;
    TLS to `localhost` verified with certs/ca.pem when `certs`."""
    channel = (aio.insecure_channel(f"127.0.0.1:{port}", options=CHANNEL_OPTIONS)
               if certs is None else aio.secure_channel(
                   f"localhost:{port}", grpc.ssl_channel_credentials(
                       (certs / "ca.pem").read_bytes()), options=CHANNEL_OPTIONS))
    async with channel:
        echo = channel.unary_unary(METHOD)
        assert await echo(PAYLOAD, timeout=10) == PAYLOAD  # connected before the clock starts
        latencies: list[float] = []
        started = time.perf_counter()
        deadline = started + seconds

        async def loop() -> None:
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                answer = await echo(PAYLOAD, timeout=10)
                latencies.append(time.perf_counter() - sent)
                assert answer == PAYLOAD

        await asyncio.gather(*(loop() for _ in range(concurrency)))
        took = time.perf_counter() - started
    latencies.sort()
    return {"calls": len(latencies), "seconds": took,
            "p50_ms": latencies[len(latencies) // 2] * 1e3,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("serve", "call"))
    parser.add_argument("port", type=int)
    parser.add_argument("certs", nargs="?", type=Path, help="TLS: ca.pem, server.pem/key")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    if args.mode == "serve":
        asyncio.run(serve(args.port, args.certs))
    else:
        print(json.dumps(asyncio.run(call(args.port, args.concurrency, args.seconds,
                                          args.certs))))


if __name__ == "__main__":
    main()
