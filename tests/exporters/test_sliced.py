"""redline's exposition, written a piece at a time from the instruments, gives prometheus_client's
bytes in both formats (OpenMetrics with exemplars too), whatever the registry holds."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from redline.exporters import instruments, red
from redline.exporters.exposition import collectors_of, new_registry, render
from redline.exporters.routes import RouteTemplater
from redline.exporters.rpc import RpcServerRecorder
from redline.exporters.sliced import SERIES_PER_PIECE, pieces
from redline.exporters.tcp import TcpRecorder
from redline.exporters.textformat import FallbackError

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
# Accept headers of Prometheus 2 and 3 and of curl; prometheus_client's encoder for each is
# what the bytes are compared with.
ACCEPTS = ["", "*/*", "text/plain; version=0.0.4", "text/plain;version=1.0.0;escaping=allow-utf-8",
           OPENMETRICS, "application/openmetrics-text",
           "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
           "application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=0.0.4;q=0.3"]


def expected(registry: Collector, accept: str) -> bytes:
    encoder: Callable[[Collector], bytes] = choose_encoder(accept)[0]
    return encoder(registry)


def sidecar_registry(label_value: str = 'route\\with"quotes\nand newline') -> Collector:
    routes = RouteTemplater(max_routes=2)
    server = red.ServerRecorder("shop", record_sizes=True, routes=routes)
    client = red.ClientRecorder("shop")
    tcp = TcpRecorder("shop")
    rpc = RpcServerRecorder("shop", max_methods=1)
    for i, status in enumerate([200, 404, 500, 503, None, 42]):
        route = routes.route(f"/r{i}/{i}")
        server.request_started("GET")
        server.request_finished("GET", route.template if route else "", status, i / 3,
                                error=None if status else "client_closed",
                                request_bytes=10 * i, response_bytes=100 * i,
                                trace_id=f"{i:032x}" if i % 2 else None)
        server.record('PO"ST', label_value, 201, math.inf if i == 5 else 12345678.9)
        server.count_untimed("GET", label_value, 201)
        client.request_finished("GET", "db", 5432, status, i / 7, trace_id="ab\"c")
        tcp.closed("http", i / 5, "" if i % 2 else "connection_reset")
        service, method = rpc.method(f"/pkg.Svc/M{i}".encode())
        rpc.call_finished(service, method, i % 17, i / 11, trace_id="cafe")
    server.duration.child(("GET", 200, "/never", "http", ""))  # created, never observed
    return new_registry("test", server.collector(), client.collector(), tcp.collector(),
                        rpc.collector())


@pytest.mark.parametrize("accept", ACCEPTS)
def test_sidecar_registries_render_identically(accept: str) -> None:
    registry = sidecar_registry()
    assert render(registry, accept)[0] == expected(registry, accept)


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=12), st.sampled_from(list(ACCEPTS)))
def test_property_any_label_value_renders_identically(value: str, accept: str) -> None:
    registry = sidecar_registry(value)
    assert render(registry, accept)[0] == expected(registry, accept)


def test_folded_series_render_identically_and_in_many_pieces() -> None:
    server = red.ServerRecorder("shop")
    server.collector().cap_series(instruments.SeriesCap(5 * SERIES_PER_PIECE))
    for i in range(6 * SERIES_PER_PIECE):
        server.record("GET", f"/r{i}", 200 + i % 3, i / 1000, trace_id="f" * 32)
    registry = new_registry("test", server.collector())
    parts, _ = pieces(collectors_of(registry), OPENMETRICS)
    listed = list(parts)
    assert len(listed) > 5  # a piece per SERIES_PER_PIECE series, not one for the family
    assert b"".join(listed) == expected(registry, OPENMETRICS)
    assert b'http_route="_OTHER"' in b"".join(listed)


def test_anything_unusual_falls_back_to_prometheus_client() -> None:
    registry = CollectorRegistry()
    Counter("plain_events", "Events.", ["kind"], registry=registry).labels("a").inc()
    Gauge("odd:name", "Gauge with a colon.", registry=registry).set(3)
    Histogram("h_seconds", "Histogram.", registry=registry).observe(0.3)  # with _created
    Info("build", "Build.", registry=registry).info({"version": "1"})
    for accept in ACCEPTS:
        assert render(registry, accept)[0] == expected(registry, accept)
    with pytest.raises(FallbackError):
        b"".join(pieces([registry], OPENMETRICS)[0])


def test_other_escapings_are_left_to_prometheus_client() -> None:
    registry = sidecar_registry()
    accept = "application/openmetrics-text;version=1.0.0;escaping=dots"
    with pytest.raises(FallbackError):
        pieces(collectors_of(registry), accept)
    body, content_type = render(registry, accept)
    assert b"http__server__request__duration__seconds" in body and "escaping=dots" in content_type
