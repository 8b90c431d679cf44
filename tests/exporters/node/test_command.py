"""`redline node-exporter` as a user runs it: flags to a typed config, and what /readyz means
(docs/node-exporter.md): ready while the host's procfs answers, whichever collector fails.
Real processes on a copy of a checked-in /proc, /sys and / tree."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from redline.cli import build_parser
from redline.exporters.node.collectors import Roots
from redline.exporters.node.command import config_from_args
from redline.exporters.node.exporter import NodeExporterConfig
from tests.process import SidecarProcess

FIXTURES = Path(__file__).parent / "fixtures"
# Collectors whose fixture sources are complete, so that the failures below are the test's own.
COLLECTORS = "cpu,stat,loadavg,meminfo,pressure"


@pytest.fixture
def host(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / "psi", tmp_path / "host"))


def node_exporter(host: Path) -> SidecarProcess:
    return SidecarProcess("node-exporter", "--listen", "127.0.0.1:0",
                          "--procfs", str(host / "proc"), "--sysfs", str(host / "sys"),
                          "--rootfs", str(host / "root"), "--collectors", COLLECTORS,
                          started="node exporter listening", service=False)


def test_not_ready_while_the_hosts_procfs_stat_cannot_be_read(host: Path) -> None:
    stat = host / "proc" / "stat"
    saved = stat.read_bytes()
    stat.unlink()  # as in an empty or wrong hostPath mount
    process = node_exporter(host)
    try:
        # The start-up pass logged the failing collectors before the port opened.
        before_listening = process.logs[:process.logs.index(process.started)]
        assert sorted(str(entry["collector"]) for entry in before_listening
                      if entry.get("level") == "warning") == ["cpu", "stat"]
        assert process.started["ready"] is False
        assert process.admin("/readyz") == (503, f"cannot read {stat}: No such file or directory\n")
        assert process.admin("/healthz")[0] == 200  # alive: a restart would mount nothing new
        stat.write_text("not a stat file\n")
        status, body = process.admin("/readyz")
        assert status == 503 and body.startswith(f"{stat} is not a procfs stat file: ")
        stat.write_bytes(saved)
        assert process.admin("/readyz") == (200, "ready\n")  # no restart needed
        assert process.value("node_scrape_collector_success", collector="cpu") == 1
    finally:
        assert process.stop() == 0


def test_a_collector_failing_on_its_node_leaves_the_pod_ready(host: Path) -> None:
    shutil.rmtree(host / "proc" / "pressure")  # a kernel without PSI
    process = node_exporter(host)
    try:
        assert process.started["ready"] is True
        assert process.admin("/readyz") == (200, "ready\n")
        assert process.value("node_scrape_collector_success", collector="pressure") == 0
        assert process.value("node_scrape_collector_success", collector="loadavg") == 1
    finally:
        assert process.stop() == 0


def test_flags_become_a_typed_config(host: Path) -> None:
    args = build_parser({}, "node-exporter").parse_args([
        "node-exporter", "--listen", "127.0.0.1:9101", "--procfs", str(host / "proc"),
        "--sysfs", str(host / "sys"), "--rootfs", str(host / "root"),
        "--collectors", "cpu, stat"])
    assert config_from_args(args) == NodeExporterConfig(
        Roots(str(host / "proc"), str(host / "sys"), str(host / "root")), ("cpu", "stat"),
        ("127.0.0.1", 9101))


@pytest.mark.parametrize(("flags", "message"), [
    (["--collectors", "cpu,cpus"], "argument --collectors: unknown collectors ['cpus']"),
    (["--collectors", ","], "argument --collectors: expected one or more of conntrack, "),
    (["--procfs", "/nonexistent"], "redline: --procfs: /nonexistent: expected a directory"),
])
def test_bad_flags_exit_2(flags: list[str], message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "redline.cli", "node-exporter",
                             "--listen", "127.0.0.1:0", *flags],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2 and message in result.stderr, result.stderr
