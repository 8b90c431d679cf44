"""Where the cgroups collector is turned on: the compose demo (no kubelet there) runs every
default collector plus cgroups on the host's cgroup mount, read-only."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from redline.cli import build_parser
from redline.config import ConfigError
from redline.exporters.node.collectors import COLLECTORS
from redline.exporters.node.command import config_from_args

COMPOSE = Path(__file__).resolve().parents[3] / "deploy" / "compose" / "docker-compose.yaml"


def test_the_compose_node_exporter_adds_cgroups_to_the_defaults() -> None:
    service = yaml.safe_load(COMPOSE.read_text())["services"]["node-exporter"]
    command = service["command"]
    args = build_parser({}, command[0]).parse_args(command)
    assert args.collectors == (*COLLECTORS, "cgroups")
    assert args.cgroupfs == "/host/cgroup"
    assert "/sys/fs/cgroup:/host/cgroup:ro" in service["volumes"]


def test_a_missing_cgroupfs_stops_start_up_only_when_cgroups_runs(tmp_path: Path) -> None:
    base = ["node-exporter", "--procfs", str(tmp_path), "--sysfs", str(tmp_path),
            "--rootfs", str(tmp_path), "--cgroupfs", str(tmp_path / "none")]
    parse = build_parser({}, "node-exporter").parse_args
    assert config_from_args(parse(base)).roots.cgroupfs == str(tmp_path / "none")
    with pytest.raises(ConfigError, match=f"--cgroupfs: {tmp_path / 'none'}: expected a "
                                          "directory"):
        config_from_args(parse([*base, "--collectors", "cpu,cgroups"]))
    roots = config_from_args(parse([*base[:-1], str(tmp_path), "--collectors", "cgroups",
                                    "--cgroups-depth", "2", "--cgroups-max", "50"])).roots
    assert (roots.cgroups_depth, roots.cgroups_max) == (2, 50)
