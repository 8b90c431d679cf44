"""The ambassador against nginx as a reverse proxy, side by side in one run, on loopback.

Upstream: nginx `return 200` (1 worker). Compared: direct to the upstream, nginx as reverse proxy
(1 worker, upstream keepalive), the ambassador (one process; `--protocol auto`, the default, so
each connection is detected first), the same with `--protocol http1` (no detection), and the
ambassador with tracing at 1% sampling to a local OTLP sink. Rounds alternate between them;
medians are reported.

- throughput: wrk, 1 thread, 32 connections;
- latency at a fixed 1,000 req/s (open loop, 10 keep-alive connections): p50/p99, and the
  p99 added over direct;
- RSS of the ambassador after 1,000,000 requests.

    .venv/bin/python benchmarks/bench_ambassador.py [--rounds 3] [--duration 10]
        [--cases "direct,ambassador,ambassador http1"] [--no-rss]
Needs nginx and wrk (`make bench` installs them).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from common import free_port, rss_mb, wait_port

NGINX_UPSTREAM = """
worker_processes 1;
error_log {dir}/upstream.err;
pid {dir}/upstream.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  server {{ listen 127.0.0.1:{port}; location / {{ return 200 "ok\\n"; }} }}
}}
"""
NGINX_PROXY = """
worker_processes 1;
error_log {dir}/proxy.err;
pid {dir}/proxy.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  upstream app {{ server 127.0.0.1:{upstream}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{ proxy_pass http://app; proxy_http_version 1.1;
                 proxy_set_header Connection ""; }}
  }}
}}
"""
OTLP_SINK = """
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""






@contextmanager
def process(command: list[str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def nginx(conf: str, directory: Path, name: str, port: int,
          **fields: object) -> AbstractContextManager[subprocess.Popen[bytes]]:
    path = directory / f"{name}.conf"
    path.write_text(conf.format(dir=directory, port=port, **fields))
    return process(["nginx", "-p", str(directory), "-c", str(path), "-g", "daemon off;"],
                   port)


def ambassador(port: int, admin: int, upstream: int, *extra: str
               ) -> AbstractContextManager[subprocess.Popen[bytes]]:
    command = [sys.executable, "-m", "redline.cli", "ambassador", "--listen",
               f"127.0.0.1:{port}", "--upstream", f"127.0.0.1:{upstream}", "--admin",
               f"127.0.0.1:{admin}", "--service", "bench", "--drain-delay", "0", *extra]
    return process(command, port)


def wrk(port: int, duration: int) -> float:
    return wrk_run(port, duration)[0]


def wrk_run(port: int, duration: int) -> tuple[float, int]:
    """wrk's requests per second, and how many requests it completed."""
    output = subprocess.run(
        ["wrk", "-t1", "-c32", f"-d{duration}s", f"http://127.0.0.1:{port}/users/1"],
        capture_output=True, text=True, check=True, timeout=duration + 30).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    count = re.search(r"(\d+) requests in", output)
    assert rate and count, output
    return float(rate.group(1)), int(count.group(1))


def cpu_seconds(pid: int) -> float:
    """User+system CPU time of a process and its children (nginx's worker), in seconds: the
    work a proxy did, which a busy machine disturbs far less than requests per second."""
    pids = [pid, *(int(child) for child in
                   Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]
    ticks = 0
    for each in pids:
        fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks / os.sysconf("SC_CLK_TCK")


async def _fixed_rate(port: int, rate: int, seconds: float, connections: int) -> list[float]:
    """Open loop: each connection sends on its own schedule; latency is send to full response."""
    latencies: list[float] = []
    interval = connections / rate
    request = b"GET /users/1 HTTP/1.1\r\nHost: bench\r\n\r\n"

    async def one(offset: float) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        start = time.perf_counter() + offset
        count = int(seconds / interval)
        for i in range(count):
            due = start + i * interval
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - sent)
        writer.close()

    await asyncio.gather(*(one(i * interval / connections) for i in range(connections)))
    return latencies


def latency(port: int, seconds: float) -> tuple[float, float]:
    import uvloop

    values = sorted(uvloop.run(_fixed_rate(port, 1000, seconds, 10)))
    return (values[len(values) // 2] * 1e3, values[int(len(values) * 0.99)] * 1e3)




def recorded(admin: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("http_server_request_duration_seconds_count"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--cases", help="comma-separated subset of the cases (default: all)")
    parser.add_argument("--no-rss", action="store_true",
                        help="skip the RSS measurement after 1,000,000 requests")
    args = parser.parse_args()
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed; `make bench` installs it")
    ports = {name: free_port() for name in
             ("upstream", "nginx", "ambassador", "admin", "http1", "http1_admin", "traced",
              "traced_admin", "sink")}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        with nginx(NGINX_UPSTREAM, directory, "upstream", ports["upstream"]), \
                nginx(NGINX_PROXY, directory, "proxy", ports["nginx"],
                      upstream=ports["upstream"]) as proxy, \
                process([sys.executable, "-c", OTLP_SINK, str(ports["sink"])], ports["sink"]), \
                ambassador(ports["ambassador"], ports["admin"], ports["upstream"],
                           "--protocol", "auto") as amb, \
                ambassador(ports["http1"], ports["http1_admin"], ports["upstream"],
                           "--protocol", "http1") as http1, \
                ambassador(ports["traced"], ports["traced_admin"], ports["upstream"],
                           "--otlp-endpoint", f"http://127.0.0.1:{ports['sink']}",
                           "--trace-sample-ratio", "0.01") as traced:
            pids = {"nginx": proxy.pid, "ambassador": amb.pid, "ambassador http1": http1.pid,
                    "ambassador+tracing 1%": traced.pid}
            cpu: dict[str, float] = {name: 0.0 for name in pids}  # seconds, over all runs
            done: dict[str, int] = {name: 0 for name in pids}  # requests
            cases = {"direct": ports["upstream"], "nginx": ports["nginx"],
                     "ambassador": ports["ambassador"], "ambassador http1": ports["http1"],
                     "ambassador+tracing 1%": ports["traced"]}
            if args.cases:
                chosen = args.cases.split(",")
                cases = {name: port for name, port in cases.items() if name in chosen}
            for port in cases.values():
                wrk(port, 2)  # warm up
            throughput: dict[str, list[float]] = {name: [] for name in cases}
            latencies: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
            for _ in range(args.rounds):
                for name, port in cases.items():
                    before = cpu_seconds(pids[name]) if name in pids else 0.0
                    rate, count = wrk_run(port, args.duration)
                    throughput[name].append(rate)
                    if name in pids:
                        cpu[name] += cpu_seconds(pids[name]) - before
                        done[name] += count
                for name, port in cases.items():
                    latencies[name].append(latency(port, args.latency_seconds))
            rss_start = rss_after = rss_mb(amb.pid)
            while not args.no_rss and recorded(ports["admin"]) < 1_000_000:
                wrk(ports["ambassador"], 5)
                rss_after = rss_mb(amb.pid)
            total = recorded(ports["admin"])
    report(throughput, latencies, rss_start, rss_after, total, args)
    print()
    print("| proxy | CPU per request (user+system, over the wrk runs) |")
    print("|---|---:|")
    for name in cases:
        if done.get(name):
            print(f"| {name} | {cpu[name] / done[name] * 1e6:.1f} us |")
    if done.get("ambassador") and done.get("ambassador http1"):
        auto = cpu["ambassador"] / done["ambassador"]
        http1 = cpu["ambassador http1"] / done["ambassador http1"]
        print(f"CPU per request, auto / http1: {auto / http1:.3f}x")


def report(throughput: dict[str, list[float]], latencies: dict[str, list[tuple[float, float]]],
           rss_start: float, rss_after: float, total: float, args: argparse.Namespace) -> None:
    median = {name: statistics.median(values) for name, values in throughput.items()}
    p50 = {name: statistics.median(v[0] for v in values) for name, values in latencies.items()}
    p99 = {name: statistics.median(v[1] for v in values) for name, values in latencies.items()}
    print(f"wrk -t1 -c32 -d{args.duration}s, {args.rounds} alternating rounds, medians; "
          f"latency at 1,000 req/s open loop over 10 connections for {args.latency_seconds}s")
    print()
    anchor = "nginx" if "nginx" in median else "direct"
    print(f"| case | req/s | vs {anchor} | p50 at 1k req/s | p99 at 1k req/s "
          f"| p99 added over direct |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, rate in median.items():
        print(f"| {name} | {rate:,.0f} | {rate / median[anchor]:.2f}x "
              f"| {p50[name]:.3f} ms | {p99[name]:.3f} ms | {p99[name] - p99['direct']:+.3f} ms |")
    print()
    if "ambassador+tracing 1%" in median and "ambassador" in median:
        print(f"tracing at 1%: {median['ambassador+tracing 1%'] / median['ambassador']:.2f}x "
              f"the throughput without tracing")
    if "ambassador http1" in median and "ambassador" in median:
        print(f"auto (detection per connection) / http1: "
              f"{median['ambassador'] / median['ambassador http1']:.3f}x the throughput")
    print(f"ambassador RSS: {rss_start:.1f} MB at start, {rss_after:.1f} MB after "
          f"{total:,.0f} requests")
    print(f"all rounds: {throughput}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
