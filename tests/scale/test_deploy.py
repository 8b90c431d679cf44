"""deploy/prometheus/central: the per-cluster Prometheus config, and the VictoriaMetrics and
vmalert setup (script and compose file) running redline's committed rules."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import yaml

from redline.ports import free_port, wait_port
from tests.conftest import promtool_path, tool_path
from tests.scale.central import get_json

REPO = Path(__file__).resolve().parents[2]
CENTRAL = REPO / "deploy" / "prometheus" / "central"


def test_the_cluster_prometheus_config_checks() -> None:
    result = subprocess.run([promtool_path(), "check", "config", str(CENTRAL / "prometheus.yml")],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load((CENTRAL / "prometheus.yml").read_text())
    assert "cluster" in config["global"]["external_labels"]
    assert config["remote_write"][0]["url"].endswith("/api/v1/write")


def test_the_compose_file_is_valid() -> None:
    result = subprocess.run([tool_path("docker-compose"), "-f",
                             str(CENTRAL / "docker-compose.yaml"), "config", "-q"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


def test_the_script_runs_victoriametrics_and_vmalert_with_every_rule_group(
        tmp_path: Path) -> None:
    vm, vmalert = free_port(), free_port()
    proc = subprocess.Popen(
        [str(CENTRAL / "run-victoriametrics.sh")], cwd=tmp_path, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "VM_LISTEN": f"127.0.0.1:{vm}",
             "VMALERT_LISTEN": f"127.0.0.1:{vmalert}", "INTERVAL": "5s"})
    try:
        wait_port(vm, timeout=30, still_starting=lambda: proc.poll() is None)
        wait_port(vmalert, timeout=30, still_starting=lambda: proc.poll() is None)
        committed = {group["name"] for path in (REPO / "deploy" / "prometheus").glob(
            "redline-*.rules.yaml") for group in yaml.safe_load(path.read_text())["groups"]}
        deadline = time.monotonic() + 20
        while True:
            loaded = {group["name"] for group in get_json(
                f"http://127.0.0.1:{vmalert}/api/v1/rules")["data"]["groups"]}
            if loaded == committed or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert loaded == committed
        assert (tmp_path / "victoria-metrics-data").is_dir()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the script's own group: it and its two servers
        proc.wait(timeout=30)
