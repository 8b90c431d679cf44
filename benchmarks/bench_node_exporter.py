"""redline node-exporter against node_exporter (Debian), side by side: scrape time and RSS.

node_exporter is limited to the collectors redline implements (the same sources, the same
series). Scrapes alternate between the two, each over its own keep-alive connection, as
Prometheus scrapes; the median time of a whole scrape (request to last byte) is compared, and
the RSS of both processes after the scrapes.

    .venv/bin/python benchmarks/bench_node_exporter.py [--scrapes 200]
"""

from __future__ import annotations

import argparse
import http.client
import shutil
import statistics
import subprocess
import sys
import time

from common import free_port, rss_mb, wait_port

from redline.exporters.node.collectors import NODE_EXPORTER_EQUIVALENT as COLLECTORS
from redline.exporters.node.collectors import VMSTAT_FIELDS


def scrape(conn: http.client.HTTPConnection) -> tuple[float, int]:
    begin = time.perf_counter()
    conn.request("GET", "/metrics")
    body = conn.getresponse().read()
    return time.perf_counter() - begin, len(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, default=200)
    args = parser.parse_args()
    binary = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    if binary is None:
        sys.exit("node_exporter is not installed; `make bench` installs it")
    theirs_port, ours_port = free_port(), free_port()
    theirs = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{theirs_port}", "--collector.disable-defaults",
         f"--collector.vmstat.fields={VMSTAT_FIELDS.pattern}",
         *(f"--collector.{name}" for name in COLLECTORS)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ours = subprocess.Popen(
        [sys.executable, "-m", "redline.cli", "node-exporter", "--listen",
         f"127.0.0.1:{ours_port}", "--collectors", ",".join(COLLECTORS)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(theirs_port)
        wait_port(ours_port)
        connections = {"node_exporter": http.client.HTTPConnection("127.0.0.1", theirs_port),
                       "redline": http.client.HTTPConnection("127.0.0.1", ours_port)}
        for conn in connections.values():
            scrape(conn)  # warm up
        times: dict[str, list[float]] = {name: [] for name in connections}
        sizes: dict[str, int] = {}
        for _ in range(args.scrapes):
            for name, conn in connections.items():
                seconds, size = scrape(conn)
                times[name].append(seconds)
                sizes[name] = size
        rss = {"node_exporter": rss_mb(theirs.pid), "redline": rss_mb(ours.pid)}
    finally:
        for proc in (theirs, ours):
            proc.terminate()
            proc.wait(timeout=10)
    median = {name: statistics.median(values) * 1e3 for name, values in times.items()}
    print(f"{args.scrapes} scrapes each, alternating, collectors: {','.join(COLLECTORS)}")
    print()
    print("| exporter | median scrape | p90 scrape | exposition size | RSS after |")
    print("|---|---:|---:|---:|---:|")
    for name, values in times.items():
        p90 = sorted(values)[int(len(values) * 0.9)] * 1e3
        print(f"| {name} | {median[name]:.2f} ms | {p90:.2f} ms | {sizes[name]:,} B "
              f"| {rss[name]:.1f} MB |")
    print()
    print(f"scrape time ratio redline / node_exporter: "
          f"{median['redline'] / median['node_exporter']:.2f}")
    print(f"RSS ratio redline / node_exporter: {rss['redline'] / rss['node_exporter']:.2f}")


if __name__ == "__main__":
    main()
