"""What redline's rules and heaviest dashboard queries cost as services grow (#21).

For each size, synthetic RED series for N services x 10 routes x 4 status classes (200, 302,
404, 500; the request histogram's _count and its 15 buckets: 64 series per route), a sample
every 2 minutes from 12 minutes before the run to 36 after it, and an SLO spec with one SLO per
service (availability and latency), as redline generates its rules:

- Prometheus: the samples backfilled (`promtool tsdb create-blocks-from openmetrics`), the rule
  files loaded; per group `prometheus_rule_group_last_duration_seconds` after two evaluations;
- VictoriaMetrics: the same samples imported (`/api/v1/import/prometheus`), vmalert evaluating
  the same files; per group the mean of `vmalert_iteration_duration_seconds`;
- the RED overview's raw queries (the Services table, top routes by errors and by p99), timed
  on both (median of 3, a 5m rate window).

    .venv/bin/python benchmarks/bench_rules.py [--services 10,100,1000] [--json out.json]
        [--svg docs/img/rules-cost.svg] [--no-queries]

Not part of `make test`; tests/scale/test_bench_rules.py runs its smallest size.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # redline and the central store's helpers (tests/scale)

from redline.alerts.generate import RuleOptions, build_groups  # noqa: E402
from redline.alerts.render import prometheus_file  # noqa: E402
from redline.alerts.spec import build_spec  # noqa: E402
from redline.config import Node  # noqa: E402
from redline.dashboards import overview  # noqa: E402
from redline.exporters.instruments import format_bound  # noqa: E402
from redline.exporters.red import DEFAULT_BUCKETS  # noqa: E402
from redline.ports import free_port, wait_port  # noqa: E402
from tests.scale.central import Notifier, VictoriaMetrics, VMAlert, get_json  # noqa: E402

ROUTES = 10
STATUSES = ("200", "302", "404", "500")
# Samples every 2 minutes from 12 minutes before the run to 36 minutes after it: every 5m
# rate window has samples for the whole run (1,000 services take minutes to load and evaluate).
STEP, PAST, SAMPLES = 120, 12 * 60, 25
LE = [format_bound(b) for b in DEFAULT_BUCKETS] + ["+Inf"]


def spec(services: int) -> Any:
    return build_spec(Node("bench", "", {"slos": [
        {"service": f"svc-{s}", "availability": 99.9,
         "latency": {"threshold": 0.25, "target": 99}} for s in range(services)]}))


def series(services: int) -> Iterator[tuple[str, float]]:
    """(name{labels}, requests per second) of every series, family by family."""
    for family in ("_count", "_bucket"):
        for s in range(services):
            for r in range(ROUTES):
                for status in STATUSES:
                    error = status if status == "500" else ""
                    base = (f'service_name="svc-{s}",http_route="/r{r}/{{id}}",'
                            f'http_request_method="GET",url_scheme="http",'
                            f'http_response_status_code="{status}",error_type="{error}"')
                    rps = 1.0 + (s + r) % 7 if status != "500" else 0.01 * (1 + s % 5)
                    name = f"http_server_request_duration_seconds{family}"
                    if family == "_count":
                        yield f"{name}{{{base}}}", rps
                    else:
                        for index, le in enumerate(LE):
                            share = min(1.0, (index + 1) / 12)
                            yield f'{name}{{{base},le="{le}"}}', rps * share


def samples(services: int, now: float, milliseconds: bool) -> Iterator[str]:
    """Counters growing at their rate, one line per sample, a series' samples together."""
    start = now - PAST
    for selector, rps in series(services):
        for i in range(SAMPLES):
            t = start + i * STEP
            stamp = f"{int(t * 1000)}" if milliseconds else f"{t:.0f}"
            yield f"{selector} {rps * STEP * i:g} {stamp}\n"


def backfill(services: int, now: float, data: Path, work: Path) -> None:
    text = work / "samples.om"
    with text.open("w") as out:
        out.writelines(samples(services, now, milliseconds=False))
        out.write("# EOF\n")
    subprocess.run([shutil.which("promtool") or "promtool", "tsdb", "create-blocks-from",
                    "openmetrics", "-q", str(text), str(data)], check=True,
                   stdout=subprocess.DEVNULL)
    text.unlink()


def import_vm(vm: VictoriaMetrics, services: int, now: float) -> None:
    chunk: list[str] = []
    for line in samples(services, now, milliseconds=True):
        chunk.append(line)
        if len(chunk) >= 200_000:
            vm.import_prometheus("".join(chunk).encode())
            chunk = []
    if chunk:
        vm.import_prometheus("".join(chunk).encode())
    vm.flush()


def metric_values(text: str, name: str, label: str) -> dict[str, float]:
    """`name{...label="x"...} value` lines of an exposition -> {x: value}."""
    found = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            match = re.search(label + r'="([^"]*)"', line)
            if match:
                found[match.group(1)] = float(line.rsplit(" ", 1)[1])
    return found


def prometheus_groups(url: str, timeout: float) -> dict[str, float]:
    """Each group's last evaluation time, once every group has evaluated twice."""
    deadline = time.monotonic() + timeout
    while True:
        text = urllib.request.urlopen(f"{url}/metrics", timeout=60).read().decode()
        done = metric_values(text, "prometheus_rule_group_iterations_total", "rule_group")
        missed = metric_values(text, "prometheus_rule_group_iterations_missed_total",
                               "rule_group")
        if (done and all(n - missed.get(g, 0) >= 2 for g, n in done.items())) \
                or time.monotonic() > deadline:
            durations = metric_values(text, "prometheus_rule_group_last_duration_seconds",
                                      "rule_group")
            return {g.rsplit(";", 1)[-1]: d for g, d in durations.items()}
        time.sleep(1)


def vmalert_groups(vmalert: VMAlert, timeout: float, groups: list[str]) -> dict[str, float]:
    """Each group's mean evaluation time, once every group has evaluated twice (a group
    appears in vmalert's metrics only after its first evaluation: wait for each by name)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            text = vmalert.metrics()
        except OSError:  # a vmalert busy with 1,000 services' rules can answer late: ask again
            if time.monotonic() > deadline:
                raise
            continue
        counts = metric_values(text, "vmalert_iteration_duration_seconds_count", "group")
        if all(counts.get(g, 0) >= 2 for g in groups) or time.monotonic() > deadline:
            sums = metric_values(text, "vmalert_iteration_duration_seconds_sum", "group")
            return {g: sums[g] / counts[g] for g in counts if counts[g]}
        time.sleep(1)


def dashboard_queries() -> dict[str, str]:
    raw = overview.RedQueries()
    exprs = {"services: requests": raw.requests(), "services: errors": raw.error_ratio(),
             "services: p99": raw.quantile(0.99),
             "top routes by p99": f"topk(10, {raw.quantile(0.99, per_route=True)})",
             "top routes by errors": f"topk(10, {raw.route_errors()})"}
    return {k: v.replace("$__rate_interval", "5m").replace("$cluster", ".*")
            for k, v in exprs.items()}


def time_query(url: str, expr: str) -> tuple[float, int] | str:
    """Median seconds of 3 instant queries and the number of series returned, or the server's
    reason for refusing it (VictoriaMetrics' limits: -search.maxUniqueTimeseries)."""
    times, found = [], 0
    for _ in range(3):
        started = time.perf_counter()
        try:
            body = get_json(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}),
                            timeout=300)
        except urllib.error.HTTPError as exc:
            return f"{exc.code}: {json.loads(exc.read()).get('error', '')[:300]}"
        times.append(time.perf_counter() - started)
        found = len(body["data"]["result"])
    return statistics.median(times), found


def run_size(services: int, work: Path, timeout: float, queries: bool = True,
             stores: tuple[str, ...] = ("prometheus", "vmalert")) -> dict[str, Any]:
    work.mkdir(parents=True)
    rules = work / "rules"
    rules.mkdir()
    result: dict[str, Any] = {"services": services,
                              "series": services * ROUTES * len(STATUSES) * (1 + len(LE))}
    built = build_groups(spec(services), RuleOptions())
    files = []
    for stem, groups in built.items():
        files.append(rules / f"{stem}.rules.yaml")
        files[-1].write_text(prometheus_file(groups))
    result["rules"] = {g["name"]: len(g["rules"]) for groups in built.values() for g in groups}
    now = time.time()
    if "prometheus" in stores:
        prometheus(services, work, files, now, timeout, queries, result)
    if "vmalert" in stores:
        victoria_metrics(services, work, files, now, timeout, queries, result)
    return result


def prometheus(services: int, work: Path, files: list[Path], now: float, timeout: float,
               queries: bool, result: dict[str, Any]) -> None:
    started = time.monotonic()
    backfill(services, now, work / "prom-data", work)
    result["backfill_s"] = round(time.monotonic() - started, 1)
    port = free_port()
    (work / "prometheus.yml").write_text(json.dumps({
        "global": {"evaluation_interval": "10s"},
        "rule_files": [str(f) for f in files]}))
    prom = subprocess.Popen([shutil.which("prometheus") or "prometheus",
                             f"--config.file={work / 'prometheus.yml'}",
                             f"--storage.tsdb.path={work / 'prom-data'}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, timeout=120)
        url = f"http://127.0.0.1:{port}"
        result["prometheus_rules"] = prometheus_groups(url, timeout)
        if queries:
            result["prometheus_queries"] = {k: time_query(url, e)
                                            for k, e in dashboard_queries().items()}
    finally:
        prom.terminate()
        prom.wait(timeout=60)


def victoria_metrics(services: int, work: Path, files: list[Path], now: float, timeout: float,
                     queries: bool, result: dict[str, Any]) -> None:
    vm, notifier = VictoriaMetrics(work), Notifier()
    try:
        started = time.monotonic()
        import_vm(vm, services, now)
        result["import_s"] = round(time.monotonic() - started, 1)
        vmalert = VMAlert(work, files, vm, notifier.url, interval="10s")
        try:
            result["vmalert_rules"] = vmalert_groups(vmalert, timeout, list(result["rules"]))
        finally:
            vmalert.stop()
        if queries:
            result["vm_queries"] = {k: time_query(vm.url, e)
                                    for k, e in dashboard_queries().items()}
    finally:
        vm.stop()
        notifier.stop()


def svg(results: list[dict[str, Any]], groups: list[str]) -> str:
    """Evaluation seconds per group against services, log-log, Prometheus solid and vmalert
    dashed; a line at 3 s (10% of a 30 s interval)."""
    import math

    width, height, left, bottom = 640, 400, 60, 40
    xs = [r["services"] for r in results]
    values = [v for r in results for k in ("prometheus_rules", "vmalert_rules")
              for v in r[k].values() if v > 0] + [3.0]
    low, high = math.log10(min(values)), math.log10(max(values))

    def x(n: float) -> float:
        return left + (width - left - 20) * (math.log10(n) - math.log10(xs[0])) / max(
            1e-9, math.log10(xs[-1]) - math.log10(xs[0]))

    def y(v: float) -> float:
        return height - bottom - (height - bottom - 20) * (math.log10(v) - low) / max(
            1e-9, high - low)

    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
               "#7f7f7f", "#17becf"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="11">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<line x1="{left}" y1="{y(3):.1f}" x2="{width - 20}" y2="{y(3):.1f}" '
             f'stroke="#999" stroke-dasharray="2,2"/>',
             f'<text x="{left + 4}" y="{y(3) - 4:.1f}" fill="#666">3 s = 10% of 30 s</text>']
    for n in xs:
        parts.append(f'<text x="{x(n):.1f}" y="{height - bottom + 15}" '
                     f'text-anchor="middle">{n}</text>')
    parts.append(f'<text x="{width / 2}" y="{height - 8}" text-anchor="middle">services '
                 f'(x10 routes x4 statuses)</text>')
    for exp in range(math.floor(low), math.ceil(high) + 1):
        if low <= exp <= high:
            parts.append(f'<text x="{left - 6}" y="{y(10 ** exp) + 4:.1f}" '
                         f'text-anchor="end">{10.0 ** exp:g} s</text>')
    for index, group in enumerate(groups):
        colour = colours[index % len(colours)]
        for key, dash in (("prometheus_rules", ""), ("vmalert_rules", ' stroke-dasharray="5,3"')):
            points = [(x(r["services"]), y(r[key][group])) for r in results
                      if r[key].get(group, 0) > 0]
            if len(points) > 1:
                path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
                parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                             f'stroke-width="1.5"{dash}/>')
        parts.append(f'<text x="{left + 10}" y="{20 + 14 * index}" fill="{colour}">'
                     f'{group}</text>')
    parts.append(f'<text x="{width - 20}" y="20" text-anchor="end">solid: Prometheus; '
                 f'dashed: vmalert</text></svg>')
    return "\n".join(parts) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", default="10,100,1000")
    parser.add_argument("--timeout", type=float, default=600,
                        help="seconds to wait for two evaluations of every group")
    parser.add_argument("--json", type=Path, help="write the results here (and read earlier "
                        "sizes from it: each size is added as it is measured)")
    parser.add_argument("--svg", type=Path, help="draw the rule groups' times here")
    parser.add_argument("--stores", default="prometheus,vmalert",
                        help="which rulers to measure (default: prometheus,vmalert)")
    parser.add_argument("--no-queries", action="store_true",
                        help="time the rule groups only, not the dashboard queries")
    args = parser.parse_args()
    sizes = [int(n) for n in args.services.split(",")]
    known = json.loads(args.json.read_text()) if args.json and args.json.exists() else []
    results = [r for r in known if r["services"] not in sizes]
    with tempfile.TemporaryDirectory(prefix="bench-rules-") as tmp:
        for n in sizes:
            results.append(run_size(n, Path(tmp) / str(n), args.timeout,
                                    queries=not args.no_queries,
                                    stores=tuple(args.stores.split(","))))
            print(json.dumps(results[-1]), flush=True)
            results.sort(key=lambda r: int(r["services"]))
            if args.json:  # a long run keeps what it measured
                args.json.write_text(json.dumps(results, indent=2) + "\n")
    if args.svg:
        groups = sorted({g for r in results for g in r["prometheus_rules"]})
        args.svg.write_text(svg(results, groups))
    return 0


if __name__ == "__main__":
    sys.exit(main())
