"""Against the real node_exporter (Debian) on this machine: same names, labels, types, values."""

from __future__ import annotations

import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from redline.exporters.node.collectors import (
    DISK_EXCLUDE,
    MEMINFO_FIELDS,
    NODE_EXPORTER_EQUIVALENT,
    VMSTAT_FIELDS,
)
from redline.exporters.node.network import NETSTAT_FIELDS
from tests.conftest import promtool_check_metrics
from tests.process import SidecarProcess, free_port, wait_port

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
# redline follows a newer node_exporter than Debian's 1.5 (docs/node-exporter.md): these labels
# and series came after 1.5, so the comparison leaves out exactly them. Everything else, and the
# default filters passed to 1.5 below (its own defaults are older), must match.
LABELS_SINCE_1_5 = frozenset({
    "rotational",  # node_disk_info, from sysfs queue/rotational
    "device_error",  # node_filesystem_*, the statvfs error ("" when none)
})
SERIES_SINCE_1_5 = frozenset({"node_filesystem_mount_info",
                              "node_pressure_irq_stalled_seconds_total"})


def since_1_5(name: str) -> bool:
    """A series that 1.5 has and the newer release no longer exports: meminfo fields outside
    the list node_exporter reads through prometheus/procfs."""
    return name.startswith("node_memory_") and name[len("node_memory_"):] not in MEMINFO_FIELDS
OWN = ("go_", "process_", "promhttp_", "node_exporter_build_info", "redline_build_info",
       "node_scrape_collector_duration_seconds")
# Gauges whose source does not change while the machine runs: compared exactly.
# Untyped in node_exporter but a gauge: established connections move with every scrape
# (the scrape's own connection among them), so only its labels are compared.
MOVING = {"node_netstat_Tcp_CurrEstab"}
STATIC = {"node_processes_max_threads", "node_processes_max_processes",
          "node_netstat_Ip_Forwarding",
          "node_boot_time_seconds", "node_memory_MemTotal_bytes", "node_memory_SwapTotal_bytes",
          "node_memory_HugePages_Total", "node_memory_Hugepagesize_bytes",
          "node_memory_VmallocTotal_bytes", "node_filefd_maximum", "node_disk_info",
          "node_scrape_collector_success"}


def scrape(port: int) -> tuple[Samples, dict[str, str]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    samples: Samples = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        if family.name.startswith(OWN) or family.name in SERIES_SINCE_1_5 or \
                since_1_5(family.name):
            continue
        types[family.name] = family.type
        for sample in family.samples:
            if not sample.name.startswith(OWN):
                labels = tuple(sorted((k, v) for k, v in sample.labels.items()
                                      if k not in LABELS_SINCE_1_5))
                samples[(sample.name, labels)] = sample.value
    return samples, types


def start_node_exporter(collectors: tuple[str, ...]) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    if binary is None:
        pytest.fail("node_exporter is not installed; `make test` installs it")
    port = free_port()
    proc = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}", "--collector.disable-defaults",
         f"--collector.vmstat.fields={VMSTAT_FIELDS.pattern}",
         f"--collector.netstat.fields={NETSTAT_FIELDS.pattern}",
         f"--collector.diskstats.device-exclude={DISK_EXCLUDE.pattern}",
         *(f"--collector.{name}" for name in collectors)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc, port


@pytest.fixture(scope="module")
def node_exporter() -> Iterator[int]:
    proc, port = start_node_exporter(NODE_EXPORTER_EQUIVALENT)
    yield port
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def redline() -> Iterator[SidecarProcess]:
    proc = SidecarProcess("node-exporter", "--listen", "127.0.0.1:0", "--collectors",
                          ",".join(NODE_EXPORTER_EQUIVALENT),
                          started="node exporter listening", service=False)
    yield proc
    assert proc.stop() == 0


def test_same_names_labels_types_and_values(node_exporter: int,
                                            redline: SidecarProcess) -> None:
    before, their_types = scrape(node_exporter)
    ours, our_types = scrape(redline.admin_port)
    after, _ = scrape(node_exporter)
    names = {name for name, _ in before}
    assert names == {name for name, _ in ours}
    for name in names:
        theirs = {labels for n, labels in before if n == name} | \
            {labels for n, labels in after if n == name}
        assert {labels for n, labels in ours if n == name} <= theirs, name
    assert our_types == their_types
    checked = 0
    for key, value in ours.items():
        name = key[0]
        family = name.removesuffix("_total")
        if name in STATIC or family in STATIC:
            assert value == before[key] == after[key], key
            checked += 1
        elif name in MOVING:
            continue
        elif our_types.get(family) in ("counter", "unknown") and key in before and key in after:
            # A counter read between two reads of node_exporter lies between them.
            low, high = min(before[key], after[key]), max(before[key], after[key])
            assert low - 1e-9 <= value <= high + 1e-9, (key, before[key], value, after[key])
            checked += 1
    assert checked > 50


def test_subsets_of_node_exporters_processes_and_netclass() -> None:
    """Task capacity and link speed: the series redline exports, node_exporter has too."""
    proc, port = start_node_exporter(("processes", "netclass"))
    ours = SidecarProcess("node-exporter", "--listen", "127.0.0.1:0", "--collectors",
                          "processes,netclass", started="node exporter listening",
                          service=False)
    try:
        theirs, their_types = scrape(port)
        mine, my_types = scrape(ours.admin_port)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        assert ours.stop() == 0
    for key, value in mine.items():
        if key[0] == "node_scrape_collector_success":
            continue
        assert key in theirs, key
        assert my_types[key[0]] == their_types[key[0]]
        if key[0] in STATIC or key[0] == "node_network_speed_bytes":
            assert value == theirs[key], key


def test_promtool_accepts_it(redline: SidecarProcess) -> None:
    promtool_check_metrics(redline.metrics_text().encode(), node_exporter_names=True)


@pytest.mark.parametrize("flag", ["--procfs", "--procfs-net"])
def test_a_missing_directory_is_a_config_error(flag: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "redline.cli", "node-exporter", flag, "/nonexistent"],
        capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert f"{flag}: /nonexistent: expected a directory" in result.stderr


def test_procfs_net_reports_that_namespaces_interfaces() -> None:
    # As in the DaemonSet without hostNetwork: --procfs-net /host/proc/1/net.
    proc = SidecarProcess("node-exporter", "--listen", "127.0.0.1:0", "--collectors", "netdev",
                          "--procfs-net", "/proc/1/net",
                          started="node exporter listening", service=False)
    try:
        text = proc.metrics_text()
    finally:
        assert proc.stop() == 0
    with open("/proc/1/net/dev") as dev:
        interfaces = {line.split(":")[0].strip() for line in dev.readlines()[2:]} - {"lo"}
    for interface in interfaces:
        assert f'node_network_receive_bytes_total{{device="{interface}"}}' in text

