"""What redline's rules and heaviest dashboard queries cost as services grow (#21).

For each size, synthetic RED series for N services x 10 routes x 4 status classes (200, 302,
404, 500; the request histogram's _count and its 15 buckets: 64 series per route), a sample
every 2 minutes from 12 minutes before the run to 36 after it, and an SLO spec with one SLO per
service (availability and latency), as redline generates its rules, and the SLO 5m records'
3 days of history (bench_rules_data.py), so that the windows read what they read after 3 days:

- Prometheus: the samples backfilled (`promtool tsdb create-blocks-from openmetrics`), the rule
  files loaded; per group the median of `prometheus_rule_group_last_duration_seconds` over its
  evaluations after the first, waiting for two (one of the 5m tile group, up to 5 minutes, so
  about ten of the others; the hourly one, which may first evaluate an hour after the start,
  run as instant queries instead);
- VictoriaMetrics: the same samples imported (`/api/v1/import/prometheus`), vmalert evaluating
  the same files; per group the mean of `vmalert_iteration_duration_seconds` (as often);
- the RED overview's raw queries (the Services table, top routes by errors and by p99), timed
  on both (median of 3, a 5m rate window).

    .venv/bin/python benchmarks/bench_rules.py [--services 10,100,1000] [--json out.json]
        [--svg docs/img/rules-cost.svg] [--no-queries] [--before REV [--rounds N]]
        [--stores prometheus,vmalert] [--no-history] [--prom-data DIR --at EPOCH]
        [--burning SHARE]

`--burning SHARE`: only that share of the services fails its SLOs (default 1, all of them:
a fleet-wide outage, 5,171 alerts firing at 1,000 services; 0.01 is nearer a steady state).
The others have the same series, without failed or slow requests.

`--before REV`: the rule files redline wrote at git revision REV too, run alternately with the
working tree's on copies of the same data.

Where the time goes, rule by rule (work per service, evaluation against queries):
`bench_rules_table.py out.json`. The stores' processes: bench_rules_stores.py. What a firing
alert's labels and annotations cost in the rule manager: bench_rules_templates.py.

Not part of `make test`; tests/scale/test_bench_rules.py runs its smallest size.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # redline and the central store's helpers (tests/scale)
sys.path.insert(0, str(REPO / "benchmarks"))  # bench_rules_*, also when loaded by path

import yaml  # noqa: E402
from bench_rules_data import (  # noqa: E402
    LE,
    ROUTES,
    SAMPLES,
    STATUSES,
    backfill,
    backfill_history,
    import_vm,
    record_values,
    series,
    spec,
    write_rules,
)
from bench_rules_stores import (  # noqa: E402
    compact,
    evaluations_needed,
    group_intervals,
    prometheus_groups,
    start_prometheus,
    stop,
    vmalert_groups,
)

from redline.alerts import slo_rules  # noqa: E402
from redline.dashboards import overview  # noqa: E402
from tests.scale.central import Notifier, VictoriaMetrics, VMAlert, get_json  # noqa: E402

# What the tests read from this module (tests/scale/test_bench_rules.py)
__all__ = ["LE", "ROUTES", "SAMPLES", "STATUSES", "backfill", "import_vm", "series", "spec"]


def rule_work(url: str, rule_files: list[Path]) -> dict[str, list[tuple[str, int, float]]]:
    """Each rule's expression as an instant query, now, rule after rule: per group, (rule,
    samples read, seconds). The samples (Prometheus' `totalQueryableSamples`) are the work,
    whatever the machine's load: linear in the services while a group's evaluation time grows
    faster means that the time grows, not the work. The seconds of a group that did not
    evaluate during the run (the hourly tiles) are what its evaluation would cost."""
    found: dict[str, list[tuple[str, int, float]]] = {}
    for path in rule_files:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                body = urllib.parse.urlencode({"query": rule["expr"], "stats": "all"})
                started = time.perf_counter()
                with urllib.request.urlopen(f"{url}/api/v1/query", data=body.encode(),
                                            timeout=600) as reply:
                    stats = json.loads(reply.read())["data"].get("stats", {})
                found.setdefault(group["name"], []).append((
                    rule.get("record") or rule["alert"],
                    int(stats.get("samples", {}).get("totalQueryableSamples", -1)),
                    round(time.perf_counter() - started, 4)))
    return found


def tsdb_state(url: str) -> dict[str, float]:
    """What the same work costs more of at a larger size without reading more: the blocks
    and head series a query looks up, the memory the garbage collector walks."""
    text = urllib.request.urlopen(f"{url}/metrics", timeout=60).read().decode()
    wanted = ("prometheus_tsdb_blocks_loaded", "prometheus_tsdb_head_series",
              "prometheus_tsdb_head_chunks", "prometheus_tsdb_compactions_total",
              "process_resident_memory_bytes", "go_memstats_heap_inuse_bytes",
              "go_gc_duration_seconds_count", "go_gc_duration_seconds_sum")
    return {line.split(" ")[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line.split(" ")[0] in wanted}


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


@dataclass(frozen=True)
class Run:
    """What one size measures: the rule sets (label -> git revision, None for the working
    tree), in alternating rounds, on which stores, with or without the records' history."""

    rule_sets: dict[str, str | None]
    rounds: int = 1
    stores: tuple[str, ...] = ("prometheus", "vmalert")
    queries: bool = True
    history: bool = True
    timeout: float = 600
    burning: float = 1.0  # the share of services failing their SLOs (1: a fleet-wide outage)
    data: Path | None = None  # bench_rules.py's backfilled data of an earlier run, reused
    at: float | None = None  # and the time that run started (its samples are around it)


def run_size(services: int, work: Path, run: Run) -> dict[str, Any]:
    work.mkdir(parents=True)
    result: dict[str, Any] = {"services": services, "burning": run.burning,
                              "series": services * ROUTES * len(STATUSES) * (1 + len(LE)),
                              "rules": {}}
    files = {}
    for label, revision in run.rule_sets.items():
        result["rules"][label] = write_rules(services, work / "rules" / label, revision)
        files[label] = sorted((work / "rules" / label).glob("*.rules.yaml"))
    now = time.time() if run.at is None else run.at
    if "prometheus" in run.stores:
        prometheus(services, work, files, now, run, result)
    if "vmalert" in run.stores:
        victoria_metrics(services, work, files, now, run, result)
    return result


def medians(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {g: statistics.median(r[g] for r in rounds if g in r)
            for g in sorted({g for r in rounds for g in r})}


def prometheus(services: int, work: Path, files: dict[str, list[Path]], now: float, run: Run,
               result: dict[str, Any]) -> None:
    """Each rule set in turn on a copy of the same backfilled data (`cp -al`: the blocks are
    never written to, and each run's records stay in its own copy)."""
    pristine = work / "prom-data" if run.data is None else run.data
    if run.data is None:
        started = time.monotonic()
        backfill(services, now, pristine, work, run.burning)
        if run.history:
            backfill_history(services, now, pristine, work, run.burning)
        result["backfill_s"] = round(time.monotonic() - started, 1)
        started = time.monotonic()
        result["compacted_blocks"] = compact(work, pristine)
        result["compaction_s"] = round(time.monotonic() - started, 1)
    rounds: dict[str, list[dict[str, float]]] = {label: [] for label in files}
    for index in range(run.rounds):
        for label, rule_files in files.items():
            data = work / f"prom-{label}-{index}"
            subprocess.run(["cp", "-al", str(pristine), str(data)], check=True)
            url, prom = start_prometheus(work, data, rule_files)
            intervals = group_intervals(rule_files)
            try:
                rounds[label].append(prometheus_groups(url, run.timeout,
                                                       evaluations_needed(intervals)))
                late = set(intervals) - set(rounds[label][-1])
                work_done = rule_work(url, rule_files)
                result.setdefault("prometheus_rule_work", {})[label] = work_done
                result.setdefault("prometheus_query_times", {})[label] = {
                    g: round(sum(s for _, _, s in work_done[g]), 4) for g in late}
                result.setdefault("prometheus_tsdb", {})[label] = tsdb_state(url)
                result.setdefault("history_vs_live", {})[label] = history_vs_live(
                    url, services, run.burning)
                result.setdefault("prometheus_rule_times", {})[label] = rule_times(url)
                # The alert group's cost grows with the alerts firing (each is a state, an
                # ALERTS sample and its templates at every evaluation): how many there were.
                result.setdefault("prometheus_firing_alerts", {})[label] = firing(url)
                if run.queries and index == 0 and label == next(iter(files)):
                    result["prometheus_queries"] = {k: time_query(url, e)
                                                    for k, e in dashboard_queries().items()}
            finally:
                stop(prom)
                shutil.rmtree(data)
            print(json.dumps({"services": services, "prometheus": label, "round": index,
                              "groups": rounds[label][-1], "load": os.getloadavg()}),
                  flush=True)
    result["prometheus_rounds"] = rounds
    result["prometheus_rules"] = {label: medians(r) for label, r in rounds.items()}


def history_vs_live(url: str, services: int, burning: float) -> float | None:
    """The largest relative difference between a base record as the rules wrote it during
    the run and the value its synthetic history was drawn around: the history is honest only
    if it is what the rules record (None: no record written)."""
    expected = dict(record_values(services, burning))
    worst = None
    for name in (slo_rules.REQUESTS, slo_rules.ERRORS):
        body = get_json(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": name}),
                        timeout=300)
        for sample in body["data"]["result"]:
            labels = sample["metric"]
            key = (f'{name}{{service_name="{labels["service_name"]}",'
                   f'slo="{labels["slo"]}"}}')
            value = float(sample["value"][1])
            diff = abs(value - expected[key]) / max(expected[key], 1e-9)
            worst = diff if worst is None else max(worst, diff)
    return worst


def firing(url: str) -> int:
    body = get_json(f"{url}/api/v1/query?" + urllib.parse.urlencode(
        {"query": 'count(ALERTS{alertstate="firing"})'}), timeout=300)
    return int(float(body["data"]["result"][0]["value"][1])) if body["data"]["result"] else 0


def rule_times(url: str) -> dict[str, list[tuple[str, float]]]:
    """Where each group's time goes: its rules' last evaluation seconds, in order
    (`/api/v1/rules`)."""
    body = get_json(f"{url}/api/v1/rules", timeout=300)
    return {g["name"]: [(r["name"], round(r["evaluationTime"], 4)) for r in g["rules"]]
            for g in body["data"]["groups"]}



def victoria_metrics(services: int, work: Path, files: dict[str, list[Path]], now: float,
                     run: Run, result: dict[str, Any]) -> None:
    """Each rule set in turn on a copy of the same imported data (vmalert writes its records
    into VictoriaMetrics: one rule set's records must not be another's input)."""
    pristine = work / "vm-pristine"
    vm = VictoriaMetrics(work)
    try:
        started = time.monotonic()
        import_vm(vm, services, now, run.history, run.burning)
        result["import_s"] = round(time.monotonic() - started, 1)
        if run.queries:
            result["vm_queries"] = {k: time_query(vm.url, e)
                                    for k, e in dashboard_queries().items()}
    finally:
        vm.stop()
    (work / "vm-data").rename(pristine)
    rounds: dict[str, list[dict[str, float]]] = {label: [] for label in files}
    for index in range(run.rounds):
        for label, rule_files in files.items():
            shutil.copytree(pristine, work / "vm-data")
            vm, notifier = VictoriaMetrics(work), Notifier()
            try:
                vmalert = VMAlert(work, rule_files, vm, notifier.url, interval="30s")
                try:
                    rounds[label].append(vmalert_groups(
                        vmalert, run.timeout,
                        evaluations_needed(group_intervals(rule_files))))
                finally:
                    vmalert.stop()
            finally:
                vm.stop()
                notifier.stop()
                shutil.rmtree(work / "vm-data")
            print(json.dumps({"services": services, "vmalert": label, "round": index,
                              "groups": rounds[label][-1], "load": os.getloadavg()}),
                  flush=True)
    result["vmalert_rounds"] = rounds
    result["vmalert_rules"] = {label: medians(r) for label, r in rounds.items()}


def svg(results: list[dict[str, Any]], lines: list[tuple[str, str]]) -> str:
    """Evaluation seconds of each (rule set, group) of `lines` against services, log-log,
    Prometheus solid and vmalert dashed; a line at 3 s (10% of a 30 s interval)."""
    import math

    width, height, left, bottom = 640, 400, 60, 40
    xs = [r["services"] for r in results]
    values = [r.get(k, {}).get(label, {}).get(group, 0) for r in results
              for k in ("prometheus_rules", "vmalert_rules") for label, group in lines]
    values = [v for v in values if v > 0] + [3.0]
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
    for index, (label, group) in enumerate(lines):
        colour = colours[index % len(colours)]
        for key, dash in (("prometheus_rules", ""), ("vmalert_rules", ' stroke-dasharray="5,3"')):
            found = [(r["services"], r.get(key, {}).get(label, {}).get(group, 0))
                     for r in results]
            points = [(x(n), y(v)) for n, v in found if v > 0]
            if len(points) > 1:
                path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
                parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                             f'stroke-width="1.5"{dash}/>')
        parts.append(f'<text x="{left + 10}" y="{20 + 14 * index}" fill="{colour}">'
                     f'{group} ({label})</text>')
    parts.append(f'<text x="{width - 20}" y="20" text-anchor="end">solid: Prometheus; '
                 f'dashed: vmalert</text></svg>')
    return "\n".join(parts) + "\n"


def share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a share from 0 to 1, got {text!r}")
    return value


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
    parser.add_argument("--before", metavar="REV", help="also the rule files redline wrote "
                        "at git revision REV ('before'), alternating with the working tree's "
                        "('after') on the same data")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds per size")
    parser.add_argument("--burning", type=share, default=1.0, metavar="SHARE",
                        help="the share of services failing their SLOs, 0-1 (default: 1, every "
                        "service, a fleet-wide outage: 5,171 alerts firing at 1,000 services); "
                        "0.01 is closer to a steady state")
    parser.add_argument("--no-history", action="store_true",
                        help="without the SLO records' 3 days of history")
    parser.add_argument("--prom-data", type=Path, help="Prometheus data backfilled by an "
                        "earlier run of one size (a copy: `cp -al` of its prom-data), reused")
    parser.add_argument("--at", type=float, help="with --prom-data: when that run started")
    args = parser.parse_args()
    rule_sets: dict[str, str | None] = {"after": None}
    if args.before:
        rule_sets = {"before": args.before, "after": None}
    run = Run(rule_sets, rounds=args.rounds, stores=tuple(args.stores.split(",")),
              queries=not args.no_queries, history=not args.no_history, timeout=args.timeout,
              burning=args.burning, data=args.prom_data, at=args.at)
    sizes = [int(n) for n in args.services.split(",")]
    known = json.loads(args.json.read_text()) if args.json and args.json.exists() else []
    results = [r for r in known if r["services"] not in sizes]
    with tempfile.TemporaryDirectory(prefix="bench-rules-") as tmp:
        for n in sizes:
            results.append(run_size(n, Path(tmp) / str(n), run))
            print(json.dumps(results[-1]), flush=True)
            results.sort(key=lambda r: int(r["services"]))
            if args.json:  # a long run keeps what it measured
                args.json.write_text(json.dumps(results, indent=2) + "\n")
    if args.svg:
        args.svg.write_text(svg(results, [(label, group) for label in rule_sets for group in (
            "redline-slo-recording", "redline-red-recording")]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
