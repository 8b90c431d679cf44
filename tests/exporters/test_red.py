"""The RED recorders, from the user's side: what a scrape of their registry shows."""

from __future__ import annotations

import math

import pytest

from redline.exporters import red
from redline.exporters.exposition import Registry, new_registry, render
from redline.exporters.routes import RouteTemplater
from tests.conftest import promtool_check_metrics

OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def server_labels(**overrides: str) -> dict[str, str]:
    labels = {
        "service_name": "shop", "http_request_method": "GET", "http_response_status_code": "200",
        "http_route": "/", "url_scheme": "http", "error_type": "",
    }
    labels.update(overrides)
    return labels


@pytest.fixture
def recorder() -> red.ServerRecorder:
    return red.ServerRecorder("shop")


@pytest.fixture
def registry(recorder: red.ServerRecorder) -> Registry:
    return new_registry("test", recorder.collector())


def count(registry: Registry, **labels: str) -> float | None:
    return registry.get_sample_value(
        "http_server_request_duration_seconds_count", server_labels(**labels)
    )


@pytest.mark.parametrize(
    ("method", "expected"),
    [("GET", "GET"), (b"POST", "POST"), ("PATCH", "PATCH"), ("OPTIONS", "OPTIONS"),
     ("get", "_OTHER"), ("PURGE", "_OTHER"), (b"PROPFIND", "_OTHER"), ("", "_OTHER")],
)
def test_methods_outside_the_standard_set_become_other(method: str | bytes, expected: str) -> None:
    assert red.normalize_method(method) == expected


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (200, None, ""), (304, None, ""), (404, None, ""), (499, None, ""),
        (500, None, "500"), (503, None, "503"),
        (502, "connection_refused", "connection_refused"),
        (502, "connection_reset", "connection_reset"),
        (504, "timeout", "timeout"), (400, "bad_request", "bad_request"),
        (None, "client_closed", "client_closed"), (200, "client_closed", "client_closed"),
        (502, "tls_handshake", "_OTHER"),
        (600, None, "_OTHER"), (999, None, "_OTHER"), (99, None, "_OTHER"), (0, None, "_OTHER"),
    ],
)
def test_error_type_derivation(status: int | None, error: str | None, expected: str) -> None:
    assert red.error_type(status, error) == expected


def test_each_request_lands_in_its_series(
    recorder: red.ServerRecorder, registry: Registry
) -> None:
    recorder.record("GET", "/users/{id}", 200, 0.02)
    recorder.record("GET", "/users/{id}", 200, 0.03)
    recorder.record("GET", "/users/{id}", 404, 0.01)
    recorder.record(b"DELETE", "/users/{id}", 503, 0.2, scheme="https")
    assert count(registry, http_route="/users/{id}") == 2
    assert count(registry, http_route="/users/{id}", http_response_status_code="404") == 1
    assert count(registry, http_route="/users/{id}", http_request_method="DELETE",
                 http_response_status_code="503", url_scheme="https", error_type="503") == 1
    total = registry.get_sample_value(
        "http_server_request_duration_seconds_sum", server_labels(http_route="/users/{id}"))
    assert total == pytest.approx(0.05)


def test_a_value_on_a_bucket_boundary_counts_in_that_bucket(
    recorder: red.ServerRecorder, registry: Registry
) -> None:
    recorder.record("GET", "/", 200, 0.1)
    def bucket(le: str) -> float | None:
        return registry.get_sample_value(
            "http_server_request_duration_seconds_bucket", {**server_labels(), "le": le})
    assert bucket("0.075") == 0
    assert bucket("0.1") == 1
    assert bucket("+Inf") == 1


def test_slow_requests_land_in_inf_only(
    recorder: red.ServerRecorder, registry: Registry
) -> None:
    recorder.record("GET", "/", 200, 42.0)
    labels = {**server_labels(), "le": "10.0"}
    assert registry.get_sample_value("http_server_request_duration_seconds_bucket", labels) == 0
    assert count(registry) == 1


def test_transport_failure_without_status_has_an_empty_status_label(
    recorder: red.ServerRecorder, registry: Registry
) -> None:
    recorder.record("GET", "/", None, 1.5, error="client_closed")
    assert count(registry, http_response_status_code="", error_type="client_closed") == 1


def test_active_requests_go_up_and_down(
    recorder: red.ServerRecorder, registry: Registry
) -> None:
    labels = {"service_name": "shop", "http_request_method": "GET", "url_scheme": "http"}
    recorder.request_started(b"GET")
    recorder.request_started("GET")
    assert registry.get_sample_value("http_server_active_requests", labels) == 2
    recorder.request_finished(b"GET", "/", 200, 0.01)
    assert registry.get_sample_value("http_server_active_requests", labels) == 1
    assert count(registry) == 1


def test_exemplars_only_in_openmetrics(
    recorder: red.ServerRecorder, registry: Registry
) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    recorder.record("GET", "/", 200, 0.02, trace_id=trace_id)
    recorder.record("GET", "/", 200, 0.3)
    body, content_type = render(registry, OPENMETRICS)
    assert content_type.startswith("application/openmetrics-text")
    exemplar_lines = [line for line in body.decode().splitlines() if "trace_id" in line]
    assert len(exemplar_lines) == 1
    assert 'le="0.025"' in exemplar_lines[0]
    assert f'# {{trace_id="{trace_id}"}} 0.02' in exemplar_lines[0]
    body, content_type = render(registry, "text/plain")
    assert content_type.startswith("text/plain")
    assert b"trace_id" not in body
    assert b"http_server_request_duration_seconds_bucket" in body


def test_newest_exemplar_per_bucket_wins(
    recorder: red.ServerRecorder, registry: Registry
) -> None:
    recorder.record("GET", "/", 200, 0.02, trace_id="a" * 32)
    recorder.record("GET", "/", 200, 0.021, trace_id="b" * 32)
    body = render(registry, OPENMETRICS)[0].decode()
    assert "b" * 32 in body and "a" * 32 not in body


def test_body_sizes_are_opt_in() -> None:
    plain = red.ServerRecorder("shop")
    assert b"body_size" not in render(new_registry("t", plain.collector()))[0]
    sized = red.ServerRecorder("shop", record_sizes=True)
    registry = new_registry("t", sized.collector())
    sized.record("POST", "/upload", 201, 0.1, request_bytes=5000, response_bytes=10)
    labels = server_labels(http_request_method="POST", http_route="/upload",
                           http_response_status_code="201")
    assert registry.get_sample_value("http_server_request_body_size_bytes_sum", labels) == 5000
    assert registry.get_sample_value("http_server_response_body_size_bytes_count", labels) == 1


def test_custom_buckets_are_validated() -> None:
    recorder = red.ServerRecorder("shop", buckets=[0.1, 0.3, 1.0])
    registry = new_registry("t", recorder.collector())
    recorder.record("GET", "/", 200, 0.2)
    labels = {**server_labels(), "le": "0.3"}
    assert registry.get_sample_value("http_server_request_duration_seconds_bucket", labels) == 1
    for bad in ([0.3, 0.1], [], [0.0, 1.0], [1.0, 1.0], [math.nan]):
        with pytest.raises(ValueError, match="buckets"):
            red.ServerRecorder("shop", buckets=bad)


def test_empty_service_name_is_refused() -> None:
    with pytest.raises(ValueError, match="service_name"):
        red.ServerRecorder("")


def test_client_recorder_labels() -> None:
    recorder = red.ClientRecorder("shop")
    registry = new_registry("t", recorder.collector())
    recorder.request_started("payments.example", 443)
    active = {"service_name": "shop", "server_address": "payments.example", "server_port": "443"}
    assert registry.get_sample_value("http_client_active_requests", active) == 1
    recorder.request_finished("POST", "payments.example", 443, 502, 0.4, error="connection_reset")
    assert registry.get_sample_value("http_client_active_requests", active) == 0
    labels = {**active, "http_request_method": "POST", "http_response_status_code": "502",
              "error_type": "connection_reset"}
    assert registry.get_sample_value("http_client_request_duration_seconds_count", labels) == 1


def test_route_overflow_is_exported() -> None:
    routes = RouteTemplater(max_routes=1)
    recorder = red.ServerRecorder("shop", routes=routes)
    registry = new_registry("t", recorder.collector())
    for path in ("/a", "/b", "/c", "/c"):
        routes.route(path)
    assert registry.get_sample_value(
        "redline_route_overflow_total", {"service_name": "shop"}) == 3


def test_build_info() -> None:
    registry = new_registry("ambassador")
    body = render(registry)[0].decode()
    assert 'redline_build_info{component="ambassador"' in body


def test_promtool_accepts_a_varied_exposition() -> None:
    routes = RouteTemplater(max_routes=3)
    server = red.ServerRecorder("shop", record_sizes=True, routes=routes)
    client = red.ClientRecorder("shop")
    registry = new_registry("test", server.collector(), client.collector())
    methods: list[str | bytes] = ["GET", "POST", "PUT", "DELETE", "BREW", b"HEAD"]
    statuses: list[int | None] = [200, 201, 204, 301, 404, 429, 500, 503, None]
    errors = [None, None, "timeout", "connection_refused", "client_closed", "bad_request"]
    for i in range(300):
        route = routes.route(f"/r{i % 7}/{i}")
        template = "/{other}" if route is None else route.template
        server.request_started(methods[i % 6])
        server.request_finished(
            methods[i % 6], template, statuses[i % 9], (i % 50) / 10, error=errors[i % 6],
            request_bytes=i * 100, response_bytes=i * 1000, trace_id=f"{i:032x}" if i % 5 else None,
        )
        client.request_started("db.internal", 5432)
        client.request_finished("GET", "db.internal", 5432, statuses[i % 9], i / 100,
                                error=errors[i % 6])
    promtool_check_metrics(render(registry, "text/plain")[0])


def test_status_codes_outside_100_to_599_are_one_series(
    recorder: red.ServerRecorder, registry: Registry
) -> None:
    """An app answering random status codes makes at most one series per valid code, not one
    per number (it made 775 per route)."""
    for status in range(100, 1000):
        recorder.record("GET", "/r", status, 0.01)
    recorder.count_untimed("GET", "/r", 777)
    client = red.ClientRecorder("shop")
    client.request_started("db", 5432)
    client.request_finished("GET", "db", 5432, 1234, 0.01)
    body, _ = render(new_registry("test", recorder.collector(), client.collector()))
    promtool_check_metrics(body)  # no duplicate series either
    assert count(registry, http_route="/r", http_response_status_code="_OTHER",
                 error_type="_OTHER") == 400
    statuses = {sample.labels["http_response_status_code"]
                for family in registry.collect()
                if family.name == "http_server_request_duration_seconds"
                for sample in family.samples}
    assert len(statuses) == 501
