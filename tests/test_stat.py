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
    # A window that holds the whole load: each `redline stat` here runs 10 queries, and on a
    # busy machine the last may come more than 15 s after the load ended.
    services = run("--prometheus", url(stack), "--window", "1m")
    assert services.returncode == 0, services.stderr
    lines = services.stdout.splitlines()
    # shop also serves gRPC (tests/dashboards/grpc_load.py): a row per protocol
    assert lines[0].split() == ["SERVICE", "PROTOCOL", "RPS", "SUCCESS", "P50", "P95", "P99"]
    rows = {tuple(line.split()[:2]): line.split()[2:] for line in lines[1:]}
    assert set(rows) == {("shop", "http"), ("shop", "grpc"), ("web", "http"),
                         ("other", "http")}  # other: its rejected requests
    for protocol in ("http", "grpc"):
        rps, success = rows[("shop", protocol)][:2]
        assert float(rps) > 0
        assert success.endswith("%") and float(success[:-1]) < 100  # 503s, INTERNAL sent
    routes = run("--prometheus", url(stack), "--service", "shop", "--by", "route",
                 "--window", "1m")
    assert routes.stdout.splitlines()[0].split()[:3] == ["SERVICE", "PROTOCOL", "ROUTE"]
    route_rows = {row[2]: row for row in map(str.split, routes.stdout.splitlines()[1:])}
    assert set(route_rows) >= {"/status/{id}", "/users/{id}", "/bytes/{id}",
                               "/shop.Catalog/GetItem", "/shop.Catalog/Reserve"}
    assert route_rows["/status/{id}"][4] == "0.00%"  # every /status/503 failed
    # gRPC methods as their paths: NOT_FOUND is not a failure, INTERNAL and UNAVAILABLE are
    assert route_rows["/shop.Catalog/GetItem"][1] == "grpc"
    assert route_rows["/shop.Catalog/GetItem"][4] == "100.00%"
    assert 20 < float(route_rows["/shop.Catalog/Reserve"][4][:-1]) < 50  # 1 call in 3 is OK
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
        if "rpc_" in expr:
            return []  # no gRPC here
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


def test_grpc_rows_beside_http_ones() -> None:
    """A service of both protocols has a row for each, gRPC methods written as their paths;
    a gRPC-only service is listed; the PROTOCOL column comes with the first gRPC row."""
    def run_query(prometheus: str, expr: str) -> list[dict[str, Any]]:
        if "rpc_" in expr:
            return [{"metric": {"service_name": name, "rpc_service": "shop.Catalog",
                                "rpc_method": "GetItem"}, "value": [0, "0.75"]}
                    for name in ("checkout", "inventory")]
        return [{"metric": {"service_name": "checkout", "http_route": "/api/items"},
                 "value": [0, "0.5"]}]

    by_service = stat(StatConfig("http://p:9090"), run_query=run_query).splitlines()
    assert [line.split()[:3] for line in by_service] == [
        ["SERVICE", "PROTOCOL", "RPS"], ["checkout", "grpc", "0.8"], ["checkout", "http", "0.5"],
        ["inventory", "grpc", "0.8"]]
    by_route = stat(StatConfig("http://p:9090", by_route=True), run_query=run_query)
    assert [line.split()[:3] for line in by_route.splitlines()] == [
        ["SERVICE", "PROTOCOL", "ROUTE"], ["checkout", "grpc", "/shop.Catalog/GetItem"],
        ["checkout", "http", "/api/items"], ["inventory", "grpc", "/shop.Catalog/GetItem"]]


def test_grpc_only_prometheus_is_not_missing_red_metrics() -> None:
    def grpc_only(prometheus: str, expr: str) -> list[dict[str, Any]]:
        return [{"metric": {"service_name": "inventory"}, "value": [0, "2"]}] \
            if "rpc_" in expr else []

    lines = stat(StatConfig("http://p:9090"), run_query=grpc_only).splitlines()
    assert [line.split()[:2] for line in lines] == [["SERVICE", "PROTOCOL"],
                                                    ["inventory", "grpc"]]
