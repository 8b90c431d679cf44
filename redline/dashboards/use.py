"""The USE node dashboard: utilisation, saturation and errors of every resource of one node,
on node_exporter's names (redline's node exporter or node_exporter itself)."""

from __future__ import annotations

from typing import Any

from grafanalib.core import Stat, TimeSeries

from redline import queries
from redline.dashboards.common import dashboard, query_variable, target
from redline.dashboards.layout import Layout
from redline.queries import FILESYSTEM, ONE_PER_CPU, eq, ne, series

UID = "redline-use-node"
NODE = eq("instance", "$instance")
RATE = "$__rate_interval"
NOT_IDLE = ne("mode", "idle")


def _rate(metric: str, *matchers: str) -> str:
    return queries.rate(series(metric, NODE, *matchers), RATE)


def _on_node(metric: str, *matchers: str) -> str:
    return series(metric, NODE, *matchers)


def _ratio(used: str, total: str, *matchers: str) -> str:
    return f"{_on_node(used, *matchers)} / {_on_node(total, *matchers)}"


# resource -> (utilisation, saturation, errors); None where USE has no sensible signal.
GRID: list[tuple[str, tuple[str, str] | None, tuple[str, str] | None,
                 tuple[str, str] | None]] = [
    ("CPU",
     (queries.cpu_utilisation([NODE], RATE, ()), "percentunit"),
     (f"{queries.pressure('cpu', [NODE], RATE)}\n"
      f"or\n{_on_node('node_load1')} / count({_on_node('node_cpu_seconds_total', ONE_PER_CPU)})",
      "percentunit"),
     None),
    ("Memory",
     (queries.memory_utilisation([NODE]), "percentunit"),
     (queries.pressure("memory", [NODE], RATE), "percentunit"),
     (f"increase({_on_node('node_vmstat_oom_kill')}[1h])", "short")),
    ("Disk",
     (f"max({_rate('node_disk_io_time_seconds_total')})", "percentunit"),
     (f"max({_rate('node_disk_io_time_weighted_seconds_total')})", "short"),
     (f"sum(increase({_on_node('node_disk_io_errors_total')}[1h]))", "short")),
    ("Network",
     (f"max({_rate('node_network_receive_bytes_total')}\n"
      f"/ on (instance, device) {_on_node('node_network_speed_bytes')} > 0)", "percentunit"),
     (f"sum({_rate('node_network_receive_drop_total')}\n"
      f"+ {_rate('node_network_transmit_drop_total')})", "pps"),
     (f"sum({_rate('node_network_receive_errs_total')}\n"
      f"+ {_rate('node_network_transmit_errs_total')})", "pps")),
    ("Filesystem",
     (f"max({queries.filesystem_used([NODE])})", "percentunit"),
     (f"max(1 - {_ratio('node_filesystem_files_free', 'node_filesystem_files', *FILESYSTEM)})",
      "percentunit"),
     (f"max({_on_node('node_filesystem_device_error', *FILESYSTEM)})", "short")),
    ("File descriptors",
     (_ratio("node_filefd_allocated", "node_filefd_maximum"), "percentunit"),
     None, None),
    ("Tasks",
     (_ratio("node_processes_threads", "node_processes_max_threads"), "percentunit"),
     (_on_node("node_procs_blocked"), "short"), None),
    ("Connection tracking",
     (_ratio("node_nf_conntrack_entries", "node_nf_conntrack_entries_limit"), "percentunit"),
     None,
     (_rate("node_nf_conntrack_stat_drop"), "pps")),
]

THRESHOLDS = {
    "percentunit": [("green", None), ("orange", 0.7), ("red", 0.9)],
    "short": [("green", None), ("red", 1.0)],
    "pps": [("green", None), ("red", 1.0)],
}


def _cell(title: str, signal: tuple[str, str]) -> Stat:
    expr, unit = signal
    return Stat(title=title, targets=[target(expr)], format=unit, reduceCalc="lastNotNull",
                graphMode="none", colorMode="background",
                thresholds=[{"color": c, "value": v} for c, v in THRESHOLDS[unit]])


def build() -> dict[str, Any]:
    layout = Layout()
    layout.row("Utilisation · Saturation · Errors")
    for resource, *signals in GRID:
        for kind, signal in zip(("utilisation", "saturation", "errors"), signals, strict=True):
            if signal is not None:
                layout.add(_cell(f"{resource} {kind}", signal), 8, 3)
            else:
                layout.add(Stat(title=f"{resource} {kind}", targets=[], format="none",
                                description="No USE signal for this resource.",
                                colorMode="none", graphMode="none"), 8, 3)
    layout.row("CPU and memory")
    layout.add(TimeSeries(
        title="CPU by mode", unit="percentunit", stacking={"mode": "normal"},
        targets=[target(f"avg by (mode) ({_rate('node_cpu_seconds_total', NOT_IDLE)})",
                        "{{mode}}")]), 12, 8)
    layout.add(TimeSeries(
        title="Pressure stall (PSI)", unit="percentunit",
        targets=[target(queries.pressure(r, [NODE], RATE), f"{r} waiting", ref=ref)
                 for r, ref in (("cpu", "A"), ("memory", "B"), ("io", "C"))]), 12, 8)
    layout.row("Disks, network, filesystems")
    layout.add(TimeSeries(
        title="Disk busy", unit="percentunit",
        targets=[target(_rate("node_disk_io_time_seconds_total"), "{{device}}")]), 8, 8)
    layout.add(TimeSeries(
        title="Network traffic", unit="Bps",
        targets=[target(_rate("node_network_receive_bytes_total"), "{{device}} in", ref="A"),
                 target(_rate("node_network_transmit_bytes_total"), "{{device}} out",
                        ref="B")]), 8, 8)
    layout.add(TimeSeries(
        title="Filesystem used", unit="percentunit",
        targets=[target(queries.filesystem_used([NODE]), "{{mountpoint}}")]), 8, 8)
    return dashboard(
        title="redline / USE node", uid=UID, tags=["redline", "use"],
        description="Utilisation, saturation and errors of one node (Brendan Gregg's USE "
                    "method), from redline's node exporter or node_exporter.",
        panels=layout.panels,
        variables=[query_variable("instance", "Node",
                                  "label_values(node_cpu_seconds_total, instance)")],
        links=[{"title": "RED services", "type": "dashboards", "tags": ["red"],
                "asDropdown": True},
               {"title": "Runbooks", "type": "link", "url": "docs/alerts.md",
                "targetBlank": True}],
    )
