"""Outbound gRPC through the ambassador (#18): a grpcio aio client calling a grpcio aio echo
server over TLS directly, against the same client speaking h2c to an outbound ambassador
(`--mode outbound --protocol h2c --upstream https://localhost:PORT --upstream-ca ...`) that
originates the TLS. Alternating rounds, medians; the ambassador's CPU per call.

    python benchmarks/bench_grpc_outbound.py [--rounds 3] [--duration 5]
    python benchmarks/bench_grpc_outbound.py serve PORT CERT_DIR     (the echo server)
    python benchmarks/bench_grpc_outbound.py call PORT [CERT_DIR] --concurrency N --seconds S

Certificates: a throwaway CA and a localhost certificate made with openssl.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from grpc import aio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from redline.ports import free_port, wait_port

SERVICE = "bench.Echo"
METHOD = f"/{SERVICE}/Echo"
PAYLOAD = b"x" * 32
OPTIONS = [("grpc.enable_http_proxy", 0)]


def make_certs(directory: Path) -> None:
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.pem", "-days", "1", "-subj", "/CN=bench CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
            "server.csr", "-subj", "/CN=localhost")
    (directory / "ext.cnf").write_text("subjectAltName=DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "1", "-extfile", "ext.cnf")


async def _echo(request: bytes, context: aio.ServicerContext) -> bytes:
    return request


async def serve(port: int, certs: Path) -> None:
    server = aio.server(options=OPTIONS)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        SERVICE, {"Echo": grpc.unary_unary_rpc_method_handler(_echo)}),))
    credentials = grpc.ssl_server_credentials(
        [((certs / "server.key").read_bytes(), (certs / "server.pem").read_bytes())])
    server.add_secure_port(f"127.0.0.1:{port}", credentials)
    await server.start()
    await server.wait_for_termination()


async def call(port: int, certs: Path | None, concurrency: int, seconds: float
               ) -> dict[str, float]:
    """Closed loop: `concurrency` calls in flight on one channel; TLS when `certs`."""
    channel = (aio.insecure_channel(f"127.0.0.1:{port}", options=OPTIONS) if certs is None
               else aio.secure_channel(f"localhost:{port}", grpc.ssl_channel_credentials(
                   (certs / "ca.pem").read_bytes()), options=OPTIONS))
    async with channel:
        echo = channel.unary_unary(METHOD)
        assert await echo(PAYLOAD, timeout=10) == PAYLOAD  # connected before the clock
        latencies: list[float] = []
        started = time.perf_counter()
        deadline = started + seconds

        async def loop() -> None:
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                assert await echo(PAYLOAD, timeout=10) == PAYLOAD
                latencies.append(time.perf_counter() - sent)

        await asyncio.gather(*(loop() for _ in range(concurrency)))
        took = time.perf_counter() - started
    latencies.sort()
    return {"calls": len(latencies), "seconds": took,
            "p50_ms": latencies[len(latencies) // 2] * 1e3,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100


def run_calls(port: int, certs: Path | None, concurrency: int, seconds: float
              ) -> dict[str, float]:
    args = [sys.executable, __file__, "call", str(port), *([str(certs)] if certs else []),
            "--concurrency", str(concurrency), "--seconds", str(seconds)]
    output = subprocess.run(args, capture_output=True, text=True, check=True,
                            timeout=seconds + 60).stdout
    result: dict[str, float] = json.loads(output)
    return result


def bench(rounds: int, duration: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        certs = Path(tmp)
        make_certs(certs)
        app_port, listen = free_port(), free_port()
        app = subprocess.Popen([sys.executable, __file__, "serve", str(app_port), tmp])
        ambassador = subprocess.Popen(
            [sys.executable, "-m", "redline.cli", "ambassador", "--mode", "outbound",
             "--protocol", "h2c", "--listen", f"127.0.0.1:{listen}", "--upstream",
             f"https://localhost:{app_port}", "--upstream-ca", str(certs / "ca.pem"),
             "--admin", "127.0.0.1:0", "--service", "bench", "--drain-delay", "0"],
            stderr=subprocess.DEVNULL)
        try:
            wait_port(app_port)
            wait_port(listen)
            cases: dict[str, tuple[int, Path | None]] = {
                "direct (TLS)": (app_port, certs), "ambassador (h2c -> TLS)": (listen, None)}
            results: dict[tuple[str, int], list[dict[str, float]]] = {}
            cpu: dict[int, float] = {}
            for port, tls in cases.values():
                run_calls(port, tls, 16, 1)  # warm up
            for _ in range(rounds):
                for concurrency in (1, 16):
                    for name, (port, tls) in cases.items():
                        before = cpu_seconds(ambassador.pid)
                        results.setdefault((name, concurrency), []).append(
                            run_calls(port, tls, concurrency, duration))
                        if tls is None:
                            cpu[concurrency] = (cpu.get(concurrency, 0.0)
                                                + cpu_seconds(ambassador.pid) - before)
        finally:
            for proc in (ambassador, app):
                proc.terminate()
                proc.wait(20)
    print(f"gRPC unary outbound, 32-byte messages, one channel, {duration} s per run, "
          f"{rounds} alternating rounds, medians")
    print("| case | in flight | calls/s | vs direct | p50 | p99 | ambassador CPU per call |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for (name, concurrency), runs in results.items():
        rate = statistics.median(r["calls"] / r["seconds"] for r in runs)
        direct = statistics.median(r["calls"] / r["seconds"]
                                   for r in results["direct (TLS)", concurrency])
        per_call = (f"{cpu[concurrency] / sum(r['calls'] for r in runs) * 1e6:.0f} µs"
                    if name.startswith("ambassador") else "")
        print(f"| {name} | {concurrency} | {rate:,.0f} | {rate / direct:.2f}x "
              f"| {statistics.median(r['p50_ms'] for r in runs):.3f} ms "
              f"| {statistics.median(r['p99_ms'] for r in runs):.3f} ms | {per_call} |")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        asyncio.run(serve(int(sys.argv[2]), Path(sys.argv[3])))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "call":
        parser = argparse.ArgumentParser()
        parser.add_argument("mode")
        parser.add_argument("port", type=int)
        parser.add_argument("certs", nargs="?", type=Path)
        parser.add_argument("--concurrency", type=int, default=1)
        parser.add_argument("--seconds", type=float, default=5)
        args = parser.parse_args()
        print(json.dumps(asyncio.run(call(args.port, args.certs, args.concurrency,
                                          args.seconds))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    args = parser.parse_args()
    bench(args.rounds, args.duration)


if __name__ == "__main__":
    main()
