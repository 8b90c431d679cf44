"""Proxied latency while /metrics is scraped (#17): an ambassador whose registry holds about
10,000 series (2,000 routes x 5 methods), two scrape loops on its admin port, and proxied GETs
timed on a keep-alive connection meanwhile (p50, p99), beside the same GETs without scrapes.

    .venv/bin/python benchmarks/bench_scrape_stall.py [--code DIR] [--requests 300]

--code runs the ambassador of another checkout (before/after); everything else is this one's.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from redline.ports import free_port, wait_port

ROUTES = 2000
METHODS = (b"GET", b"POST", b"PUT", b"DELETE", b"PATCH")
UPSTREAM = """
import sys
from tests.sidecars.ambassador.upstream import UpstreamServer
with UpstreamServer() as server:
    print(server.port, flush=True)
    sys.stdin.read()
"""
SCRAPE_LOOP = """
import sys, time, urllib.request
url, seconds = sys.argv[1], float(sys.argv[2])
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    urllib.request.urlopen(url, timeout=60).read()
"""


def path(index: int) -> bytes:
    """A literal path (letters only: the heuristic keeps it), one per route."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ("/" + letters[index // 676 % 26] + letters[index // 26 % 26]
            + letters[index % 26] + "route").encode()


def populate(port: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for index in range(ROUTES):
        for method in METHODS:
            connection.request(method.decode(), path(index).decode(), body=b"")
            connection.getresponse().read()
    connection.close()


def timed_gets(port: int, count: int) -> list[float]:
    took = []
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for _ in range(count):
        started = time.perf_counter()
        try:
            connection.request("GET", "/probe")
            connection.getresponse().read()
        except TimeoutError:  # counted as the timeout: the loop was that long unavailable
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        took.append(time.perf_counter() - started)
        time.sleep(0.005)
    connection.close()
    return took


def summary(took: list[float]) -> dict[str, float]:
    ordered = sorted(took)
    return {"p50_ms": round(statistics.median(ordered) * 1000, 2),
            "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 2),
            "max_ms": round(ordered[-1] * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", default=".", help="checkout whose ambassador runs")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    here = Path(__file__).resolve().parent.parent
    upstream = subprocess.Popen([sys.executable, "-c", UPSTREAM], cwd=here, text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert upstream.stdout is not None and upstream.stdin is not None
    upstream_port = int(upstream.stdout.readline())
    with tempfile.TemporaryDirectory() as tmp:
        routes = Path(tmp) / "routes.yaml"
        routes.write_text(f"max_routes: {ROUTES + 100}\n")
        port, admin = free_port(), free_port()
        ambassador = subprocess.Popen(
            [sys.executable, "-m", "redline.cli", "ambassador", "--listen", f"127.0.0.1:{port}",
             "--upstream", f"127.0.0.1:{upstream_port}", "--admin", f"127.0.0.1:{admin}",
             "--protocol", "http1", "--drain-delay", "0", "--routes", str(routes)],
            cwd=args.code, stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": ""})
        try:
            wait_port(port)
            wait_port(admin)
            populate(port)
            metrics = f"http://127.0.0.1:{admin}/metrics"
            started = time.perf_counter()
            body = urllib.request.urlopen(metrics, timeout=60).read().decode()
            render_s = time.perf_counter() - started
            series = len({line.split("{")[0] + line.split("{")[1].split(",le=")[0]
                          for line in body.splitlines()
                          if line.startswith("http_server_request_duration_seconds_bucket")})
            quiet = summary(timed_gets(port, args.requests))
            loops = [subprocess.Popen([sys.executable, "-c", SCRAPE_LOOP, metrics, "600"])
                     for _ in range(2)]
            time.sleep(1)
            try:
                scraped = summary(timed_gets(port, args.requests))
            finally:
                for loop in loops:
                    loop.kill()
                    loop.wait()
        finally:
            ambassador.terminate()
            ambassador.wait(30)
            upstream.stdin.close()
            upstream.wait(10)
    print(json.dumps({"code": args.code, "duration_series": series,
                      "one_scrape_s": round(render_s, 2), "without_scrapes": quiet,
                      "two_scrape_loops": scraped}))


if __name__ == "__main__":
    main()
