"""USE recording rules and alerts for nodes, on node_exporter's names (redline's node exporter
or node_exporter itself). Thresholds and `for:` durations are node-mixin's where it has the
alert; redline's own (PSI, OOM kills, task capacity, disk errors, drops) are documented in
docs/alerts.md with the reason for each number.
"""

from __future__ import annotations

from redline.alerts.slo_rules import Rule

FS = 'fstype!="",mountpoint!=""'

RECORDING: list[Rule] = [
    {"record": "instance:use_cpu_utilisation:ratio_rate5m",
     "expr": '1 - avg without (cpu) (sum without (mode) '
             '(rate(node_cpu_seconds_total{mode=~"idle|iowait|steal"}[5m])))'},
    {"record": "instance:use_cpu_saturation_psi:ratio_rate5m",
     "expr": "rate(node_pressure_cpu_waiting_seconds_total[5m])"},
    {"record": "instance:use_load1_per_cpu:ratio",
     "expr": 'node_load1 / on (instance) group_left ()\n'
             'count without (cpu, mode) (node_cpu_seconds_total{mode="idle"})'},
    {"record": "instance:use_memory_utilisation:ratio",
     "expr": "1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes"},
    {"record": "instance:use_memory_saturation_psi:ratio_rate5m",
     "expr": "rate(node_pressure_memory_waiting_seconds_total[5m])"},
    {"record": "instance:use_vmstat_pgmajfault:rate5m",
     "expr": "rate(node_vmstat_pgmajfault[5m])"},
    {"record": "instance_device:use_disk_utilisation:ratio_rate5m",
     "expr": "rate(node_disk_io_time_seconds_total[5m])"},
    {"record": "instance_device:use_disk_saturation:ratio_rate5m",
     "expr": "rate(node_disk_io_time_weighted_seconds_total[5m])"},
    {"record": "instance_device:use_network_receive_errors:ratio_rate5m",
     "expr": "rate(node_network_receive_errs_total[5m]) / "
             "rate(node_network_receive_packets_total[5m])"},
    {"record": "instance_device:use_network_transmit_errors:ratio_rate5m",
     "expr": "rate(node_network_transmit_errs_total[5m]) / "
             "rate(node_network_transmit_packets_total[5m])"},
    {"record": "instance_mountpoint:use_filesystem_utilisation:ratio",
     "expr": f"1 - node_filesystem_avail_bytes{{{FS}}} / node_filesystem_size_bytes{{{FS}}}"},
]


def _alert(name: str, expr: str, severity: str, duration: str, summary: str,
           description: str, runbook_url: str, **labels: str) -> Rule:
    rule: Rule = {"alert": name, "expr": expr}
    if duration != "0m":
        rule["for"] = duration
    rule["labels"] = {"severity": severity, **labels}
    rule["annotations"] = {"summary": summary, "description": description,
                           "runbook_url": f"{runbook_url}#{name.lower()}"}
    return rule


def alert_rules(runbook_url: str) -> list[Rule]:
    on = "{{ $labels.instance }}"
    device = "{{ $labels.device }}"
    mount = "{{ $labels.mountpoint }}"
    value_pct = "{{ printf \"%.1f\" $value }}%"
    fs_avail = (f"node_filesystem_avail_bytes{{{FS}}} / node_filesystem_size_bytes{{{FS}}}"
                f" * 100")
    rules = [
        _alert("RedlineNodeFilesystemSpaceFillingUp",
               f"(\n  {fs_avail} < 15\nand\n  predict_linear(node_filesystem_avail_bytes"
               f"{{{FS}}}[6h], 24 * 60 * 60) < 0\nand\n  node_filesystem_readonly{{{FS}}} == 0\n)",
               "warning", "1h", f"{mount} on {on} will be full within 24 hours",
               f"{mount} on {on} has {value_pct} space left and is filling up.", runbook_url),
        _alert("RedlineNodeFilesystemSpaceFillingUp",
               f"(\n  {fs_avail} < 10\nand\n  predict_linear(node_filesystem_avail_bytes"
               f"{{{FS}}}[6h], 4 * 60 * 60) < 0\nand\n  node_filesystem_readonly{{{FS}}} == 0\n)",
               "critical", "1h", f"{mount} on {on} will be full within 4 hours",
               f"{mount} on {on} has {value_pct} space left and is filling up fast.",
               runbook_url),
        _alert("RedlineNodeFilesystemAlmostOutOfSpace",
               f"(\n  {fs_avail} < 5\nand\n  node_filesystem_readonly{{{FS}}} == 0\n)",
               "warning", "30m", f"{mount} on {on} has less than 5% space left",
               f"{mount} on {on} has {value_pct} space left.", runbook_url),
        _alert("RedlineNodeFilesystemAlmostOutOfSpace",
               f"(\n  {fs_avail} < 3\nand\n  node_filesystem_readonly{{{FS}}} == 0\n)",
               "critical", "30m", f"{mount} on {on} has less than 3% space left",
               f"{mount} on {on} has {value_pct} space left.", runbook_url),
        _alert("RedlineNodeFilesystemAlmostOutOfFiles",
               f"(\n  node_filesystem_files_free{{{FS}}} / node_filesystem_files{{{FS}}} * 100"
               f" < 5\nand\n  node_filesystem_readonly{{{FS}}} == 0\n)",
               "warning", "1h", f"{mount} on {on} has less than 5% inodes left",
               f"{mount} on {on} has {value_pct} inodes left.", runbook_url),
        _alert("RedlineNodeFilesystemAlmostOutOfFiles",
               f"(\n  node_filesystem_files_free{{{FS}}} / node_filesystem_files{{{FS}}} * 100"
               f" < 3\nand\n  node_filesystem_readonly{{{FS}}} == 0\n)",
               "critical", "1h", f"{mount} on {on} has less than 3% inodes left",
               f"{mount} on {on} has {value_pct} inodes left.", runbook_url),
    ]
    for direction in ("receive", "transmit"):
        for problem in ("errs", "drop"):
            word = "errors" if problem == "errs" else "drops"
            rules.append(_alert(
                f"RedlineNodeNetwork{direction.capitalize()}{word.capitalize()}",
                f"rate(node_network_{direction}_{problem}_total[2m])\n/\n"
                f"rate(node_network_{direction}_packets_total[2m]) > 0.01",
                "warning", "1h", f"{device} on {on} {direction}s with {word}",
                f"{device} on {on} has {{{{ printf \"%.2f\" $value }}}} {direction} {word} "
                f"per packet over the last 2 minutes.", runbook_url))
    rules += [
        _alert("RedlineNodeConntrackAlmostFull",
               "node_nf_conntrack_entries / node_nf_conntrack_entries_limit > 0.75",
               "warning", "0m", f"Connection tracking on {on} is almost full",
               f"{on} uses {{{{ $value | humanizePercentage }}}} of its conntrack table; new "
               f"connections are dropped when it is full.", runbook_url),
        _alert("RedlineNodeFileDescriptorLimit",
               "node_filefd_allocated * 100 / node_filefd_maximum > 70",
               "warning", "15m", f"{on} is running out of file descriptors",
               f"{on} has allocated {value_pct} of its file descriptors.", runbook_url),
        _alert("RedlineNodeFileDescriptorLimit",
               "node_filefd_allocated * 100 / node_filefd_maximum > 90",
               "critical", "15m", f"{on} is almost out of file descriptors",
               f"{on} has allocated {value_pct} of its file descriptors.", runbook_url),
        _alert("RedlineNodeCPUSaturation",
               "instance:use_cpu_saturation_psi:ratio_rate5m > 0.3", "warning", "15m",
               f"Tasks on {on} wait for CPU",
               f"Some task on {on} was waiting for a CPU {{{{ $value | humanizePercentage }}}}"
               f" of the time over the last 5 minutes (PSI).", runbook_url, signal="psi"),
        _alert("RedlineNodeCPUSaturation",
               "instance:use_load1_per_cpu:ratio > 2\nunless on (instance)\n"
               "node_pressure_cpu_waiting_seconds_total", "warning", "15m",
               f"Tasks on {on} wait for CPU",
               f"The 1-minute load on {on} is {{{{ printf \"%.1f\" $value }}}} per CPU (the "
               f"kernel has no PSI).", runbook_url, signal="load"),
        _alert("RedlineNodeMemoryPressure",
               "instance:use_memory_saturation_psi:ratio_rate5m > 0.1", "warning", "15m",
               f"Tasks on {on} stall on memory",
               f"Some task on {on} was stalled on memory {{{{ $value | humanizePercentage }}}} "
               f"of the time over the last 5 minutes (PSI).", runbook_url),
        _alert("RedlineNodeMemoryMajorPagesFaults",
               "instance:use_vmstat_pgmajfault:rate5m > 500", "warning", "15m",
               f"{on} is paging heavily",
               f"{on} has {{{{ printf \"%.0f\" $value }}}} major page faults per second.",
               runbook_url),
        _alert("RedlineNodeOOMKill", "increase(node_vmstat_oom_kill[5m]) > 0", "warning", "0m",
               f"The kernel on {on} killed a process for memory",
               f"{on} had {{{{ printf \"%.0f\" $value }}}} OOM kills in the last 5 minutes.",
               runbook_url),
        _alert("RedlineNodeDiskSaturation",
               "instance_device:use_disk_saturation:ratio_rate5m > 10", "warning", "30m",
               f"{device} on {on} has a long I/O queue",
               f"{device} on {on} had {{{{ printf \"%.1f\" $value }}}} I/Os queued on "
               f"average over the last 5 minutes.", runbook_url),
        _alert("RedlineNodeDiskErrors", "increase(node_disk_io_errors_total[1h]) > 0",
               "warning", "0m", f"{device} on {on} reports I/O errors",
               f"{device} on {on} had {{{{ printf \"%.0f\" $value }}}} I/O errors in the last "
               f"hour.", runbook_url),
        _alert("RedlineNodeTaskCapacity",
               "node_processes_threads / node_processes_max_threads > 0.8\nor\n"
               "node_processes_pids / node_processes_max_processes > 0.8",
               "warning", "15m", f"{on} is running out of threads or PIDs",
               f"{on} uses {{{{ $value | humanizePercentage }}}} of its thread or PID limit.",
               runbook_url),
    ]
    return rules
