"""redline's text renderer gives prometheus_client's bytes, whatever the registry holds."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client import utils as prometheus_utils

from redline.exporters import red
from redline.exporters.exposition import new_registry
from redline.exporters.node.collectors import COLLECTORS, NodeCollector, Roots
from redline.exporters.routes import RouteTemplater
from redline.exporters.textformat import TextRenderer
from redline.exporters.textformat import number as _number

# prometheus_client's formatter has no annotations; typed here for the comparisons below.
go_float: Callable[[float], str] = prometheus_utils.floatToGoString


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_numbers_are_formatted_as_go_does(value: float) -> None:
    assert _number(value) == go_float(value)


def test_special_numbers() -> None:
    for value in (0.0, -0.0, 1e15, -1e15, 1234567.0, 12345678.9, math.inf, -math.inf, math.nan):
        assert _number(value) == go_float(value)


def test_sidecar_registries_render_identically() -> None:
    routes = RouteTemplater(max_routes=2)
    server = red.ServerRecorder("shop", record_sizes=True, routes=routes)
    client = red.ClientRecorder("shop")
    for i, status in enumerate([200, 404, 500, 503, None]):
        route = routes.route(f"/r{i}/{i}")
        server.request_started("GET")
        server.request_finished("GET", route.template if route else "", status, i / 3,
                                error=None if status else "client_closed",
                                request_bytes=10 * i, response_bytes=100 * i)
        server.count_untimed('PO"ST', 'route\\with"quotes\nand newline', 201)
        client.request_finished("GET", "db", 5432, status, i / 7)
    tree = Path(__file__).parent / "use" / "fixtures" / "psi"  # values that do not move
    node = NodeCollector(Roots(str(tree / "proc"), str(tree / "sys"), str(tree / "root")),
                         [name for name in COLLECTORS if name != "filesystem"])
    registry = new_registry("test", server.collector(), client.collector(), node)
    rendered = TextRenderer()(registry)
    expected = generate_latest(registry)

    def stable(text: bytes) -> list[bytes]:  # collector durations differ between two renders
        return [line for line in text.splitlines()
                if not line.startswith(b"node_scrape_collector_duration_seconds{")]

    assert stable(rendered) == stable(expected)


def test_anything_unusual_falls_back_to_prometheus_client() -> None:
    registry = CollectorRegistry()
    Counter("plain_events", "Events.", ["kind"], registry=registry).labels("a").inc()
    Gauge("g", "Gauge.", registry=registry).set(3)
    Histogram("h_seconds", "Histogram.", registry=registry).observe(0.3)  # with _created
    Info("build", "Build.", registry=registry).info({"version": "1"})
    assert TextRenderer()(registry) == generate_latest(registry)
