"""HTTP/2 (h2c) through the ambassador against nginx as an HTTP/2 proxy, side by side in one run,
on loopback (#18).

Upstream: nginx with `http2` on a cleartext listener, `return 200 "ok\\n"` (1 worker).
Compared: direct to the upstream; nginx as HTTP/2 proxy (`grpc_pass` to the upstream,
upstream keepalive, 1 worker, its own process); the ambassador with `--protocol h2c` (one
process). Rounds alternate between them; medians are reported.

- throughput: h2load (1 thread) with 32 connections x 10 streams, and 1 connection x 100
  streams, `-D` seconds each; streams/s and the ratio to nginx;
- CPU per stream: user+system CPU time of each proxy process (nginx: with its worker) during
  the throughput runs, from /proc, divided by the streams it served;
- latency at a fixed 1,000 streams/s: h2load `--rps 100` on each of 10 connections, every
  stream timed by h2load's `--log-file`; p50/p99, and the p99 added over direct;
- RSS of the ambassador after `--rss-streams` streams (h2load -n, 32 x 10);
- gRPC unary (grpcio server and aio client, benchmarks/grpc_echo.py, each a process of its
  own) direct and through a second ambassador (`--protocol h2c`): calls/s and p50/p99 with 1
  and with 16 calls in flight on one channel.

    .venv/bin/python benchmarks/bench_h2.py [--rounds 3] [--duration 10]
        [--rss-streams 1000000] [--no-grpc | --grpc-only | --latency-only]
        [--baseline CHECKOUT]
The ambassador is the one of the checkout the command runs from (`python -m` imports redline
from the working directory); `--baseline` adds another checkout's as a case of its own, e.g.
a `git worktree` of the commit before a change, so before and after alternate in one run.
Needs nginx (with http_v2 and grpc, as Debian's nginx-light) and h2load (nghttp2-client).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from bench_ambassador import cpu_seconds, nginx, process
from common import free_port, rss_mb

NGINX_H2_UPSTREAM = """
http {{
  access_log off;
  # nginx ends an HTTP/2 connection after 1,000 streams by default; h2load does not reconnect.
  keepalive_requests 1000000000;
  server {{ listen 127.0.0.1:{port} http2; location / {{ return 200 "ok\\n"; }} }}
}}
"""
NGINX_H2_PROXY = """
http {{
  access_log off;
  keepalive_requests 1000000000;
  upstream app {{ server 127.0.0.1:{upstream}; keepalive 64; keepalive_requests 1000000000; }}
  server {{ listen 127.0.0.1:{port} http2; location / {{ grpc_pass grpc://app; }} }}
}}
"""
SHAPES = {"32x10": (32, 10), "1x100": (1, 100)}  # connections x concurrent streams each
GRPC_ECHO = str(Path(__file__).with_name("grpc_echo.py"))


def h2load(port: int, connections: int, streams: int, *options: str) -> tuple[float, int]:
    """h2load's streams per second and the streams it completed; every one must succeed."""
    output = subprocess.run(
        ["h2load", "-c", str(connections), "-m", str(streams), *options,
         f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True, timeout=1800).stdout
    rate = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", output)
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, "
                     r"(\d+) failed, (\d+) errored", output)
    assert rate and done, output
    assert done.group(1) == done.group(2) and done.group(3) == done.group(4) == "0", output
    return float(rate.group(1)), int(done.group(1))


def fixed_rate(port: int, seconds: float, log: Path) -> tuple[float, float]:
    """p50 and p99 in ms at 1,000 streams/s: 10 connections at 100 streams/s each."""
    h2load(port, 10, 10, "--rps", "100", "-n", str(int(1000 * seconds)), "--log-file",
           str(log))
    micros = sorted(int(row.split("\t")[2]) for row in log.read_text().splitlines())
    return micros[len(micros) // 2] / 1e3, micros[int(len(micros) * 0.99)] / 1e3


def grpc_calls(port: int, concurrency: int, seconds: float) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, GRPC_ECHO, "call", str(port), "--concurrency", str(concurrency),
         "--seconds", str(seconds)], capture_output=True, text=True, check=True,
        timeout=seconds + 60).stdout
    result: dict[str, float] = json.loads(output)
    return result


def ambassadors(stack: ExitStack, upstream: int, baseline: Path | None) -> dict[str, int]:
    """The ambassador of this checkout and, with `--baseline`, the same command importing
    redline from another checkout (PYTHONPATH, and -P so that the working directory does not
    come first): name -> pid; their ports go into PORTS."""
    trees = {"ambassador h2c": None, **({"ambassador h2c baseline": baseline} if baseline
                                          else {})}
    pids = {}
    for name, tree in trees.items():
        port, admin = free_port(), free_port()
        python = ["env", f"PYTHONPATH={tree}", sys.executable, "-P"] if tree else [sys.executable]
        command = [*python, "-m", "redline.cli", "ambassador", "--listen",
                   f"127.0.0.1:{port}", "--upstream", f"127.0.0.1:{upstream}", "--protocol",
                   "h2c", "--admin", f"127.0.0.1:{admin}", "--service", "bench",
                   "--drain-delay", "0"]
        pids[name] = stack.enter_context(process(command, port)).pid  # env execs python
        PORTS[name] = port
    return pids


PORTS: dict[str, int] = {}  # each case's port


def run_h2(args: argparse.Namespace, directory: Path) -> None:
    upstream, proxy_port = free_port(), free_port()
    with ExitStack() as stack:
        stack.enter_context(nginx(NGINX_H2_UPSTREAM, directory, "upstream", upstream))
        proxy = stack.enter_context(nginx(NGINX_H2_PROXY, directory, "proxy", proxy_port,
                                          upstream=upstream))
        PORTS.update({"direct": upstream, "nginx grpc_pass": proxy_port})
        pids = {"nginx grpc_pass": proxy.pid, **ambassadors(stack, upstream, args.baseline)}
        cases = {name: PORTS[name] for name in ("direct", *pids)}
        for port in cases.values():
            h2load(port, 32, 10, "-D", "2")  # warm up
        rates: dict[tuple[str, str], list[float]] = {}
        cpu = {(name, shape): 0.0 for name in pids for shape in SHAPES}
        done = dict.fromkeys(cpu, 0)
        latencies: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
        for _ in range(args.rounds):
            for shape, (connections, streams) in () if args.latency_only else SHAPES.items():
                for name, port in cases.items():
                    before = cpu_seconds(pids[name]) if name in pids else 0.0
                    rate, count = h2load(port, connections, streams, "-D", str(args.duration))
                    rates.setdefault((name, shape), []).append(rate)
                    if name in pids:
                        cpu[name, shape] += cpu_seconds(pids[name]) - before
                        done[name, shape] += count
            for name, port in cases.items():
                latencies[name].append(fixed_rate(port, args.latency_seconds,
                                                  directory / "latency.tsv"))
        report_h2(args, rates, latencies, cpu, done)
        print(f"all latencies (p50, p99 ms): {latencies}")
        if args.latency_only:
            return
        print(f"all rounds (streams/s): {rates}")
        for name, pid in pids.items():
            if name.startswith("ambassador") and args.rss_streams:
                rss_growth(name, pid, cases[name], args.rss_streams)


def rss_growth(name: str, pid: int, port: int, streams: int) -> None:
    """The ambassador's RSS every 100,000 streams (h2load -c 32 -m 10) up to `streams`,
    printed as it goes: a curve, and what was reached if the run is stopped early."""
    print(f"{name} RSS: {rss_mb(pid):.1f} MB after the rounds", flush=True)
    served = 0
    while served < streams:
        served += h2load(port, 32, 10, "-n", str(min(100_000, streams - served)))[1]
        print(f"{name} RSS: {rss_mb(pid):.1f} MB after {served:,} more streams", flush=True)


def report_h2(args: argparse.Namespace, rates: dict[tuple[str, str], list[float]],
              latencies: dict[str, list[tuple[float, float]]],
              cpu: dict[tuple[str, str], float], done: dict[tuple[str, str], int]) -> None:
    median = {key: statistics.median(values) for key, values in rates.items()}
    p50 = {name: statistics.median(v[0] for v in values) for name, values in latencies.items()}
    p99 = {name: statistics.median(v[1] for v in values) for name, values in latencies.items()}
    print(f"h2load -t 1 -D {args.duration}, {args.rounds} alternating rounds, medians; "
          f"latency: 1,000 streams/s (10 connections x --rps 100) for "
          f"{args.latency_seconds:.0f} s")
    print()
    print("| case | streams/s 32x10 | vs nginx | streams/s 1x100 | vs nginx | CPU per stream "
          "32x10 | CPU per stream 1x100 | p50 at 1k/s | p99 at 1k/s | p99 added over direct |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in latencies:
        row = [name]
        for shape in SHAPES:
            rate = median.get((name, shape), 0.0)  # none with --latency-only
            anchor = median.get(("nginx grpc_pass", shape), 0.0)
            row += [f"{rate:,.0f}" if rate else "", f"{rate / anchor:.2f}x" if anchor else ""]
        for shape in SHAPES:
            row.append(f"{cpu[name, shape] / done[name, shape] * 1e6:.1f} µs"
                       if done.get((name, shape)) else "")
        row += [f"{p50[name]:.3f} ms", f"{p99[name]:.3f} ms",
                f"{p99[name] - p99['direct']:+.3f} ms"]
        print("| " + " | ".join(row) + " |")
    print()


def run_grpc(args: argparse.Namespace) -> None:
    server = free_port()
    with ExitStack() as stack:
        stack.enter_context(process([sys.executable, GRPC_ECHO, "serve", str(server)], server))
        PORTS["direct"] = server
        pids = ambassadors(stack, server, args.baseline)
        cases = {name: PORTS[name] for name in ("direct", *pids)}
        results: dict[tuple[str, int], list[dict[str, float]]] = {}
        cpu: dict[tuple[str, int], float] = {}  # the ambassador's CPU seconds over the runs
        for port in cases.values():
            grpc_calls(port, 16, 2)  # warm up
        for _ in range(args.rounds):
            for concurrency in (1, 16):
                for name, port in cases.items():
                    before = cpu_seconds(pids[name]) if name in pids else 0.0
                    results.setdefault((name, concurrency), []).append(
                        grpc_calls(port, concurrency, args.duration))
                    if name in pids:
                        cpu[name, concurrency] = (cpu.get((name, concurrency), 0.0)
                                                  + cpu_seconds(pids[name]) - before)
    print(f"gRPC unary (grpcio aio client and server, 32-byte messages, one channel), "
          f"{args.duration} s per run, {args.rounds} alternating rounds, medians; CPU per "
          f"call: the ambassador's user+system time over all runs / their calls")
    print()
    print("| case | in flight | calls/s | vs direct | p50 | p99 | p99 added over direct "
          "| ambassador CPU per call |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for (name, concurrency), runs in results.items():
        calls = statistics.median(r["calls"] / r["seconds"] for r in runs)
        direct = statistics.median(r["calls"] / r["seconds"]
                                   for r in results["direct", concurrency])
        p50 = statistics.median(r["p50_ms"] for r in runs)
        p99 = statistics.median(r["p99_ms"] for r in runs)
        p99_direct = statistics.median(r["p99_ms"] for r in results["direct", concurrency])
        per_call = (f"{cpu[name, concurrency] / sum(r['calls'] for r in runs) * 1e6:.0f} µs"
                    if (name, concurrency) in cpu else "")
        print(f"| {name} | {concurrency} | {calls:,.0f} | {calls / direct:.2f}x "
              f"| {p50:.3f} ms | {p99:.3f} ms | {p99 - p99_direct:+.3f} ms | {per_call} |")
    print(f"all runs: {results}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--rss-streams", type=int, default=1_000_000,
                        help="streams sent through the ambassador before its RSS is read "
                             "again (0: skip)")
    parser.add_argument("--baseline", type=Path,
                        help="another checkout of redline (e.g. a `git worktree` of an earlier "
                             "commit): its ambassador is run beside this one's as a case")
    parser.add_argument("--latency-only", action="store_true",
                        help="only the fixed-rate latency rounds (more rounds in the same time)")
    parser.add_argument("--no-grpc", action="store_true", help="skip the gRPC unary part")
    parser.add_argument("--grpc-only", action="store_true", help="only the gRPC unary part")
    args = parser.parse_args()
    for tool in ("nginx", "h2load"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed; `make bench-tools` and `make test` install it")
    if not args.grpc_only:
        with tempfile.TemporaryDirectory() as tmp:
            run_h2(args, Path(tmp))
    if not (args.no_grpc or args.latency_only):
        run_grpc(args)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
