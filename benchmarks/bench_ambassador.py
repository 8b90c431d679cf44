"""The ambassador against nginx as a reverse proxy, side by side in one run, on loopback.

Upstream: nginx `return 200` (1 worker). Compared: direct to the upstream, nginx as reverse proxy
(1 worker, upstream keepalive), the ambassador (one process; `--protocol auto`, the default, so
each connection is detected first), the same with `--protocol http1` (no detection), and the
ambassador with tracing at 1% sampling to a local OTLP sink. Rounds alternate between them;
medians are reported.

- throughput: wrk, 1 thread, 32 connections (its rate is each case's saturation point);
- latency curves: p50/p99/p99.9 and what each adds over direct at a ladder of fixed rates
  (`--ladder`, then each proxy's own saturation point) for direct, nginx and the ambassador,
  from an open-loop generator (benchmarks/openloop.c, compiled with cc at start: it says why
  not wrk2 or h2load), 50 keep-alive connections; latency counts from when a request was due,
  so a proxy that falls behind shows its queue; CPU per 1,000 req/s of each proxy at each
  rate, from /proc; the curves drawn to `--plot` (matplotlib, the `bench` extra);
- RSS of the ambassador after 1,000,000 requests, with redline's bytecode compiled first as
  the image does (`compileall`): where PYTHONDONTWRITEBYTECODE is set, a module edited since its
  `.pyc` was written is compiled again at every start, which cost the process ~1 MB.

    .venv/bin/python benchmarks/bench_ambassador.py [--rounds 3] [--duration 10]
        [--latency-seconds 10] [--ladder 1000,5000,10000,20000] [--plot FILE | --no-plot]
        [--cases "direct,ambassador,ambassador http1"] [--no-rss]
Needs nginx, wrk and cc (`make bench` installs nginx and wrk).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from common import free_port, rss_mb, wait_port

# Every nginx of the benchmarks: one worker (the same resources as the ambassador's one
# process), its files in the run's directory; `nginx()` puts this before each config's blocks.
NGINX_MAIN = """
worker_processes 1;
error_log {dir}/{name}.err;
pid {dir}/{name}.pid;
events {{ worker_connections 4096; }}
"""
NGINX_UPSTREAM = """
http {{
  access_log off;
  # nginx ends a client connection after 1,000 requests by default; openloop keeps its own.
  keepalive_requests 1000000000;
  server {{ listen 127.0.0.1:{port}; location / {{ return 200 "ok\\n"; }} }}
}}
"""
NGINX_PROXY = """
http {{
  access_log off;
  keepalive_requests 1000000000;
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


def nginx(conf: str, directory: Path, name: str, port: int, modules: str = "",
          **fields: object) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """nginx running `conf` (its http or stream block, formatted with `fields`) after
    NGINX_MAIN; `modules` (load_module lines) go first, where nginx wants them."""
    path = directory / f"{name}.conf"
    path.write_text(modules + NGINX_MAIN.format(dir=directory, name=name)
                    + conf.format(dir=directory, port=port, **fields))
    return process(["nginx", "-p", str(directory), "-c", str(path), "-g", "daemon off;"],
                   port)


def ambassador(port: int, admin: int, upstream: int, *extra: str
               ) -> AbstractContextManager[subprocess.Popen[bytes]]:
    command = [sys.executable, "-m", "redline.cli", "ambassador", "--listen",
               f"127.0.0.1:{port}", "--upstream", f"127.0.0.1:{upstream}", "--admin",
               f"127.0.0.1:{admin}", "--service", "bench", "--drain-delay", "0", *extra]
    return process(command, port)


# --distinct-heads: every request's path differs from the one before (/users/1, /users/2, ...;
# one route), so no request head repeats: a connection's repeated-head memo (http1_requests.py)
# never hits for requests, as for clients that send ids or changing cookies.
DISTINCT_HEADS_LUA = """counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "/users/" .. counter)
end
"""
WRK_SCRIPT: list[str] = []  # ["-s", path] when --distinct-heads


def wrk(port: int, duration: int) -> float:
    return wrk_run(port, duration)[0]


def wrk_run(port: int, duration: int) -> tuple[float, int]:
    """wrk's requests per second, and how many requests it completed."""
    output = subprocess.run(
        ["wrk", "-t1", "-c32", f"-d{duration}s", *WRK_SCRIPT,
         f"http://127.0.0.1:{port}/users/1"],
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


OPENLOOP_SOURCE = Path(__file__).with_name("openloop.c")
REDLINE_PACKAGE = Path(__file__).resolve().parent.parent / "redline"
LATENCY_CONNECTIONS = 50
PROXIES = ("nginx", "ambassador")  # the latency curves' proxies, beside direct
ISTIO_VCPU_PER_1K = 0.35  # Envoy sidecar, Istio 1.12-1.15 performance pages


def build_openloop(directory: Path) -> Path:
    compiler = shutil.which("cc")
    if compiler is None:
        sys.exit("cc is not installed (the open-loop generator is C); e.g. apt-get install gcc")
    binary = directory / "openloop"
    subprocess.run([compiler, "-O2", "-o", str(binary), str(OPENLOOP_SOURCE)], check=True)
    return binary


@dataclasses.dataclass(frozen=True)
class Rung:
    """One open-loop run at a fixed rate. Latencies in ms, from when each request was due;
    inf where the percentile falls among the unanswered requests (past saturation)."""

    achieved: float  # req/s answered
    p50: float
    p99: float
    p999: float
    late: int  # requests the generator itself sent more than 1 ms after they were due
    requests: int  # answered
    unanswered: int  # due but not sent by the end of the run (the proxy was behind), or lost
    vcpu_per_1k: float  # the proxy's CPU per 1,000 req/s (0 for direct: no proxy)


def fixed_rate(openloop: Path, port: int, rate: float, seconds: float, pid: int | None,
               target: str = "/users/1", connections: int = LATENCY_CONNECTIONS) -> Rung:
    """`target`: an HTTP path, or `redis:KEY` (openloop.c)."""
    before = cpu_seconds(pid) if pid else 0.0
    output = subprocess.run(
        [str(openloop), str(port), f"{rate:.0f}", str(seconds), str(connections), target],
        capture_output=True, text=True, check=True, timeout=seconds + 120).stdout
    used = cpu_seconds(pid) - before if pid else 0.0
    done, unanswered, errors, late, took, p50, _p90, p99, p999, _slowest = output.split()
    if int(errors):
        raise RuntimeError(f"{errors} connections failed at {rate:.0f} req/s on port {port}")
    achieved = int(done) / float(took)
    return Rung(achieved, float(p50) / 1e3, float(p99) / 1e3, float(p999) / 1e3, int(late),
                int(done), int(unanswered), used / float(took) / (achieved / 1000))


# A rung of the ladder: its label, the rate, and the cases run at it.
Step = tuple[str, float, tuple[str, ...]]


def ladder_steps(rates: list[int], saturation: dict[str, float]) -> list[Step]:
    """The fixed rates for direct and every proxy, then each proxy at its own saturation point
    (wrk's closed-loop throughput) with direct at the same rate."""
    steps: list[Step] = [(f"{rate:,}", rate, ("direct", *PROXIES)) for rate in rates]
    steps += [(f"{proxy} saturation ({saturation[proxy]:,.0f})", saturation[proxy],
               ("direct", proxy)) for proxy in PROXIES]
    return steps


def median_rung(rungs: list[Rung]) -> Rung:
    """Each field's median over the rounds."""
    return Rung(*(statistics.median(getattr(r, field.name) for r in rungs)
                  for field in dataclasses.fields(Rung)))


def recorded(admin: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("http_server_request_duration_seconds_count"))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--latency-seconds", type=float, default=10.0,
                        help="seconds per fixed-rate run")
    parser.add_argument("--ladder", default="1000,5000,10000,20000",
                        help="fixed rates (req/s) of the latency curves")
    parser.add_argument("--plot", type=Path,
                        default=Path(__file__).parent.parent / "docs/img/ambassador-latency.svg")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--cases", help="comma-separated subset of the throughput cases "
                        "(default: all); the curves always run direct, nginx and ambassador")
    parser.add_argument("--distinct-heads", action="store_true",
                        help="wrk sends a different path each request (no head repeats)")
    parser.add_argument("--no-rss", action="store_true",
                        help="skip the RSS measurement after 1,000,000 requests")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed; `make bench` installs it")
    # The image's bytecode (Dockerfile: compileall), whatever the tree's caches hold.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REDLINE_PACKAGE)], check=True)
    ports = {name: free_port() for name in
             ("upstream", "nginx", "ambassador", "admin", "http1", "http1_admin", "traced",
              "traced_admin", "sink")}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        openloop = build_openloop(directory)
        if args.distinct_heads:
            (directory / "distinct.lua").write_text(DISTINCT_HEADS_LUA)
            WRK_SCRIPT[:] = ["-s", str(directory / "distinct.lua")]
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
            all_cases = {"direct": ports["upstream"], "nginx": ports["nginx"],
                         "ambassador": ports["ambassador"], "ambassador http1": ports["http1"],
                         "ambassador+tracing 1%": ports["traced"]}
            cases = all_cases
            if args.cases:
                chosen = args.cases.split(",")
                cases = {name: port for name, port in cases.items() if name in chosen}
            for port in all_cases.values():
                wrk(port, 2)  # warm up
            cpu: dict[str, float] = {name: 0.0 for name in pids}  # seconds, over all runs
            done: dict[str, int] = {name: 0 for name in pids}  # requests
            throughput: dict[str, list[float]] = {name: [] for name in all_cases}
            curve_cases = ("direct", *PROXIES)
            for _ in range(args.rounds):
                for name in dict.fromkeys([*cases, *curve_cases]):
                    before = cpu_seconds(pids[name]) if name in pids else 0.0
                    rate, count = wrk_run(all_cases[name], args.duration)
                    throughput[name].append(rate)
                    if name in pids:
                        cpu[name] += cpu_seconds(pids[name]) - before
                        done[name] += count
            saturation = {name: statistics.median(throughput[name]) for name in PROXIES}
            steps = ladder_steps([int(rate) for rate in args.ladder.split(",")], saturation)
            rungs = latency_curves(openloop, steps, all_cases, pids, args)
            rss_start = rss_after = rss_mb(amb.pid)
            while not args.no_rss and recorded(ports["admin"]) < 1_000_000:
                wrk(ports["ambassador"], 5)
                rss_after = rss_mb(amb.pid)
            total = recorded(ports["admin"])
    medians = {key: median_rung(values) for key, values in rungs.items()}
    report({name: throughput[name] for name in cases}, rss_start, rss_after, total, args)
    print()
    report_cpu([name for name in cases if done.get(name)], cpu, done)
    print()
    report_curves(steps, medians, rungs, args)
    if not args.no_plot:
        plot_curves(steps, medians, args.plot)
        print(f"curves drawn to {args.plot}")


def latency_curves(openloop: Path, steps: list[Step], ports: dict[str, int],
                   pids: dict[str, int], args: argparse.Namespace
                   ) -> dict[tuple[str, str], list[Rung]]:
    """Every (rung, case) over the rounds; the whole ladder per round, so rounds spread over
    the run's time and a busy minute of the machine does not land on one case."""
    rungs: dict[tuple[str, str], list[Rung]] = {}
    for _ in range(args.rounds):
        for label, rate, cases in steps:
            for name in cases:
                rungs.setdefault((label, name), []).append(fixed_rate(
                    openloop, ports[name], rate, args.latency_seconds, pids.get(name)))
    return rungs


def report(throughput: dict[str, list[float]], rss_start: float, rss_after: float,
           total: float, args: argparse.Namespace) -> None:
    median = {name: statistics.median(values) for name, values in throughput.items()}
    print(f"wrk -t1 -c32 -d{args.duration}s, {args.rounds} alternating rounds, medians"
          + (", every request head distinct" if args.distinct_heads else ""))
    print()
    anchor = "nginx" if "nginx" in median else "direct"
    print(f"| case | req/s | vs {anchor} |")
    print("|---|---:|---:|")
    for name, rate in median.items():
        print(f"| {name} | {rate:,.0f} | {rate / median[anchor]:.2f}x |")
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


def report_cpu(cases: list[str], cpu: dict[str, float], done: dict[str, int]) -> None:
    print("| proxy | CPU per request (user+system, over the wrk runs) |")
    print("|---|---:|")
    for name in cases:
        print(f"| {name} | {cpu[name] / done[name] * 1e6:.1f} us |")
    if "ambassador" in cases and "ambassador http1" in cases:
        auto_cost = cpu["ambassador"] / done["ambassador"]
        http1_cost = cpu["ambassador http1"] / done["ambassador http1"]
        print(f"CPU per request, auto / http1: {auto_cost / http1_cost:.3f}x")


def added(case: float, direct: float) -> str:
    """What a proxy adds to a percentile; unknown when direct itself fell behind (inf)."""
    return "n/a" if math.isinf(direct) else f"{case - direct:+.3f} ms"


def report_curves(steps: list[Step], medians: dict[tuple[str, str], Rung],
                  rungs: dict[tuple[str, str], list[Rung]], args: argparse.Namespace) -> None:
    print(f"Open loop (benchmarks/openloop.c), {LATENCY_CONNECTIONS} keep-alive connections, "
          f"{args.latency_seconds:g} s per run, {args.rounds} alternating rounds, medians; "
          f"latency from when each request was due; added = the case's percentile minus "
          f"direct's at the same rate")
    print()
    print("| rate (req/s) | case | answered req/s | p50 | p99 | p99.9 | p50 added | p99 added "
          "| p99.9 added | vCPU per 1,000 req/s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, _rate, step_cases in steps:
        direct = medians[(label, "direct")]
        for name in step_cases:
            rung = medians[(label, name)]
            cpu = f"{rung.vcpu_per_1k:.3f}" if name != "direct" else "-"
            print(f"| {label} | {name} | {rung.achieved:,.0f} | {rung.p50:.3f} ms "
                  f"| {rung.p99:.3f} ms | {rung.p999:.3f} ms "
                  f"| {added(rung.p50, direct.p50)} | {added(rung.p99, direct.p99)} "
                  f"| {added(rung.p999, direct.p999)} | {cpu} |")
    print()
    for label, _rate, step_cases in steps[:-len(PROXIES)]:
        each = ", ".join(f"{name} {medians[(label, name)].vcpu_per_1k:.3f}"
                         for name in step_cases if name != "direct")
        print(f"vCPU per 1,000 req/s at {label} req/s: {each} "
              f"(Istio's published Envoy sidecar: {ISTIO_VCPU_PER_1K})")
    late = sum(r.late for runs in rungs.values() for r in runs)
    sent = sum(r.requests for runs in rungs.values() for r in runs)
    print(f"generator: {late:,} of {sent:,} requests sent more than 1 ms after due "
          f"({late / sent:.2%}; its own lag, counted in the latencies)")
    print(f"all rounds (p99 ms): "
          f"{ {f'{k[0]} {k[1]}': [round(r.p99, 3) for r in v] for k, v in rungs.items()} }")


def plot_curves(steps: list[Step], medians: dict[tuple[str, str], Rung], path: Path) -> None:
    """Added latency against the offered rate, one colour per proxy, one line style per
    percentile; each proxy's curve ends at its own saturation point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5))
    for proxy, colour in zip(PROXIES, ("tab:green", "tab:blue"), strict=True):
        points = [(rate, medians[(label, proxy)], medians[(label, "direct")])
                  for label, rate, step_cases in steps if proxy in step_cases]
        points.sort(key=lambda point: point[0])
        for field, style in (("p50", ":"), ("p99", "-"), ("p999", "--")):
            axes.plot([rate for rate, _, _ in points],
                      [getattr(case, field) - getattr(direct, field)
                       for _, case, direct in points],
                      style, marker="o", color=colour,
                      label=f"{proxy} {field.replace('p999', 'p99.9')}")
    axes.set_xlabel("offered rate (req/s, open loop; last point: the proxy's saturation)")
    axes.set_ylabel("latency added over direct (ms)")
    axes.set_yscale("symlog", linthresh=0.1)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(ncol=2, fontsize="small")
    # The host's load when drawn: the curves mean little on a busy machine.
    axes.set_title("HTTP/1 reverse proxy latency added, 1 process each, loopback, "
                   f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, metadata={"Date": None} if path.suffix == ".svg" else None)
    plt.close(figure)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
