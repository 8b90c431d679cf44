"""The adapter against mtail on the same nginx access log, side by side in one run.

A generated 1,000,000-line nginx `combined` log with `$request_time` (paths with ids, so route
templating works for its keep); mtail in one-shot mode with an equivalent program (a counter
and a histogram by method and code, the same buckets) against `redline adapter --once` (route
templating on). Rounds alternate; medians are reported. CPU time and peak RSS of each process
come from wait4(2). Both tools' request totals are checked, so both did the whole job.

    .venv/bin/python benchmarks/bench_adapter.py [--rounds 3] [--lines 1000000]
Needs mtail (`make bench` installs it).

`--callgrind` counts instead the machine instructions per line of the adapter's own work
(valgrind's callgrind, load-independent): the same log read in the tailer's 1 MiB blocks,
decoded and fed to a LogPipeline as `redline adapter` does, for `--lines` lines and for a tenth
of them; the difference over the difference in lines cancels start-up and imports.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUCKETS = "0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0"
MTAIL_PROGRAM = f"""
counter http_requests_total by method, code
histogram http_request_duration_seconds buckets {BUCKETS} by method, code

/^(?P<remote_addr>\\S+) \\S+ (?P<remote_user>\\S+) \\[(?P<time_local>[^\\]]+)\\] "(?P<method>\\S+) (?P<path>\\S+) (?P<proto>[^"]+)" (?P<status>\\d{{3}}) (?P<bytes>\\d+|-) "(?P<referer>[^"]*)" "(?P<agent>[^"]*)" (?P<request_time>[\\d.]+)$/ {{
  http_requests_total[$method][$status]++
  http_request_duration_seconds[$method][$status] = $request_time
}}
"""


def generate(path: Path, lines: int) -> None:
    rng = random.Random(1)
    methods = ["GET"] * 8 + ["POST", "PUT"]
    statuses = [200] * 20 + [201, 301, 404, 500, 503]
    templates = ["/api/users/{}", "/api/orders/{}/items", "/static/app.js", "/search?q={}",
                 "/checkout", "/api/items/{}/reviews/{}"]
    with path.open("w") as out:
        for i in range(lines):
            target = rng.choice(templates).format(rng.randrange(100_000), rng.randrange(50))
            out.write(
                f"10.0.{i % 256}.{i % 200} - - [26/Nov/2026:16:{(i // 60000) % 60:02d}:"
                f"{(i // 1000) % 60:02d} +0000] \"{rng.choice(methods)} {target} HTTP/1.1\" "
                f"{rng.choice(statuses)} {rng.randrange(100, 50000)} \"-\" "
                f"\"Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0\" {rng.random() * 2:.3f}\n")


def measure(command: list[str]) -> tuple[float, float, float, bytes]:
    """(wall s, CPU s, peak RSS MB, stdout) of one process."""
    with tempfile.TemporaryFile() as stdout:
        begin = time.perf_counter()
        proc = subprocess.Popen(command, stdout=stdout, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - begin
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"{command[0]} exited {proc.returncode}")
        stdout.seek(0)
        return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, stdout.read()


def feed(log: Path) -> None:
    """`log` through the adapter's pipeline in blocks of complete lines of at most READ_SIZE
    bytes, decoded as logs.py decodes them (the tailer's reads, without its IO)."""
    from redline.exporters.red import ServerRecorder
    from redline.exporters.routes import RouteTemplater
    from redline.sidecars.adapter.formats import nginx_format
    from redline.sidecars.adapter.pipeline import LogPipeline
    from redline.sidecars.adapter.tailer import READ_SIZE

    routes = RouteTemplater()
    pipeline = LogPipeline(nginx_format(), ServerRecorder("bench", routes=routes), routes)
    data = log.read_bytes()
    start = 0
    while start < len(data):
        end = data.rfind(b"\n", start, start + READ_SIZE) + 1 or len(data)
        pipeline.feed(data[start:end].decode("utf-8", "replace"))
        start = end
    if pipeline.lines != data.count(b"\n") or pipeline.parse_errors:
        raise RuntimeError(f"read {pipeline.lines} lines, {pipeline.parse_errors} of them bad")


def instructions(log: Path) -> int:
    """Machine instructions of one process feeding `log` (PYTHONHASHSEED fixed: the same dict
    layouts every run)."""
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         __file__, "--feed", str(log)],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    found = re.search(r"Collected : (\d+)", result.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from callgrind:\n{result.stderr[-2000:]}")
    return int(found.group(1))


def callgrind(lines: int) -> None:
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed")
    from redline import build

    few, many = lines // 10, lines
    with tempfile.TemporaryDirectory() as tmp:
        counts = []
        for n in (few, many):  # the same seed: the shorter log is the longer one's start
            log = Path(tmp) / f"access-{n}.log"
            generate(log, n)
            counts.append(instructions(log))
    print(f"built: {build.describe()}")
    print(f"{few:,} lines: {counts[0]:,} instructions; {many:,} lines: {counts[1]:,}")
    print(f"per line: {(counts[1] - counts[0]) / (many - few):,.0f} instructions")


def mtail_total(output: bytes) -> float:
    return sum(float(line.rsplit(b" ", 1)[1]) for line in output.splitlines()
               if line.startswith(b"http_requests_total{"))


def redline_total(output: bytes) -> float:
    return sum(float(line.rsplit(b" ", 1)[1]) for line in output.splitlines()
               if line.startswith(b"http_server_request_duration_seconds_count{"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--callgrind", action="store_true",
                        help="count instructions per line under callgrind instead")
    parser.add_argument("--feed", type=Path, help=argparse.SUPPRESS)  # callgrind's process
    args = parser.parse_args()
    if args.feed is not None:
        feed(args.feed)
        return
    if args.callgrind:
        callgrind(args.lines)
        return
    if shutil.which("mtail") is None:
        sys.exit("mtail is not installed; `make bench` installs it")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        log, small = directory / "access.log", directory / "small.log"
        generate(log, args.lines)
        with log.open() as source, small.open("w") as out:
            for _, text in zip(range(args.lines // 10), source, strict=False):
                out.write(text)
        programs = directory / "progs"
        programs.mkdir()
        (programs / "nginx.mtail").write_text(MTAIL_PROGRAM)
        mtail = ["mtail", "--one_shot", "--one_shot_format", "prometheus", "--progs", str(programs),
                 "--logs", str(log), "--logtostderr"]
        redline = [sys.executable, "-m", "redline.cli", "adapter", "--service", "bench",
                   "--access-log", str(log), "--once"]
        runs: dict[str, list[tuple[float, float, float]]] = {"mtail": [], "redline": []}
        for _ in range(args.rounds):
            for name, command, total in (("mtail", mtail, mtail_total),
                                         ("redline", redline, redline_total)):
                wall, cpu, rss, output = measure(command)
                counted = total(output)
                if counted != args.lines:
                    raise RuntimeError(f"{name} counted {counted} of {args.lines} lines")
                runs[name].append((wall, cpu, rss))
        small_rss = statistics.median(
            measure([*redline[:-3], "--access-log", str(small), "--once"])[2]
            for _ in range(args.rounds))
    report(runs, small_rss, args)


def report(runs: dict[str, list[tuple[float, float, float]]], small_rss: float,
           args: argparse.Namespace) -> None:
    def median(name: str, index: int) -> float:
        return statistics.median(run[index] for run in runs[name])

    print(f"{args.lines:,} nginx combined lines, {args.rounds} alternating rounds, medians")
    print()
    print("| tool | wall s | CPU s | lines/s (wall) | lines per CPU-second | peak RSS |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in runs:
        wall, cpu, rss = median(name, 0), median(name, 1), median(name, 2)
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {args.lines / wall:,.0f} "
              f"| {args.lines / cpu:,.0f} | {rss:.1f} MB |")
    print()
    print(f"redline vs mtail: {median('mtail', 1) / median('redline', 1):.2f}x lines per "
          f"CPU-second, {median('mtail', 0) / median('redline', 0):.2f}x lines per second")
    print(f"redline RSS: {small_rss:.1f} MB after {args.lines // 10:,} lines, "
          f"{median('redline', 2):.1f} MB after {args.lines:,} "
          f"({median('redline', 2) / small_rss:.2f}x)")
    print(f"all runs (wall, CPU, RSS): {runs}")


if __name__ == "__main__":
    re.purge()
    main()
