"""`redline stat` against the real Prometheus of the end-to-end stack, and its errors."""

from __future__ import annotations

import http.server
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from redline.config import ConfigError
from redline.queries import Grouping
from redline.stat.command import StatConfig, query, stat, window
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


def test_prometheus_own_error_is_shown_for_a_query_it_refuses(
        stack: dict[str, Any]) -> None:  # noqa: F811
    """Prometheus answers 400 with its reason in JSON; that reason is the message, not a guess
    that the URL is something else."""
    with pytest.raises(ConfigError) as raised:
        query(url(stack), "rate(http_server_request_duration_seconds_count[5m]")
    message = str(raised.value)
    assert message.startswith(f"--prometheus: Prometheus at {url(stack)} refused a query (400):")
    assert "bad_data: " in message and "parse error" in message
    assert "is it Prometheus?" not in message


class _NotPrometheus(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html>Bad Request</html>"
        self.send_response(400)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # no request lines in the test output
        pass


@pytest.fixture
def not_prometheus() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotPrometheus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_400_without_prometheus_error_json_asks_whether_it_is_prometheus(
        not_prometheus: str) -> None:
    result = run("--prometheus", not_prometheus)
    assert result.returncode == 2
    assert f"--prometheus: {not_prometheus} answered 400 to a query without Prometheus' " \
           f"error JSON; is it Prometheus?" in result.stderr


@pytest.mark.parametrize(("value", "reason"), [
    ("5", "'5': a duration needs a unit (5s for seconds, 5m for minutes)"),
    ("30s1m", "largest first), got '30s1m'"),
    ("0m", "'0m': a rate needs a window above zero"),
    ("1 m", "got '1 m'"),
])
def test_window_without_a_valid_unit_names_the_flag(value: str, reason: str) -> None:
    result = run("--window", value)
    assert result.returncode == 2
    assert "redline stat: error: argument --window: expected a PromQL duration" in result.stderr
    assert reason in result.stderr
    assert "Traceback" not in result.stderr and "answered" not in result.stderr


def test_windows_prometheus_accepts() -> None:
    for text in ("30s", "1m", "1h30m", "500ms", "1d", "2w", "1y", "90s"):
        assert window(text) == text


def _answers(by_cluster: bool) -> tuple[list[str], Any]:
    """A fake query API: every column answers one row per cluster (or one without the label)
    for checkout; the queries asked are kept."""
    asked: list[str] = []

    def run_query(prometheus: str, expr: str) -> list[dict[str, Any]]:
        asked.append(expr)
        clusters = ["a", "b"] if by_cluster else [None]
        return [{"metric": {"service_name": "checkout",
                            **({"cluster": c} if c else {})}, "value": [0, "0.5"]}
                for c in clusters]
    return asked, run_query


def test_rows_are_per_cluster_where_series_have_the_label() -> None:
    asked, run_query = _answers(by_cluster=True)
    lines = stat(StatConfig("http://vm:8428"), run_query=run_query).splitlines()
    assert lines[0].split() == ["CLUSTER", "SERVICE", "RPS", "SUCCESS", "P50", "P95", "P99"]
    assert [line.split()[:2] for line in lines[1:]] == [["a", "checkout"], ["b", "checkout"]]
    assert all("by (cluster, service_name)" in e or "by (le, cluster, service_name)" in e
               for e in asked)


def test_one_prometheus_has_no_cluster_column() -> None:
    _, run_query = _answers(by_cluster=False)
    lines = stat(StatConfig("http://p:9090"), run_query=run_query).splitlines()
    assert lines[0].split()[0] == "SERVICE"


@pytest.mark.parametrize("what", ["services", "nodes", "containers"])
def test_cluster_flag_chooses_one_in_every_query(what: str) -> None:
    asked, run_query = _answers(by_cluster=True)
    stat(StatConfig("http://vm:8428", what=what, cluster="a", grouping=Grouping("region")),
         run_query=run_query)
    selectors = [m for e in asked for m in re.findall(r"\w+\{[^}]*\}", e)]
    assert selectors and all('region="a"' in s for s in selectors), selectors


def test_a_cluster_without_data_is_named_in_the_error() -> None:
    def empty(prometheus: str, expr: str) -> list[dict[str, Any]]:
        return []

    with pytest.raises(ConfigError, match="has no RED metrics for cluster 'c' in the last 1m"):
        stat(StatConfig("http://vm:8428", cluster="c"), run_query=empty)
