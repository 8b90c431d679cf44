"""RED and USE rows computed straight from the sidecars' /metrics, for a demo without
Prometheus: two snapshots some seconds apart give rates, error ratios and (from the histogram
buckets' increase) percentiles, as `rate` and `histogram_quantile` would.

Pure: snapshots in, rows out; the same rows and table as `redline stat --by route` (gRPC
calls per method beside HTTP routes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from redline.exporters.red import RPC_SERVER_DURATION, SERVER_DURATION, SERVER_UNTIMED
from redline.queries import DEFAULT
from redline.stat import command as stat
from redline.stat.command import Key, Row

# What HTTP and gRPC rows are grouped by, as `redline stat --by route` groups them.
RED_BY, RPC_BY, _ = stat.red_labels(DEFAULT, by_route=True)
RED_SAMPLES = (f"{SERVER_DURATION}_count", f"{SERVER_DURATION}_bucket", SERVER_UNTIMED)
RPC_SAMPLES = (f"{RPC_SERVER_DURATION}_count", f"{RPC_SERVER_DURATION}_bucket")


@dataclass
class RedTotals:
    count: float = 0.0
    errors: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # le -> cumulative count


@dataclass
class Snapshot:
    at: float                                   # monotonic seconds
    red: dict[Key, RedTotals] = field(default_factory=dict)
    rpc: dict[Key, RedTotals] = field(default_factory=dict)  # gRPC calls, by RPC_BY
    # per instance: counters and gauges of the node exporter that USE needs
    cpu: dict[str, dict[str, float]] = field(default_factory=dict)    # instance -> mode -> s
    cpus: dict[str, int] = field(default_factory=dict)
    gauges: dict[str, dict[str, float]] = field(default_factory=dict)  # instance -> name -> v
    disk_io: dict[str, dict[str, float]] = field(default_factory=dict)  # instance -> device -> s


def parse(at: float, expositions: dict[str, str]) -> Snapshot:
    """`expositions`: instance (host:port) -> the text its /metrics answered."""
    snap = Snapshot(at)
    for instance, text in expositions.items():
        cpu_ids: set[str] = set()
        fs: dict[str, dict[str, float]] = {"avail": {}, "size": {}}  # kind -> mountpoint -> B
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                name, labels, value = sample.name, sample.labels, sample.value
                if name in RED_SAMPLES:
                    _add(snap.red, RED_BY, name, labels, value)
                elif name in RPC_SAMPLES:
                    _add(snap.rpc, RPC_BY, name, labels, value)
                elif name == "node_cpu_seconds_total":
                    modes = snap.cpu.setdefault(instance, {})
                    modes[labels["mode"]] = modes.get(labels["mode"], 0.0) + value
                    cpu_ids.add(labels.get("cpu", ""))
                elif name in ("node_load1", "node_memory_MemAvailable_bytes",
                              "node_memory_MemTotal_bytes"):
                    snap.gauges.setdefault(instance, {})[name] = value
                elif name == "node_disk_io_time_seconds_total":
                    snap.disk_io.setdefault(instance, {})[labels.get("device", "")] = value
                elif name in ("node_filesystem_avail_bytes", "node_filesystem_size_bytes"):
                    kind = name.split("_")[2]
                    fs[kind][labels.get("mountpoint", "")] = value
        if cpu_ids:
            snap.cpus[instance] = len(cpu_ids)
        full = [1 - fs["avail"].get(m, size) / size for m, size in fs["size"].items() if size > 0]
        if full:
            snap.gauges.setdefault(instance, {})["fs_full"] = max(full)
    return snap


def _add(totals_by: dict[Key, RedTotals], by: tuple[str, ...], name: str,
         labels: dict[str, str], value: float) -> None:
    totals = totals_by.setdefault(tuple(labels.get(label, "") for label in by), RedTotals())
    if name.endswith("_bucket"):
        le = float(labels["le"])
        totals.buckets[le] = totals.buckets.get(le, 0.0) + value
        return
    totals.count += value
    if labels.get("error_type"):
        totals.errors += value


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """histogram_quantile over cumulative bucket counts (linear within the bucket)."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # as Prometheus: the highest finite bound
            width = count - lower_count
            return lower_bound + (bound - lower_bound) * ((rank - lower_count) / width if width
                                                          else 1.0)
        lower_bound, lower_count = bound, count
    return lower_bound


def red_rows(before: Snapshot, after: Snapshot) -> dict[Key, Row]:
    """HTTP routes and gRPC methods, keyed as `redline stat --by route` keys them."""
    return stat.red_rows(_rows(before.red, after.red, after.at - before.at),
                       _rows(before.rpc, after.rpc, after.at - before.at), by_route=True)


def _rows(before: dict[Key, RedTotals], after: dict[Key, RedTotals], seconds: float
          ) -> dict[Key, Row]:
    rows: dict[Key, Row] = {}
    if seconds <= 0:
        return rows
    for key, now in after.items():
        then = before.get(key, RedTotals())
        requests = now.count - then.count
        if requests <= 0:
            continue
        row: Row = {"RPS": requests / seconds,
                    "SUCCESS": 1 - (now.errors - then.errors) / requests}
        increase = {le: n - then.buckets.get(le, 0.0) for le, n in now.buckets.items()}
        for q in (50, 95, 99):
            value = quantile(q / 100, increase)
            if value is not None:
                row[f"P{q}"] = value
        rows[key] = row
    return rows


def use_rows(before: Snapshot, after: Snapshot) -> dict[Key, Row]:
    seconds = after.at - before.at
    rows: dict[Key, Row] = {}
    for instance, modes in after.cpu.items():
        row: Row = {}
        old = before.cpu.get(instance, {})
        spent = sum(modes.values()) - sum(old.values())
        if spent > 0:
            idle = sum(modes.get(m, 0.0) - old.get(m, 0.0) for m in ("idle", "iowait", "steal"))
            row["CPU"] = 1 - idle / spent
        gauges = after.gauges.get(instance, {})
        if "node_load1" in gauges and after.cpus.get(instance):
            row["LOAD/CPU"] = gauges["node_load1"] / after.cpus[instance]
        if gauges.get("node_memory_MemTotal_bytes"):
            row["MEM"] = 1 - (gauges.get("node_memory_MemAvailable_bytes", 0.0)
                              / gauges["node_memory_MemTotal_bytes"])
        disks = after.disk_io.get(instance, {})
        if disks and seconds > 0:
            old_disks = before.disk_io.get(instance, {})
            row["DISK"] = max((v - old_disks.get(d, v)) / seconds for d, v in disks.items())
        if "fs_full" in gauges:
            row["FS"] = gauges["fs_full"]
        rows[(instance,)] = row
    return rows
