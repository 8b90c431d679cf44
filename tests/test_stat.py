"""`redline stat` against the real Prometheus of the end-to-end stack, and its errors."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from redline.config import ConfigError
from redline.stat.command import StatConfig, stat
from tests.dashboards.test_end_to_end import stack  # noqa: F401 -- the fixture
from tests.process import free_port


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "redline.cli", "stat", *args],
                          capture_output=True, text=True, timeout=60, check=False)


def url(stack: dict[str, Any]) -> str:  # noqa: F811
    return f"http://127.0.0.1:{stack['prometheus'].port}"


def test_services_routes_and_nodes(stack: dict[str, Any]) -> None:  # noqa: F811
    services = run("--prometheus", url(stack), "--window", "15s")
    assert services.returncode == 0, services.stderr
    lines = services.stdout.splitlines()
    assert lines[0].split() == ["SERVICE", "RPS", "SUCCESS", "P50", "P95", "P99"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {"shop", "web", "other"}  # other: its rejected requests
    assert float(rows["shop"][1]) > 0
    assert rows["shop"][2].endswith("%") and float(rows["shop"][2][:-1]) < 100  # 503s sent
    routes = run("--prometheus", url(stack), "--service", "shop", "--by", "route",
                 "--window", "15s")
    route_rows = [line.split() for line in routes.stdout.splitlines()[1:]]
    assert {row[1] for row in route_rows} >= {"/status/{id}", "/users/{id}", "/bytes/{id}"}
    status = next(row for row in route_rows if row[1] == "/status/{id}")
    assert status[3] == "0.00%"  # every /status/503 failed
    nodes = run("nodes", "--prometheus", url(stack), "--window", "15s")
    assert nodes.returncode == 0, nodes.stderr
    header, node = nodes.stdout.splitlines()[:2]
    assert header.split()[:3] == ["INSTANCE", "CPU", "CPU-PSI"]
    assert node.split()[0].startswith("127.0.0.1:") and node.split()[1].endswith("%")


def test_unreachable_prometheus_is_a_clear_error() -> None:
    result = run("--prometheus", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 2
    assert "cannot reach Prometheus at http://127.0.0.1:" in result.stderr


def test_no_redline_metrics_is_a_clear_error() -> None:
    def empty(prometheus: str, expr: str) -> list[dict[str, Any]]:
        return []

    with pytest.raises(ConfigError, match="has no RED metrics in the last 1m"):
        stat(StatConfig("http://p:9090"), run_query=empty)
    with pytest.raises(ConfigError, match="has no node_cpu_seconds_total"):
        stat(StatConfig("http://p:9090", what="nodes"), run_query=empty)
