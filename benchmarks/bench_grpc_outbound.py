"""Outbound gRPC through the ambassador (#18): a grpcio aio client calling a grpcio aio echo
server over TLS directly, against the same client speaking h2c to an outbound ambassador
(`--mode outbound --protocol h2c --upstream https://localhost:PORT --upstream-ca ...`) that
originates the TLS. Alternating rounds, medians; the ambassador's CPU per call.

    python benchmarks/bench_grpc_outbound.py [--rounds 3] [--duration 5]

The echo server and the client are grpc_echo.py's (TLS when given the certificates' directory).

Certificates: a throwaway CA and a localhost certificate made with openssl.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_ambassador import cpu_seconds

from redline.ports import free_port, wait_port

ECHO = str(Path(__file__).with_name("grpc_echo.py"))


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


def run_calls(port: int, certs: Path | None, concurrency: int, seconds: float
              ) -> dict[str, float]:
    args = [sys.executable, ECHO, "call", str(port), *([str(certs)] if certs else []),
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
        app = subprocess.Popen([sys.executable, ECHO, "serve", str(app_port), tmp])
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    args = parser.parse_args()
    bench(args.rounds, args.duration)


if __name__ == "__main__":
    main()
