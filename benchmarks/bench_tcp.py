"""The ambassador as an opaque TCP proxy against nginx `stream` and HAProxy in tcp mode, side by
side in one run, on loopback, in front of one redis-server.

Compared: direct to Redis; nginx `stream` proxy_pass (1 worker); HAProxy `mode tcp`
(nbthread 1); the ambassador with `--protocol opaque` and with `--protocol auto` (detection:
Redis's RESP is recognised as not HTTP from its first line), both on the native relay as
installed (relay.py: recv/send in a thread of its own); `--protocol opaque` on the native relay
moving bytes with splice(2) (REDLINE_NATIVE_RELAY=splice); and `--protocol opaque` relaying in
asyncio (REDLINE_NATIVE_RELAY=off: what the native relay replaced, and the fallback where it is
not built). Rounds alternate between them; medians are reported.

- throughput: redis-benchmark GET and SET, 50 clients, `-n` requests, unpipelined and `-P 16`;
- CPU per request: the user+system CPU time each proxy process (nginx: with its worker) used
  during the throughput runs, divided by their requests; less sensitive to a busy machine than
  requests per second, and the reason for a difference in them;
- latency at a fixed rate: redis-benchmark has no fixed-rate mode, so the open-loop generator
  of bench_ambassador.py (benchmarks/openloop.c, C, one epoll thread: a Python client's own
  scheduling jitter was larger than what it measured) sends `GET key` at `--rate` requests/s
  spread over 10 connections, each request timed from when it was due to its full reply;
  p50/p99, and the p99 added over direct.

    .venv/bin/python benchmarks/bench_tcp.py [--rounds 3] [--requests 200000]
        [--latency-only | --pipelined-only] [--cases 'nginx stream,ambassador opaque,...']
Needs redis-server, redis-benchmark, nginx (with its stream module) and haproxy
(`make bench-tools` installs them; Debian's nginx-light loads the stream module from
libnginx-mod-stream).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path

from bench_ambassador import build_openloop, cpu_seconds, fixed_rate, nginx, process
from common import free_port, rss_mb

from redline.sidecars.ambassador.relay import DEFAULT, ENV, OFF, SPLICE, compiled

STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")
NGINX_STREAM = """
stream {{ server {{ listen 127.0.0.1:{port}; proxy_pass 127.0.0.1:{upstream}; }} }}
"""
HAPROXY = """
global
  nbthread 1
  maxconn 4096
defaults
  mode tcp
  timeout connect 5s
  timeout client 1h
  timeout server 1h
frontend bench
  bind 127.0.0.1:{port}
  default_backend redis
backend redis
  server redis 127.0.0.1:{upstream}
"""


def redis(port: int) -> AbstractContextManager[subprocess.Popen[bytes]]:
    return process(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no"], port)


def nginx_stream(directory: Path, port: int, upstream: int
                 ) -> AbstractContextManager[subprocess.Popen[bytes]]:
    load = f"load_module {STREAM_MODULE};\n" if STREAM_MODULE.exists() else ""
    return nginx(NGINX_STREAM, directory, "stream", port, modules=load, upstream=upstream)


def haproxy(directory: Path, port: int, upstream: int
            ) -> AbstractContextManager[subprocess.Popen[bytes]]:
    path = directory / "haproxy.cfg"
    path.write_text(HAPROXY.format(port=port, upstream=upstream))
    return process(["haproxy", "-db", "-f", str(path)], port)


def ambassador(port: int, admin: int, upstream: int, protocol: str, relay: str = DEFAULT
               ) -> AbstractContextManager[subprocess.Popen[bytes]]:
    # `env` execs the interpreter: the pid (and its CPU time) is the ambassador's.
    return process(["env", f"{ENV}={relay}", sys.executable, "-m", "redline.cli", "ambassador",
                    "--listen", f"127.0.0.1:{port}", "--upstream", f"127.0.0.1:{upstream}",
                    "--protocol", protocol, "--admin", f"127.0.0.1:{admin}", "--service", "bench",
                    "--drain-delay", "0"], port)


def benchmark(port: int, requests: int, pipeline: int) -> dict[str, float]:
    """redis-benchmark's requests per second for SET and GET."""
    output = subprocess.run(
        ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-q", "-n", str(requests),
         "-c", "50", "-t", "set,get", "-P", str(pipeline)],
        capture_output=True, text=True, check=True, timeout=600).stdout.replace("\r", "\n")
    assert "rror" not in output, output
    rates = dict(re.findall(r"^(SET|GET): ([\d.]+) requests per second", output, re.M))
    assert set(rates) == {"SET", "GET"}, output
    return {name: float(rate) for name, rate in rates.items()}


def latency(openloop: Path, port: int, rate: int, seconds: float) -> tuple[float, float]:
    """p50 and p99 in ms of GET at `rate` requests/s, open loop over 10 connections."""
    rung = fixed_rate(openloop, port, rate, seconds, None, target="redis:key", connections=10)
    # One request due right at the end may go unsent (the run's clock); more is a proxy behind.
    if rung.unanswered > rung.requests / 1000:
        raise RuntimeError(f"{rung.unanswered} requests unanswered at {rate} req/s on {port}")
    return rung.p50, rung.p99


@contextmanager
def servers(directory: Path, ports: dict[str, int]) -> Iterator[dict[str, int]]:
    """Every case running; their ports by name (direct first: the baseline)."""
    upstream = ports["redis"]
    with ExitStack() as stack:
        stack.enter_context(redis(upstream))
        subprocess.run(["redis-cli", "-p", str(upstream), "set", "key", "bar"], check=True,
                       capture_output=True, timeout=10)
        pids = {"direct": 0}
        for name, server in (
                ("nginx stream", nginx_stream(directory, ports["nginx"], upstream)),
                ("haproxy tcp", haproxy(directory, ports["haproxy"], upstream)),
                ("ambassador opaque", ambassador(ports["opaque"], ports["opaque_admin"],
                                                 upstream, "opaque")),
                ("ambassador auto", ambassador(ports["auto"], ports["auto_admin"], upstream,
                                               "auto")),
                ("ambassador opaque, splice", ambassador(
                    ports["splice"], ports["splice_admin"], upstream, "opaque", SPLICE)),
                ("ambassador opaque, asyncio relay", ambassador(
                    ports["python"], ports["python_admin"], upstream, "opaque", OFF))):
            pids[name] = stack.enter_context(server).pid
        ports.update({f"{name} pid": pid for name, pid in pids.items()})
        yield {"direct": upstream, "nginx stream": ports["nginx"],
               "haproxy tcp": ports["haproxy"], "ambassador opaque": ports["opaque"],
               "ambassador auto": ports["auto"],
               "ambassador opaque, splice": ports["splice"],
               "ambassador opaque, asyncio relay": ports["python"]}


def select(cases: dict[str, int], names: str) -> dict[str, int]:
    """Direct and the cases named (comma-separated; every case when empty)."""
    wanted = {name.strip() for name in names.split(",") if name.strip()}
    if unknown := wanted - cases.keys():
        sys.exit(f"--cases: no case {', '.join(sorted(unknown))}; the cases: {', '.join(cases)}")
    return {name: port for name, port in cases.items()
            if name == "direct" or not wanted or name in wanted}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200_000,
                        help="redis-benchmark -n per test (SET and GET each)")
    parser.add_argument("--rate", type=int, default=2000, help="fixed rate, requests/s")
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--latency-only", action="store_true",
                      help="skip the throughput runs (more latency rounds in the same time)")
    only.add_argument("--pipelined-only", action="store_true",
                      help="only the -P 16 throughput runs (more rounds in the same time)")
    parser.add_argument("--cases", default="",
                        help="comma-separated case names to run besides direct (default: all)")
    args = parser.parse_args()
    if not compiled():
        print("note: the native relay is not built here; every ambassador relays in asyncio")
    for tool in ("redis-server", "redis-benchmark", "redis-cli", "nginx", "haproxy"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed; `make bench-tools` installs it")
    ports = {name: free_port() for name in
             ("redis", "nginx", "haproxy", "opaque", "opaque_admin", "auto", "auto_admin",
              "splice", "splice_admin", "python", "python_admin")}
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    cpu: dict[tuple[str, int], float] = {}  # CPU seconds used in the throughput runs
    latencies: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp, servers(Path(tmp), ports) as every_case:
        openloop = build_openloop(Path(tmp))
        cases = select(every_case, args.cases)
        for port in cases.values():
            benchmark(port, 20_000, 1)  # warm up
        rss_start = rss_mb(ports["ambassador opaque pid"])
        pipelines = () if args.latency_only else (16,) if args.pipelined_only else (1, 16)
        for _ in range(args.rounds):
            for pipeline in pipelines:
                for name, port in cases.items():
                    pid = ports[f"{name} pid"]
                    before = cpu_seconds(pid) if pid else 0.0
                    results.setdefault((name, pipeline), []).append(
                        benchmark(port, args.requests, pipeline))
                    used = cpu_seconds(pid) - before if pid else 0.0
                    cpu[name, pipeline] = cpu.get((name, pipeline), 0.0) + used
            for name, port in () if args.pipelined_only else cases.items():
                latencies.setdefault(name, []).append(
                    latency(openloop, port, args.rate, args.latency_seconds))
        rss_after = rss_mb(ports["ambassador opaque pid"])
    report(list(cases), results, latencies, cpu, args)
    print()
    print(f"ambassador opaque RSS: {rss_start:.1f} MB before the rounds, {rss_after:.1f} MB "
          f"after")


PROXIES = ("nginx stream", "haproxy tcp")  # the anchors: redline is compared with the faster


def report(names: list[str], results: dict[tuple[str, int], list[dict[str, float]]],
           latencies: dict[str, list[tuple[float, float]]], cpu: dict[tuple[str, int], float],
           args: argparse.Namespace) -> None:
    """The throughput table (per pipeline depth run), the latency table, CPU per request."""
    pipelines = sorted({pipeline for _, pipeline in results})
    if pipelines:
        print(f"redis-benchmark -c 50 -n {args.requests} -t set,get, {args.rounds} alternating "
              "rounds, medians")
        print()
        median = {(name, pipeline, op): statistics.median(r[op] for r in results[name, pipeline])
                  for name, pipeline in results for op in ("SET", "GET")}
        anchors = [name for name in PROXIES if name in names]
        best = {pipeline: max((median[name, pipeline, "GET"] for name in anchors), default=0.0)
                for pipeline in pipelines}
        depth = {pipeline: "" if pipeline == 1 else f" -P {pipeline}" for pipeline in pipelines}
        print("| case | " + " | ".join(f"SET{depth[p]} | GET{depth[p]} | GET{depth[p]} vs "
                                        "faster proxy" for p in pipelines) + " |")
        print("|---|" + "---:|---:|---:|" * len(pipelines))
        for name in names:
            cells = []
            for pipeline in pipelines:
                get = median[name, pipeline, "GET"]
                cells += [f"{median[name, pipeline, 'SET']:,.0f}", f"{get:,.0f}",
                          f"{get / best[pipeline]:.2f}x" if best[pipeline] else "-"]
            print(f"| {name} | " + " | ".join(cells) + " |")
        requests = 2 * args.requests * args.rounds  # SET and GET
        print()
        print("| proxy | " + " | ".join(f"CPU per request{depth[p]}" for p in pipelines) + " |")
        print("|---|" + "---:|" * len(pipelines))
        for name in names[1:]:
            print(f"| {name} | " + " | ".join(f"{cpu[name, p] / requests * 1e6:.2f} us"
                                             for p in pipelines) + " |")
        print(f"all rounds: {results}")
    if latencies:
        p50 = {name: statistics.median(v[0] for v in values) for name, values in latencies.items()}
        p99 = {name: statistics.median(v[1] for v in values) for name, values in latencies.items()}
        print()
        print(f"GET at {args.rate:,} req/s open loop (openloop.c) over 10 connections, "
              f"{args.latency_seconds:.0f} s x {args.rounds} alternating rounds, medians")
        print()
        print("| case | p50 | p99 | p99 added over direct |")
        print("|---|---:|---:|---:|")
        for name in names:
            print(f"| {name} | {p50[name]:.3f} ms | {p99[name]:.3f} ms "
                  f"| {p99[name] - p99['direct']:+.3f} ms |")
        print(f"all latencies (p50, p99 ms): {latencies}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
