"""statsd, --scrape and --json-url against a real `redline adapter` process."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import promtool_check_metrics
from tests.process import SidecarProcess

MAPPING = """
mappings:
  - match: "shop.http.*.*.*"
    name: request
    labels: {method: "$1", route: "/$2", status: "$3"}
  - match: "shop.req"
    name: request
  - match: "legacy_http_latency_seconds"
    name: request
    labels: {method: "${verb}", route: "${handler}", status: "${code}"}
  - match: "legacy_http_requests_total"
    name: request
    labels: {method: "${verb}", route: "${handler}", status: "${code}"}
  - match: "requests.*.*"
    name: request
    labels: {route: "/$1", status: "$2", method: "GET"}
  - match: "db.state"
    name: shop_db_up
    value_map: {ok: 1, down: 0}
  - match: "queue.depth"
    name: shop_queue_depth
"""


class Adapter(SidecarProcess):
    def __init__(self, *args: str) -> None:
        super().__init__("adapter", *args, started="adapter started")


@pytest.fixture
def mapping(tmp_path: Path) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(MAPPING)
    return path


def test_statsd_timers_counters_and_garbage(mapping: Path) -> None:
    adapter = Adapter("--statsd", "127.0.0.1:0", "--mapping", str(mapping))
    port = int(str(adapter.started["statsd"]))
    try:
        packets = [
            b"shop.http.GET.users.200:12|ms\nshop.http.GET.users.200:30|ms",
            b"shop.http.POST.orders.503:1|c|@0.5",
            b"shop.req:250|ms|#method:PUT,route:/carts/42,status:201",  # DogStatsD tags
            b"\x00\x01\x02 not statsd",
            b"shop.http.GET.users.200:abc|ms",
            b"no.rule.for.me:1|c",
        ]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for packet in packets:
                sock.sendto(packet, ("127.0.0.1", port))
        assert adapter.wait_recorded(3) == 3
        assert adapter.requests_recorded(http_route="/users") == 2
        assert adapter.requests_recorded(http_route="/carts/{id}", http_request_method="PUT",
                                         http_response_status_code="201") == 1
        assert adapter.wait_value("redline_untimed_requests_total", 2, error_type="503") == 2
        assert adapter.wait_value("redline_adapter_parse_errors_total", 2) == 2
        assert adapter.value("redline_adapter_unmapped_total") == 1
        assert adapter.value("redline_adapter_source_up") == 1
        promtool_check_metrics(adapter.metrics_text().encode())
    finally:
        assert adapter.stop() == 0


class App(ThreadingHTTPServer):
    """An app exposing what the test sets: a body, or nothing (down)."""

    daemon_threads = True

    def __init__(self) -> None:
        app = self
        self.body = b""
        self.content_type = "text/plain"

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", app.content_type)
                self.send_header("Content-Length", str(len(app.body)))
                self.end_headers()
                self.wfile.write(app.body)

        super().__init__(("127.0.0.1", 0), Handler)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.fixture
def app() -> Iterator[App]:
    server = App()
    yield server
    server.shutdown()
    server.server_close()


LEGACY = """# HELP legacy_http_latency_seconds Latency.
# TYPE legacy_http_latency_seconds histogram
legacy_http_latency_seconds_bucket{verb="GET",handler="/users/7",code="200",le="0.1"} 3
legacy_http_latency_seconds_bucket{verb="GET",handler="/users/7",code="200",le="1"} 5
legacy_http_latency_seconds_bucket{verb="GET",handler="/users/7",code="200",le="+Inf"} 6
legacy_http_latency_seconds_sum{verb="GET",handler="/users/7",code="200"} 4.5
legacy_http_latency_seconds_count{verb="GET",handler="/users/7",code="200"} 6
legacy_http_latency_seconds_bucket{verb="GET",handler="/users/8",code="200",le="0.1"} 1
legacy_http_latency_seconds_bucket{verb="GET",handler="/users/8",code="200",le="1"} 1
legacy_http_latency_seconds_bucket{verb="GET",handler="/users/8",code="200",le="+Inf"} 1
legacy_http_latency_seconds_sum{verb="GET",handler="/users/8",code="200"} 0.05
legacy_http_latency_seconds_count{verb="GET",handler="/users/8",code="200"} 1
# HELP other_metric Not mapped.
# TYPE other_metric gauge
other_metric 1
"""


def test_scrape_renames_the_apps_own_metrics(app: App, mapping: Path) -> None:
    app.body = LEGACY.encode()
    adapter = Adapter("--scrape", f"http://127.0.0.1:{app.port}/metrics", "--mapping",
                      str(mapping), "--fetch-timeout", "1")
    try:
        labels = {"http_route": "/users/{id}", "http_request_method": "GET",
                  "http_response_status_code": "200"}
        # Two source series with the same route template add up.
        assert adapter.requests_recorded(**labels) == 7
        assert adapter.value("http_server_request_duration_seconds_bucket", le="0.1",
                             **labels) == 4
        assert adapter.value("http_server_request_duration_seconds_sum", **labels) == 4.55
        assert adapter.value("redline_adapter_unmapped_names") == 1  # other_metric
        promtool_check_metrics(adapter.metrics_text().encode())
        app.body = b"this is { not the exposition format"
        status, _ = adapter.admin("/metrics")
        assert status == 200  # still answering
        assert adapter.value("redline_adapter_source_up") == 0
        assert adapter.value("redline_adapter_parse_errors_total") >= 1
    finally:
        assert adapter.stop() == 0


def test_json_stats_with_value_map_garbage_and_down(app: App, mapping: Path) -> None:
    app.content_type = "application/json"
    app.body = json.dumps({"requests": {"checkout": {"200": 120, "503": 4}},
                           "db": {"state": "ok"}, "queue": {"depth": 17}}).encode()
    adapter = Adapter("--json-url", f"http://127.0.0.1:{app.port}/stats", "--mapping",
                      str(mapping))
    try:
        assert adapter.value("redline_untimed_requests_total", http_route="/checkout",
                             http_response_status_code="200") == 120
        assert adapter.value("redline_untimed_requests_total", error_type="503") == 4
        assert adapter.value("shop_db_up") == 1
        assert adapter.value("shop_queue_depth") == 17
        promtool_check_metrics(adapter.metrics_text().encode())
        app.body = json.dumps({"db": {"state": "on fire"}}).encode()
        errors = adapter.value("redline_adapter_parse_errors_total")
        assert errors >= 1  # "on fire" is in no value_map
        app.body = b"<html>not json</html>"
        assert adapter.value("redline_adapter_parse_errors_total") > errors
        app.shutdown()
        app.server_close()
        started = time.monotonic()
        status, _ = adapter.admin("/metrics")
        assert status == 200 and time.monotonic() - started < 5
        assert adapter.value("redline_adapter_source_up") == 0
    finally:
        assert adapter.stop() == 0


def test_once_fetches_the_json_stats_once_and_exits(app: App, mapping: Path) -> None:
    app.content_type = "application/json"
    app.body = json.dumps({"requests": {"checkout": {"200": 9}}}).encode()
    result = subprocess.run(
        [sys.executable, "-m", "redline.cli", "adapter", "--service", "shop", "--json-url",
         f"http://127.0.0.1:{app.port}/stats", "--mapping", str(mapping), "--once"],
        capture_output=True, timeout=60, check=True)
    samples = {(s.name, s.labels.get("http_route"), s.labels.get("source")): s.value
               for family in text_string_to_metric_families(result.stdout.decode())
               for s in family.samples}
    assert samples[("redline_untimed_requests_total", "/checkout", None)] == 9
    assert samples[("redline_adapter_source_up", None, f"http://127.0.0.1:{app.port}/stats")] == 1
    promtool_check_metrics(result.stdout)
