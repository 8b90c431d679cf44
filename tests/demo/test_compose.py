"""deploy/compose: valid for Debian's docker-compose, every mounted file exists, every container
hardened, and the parts wired to each other as they really listen."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from redline.cli import build_parser
from tests.conftest import tool_path

COMPOSE_DIR = Path(__file__).resolve().parents[2] / "deploy" / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yaml"
REDLINE_IMAGE = "redline:demo"


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    """The file as docker-compose itself reads it (anchors merged, paths made absolute)."""
    result = subprocess.run([tool_path("docker-compose"), "-f", str(COMPOSE_FILE), "config"],
                            check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def _mounts(service: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(source, target, is_bind) for each volume, short or long syntax."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
            mounts.append((source, target, source.startswith(("/", "."))))
        else:
            mounts.append((volume["source"], volume["target"], volume["type"] == "bind"))
    return mounts


def test_every_mounted_host_path_exists(resolved: dict[str, Any]) -> None:
    binds = [(name, source) for name, service in resolved["services"].items()
             for source, _, is_bind in _mounts(service) if is_bind]
    assert binds, "expected the rule files, dashboards and host paths to be mounted"
    missing = [f"{name}: {source}" for name, source in binds if not Path(source).exists()]
    assert not missing
    named = {source for service in resolved["services"].values()
             for source, _, is_bind in _mounts(service) if not is_bind}
    assert named <= set(resolved["volumes"])


def test_every_container_is_hardened_and_limited(resolved: dict[str, Any]) -> None:
    for name, service in resolved["services"].items():
        assert service.get("read_only") is True, name
        assert service.get("cap_drop") == ["ALL"], name
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        user = str(service.get("user", "root")).split(":")[0]
        assert user not in ("", "0", "root"), name
        assert service.get("mem_limit") and service.get("mem_reservation"), name
        assert service.get("cpus"), name
        assert not service.get("privileged"), name
        if name != "load":  # the load generator serves nothing to check
            assert service["healthcheck"]["test"][0] == "CMD", name


def test_redline_commands_parse_with_the_real_cli(resolved: dict[str, Any]) -> None:
    redline = {n: s for n, s in resolved["services"].items() if s["image"] == REDLINE_IMAGE}
    assert {"checkout", "ambassador", "adapter", "egress", "payments", "load",
            "node-exporter"} <= set(redline)
    for name, service in redline.items():
        assert service["build"]["context"] == str(COMPOSE_DIR.parents[1]), name
        command = service["command"]
        args = build_parser({}, command[0]).parse_args(command)
        assert args.func is not None, name


def _listens(service: dict[str, Any]) -> set[int]:
    command = service.get("command", [])
    return {int(command[i + 1].rsplit(":", 1)[1]) for i, flag in enumerate(command)
            if flag in ("--listen", "--admin")}


def test_prometheus_scrapes_what_the_services_serve_and_its_config_checks(
        resolved: dict[str, Any], tmp_path: Path) -> None:
    services = resolved["services"]
    prometheus = services["prometheus"]
    mounts = {target: Path(source) for source, target, _ in _mounts(prometheus)}
    config = yaml.safe_load(mounts["/etc/prometheus/prometheus.yml"].read_text())

    for job in config["scrape_configs"]:
        for target in job["static_configs"][0]["targets"]:
            host, port = target.rsplit(":", 1)
            if host == "127.0.0.1":
                continue  # Prometheus itself
            assert int(port) in _listens(services[host]), target
            assert "redline" in job["job_name"]  # the health alert watches up{job=~".*redline.*"}
    (alertmanager,) = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alertmanager.split(":")[0] in services

    # The rule files Prometheus loads are the generated ones; promtool checks the whole config.
    rules = {t: s for t, s in mounts.items() if t.startswith("/etc/prometheus/rules/")}
    assert len(rules) == 4
    for target, source in rules.items():
        (tmp_path / Path(target).name).write_bytes(source.read_bytes())
    config["rule_files"] = [str(tmp_path / "*.rules.yaml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    check = subprocess.run([tool_path("promtool"), "check", "config",
                            str(tmp_path / "prometheus.yml")],
                           check=False, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "4 rule files found" in check.stdout or "SUCCESS" in check.stdout


def test_grafana_gets_the_datasource_the_dashboards_and_alerts_expect(
        resolved: dict[str, Any]) -> None:
    grafana = resolved["services"]["grafana"]
    mounts = {target: Path(source) for source, target, _ in _mounts(grafana)}
    (datasource,) = yaml.safe_load(
        mounts["/etc/grafana/provisioning/datasources/redline.yaml"].read_text())["datasources"]
    assert datasource["name"] == "Prometheus"  # the dashboards' default datasource
    assert datasource["url"] == "http://prometheus:9090"
    alerts = mounts["/etc/grafana/provisioning/alerting/redline-alerts.yaml"].read_text()
    assert f"datasourceUid: {datasource['uid']}" in alerts
    provider = yaml.safe_load(
        mounts["/etc/grafana/provisioning/dashboards/redline.yaml"].read_text())
    dashboards_dir = provider["providers"][0]["options"]["path"]
    assert sorted(mounts[dashboards_dir].glob("*.json"))  # the provider's path is mounted
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (mounts[dashboards_dir] / Path(home).name).is_file()


def test_nothing_binds_the_host_beyond_loopback(resolved: dict[str, Any]) -> None:
    """docs/demo.md promises every port on 127.0.0.1: no host network, no port published on
    every interface (a host network node exporter took 0.0.0.0:9100 and clashed with a
    node_exporter already on the host)."""
    for name, service in resolved["services"].items():
        assert service.get("network_mode") != "host", name
        for port in service.get("ports", []):  # Debian's docker-compose: "H:P:P/tcp"
            host_ip = port.get("host_ip") if isinstance(port, dict) else port.split(":")[0]
            assert host_ip == "127.0.0.1", (name, port)


def test_every_compose_command_shown_is_the_same() -> None:
    """README, docs and the demo's closing screen name the compose file the same way, with the
    project name the docs use (Compose v2: `docker compose`)."""
    expected = "docker compose -p redline-demo -f deploy/compose/docker-compose.yaml up --build"
    root = Path(__file__).parent.parent.parent
    for path in [root / "README.md", root / "redline/demo/run.py",
                 *sorted((root / "docs").glob("*.md")), COMPOSE_FILE]:
        for line in path.read_text().splitlines():
            if "docker compose" in line or "docker-compose -f" in line:
                assert expected in line, f"{path.name}: {line.strip()}"
