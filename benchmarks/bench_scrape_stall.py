"""Proxied latency while /metrics is scraped (#17): an ambassador whose registry holds about
10,000 series (2,000 routes x 5 methods), two scrape loops on its admin port, and proxied GETs
timed on a keep-alive connection meanwhile (p50, p99), beside the same GETs without scrapes.

    .venv/bin/python benchmarks/bench_scrape_stall.py [--code DIR] [--requests 300] [--openmetrics]

--code runs the ambassador of another checkout (before/after); everything else is this one's.
--openmetrics: the scrapes ask for OpenMetrics, as Prometheus does with exemplar storage on.
The ambassador runs with REDLINE_MAX_SERIES=20000 so that the 10,000 series stay distinct
(2,000 per family by default since #17; a checkout without the flag ignores the variable).
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
url, seconds, accept = sys.argv[1], float(sys.argv[2]), sys.argv[3]
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    request = urllib.request.Request(url, headers={"Accept": accept})
    urllib.request.urlopen(request, timeout=60).read()
    print(flush=True)  # one line per scrape answered
"""
OPENMETRICS = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
TEXT = "text/plain;version=0.0.4"


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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat), load-independent."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_kib(pid: int) -> int:
    """The process's largest resident size so far (VmHWM)."""
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmHWM:"):
            return int(row.split()[1])
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def summary(took: list[float]) -> dict[str, float]:
    ordered = sorted(took)
    return {"p50_ms": round(statistics.median(ordered) * 1000, 2),
            "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 2),
            "max_ms": round(ordered[-1] * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", default=".", help="checkout whose ambassador runs")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--openmetrics", action="store_true", help="scrape as OpenMetrics")
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
            cwd=args.code, stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": "", "REDLINE_MAX_SERIES": "20000"})
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
            accept = OPENMETRICS if args.openmetrics else TEXT
            loops = [subprocess.Popen([sys.executable, "-c", SCRAPE_LOOP, metrics, "600", accept],
                                      stdout=subprocess.PIPE)
                     for _ in range(2)]
            time.sleep(1)
            try:
                cpu_before, started = cpu_seconds(ambassador.pid), time.monotonic()
                scraped = summary(timed_gets(port, args.requests))
                cpu = cpu_seconds(ambassador.pid) - cpu_before
                scraped["ambassador_cpu_share"] = round(cpu / (time.monotonic() - started), 2)
            finally:
                for loop in loops:
                    loop.kill()
                    loop.wait()
            scrapes = sum(len(loop.stdout.read()) for loop in loops if loop.stdout)
            peak_rss_mb = peak_rss_kib(ambassador.pid) / 1024
        finally:
            ambassador.terminate()
            ambassador.wait(30)
            upstream.stdin.close()
            upstream.wait(10)
    print(json.dumps({"code": args.code, "openmetrics": args.openmetrics,
                      "load_average": os.getloadavg()[0],
                      "duration_series": series,
                      "one_scrape_s": round(render_s, 2), "without_scrapes": quiet,
                      "two_scrape_loops": scraped, "scrapes_answered": scrapes,
                      "ambassador_peak_rss_mb": round(peak_rss_mb, 1)}))


if __name__ == "__main__":
    main()
