"""The SLO rules before and after #21's change, side by side on the same data and Prometheus.

bench_rules.py measures each rule group's evaluation time, which moves with the machine's load
(2 cores shared with other runs). This anchor runs the raw-reading expressions of both rule
sets as instant queries against one Prometheus that holds bench_rules.py's backfilled series
(and evaluates no rules), in alternating rounds:

- after: every rule of the shared SLO recording group that reads raw series (the 5m records;
  the other windows read those records, 2 series per SLO) and the one RedlineREDMetricsAbsent
  expression;
- floor: each raw family the SLO rules need (requests timed and untimed, failed ones, the
  bucket at the threshold) read once, the least any shared design reads;
- before: the rules of the per-SLO design (`git show REV:redline/alerts/slo_rules.py`) that
  read raw series (5m, 30m, 1h, 2h and 6h requests and ratios and the 5m numerator, per SLI)
  and the per-SLO `absent()` alerts, for a sample of the services, scaled to all of them.

    .venv/bin/python benchmarks/bench_rules_anchor.py --data DIR --services 1000
        [--before 08e02a1] [--sample 20] [--rounds 3]

DIR: a copy of bench_rules.py's `prom-data` (e.g. `cp -al` of it while the benchmark runs).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from bench_rules_data import spec  # noqa: E402

from redline.alerts import health_rules, slo_rules  # noqa: E402
from redline.alerts.spec import Spec  # noqa: E402
from redline.ports import free_port, wait_port  # noqa: E402
from redline.queries import (  # noqa: E402
    HTTP_SERVER,
    SERVICE,
    eq,
    le_matcher,
    one_of,
    series,
    sum_rate,
)


def before_module(rev: str) -> ModuleType:
    """slo_rules.py as it was at `rev`."""
    text = subprocess.run(["git", "show", f"{rev}:redline/alerts/slo_rules.py"], cwd=REPO,
                          capture_output=True, text=True, check=True).stdout
    module_spec = importlib.util.spec_from_loader("slo_rules_before", loader=None)
    assert module_spec is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(text, f"{rev}:slo_rules.py", "exec"), module.__dict__)
    return module


def before_queries(before: ModuleType, whole: Spec, sample: int) -> list[str]:
    """The per-SLO design's raw-reading expressions for `sample` of the SLOs."""
    step = max(1, len(whole.slos) // sample)
    exprs = []
    for slo in whole.slos[::step][:sample]:
        for sli, _ in before.objectives(slo):
            for window in before.SHORT_WINDOWS:
                bad, total = before.sli_expressions(slo, sli, window)
                exprs += [total, f"({bad})\n/\n({total})"]
            exprs.append(before.sli_expressions(slo, sli, "5m")[0])
        own = eq("service_name", slo.service)
        exprs.append("\nand\n".join(f"absent({series(name, own)})"
                                    for name in HTTP_SERVER.request_counters))
    return exprs


def after_queries(whole: Spec) -> list[str]:
    return [rule["expr"] for rule in slo_rules.base_rules(whole)] + [
        health_rules.metrics_absent(whole)]


def floor_queries(whole: Spec) -> list[str]:
    """The least any shared SLO rules must read: each raw family of the SLO services once
    (requests timed and untimed, failed ones, the bucket at the threshold), 5m."""
    services = one_of("service_name", [slo.service for slo in whole.slos])
    thresholds = {slo.latency.threshold for slo in whole.slos if slo.latency}
    return [sum_rate(name, [services, *extra], SERVICE, "5m")
            for name in HTTP_SERVER.request_counters
            for extra in ((), (HTTP_SERVER.error,))] + [
        sum_rate(HTTP_SERVER.bucket, [services, le_matcher(t)], SERVICE, "5m")
        for t in sorted(thresholds)]


def matcher_queries(whole: Spec) -> dict[str, str]:
    """The same sum over every service's _count series, selected three ways: is the list of
    a thousand services (a set of literal alternatives) what a rule pays for?"""
    name = HTTP_SERVER.count
    services = one_of("service_name", [slo.service for slo in whole.slos])
    return {"service list": sum_rate(name, [services], SERVICE, "5m"),
            "service_name!=\"\"": sum_rate(name, ['service_name!=""'], SERVICE, "5m"),
            "no matcher": sum_rate(name, [], SERVICE, "5m")}


def window_queries(before: ModuleType, rev: str) -> dict[str, list[str]]:
    """The SLO group's window rules as slo_rules.py wrote them at `rev` and as it writes them
    now (the long windows from tiles: bench_rules.py's history holds them)."""
    return {f"windows at {rev}": [rule["expr"] for rule in before.window_rules()],
            "windows now": [rule["expr"] for rule in slo_rules.window_rules()]}


def data_time(data: Path) -> float:
    """The middle of the backfilled samples (promtool tsdb list: min and max time in ms)."""
    listing = subprocess.run([shutil.which("promtool") or "promtool", "tsdb", "list", str(data)],
                             capture_output=True, text=True, check=True).stdout.splitlines()[1:]
    low = min(int(line.split()[1]) for line in listing)
    high = max(int(line.split()[2]) for line in listing)
    return (low + high) / 2000


def wait_ready(url: str, timeout: float = 600) -> None:
    """Until Prometheus has loaded its blocks (it answers 503 before)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=10):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def timed(url: str, exprs: list[str], at: float) -> float:
    """Seconds to run `exprs` one after the other as instant queries at `at` (POST, as a
    ruler sends long expressions)."""
    started = time.perf_counter()
    for expr in exprs:
        body = urllib.parse.urlencode({"query": expr, "time": f"{at:.3f}"}).encode()
        with urllib.request.urlopen(f"{url}/api/v1/query", data=body, timeout=600) as reply:
            assert json.loads(reply.read())["status"] == "success"
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--services", type=int, required=True)
    parser.add_argument("--before", default="08e02a1", help="git revision of the old rules")
    parser.add_argument("--sample", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--matchers", action="store_true",
                        help="time one sum over the _count series selected three ways instead")
    parser.add_argument("--windows", type=float, metavar="EPOCH",
                        help="time the SLO window rules at EPOCH (the end of bench_rules.py's "
                        "record history: its run's start) as --before wrote them (a revision "
                        "with shared window rules) and as they are now")
    args = parser.parse_args()
    whole = spec(args.services)
    module = before_module(args.before)
    before = [] if args.windows is not None else before_queries(module, whole, args.sample)
    scale = args.services / min(args.sample, args.services)
    after = after_queries(whole)
    floor = floor_queries(whole)
    at = data_time(args.data) if args.windows is None else args.windows
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="anchor-") as tmp:
        config = Path(tmp) / "prometheus.yml"
        config.write_text("global: {}\n")
        prom = subprocess.Popen([shutil.which("prometheus") or "prometheus",
                                 f"--config.file={config}", f"--storage.tsdb.path={args.data}",
                                 f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(port, timeout=300)
            url = f"http://127.0.0.1:{port}"
            wait_ready(url)
            timed(url, after[:1], at)  # the first query loads the index into memory
            sets = ({k: ([e], 1.0) for k, e in matcher_queries(whole).items()}
                    if args.matchers else
                    {k: (e, 1.0) for k, e in window_queries(module, args.before).items()}
                    if args.windows is not None else
                    {"after": (after, 1.0), "floor": (floor, 1.0),
                     "before (scaled)": (before, scale)})
            rounds: dict[str, list[float]] = {k: [] for k in sets}
            for _ in range(args.rounds):
                for key, (exprs, factor) in sets.items():
                    rounds[key].append(timed(url, exprs, at) * factor)
        finally:
            prom.terminate()
            prom.wait(timeout=60)
    medians = {k: statistics.median(v) for k, v in rounds.items()}
    print(json.dumps({"services": args.services, "after_queries": len(after),
                      "floor_queries": len(floor),
                      "before_queries_sampled": len(before), "scale": scale,
                      "rounds": rounds, "median_s": medians}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
