"""USE recording rules and alerts for nodes, on node_exporter's names (redline's node exporter
or node_exporter itself). Thresholds and `for:` durations are node-mixin's where it has the
alert; redline's own (PSI, OOM kills, task capacity, disk errors, drops) are documented in
docs/alerts.md with the reason for each number.
"""

from __future__ import annotations

from redline import queries
from redline.alerts.rules import (
    VALUE_0F,
    VALUE_1F,
    VALUE_2F,
    VALUE_PERCENT,
    AlertingRule,
    RecordingRule,
    alert,
    recording,
    template,
)
from redline.queries import DEFAULT, FILESYSTEM, ONE_PER_CPU, Grouping, series


def recording_rules(grouping: Grouping = DEFAULT) -> list[RecordingRule]:
    """Per node (and device, mountpoint): every label but cpu and mode is kept, the cluster
    label with them; the one join is on the node, cluster included (two clusters may both
    have a node-1)."""
    on_node = queries.on(grouping.node)
    return [
        recording("instance:use_cpu_utilisation:ratio_rate5m",
                  queries.cpu_utilisation((), "5m")),
        recording("instance:use_cpu_saturation_psi:ratio_rate5m",
                  queries.pressure("cpu", (), "5m")),
        recording("instance:use_load1_per_cpu:ratio",
                  f"node_load1 / {on_node} group_left ()\n"
                  f"count without (cpu, mode) "
                  f"({series('node_cpu_seconds_total', ONE_PER_CPU)})"),
        recording("instance:use_memory_utilisation:ratio", queries.memory_utilisation(())),
        recording("instance:use_memory_saturation_psi:ratio_rate5m",
                  queries.pressure("memory", (), "5m")),
        recording("instance:use_vmstat_pgmajfault:rate5m", "rate(node_vmstat_pgmajfault[5m])"),
        recording("instance_device:use_disk_utilisation:ratio_rate5m",
                  "rate(node_disk_io_time_seconds_total[5m])"),
        recording("instance_device:use_disk_saturation:ratio_rate5m",
                  "rate(node_disk_io_time_weighted_seconds_total[5m])"),
        recording("instance_device:use_network_receive_errors:ratio_rate5m",
                  "rate(node_network_receive_errs_total[5m]) / "
                  "rate(node_network_receive_packets_total[5m])"),
        recording("instance_device:use_network_transmit_errors:ratio_rate5m",
                  "rate(node_network_transmit_errs_total[5m]) / "
                  "rate(node_network_transmit_packets_total[5m])"),
        recording("instance_mountpoint:use_filesystem_utilisation:ratio",
                  queries.filesystem_used(())),
    ]


def _filesystem(expr: str) -> str:
    """`expr` on writable filesystems only (a read-only one cannot fill up)."""
    return f"(\n  {expr}\nand\n  {series('node_filesystem_readonly', FILESYSTEM)} == 0\n)"


def alert_rules(runbook_url: str, grouping: Grouping = DEFAULT) -> list[AlertingRule]:
    on = template("$labels.instance")
    device = template("$labels.device")
    mount = template("$labels.mountpoint")
    value_pct = template(VALUE_1F) + "%"
    percent = template(VALUE_PERCENT)
    avail = series("node_filesystem_avail_bytes", FILESYSTEM)
    avail_pct = f"{avail} / {series('node_filesystem_size_bytes', FILESYSTEM)} * 100"
    files_pct = (f"{series('node_filesystem_files_free', FILESYSTEM)} / "
                 f"{series('node_filesystem_files', FILESYSTEM)} * 100")
    rules = []
    for severity, below, hours in (("warning", 15, 24), ("critical", 10, 4)):
        rules.append(alert(
            "RedlineNodeFilesystemSpaceFillingUp",
            _filesystem(f"{avail_pct} < {below}\nand\n  predict_linear({avail}[6h], "
                        f"{hours} * 60 * 60) < 0"),
            for_="1h", severity=severity,
            summary=f"{mount} on {on} will be full within {hours} hours",
            description=f"{mount} on {on} has {value_pct} space left and is filling up"
                        f"{' fast' if severity == 'critical' else ''}.",
            runbook_url=runbook_url))
    for severity, below in (("warning", 5), ("critical", 3)):
        rules.append(alert(
            "RedlineNodeFilesystemAlmostOutOfSpace", _filesystem(f"{avail_pct} < {below}"),
            for_="30m", severity=severity,
            summary=f"{mount} on {on} has less than {below}% space left",
            description=f"{mount} on {on} has {value_pct} space left.",
            runbook_url=runbook_url))
    for severity, below in (("warning", 5), ("critical", 3)):
        rules.append(alert(
            "RedlineNodeFilesystemAlmostOutOfFiles", _filesystem(f"{files_pct} < {below}"),
            for_="1h", severity=severity,
            summary=f"{mount} on {on} has less than {below}% inodes left",
            description=f"{mount} on {on} has {value_pct} inodes left.",
            runbook_url=runbook_url))
    for direction in ("receive", "transmit"):
        for problem in ("errs", "drop"):
            word = "errors" if problem == "errs" else "drops"
            rules.append(alert(
                f"RedlineNodeNetwork{direction.capitalize()}{word.capitalize()}",
                f"rate(node_network_{direction}_{problem}_total[2m])\n/\n"
                f"rate(node_network_{direction}_packets_total[2m]) > 0.01",
                for_="1h", severity="warning",
                summary=f"{device} on {on} {direction}s with {word}",
                description=f"{device} on {on} has {template(VALUE_2F)} "
                            f"{direction} {word} per packet over the last 2 minutes.",
                runbook_url=runbook_url))
    rules += [
        alert("RedlineNodeConntrackAlmostFull",
              "node_nf_conntrack_entries / node_nf_conntrack_entries_limit > 0.75",
              for_="0m", severity="warning",
              summary=f"Connection tracking on {on} is almost full",
              description=f"{on} uses {percent} of its conntrack table; new connections are "
                          f"dropped when it is full.", runbook_url=runbook_url),
        alert("RedlineNodeFileDescriptorLimit",
              "node_filefd_allocated * 100 / node_filefd_maximum > 70",
              for_="15m", severity="warning",
              summary=f"{on} is running out of file descriptors",
              description=f"{on} has allocated {value_pct} of its file descriptors.",
              runbook_url=runbook_url),
        alert("RedlineNodeFileDescriptorLimit",
              "node_filefd_allocated * 100 / node_filefd_maximum > 90",
              for_="15m", severity="critical",
              summary=f"{on} is almost out of file descriptors",
              description=f"{on} has allocated {value_pct} of its file descriptors.",
              runbook_url=runbook_url),
        alert("RedlineNodeCPUSaturation",
              "instance:use_cpu_saturation_psi:ratio_rate5m > 0.3", for_="15m",
              severity="warning", summary=f"Tasks on {on} wait for CPU",
              description=f"Some task on {on} was waiting for a CPU {percent} of the time "
                          f"over the last 5 minutes (PSI).", runbook_url=runbook_url,
              signal="psi"),
        alert("RedlineNodeCPUSaturation",
              f"instance:use_load1_per_cpu:ratio > 2\nunless {queries.on(grouping.node)}\n"
              f"node_pressure_cpu_waiting_seconds_total", for_="15m", severity="warning",
              summary=f"Tasks on {on} wait for CPU",
              description=f"The 1-minute load on {on} is {template(VALUE_1F)} per CPU (the "
                          f"kernel has no PSI).", runbook_url=runbook_url, signal="load"),
        alert("RedlineNodeMemoryPressure",
              "instance:use_memory_saturation_psi:ratio_rate5m > 0.1", for_="15m",
              severity="warning", summary=f"Tasks on {on} stall on memory",
              description=f"Some task on {on} was stalled on memory {percent} of the time "
                          f"over the last 5 minutes (PSI).", runbook_url=runbook_url),
        alert("RedlineNodeMemoryMajorPagesFaults",
              "instance:use_vmstat_pgmajfault:rate5m > 500", for_="15m", severity="warning",
              summary=f"{on} is paging heavily",
              description=f"{on} has {template(VALUE_0F)} major page faults per second.",
              runbook_url=runbook_url),
        alert("RedlineNodeOOMKill", "increase(node_vmstat_oom_kill[5m]) > 0", for_="0m",
              severity="warning", summary=f"The kernel on {on} killed a process for memory",
              description=f"{on} had {template(VALUE_0F)} OOM kills in the last 5 minutes.",
              runbook_url=runbook_url),
        alert("RedlineNodeDiskSaturation",
              "instance_device:use_disk_saturation:ratio_rate5m > 10", for_="30m",
              severity="warning", summary=f"{device} on {on} has a long I/O queue",
              description=f"{device} on {on} had {template(VALUE_1F)} I/Os queued on average "
                          f"over the last 5 minutes.", runbook_url=runbook_url),
        alert("RedlineNodeDiskErrors", "increase(node_disk_io_errors_total[1h]) > 0",
              for_="0m", severity="warning", summary=f"{device} on {on} reports I/O errors",
              description=f"{device} on {on} had {template(VALUE_0F)} I/O errors in the last "
                          f"hour.", runbook_url=runbook_url),
        alert("RedlineNodeTaskCapacity",
              "node_processes_threads / node_processes_max_threads > 0.8\nor\n"
              "node_processes_pids / node_processes_max_processes > 0.8",
              for_="15m", severity="warning", summary=f"{on} is running out of threads or PIDs",
              description=f"{on} uses {percent} of its thread or PID limit.",
              runbook_url=runbook_url),
    ]
    return rules
