"""The USE node dashboard: utilisation, saturation and errors of every resource of one node,
on node_exporter's names (redline's node exporter or node_exporter itself)."""

from __future__ import annotations

from typing import Any

from grafanalib.core import Stat, TimeSeries

from redline import queries
from redline.dashboards.common import CLUSTER, cluster_variable, dashboard, query_variable, target
from redline.dashboards.layout import Layout
from redline.queries import DEFAULT, FILESYSTEM, ONE_PER_CPU, Grouping, eq, ne, series

UID = "redline-use-node"
RATE = "$__rate_interval"
NOT_IDLE = ne("mode", "idle")
Signal = tuple[str, str] | None  # (expr, unit), None where USE has no sensible signal


class NodeQueries:
    """One node's queries, in the clusters chosen; a cell aggregates per cluster (two clusters
    may both have the node's name)."""

    def __init__(self, grouping: Grouping = DEFAULT) -> None:
        self.grouping = grouping
        self.node = [grouping.chosen(CLUSTER), eq("instance", "$instance")]

    def on_node(self, metric: str, *matchers: str) -> str:
        return series(metric, self.node, *matchers)

    def rate(self, metric: str, *matchers: str) -> str:
        return queries.rate(self.on_node(metric, *matchers), RATE)

    def ratio(self, used: str, total: str, *matchers: str) -> str:
        return f"{self.on_node(used, *matchers)} / {self.on_node(total, *matchers)}"

    def per_cluster(self, operator: str, expr: str) -> str:
        return queries.aggregate(operator, self.grouping.only, expr)

    def grid(self) -> list[tuple[str, Signal, Signal, Signal]]:
        """resource -> (utilisation, saturation, errors)."""
        g, node = self.grouping, self.node
        cpus = queries.aggregate("count", g.node, self.on_node("node_cpu_seconds_total",
                                                                ONE_PER_CPU))
        return [
            ("CPU",
             (queries.cpu_utilisation(node, RATE, g.only), "percentunit"),
             (f"{queries.pressure('cpu', node, RATE)}\n"
              f"or\n{self.on_node('node_load1')} / {queries.on(g.node)} {cpus}",
              "percentunit"),
             None),
            ("Memory",
             (queries.memory_utilisation(node), "percentunit"),
             (queries.pressure("memory", node, RATE), "percentunit"),
             (f"increase({self.on_node('node_vmstat_oom_kill')}[1h])", "short")),
            ("Disk",
             (self.per_cluster("max", self.rate("node_disk_io_time_seconds_total")),
              "percentunit"),
             (self.per_cluster("max", self.rate("node_disk_io_time_weighted_seconds_total")),
              "short"),
             (self.per_cluster("sum", f"increase({self.on_node('node_disk_io_errors_total')}"
                                      f"[1h])"), "short")),
            ("Network",
             (self.per_cluster("max", f"{self.rate('node_network_receive_bytes_total')}\n"
                                      f"/ {queries.on((*g.node, 'device'))} "
                                      f"{self.on_node('node_network_speed_bytes')} > 0"),
              "percentunit"),
             (self.per_cluster("sum", f"{self.rate('node_network_receive_drop_total')}\n"
                                      f"+ {self.rate('node_network_transmit_drop_total')}"),
              "pps"),
             (self.per_cluster("sum", f"{self.rate('node_network_receive_errs_total')}\n"
                                      f"+ {self.rate('node_network_transmit_errs_total')}"),
              "pps")),
            ("Filesystem",
             (self.per_cluster("max", queries.filesystem_used(node)), "percentunit"),
             (self.per_cluster("max", "1 - " + self.ratio(
                 "node_filesystem_files_free", "node_filesystem_files", *FILESYSTEM)),
              "percentunit"),
             (self.per_cluster("max", self.on_node("node_filesystem_device_error",
                                                   *FILESYSTEM)), "short")),
            ("File descriptors",
             (self.ratio("node_filefd_allocated", "node_filefd_maximum"), "percentunit"),
             None, None),
            ("Tasks",
             (self.ratio("node_processes_threads", "node_processes_max_threads"),
              "percentunit"),
             (self.on_node("node_procs_blocked"), "short"), None),
            ("Connection tracking",
             (self.ratio("node_nf_conntrack_entries", "node_nf_conntrack_entries_limit"),
              "percentunit"),
             None,
             (self.rate("node_nf_conntrack_stat_drop"), "pps")),
        ]


THRESHOLDS = {
    "percentunit": [("green", None), ("orange", 0.7), ("red", 0.9)],
    "short": [("green", None), ("red", 1.0)],
    "pps": [("green", None), ("red", 1.0)],
}


def _cell(title: str, signal: tuple[str, str], legend: str) -> Stat:
    expr, unit = signal
    return Stat(title=title, targets=[target(expr, legend)], format=unit,
                reduceCalc="lastNotNull", graphMode="none", colorMode="background",
                thresholds=[{"color": c, "value": v} for c, v in THRESHOLDS[unit]])


def build(grouping: Grouping = DEFAULT) -> dict[str, Any]:
    q = NodeQueries(grouping)
    cluster = f"{{{{{grouping.cluster}}}}}"  # last in legends: empty on one Prometheus
    layout = Layout()
    layout.row("Utilisation · Saturation · Errors")
    for resource, *signals in q.grid():
        for kind, signal in zip(("utilisation", "saturation", "errors"), signals, strict=True):
            if signal is not None:
                layout.add(_cell(f"{resource} {kind}", signal, cluster), 8, 3)
            else:
                layout.add(Stat(title=f"{resource} {kind}", targets=[], format="none",
                                description="No USE signal for this resource.",
                                colorMode="none", graphMode="none"), 8, 3)
    layout.row("CPU and memory")
    layout.add(TimeSeries(
        title="CPU by mode", unit="percentunit", stacking={"mode": "normal"},
        targets=[target(queries.aggregate("avg", (*grouping.only, "mode"),
                                          q.rate("node_cpu_seconds_total", NOT_IDLE)),
                        f"{{{{mode}}}} {cluster}")]), 12, 8)
    layout.add(TimeSeries(
        title="Pressure stall (PSI)", unit="percentunit",
        targets=[target(queries.pressure(r, q.node, RATE), f"{r} waiting {cluster}", ref=ref)
                 for r, ref in (("cpu", "A"), ("memory", "B"), ("io", "C"))]), 12, 8)
    layout.row("Disks, network, filesystems")
    layout.add(TimeSeries(
        title="Disk busy", unit="percentunit",
        targets=[target(q.rate("node_disk_io_time_seconds_total"),
                        f"{{{{device}}}} {cluster}")]), 8, 8)
    layout.add(TimeSeries(
        title="Network traffic", unit="Bps",
        targets=[target(q.rate("node_network_receive_bytes_total"),
                        f"{{{{device}}}} in {cluster}", ref="A"),
                 target(q.rate("node_network_transmit_bytes_total"),
                        f"{{{{device}}}} out {cluster}", ref="B")]), 8, 8)
    layout.add(TimeSeries(
        title="Filesystem used", unit="percentunit",
        targets=[target(queries.filesystem_used(q.node), f"{{{{mountpoint}}}} {cluster}")]),
        8, 8)
    return dashboard(
        title="redline / USE node", uid=UID, tags=["redline", "use"],
        description="Utilisation, saturation and errors of one node (Brendan Gregg's USE "
                    "method), from redline's node exporter or node_exporter.",
        panels=layout.panels,
        variables=[cluster_variable(grouping, "node_cpu_seconds_total"),
                   query_variable("instance", "Node", "label_values(" + series(
                       "node_cpu_seconds_total", grouping.chosen(CLUSTER)) + ", instance)")],
        links=[{"title": "RED services", "type": "dashboards", "tags": ["red"],
                "asDropdown": True},
               {"title": "Runbooks", "type": "link", "url": "docs/alerts.md",
                "targetBlank": True}],
    )
