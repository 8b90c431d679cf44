"""The USE node dashboard: utilisation, saturation and errors of every resource of one node,
on node_exporter's names (redline's node exporter or node_exporter itself)."""

from __future__ import annotations

from typing import Any

from grafanalib.core import Stat, TimeSeries

from redline.dashboards.common import dashboard, query_variable, target
from redline.dashboards.layout import Layout

UID = "redline-use-node"
NODE = 'instance="$instance"'
RATE = "[$__rate_interval]"
FS_FILTER = 'fstype!="",mountpoint!=""'  # real filesystems, as the alerts select them
FS = f"{NODE},{FS_FILTER}"

# resource -> (utilisation, saturation, errors); None where USE has no sensible signal.
GRID: list[tuple[str, tuple[str, str] | None, tuple[str, str] | None,
                 tuple[str, str] | None]] = [
    ("CPU",
     (f"1 - avg(sum without (mode) (rate(node_cpu_seconds_total{{{NODE},"
      f'mode=~"idle|iowait|steal"}}{RATE})))', "percentunit"),
     (f"rate(node_pressure_cpu_waiting_seconds_total{{{NODE}}}{RATE})\n"
      f"or\nnode_load1{{{NODE}}} / count(node_cpu_seconds_total{{{NODE},mode=\"idle\"}})",
      "percentunit"),
     None),
    ("Memory",
     (f"1 - node_memory_MemAvailable_bytes{{{NODE}}} / node_memory_MemTotal_bytes{{{NODE}}}",
      "percentunit"),
     (f"rate(node_pressure_memory_waiting_seconds_total{{{NODE}}}{RATE})", "percentunit"),
     (f"increase(node_vmstat_oom_kill{{{NODE}}}[1h])", "short")),
    ("Disk",
     (f"max(rate(node_disk_io_time_seconds_total{{{NODE}}}{RATE}))", "percentunit"),
     (f"max(rate(node_disk_io_time_weighted_seconds_total{{{NODE}}}{RATE}))", "short"),
     (f"sum(increase(node_disk_io_errors_total{{{NODE}}}[1h]))", "short")),
    ("Network",
     (f"max(rate(node_network_receive_bytes_total{{{NODE}}}{RATE})\n"
      f"/ on (instance, device) node_network_speed_bytes{{{NODE}}} > 0)", "percentunit"),
     (f"sum(rate(node_network_receive_drop_total{{{NODE}}}{RATE})\n"
      f"+ rate(node_network_transmit_drop_total{{{NODE}}}{RATE}))", "pps"),
     (f"sum(rate(node_network_receive_errs_total{{{NODE}}}{RATE})\n"
      f"+ rate(node_network_transmit_errs_total{{{NODE}}}{RATE}))", "pps")),
    ("Filesystem",
     (f"max(1 - node_filesystem_avail_bytes{{{FS}}} / node_filesystem_size_bytes{{{FS}}})",
      "percentunit"),
     (f"max(1 - node_filesystem_files_free{{{FS}}} / node_filesystem_files{{{FS}}})",
      "percentunit"),
     (f"max(node_filesystem_device_error{{{FS}}})", "short")),
    ("File descriptors",
     (f"node_filefd_allocated{{{NODE}}} / node_filefd_maximum{{{NODE}}}", "percentunit"),
     None, None),
    ("Tasks",
     (f"node_processes_threads{{{NODE}}} / node_processes_max_threads{{{NODE}}}",
      "percentunit"),
     (f"node_procs_blocked{{{NODE}}}", "short"), None),
    ("Connection tracking",
     (f"node_nf_conntrack_entries{{{NODE}}} / node_nf_conntrack_entries_limit{{{NODE}}}",
      "percentunit"),
     None,
     (f"rate(node_nf_conntrack_stat_drop{{{NODE}}}{RATE})", "pps")),
]

_THRESHOLDS = {
    "percentunit": [("green", None), ("orange", 0.7), ("red", 0.9)],
    "short": [("green", None), ("red", 1.0)],
    "pps": [("green", None), ("red", 1.0)],
}


def _cell(title: str, signal: tuple[str, str]) -> Stat:
    expr, unit = signal
    return Stat(title=title, targets=[target(expr)], format=unit, reduceCalc="lastNotNull",
                graphMode="none", colorMode="background",
                thresholds=[{"color": c, "value": v} for c, v in _THRESHOLDS[unit]])


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
        targets=[target(f'avg by (mode) (rate(node_cpu_seconds_total{{{NODE},mode!="idle"}}'
                        f"{RATE}))", "{{mode}}")]), 12, 8)
    layout.add(TimeSeries(
        title="Pressure stall (PSI)", unit="percentunit",
        targets=[target(f"rate(node_pressure_{r}_waiting_seconds_total{{{NODE}}}{RATE})",
                        f"{r} waiting", ref=ref)
                 for r, ref in (("cpu", "A"), ("memory", "B"), ("io", "C"))]), 12, 8)
    layout.row("Disks, network, filesystems")
    layout.add(TimeSeries(
        title="Disk busy", unit="percentunit",
        targets=[target(f"rate(node_disk_io_time_seconds_total{{{NODE}}}{RATE})",
                        "{{device}}")]), 8, 8)
    layout.add(TimeSeries(
        title="Network traffic", unit="Bps",
        targets=[target(f"rate(node_network_receive_bytes_total{{{NODE}}}{RATE})",
                        "{{device}} in", ref="A"),
                 target(f"rate(node_network_transmit_bytes_total{{{NODE}}}{RATE})",
                        "{{device}} out", ref="B")]), 8, 8)
    layout.add(TimeSeries(
        title="Filesystem used", unit="percentunit",
        targets=[target(f"1 - node_filesystem_avail_bytes{{{FS}}} / "
                        f"node_filesystem_size_bytes{{{FS}}}", "{{mountpoint}}")]), 8, 8)
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
