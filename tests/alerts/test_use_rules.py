"""USE recording rules and node alerts under promtool: firing, silent just below, resolving."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.alerts.conftest import gauge, promtool_test

NODE = 'instance="node-1:9100",job="node"'
FS_LABELS = f'{NODE},device="/dev/vda",fstype="ext4",mountpoint="/"'


def node_alert(severity: str, summary: str, description: str, name: str, **labels: str
               ) -> dict[str, Any]:
    return {"exp_labels": {"severity": severity, **labels},
            "exp_annotations": {"summary": summary, "description": description,
                                "runbook_url": f"docs/alerts.md#{name.lower()}"}}


def filesystem(avail_percent: float, files_free_percent: float = 50,
               falling_per_minute: float = 0) -> list[dict[str, str]]:
    size = 1_000_000
    avail = size * avail_percent / 100
    n = 500  # minutes of samples
    return [
        gauge("node_filesystem_size_bytes", FS_LABELS, f"{size}x{n}"),
        gauge("node_filesystem_avail_bytes", FS_LABELS,
              f"{avail:g}-{falling_per_minute:g}x{n}" if falling_per_minute
              else f"{avail:g}x{n}"),
        gauge("node_filesystem_files", FS_LABELS, f"1000x{n}"),
        gauge("node_filesystem_files_free", FS_LABELS, f"{files_free_percent * 10:g}x{n}"),
        gauge("node_filesystem_readonly", FS_LABELS, f"0x{n}"),
    ]



def test_filesystem_alerts(rule_dir: Path) -> None:
    where = "/ on node-1:9100"
    fs = {"instance": "node-1:9100", "job": "node", "device": "/dev/vda", "fstype": "ext4",
          "mountpoint": "/"}
    promtool_test(rule_dir, [
        {"interval": "1m", "input_series": filesystem(4),
         "alert_rule_test": [
             {"eval_time": "40m", "alertname": "RedlineNodeFilesystemAlmostOutOfSpace",
              "exp_alerts": [node_alert("warning", f"{where} has less than 5% space left",
                                        f"{where} has 4.0% space left.",
                                        "RedlineNodeFilesystemAlmostOutOfSpace", **fs)]},
             {"eval_time": "20m", "alertname": "RedlineNodeFilesystemAlmostOutOfSpace",
              "exp_alerts": []},  # not for 30m yet
         ]},
        {"interval": "1m", "input_series": filesystem(2.5),
         "alert_rule_test": [
             {"eval_time": "40m", "alertname": "RedlineNodeFilesystemAlmostOutOfSpace",
              "exp_alerts": [
                  node_alert("warning", f"{where} has less than 5% space left",
                             f"{where} has 2.5% space left.",
                             "RedlineNodeFilesystemAlmostOutOfSpace", **fs),
                  node_alert("critical", f"{where} has less than 3% space left",
                             f"{where} has 2.5% space left.",
                             "RedlineNodeFilesystemAlmostOutOfSpace", **fs)]},
         ]},
        {"interval": "1m", "input_series": filesystem(5.5, files_free_percent=4),
         "alert_rule_test": [
             {"eval_time": "40m", "alertname": "RedlineNodeFilesystemAlmostOutOfSpace",
              "exp_alerts": []},  # just above 5%
             {"eval_time": "70m", "alertname": "RedlineNodeFilesystemAlmostOutOfFiles",
              "exp_alerts": [node_alert("warning", f"{where} has less than 5% inodes left",
                                        f"{where} has 4.0% inodes left.",
                                        "RedlineNodeFilesystemAlmostOutOfFiles", **fs)]},
         ]},
        {  # 14% left and losing 100 bytes a minute: empty in 1400 minutes (< 24h)
            "interval": "1m", "input_series": filesystem(14, falling_per_minute=100),
            "alert_rule_test": [
                {"eval_time": "7h", "alertname": "RedlineNodeFilesystemSpaceFillingUp",
                 "exp_alerts": [node_alert(
                     "warning", f"{where} will be full within 24 hours",
                     f"{where} has 9.8% space left and is filling up.",
                     "RedlineNodeFilesystemSpaceFillingUp", **fs)]},
            ]},
        {  # the same space, not falling: no prediction, no alert
            "interval": "1m", "input_series": filesystem(14),
            "alert_rule_test": [
                {"eval_time": "7h", "alertname": "RedlineNodeFilesystemSpaceFillingUp",
                 "exp_alerts": []},
            ]},
    ])


def test_node_resource_alerts(rule_dir: Path) -> None:
    on = "node-1:9100"
    base = {"instance": on, "job": "node"}
    promtool_test(rule_dir, [
        {"interval": "1m", "input_series": [
            gauge("node_nf_conntrack_entries", NODE, "800x30"),
            gauge("node_nf_conntrack_entries_limit", NODE, "1000x30"),
            gauge("node_filefd_allocated", NODE, "95x30"),
            gauge("node_filefd_maximum", NODE, "100x30"),
            gauge("node_vmstat_oom_kill", NODE, "0 0 0 1x27"),
            gauge("node_processes_threads", NODE, "90x30"),
            gauge("node_processes_max_threads", NODE, "100x30"),
            gauge("node_processes_pids", NODE, "10x30"),
            gauge("node_processes_max_processes", NODE, "100x30"),
         ],
         "alert_rule_test": [
             {"eval_time": "1m", "alertname": "RedlineNodeConntrackAlmostFull",
              "exp_alerts": [node_alert(
                  "warning", f"Connection tracking on {on} is almost full",
                  f"{on} uses 80% of its conntrack table; new connections are dropped when it "
                  f"is full.", "RedlineNodeConntrackAlmostFull", **base)]},
             {"eval_time": "20m", "alertname": "RedlineNodeFileDescriptorLimit",
              "exp_alerts": [
                  node_alert("warning", f"{on} is running out of file descriptors",
                             f"{on} has allocated 95.0% of its file descriptors.",
                             "RedlineNodeFileDescriptorLimit", **base),
                  node_alert("critical", f"{on} is almost out of file descriptors",
                             f"{on} has allocated 95.0% of its file descriptors.",
                             "RedlineNodeFileDescriptorLimit", **base)]},
             {"eval_time": "5m", "alertname": "RedlineNodeOOMKill",
              "exp_alerts": [node_alert(
                  "warning", f"The kernel on {on} killed a process for memory",
                  f"{on} had 1 OOM kills in the last 5 minutes.", "RedlineNodeOOMKill",
                  **base)]},
             {"eval_time": "20m", "alertname": "RedlineNodeTaskCapacity",
              "exp_alerts": [node_alert(
                  "warning", f"{on} is running out of threads or PIDs",
                  f"{on} uses 90% of its thread or PID limit.", "RedlineNodeTaskCapacity",
                  **base)]},
         ]},
        {"interval": "1m", "input_series": [  # just below every threshold
            gauge("node_nf_conntrack_entries", NODE, "750x30"),
            gauge("node_nf_conntrack_entries_limit", NODE, "1000x30"),
            gauge("node_filefd_allocated", NODE, "70x30"),
            gauge("node_filefd_maximum", NODE, "100x30"),
            gauge("node_vmstat_oom_kill", NODE, "3x30"),
            gauge("node_processes_threads", NODE, "80x30"),
            gauge("node_processes_max_threads", NODE, "100x30"),
         ],
         "alert_rule_test": [
             {"eval_time": "20m", "alertname": name, "exp_alerts": []}
             for name in ("RedlineNodeConntrackAlmostFull", "RedlineNodeFileDescriptorLimit",
                          "RedlineNodeOOMKill", "RedlineNodeTaskCapacity")
         ]},
    ])


def test_saturation_and_error_alerts(rule_dir: Path) -> None:
    on = "node-1:9100"
    base = {"instance": on, "job": "node"}
    disk = f'{NODE},device="sda"'
    eth = f'{NODE},device="eth0"'
    promtool_test(rule_dir, [
        {"interval": "1m", "input_series": [
            # PSI: 24s waited per minute = 40% of the time
            gauge("node_pressure_cpu_waiting_seconds_total", NODE, "0+24x40"),
            gauge("node_pressure_memory_waiting_seconds_total", NODE, "0+12x40"),
            gauge("node_vmstat_pgmajfault", NODE, "0+36000x40"),  # 600 per second
            gauge("node_disk_io_time_weighted_seconds_total", disk, "0+720x40"),  # queue 12
            gauge("node_disk_io_errors_total", disk, "0 0 2x38"),
            gauge("node_network_receive_packets_total", eth, "0+6000x80"),
            gauge("node_network_receive_errs_total", eth, "0+120x80"),  # 2% of packets
            gauge("node_network_transmit_packets_total", eth, "0+6000x80"),
            gauge("node_network_transmit_drop_total", eth, "0+30x80"),  # 0.5%: below 1%
         ],
         "alert_rule_test": [
             {"eval_time": "25m", "alertname": "RedlineNodeCPUSaturation",
              "exp_alerts": [node_alert(
                  "warning", f"Tasks on {on} wait for CPU",
                  f"Some task on {on} was waiting for a CPU 40% of the time over the last 5 "
                  f"minutes (PSI).", "RedlineNodeCPUSaturation", signal="psi", **base)]},
             {"eval_time": "25m", "alertname": "RedlineNodeMemoryPressure",
              "exp_alerts": [node_alert(
                  "warning", f"Tasks on {on} stall on memory",
                  f"Some task on {on} was stalled on memory 20% of the time over the last 5 "
                  f"minutes (PSI).", "RedlineNodeMemoryPressure", **base)]},
             {"eval_time": "25m", "alertname": "RedlineNodeMemoryMajorPagesFaults",
              "exp_alerts": [node_alert("warning", f"{on} is paging heavily",
                                        f"{on} has 600 major page faults per second.",
                                        "RedlineNodeMemoryMajorPagesFaults", **base)]},
             {"eval_time": "40m", "alertname": "RedlineNodeDiskSaturation",
              "exp_alerts": [node_alert(
                  "warning", f"sda on {on} has a long I/O queue",
                  f"sda on {on} had 12.0 I/Os queued on average over the last 5 minutes.",
                  "RedlineNodeDiskSaturation", device="sda", **base)]},
             {"eval_time": "10m", "alertname": "RedlineNodeDiskErrors",
              "exp_alerts": [node_alert(
                  "warning", f"sda on {on} reports I/O errors",
                  f"sda on {on} had 2 I/O errors in the last hour.", "RedlineNodeDiskErrors",
                  device="sda", **base)]},
             {"eval_time": "70m", "alertname": "RedlineNodeNetworkReceiveErrors",
              "exp_alerts": [node_alert(
                  "warning", f"eth0 on {on} receives with errors",
                  f"eth0 on {on} has 0.02 receive errors per packet over the last 2 "
                  f"minutes.", "RedlineNodeNetworkReceiveErrors", device="eth0", **base)]},
             {"eval_time": "70m", "alertname": "RedlineNodeNetworkTransmitDrops",
              "exp_alerts": []},
         ]},
        {"interval": "1m", "input_series": [  # no PSI: the load per CPU decides
            gauge("node_load1", NODE, "5x40"),
            gauge("node_cpu_seconds_total", f'{NODE},cpu="0",mode="idle"', "0+30x40"),
            gauge("node_cpu_seconds_total", f'{NODE},cpu="1",mode="idle"', "0+30x40"),
         ],
         "alert_rule_test": [
             {"eval_time": "25m", "alertname": "RedlineNodeCPUSaturation",
              "exp_alerts": [node_alert(
                  "warning", f"Tasks on {on} wait for CPU",
                  f"The 1-minute load on {on} is 2.5 per CPU (the kernel has no PSI).",
                  "RedlineNodeCPUSaturation", signal="load", **base)]},
         ]},
    ])



def test_use_alerts_stay_silent_just_below_and_resolve(rule_dir: Path) -> None:
    disk = f'{NODE},device="sda"'
    eth = f'{NODE},device="eth0"'
    quiet = ("RedlineNodeCPUSaturation", "RedlineNodeMemoryPressure",
             "RedlineNodeMemoryMajorPagesFaults", "RedlineNodeDiskSaturation",
             "RedlineNodeDiskErrors", "RedlineNodeNetworkReceiveErrors",
             "RedlineNodeNetworkTransmitErrors", "RedlineNodeNetworkReceiveDrops",
             "RedlineNodeNetworkTransmitDrops")
    promtool_test(rule_dir, [
        {"interval": "1m", "input_series": [
            gauge("node_pressure_cpu_waiting_seconds_total", NODE, "0+17.4x80"),  # 29%
            gauge("node_pressure_memory_waiting_seconds_total", NODE, "0+5.4x80"),  # 9%
            gauge("node_vmstat_pgmajfault", NODE, "0+28800x80"),  # 480/s
            gauge("node_disk_io_time_weighted_seconds_total", disk, "0+540x80"),  # queue 9
            gauge("node_disk_io_errors_total", disk, "3x80"),  # old errors, none new
            gauge("node_network_receive_packets_total", eth, "0+6000x80"),
            gauge("node_network_receive_errs_total", eth, "0+54x80"),  # 0.9%
            gauge("node_network_receive_drop_total", eth, "0+54x80"),
            gauge("node_network_transmit_packets_total", eth, "0+6000x80"),
            gauge("node_network_transmit_errs_total", eth, "0+54x80"),
            gauge("node_network_transmit_drop_total", eth, "0+54x80"),
         ],
         "alert_rule_test": [{"eval_time": "75m", "alertname": name, "exp_alerts": []}
                             for name in quiet]},
        {  # one OOM kill at 3m: the alert fires, and is gone 5 minutes later
            "interval": "1m", "input_series": [
                gauge("node_vmstat_oom_kill", NODE, "0 0 0 1x30")],
            "alert_rule_test": [
                {"eval_time": "15m", "alertname": "RedlineNodeOOMKill", "exp_alerts": []}]},
        {  # a filesystem at 4% for 40 minutes, then freed to 50%: the alert resolves
            "interval": "1m", "input_series": [
                gauge("node_filesystem_size_bytes", FS_LABELS, "1000x80"),
                gauge("node_filesystem_avail_bytes", FS_LABELS, "40x40 500x40"),
                gauge("node_filesystem_readonly", FS_LABELS, "0x80"),
            ],
            "alert_rule_test": [
                {"eval_time": "50m", "alertname": "RedlineNodeFilesystemAlmostOutOfSpace",
                 "exp_alerts": []}]},
    ])
