"""bench_rules.py's stores as processes: Prometheus started on backfilled data, compacted as
a 3-day-old one would be, stopped even when busy; and the waits for the rule groups'
evaluations in Prometheus and in vmalert (tests/scale/central.py starts VictoriaMetrics and
vmalert). Sans measurement: bench_rules.py decides what runs and reads the results.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # redline and the central store's helpers (tests/scale)

import yaml  # noqa: E402

from redline.alerts.spec import parse_duration  # noqa: E402
from redline.ports import free_port, wait_port  # noqa: E402
from tests.scale.central import VMAlert  # noqa: E402


def metric_values(text: str, name: str, label: str) -> dict[str, float]:
    """`name{...label="x"...} value` lines of an exposition -> {x: value}."""
    found = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            match = re.search(label + r'="([^"]*)"', line)
            if match:
                found[match.group(1)] = float(line.rsplit(" ", 1)[1])
    return found


GLOBAL_INTERVAL = 30  # seconds: the evaluation interval of groups without their own


def group_intervals(rule_files: list[Path]) -> dict[str, float]:
    """Each group's evaluation interval in seconds (the tile groups have their own)."""
    return {group["name"]: parse_duration(group["interval"]) if "interval" in group
            else GLOBAL_INTERVAL for path in rule_files
            for group in yaml.safe_load(path.read_text())["groups"]}


def evaluations_needed(intervals: dict[str, float]) -> dict[str, int]:
    """Two evaluations of every group at the global interval (the first one can be
    incomplete), one of a 5m tile group (its first comes within 5 minutes of the start), none
    of the hourly one (its first can come an hour after the start: its rules are timed as
    queries instead, `query_times`)."""
    return {group: 2 if interval <= GLOBAL_INTERVAL else 1
            for group, interval in intervals.items() if interval <= 300}


def prometheus_groups(url: str, timeout: float, needed: dict[str, int]) -> dict[str, float]:
    """Each group's median evaluation time over its evaluations after the first (a cold
    start), or its first if it has only one, once each group has finished as many evaluations
    as `needed` says (groups it does not name: if they finished one). The median, not the last
    one: on this shared machine one evaluation of the SLO recording group at 1,000 services
    took 0.68-2.1 s between runs, the median of nine in one run 0.68-0.92 s (#21). An
    evaluation is seen when it ends (a new `prometheus_rule_group_last_evaluation_timestamp_
    seconds`; its duration is set before it), polled every second: every evaluation of a
    30 s group. The iterations counter counts one at its start, when the duration is still
    the last one's."""
    deadline = time.monotonic() + timeout
    seen: dict[str, dict[float, float]] = {}
    while True:
        text = urllib.request.urlopen(f"{url}/metrics", timeout=60).read().decode()
        durations = metric_values(text, "prometheus_rule_group_last_duration_seconds",
                                  "rule_group")
        for group, stamp in metric_values(
                text, "prometheus_rule_group_last_evaluation_timestamp_seconds",
                "rule_group").items():
            if stamp > 0 and group in durations:
                seen.setdefault(group.rsplit(";", 1)[-1], {})[stamp] = durations[group]
        if (seen and all(len(seen.get(g, ())) >= n for g, n in needed.items())) \
                or time.monotonic() > deadline:
            return {group: statistics.median(list(by_end.values())[1:] or by_end.values())
                    for group, by_end in seen.items()}
        time.sleep(1)


def vmalert_groups(vmalert: VMAlert, timeout: float, needed: dict[str, int]
                   ) -> dict[str, float]:
    """Each group's mean evaluation time, once each group has evaluated as often as `needed`
    says (a group appears in vmalert's metrics only after its first evaluation: wait for each
    by name)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            text = vmalert.metrics()
        except OSError:  # a vmalert busy with 1,000 services' rules can answer late: ask again
            if time.monotonic() > deadline:
                raise
            continue
        counts = metric_values(text, "vmalert_iteration_duration_seconds_count", "group")
        if all(counts.get(g, 0) >= n for g, n in needed.items()) \
                or time.monotonic() > deadline:
            sums = metric_values(text, "vmalert_iteration_duration_seconds_sum", "group")
            return {g: sums[g] / counts[g] for g in counts if counts[g]}
        time.sleep(1)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL: a Prometheus in the middle of a long evaluation can take more
    than a minute to stop (one did, and ended a 1,000-service run)."""
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=60)


def compact(work: Path, data: Path, timeout: float = 1800) -> int:
    """Prometheus, without rules, on the backfilled blocks until it has compacted them as a
    Prometheus 3 days old would have (2 h blocks into 6 h and 18 h ones), so that no run
    measures its rules beside that compaction, and the windows read as many blocks as they
    would; the number of blocks left. Its first compaction comes a minute after the start:
    done when the blocks and the compactions have not changed for 30 s after that."""
    url, prom = start_prometheus(work, data, [])
    try:
        started, seen, since = time.monotonic(), None, time.monotonic()
        while time.monotonic() - started < timeout:
            text = urllib.request.urlopen(f"{url}/metrics", timeout=60).read().decode()
            now = [line.rsplit(" ", 1)[1] for line in text.splitlines() if line.startswith(
                ("prometheus_tsdb_blocks_loaded ", "prometheus_tsdb_compactions_total "))]
            if now != seen:
                seen, since = now, time.monotonic()
            elif time.monotonic() - started > 90 and time.monotonic() - since > 30:
                break
            time.sleep(2)
        return int(float(seen[0])) if seen else 0
    finally:
        stop(prom)


def start_prometheus(work: Path, data: Path, rule_files: list[Path]
                     ) -> tuple[str, subprocess.Popen[bytes]]:
    """Prometheus at a 30 s interval. The out-of-order window lets the rules write their
    records: the backfilled blocks end after the run starts, and without it the head refuses
    every sample older than their end (`out of bounds`), so no record was ever stored."""
    port = free_port()
    config = work / "prometheus.yml"
    config.write_text(json.dumps({
        "global": {"evaluation_interval": "30s"},
        "storage": {"tsdb": {"out_of_order_time_window": "2h"}},
        "rule_files": [str(f) for f in rule_files]}))
    prom = subprocess.Popen([shutil.which("prometheus") or "prometheus",
                             f"--config.file={config}", f"--storage.tsdb.path={data}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=(work / "prometheus.log").open("a"))
    wait_port(port, timeout=120)
    return f"http://127.0.0.1:{port}", prom
