"""The demo's behaviour: realistic shapes, and log lines the adapter reads."""

from __future__ import annotations

import random
import statistics

import pytest

from redline.demo.behaviour import (
    APP_ROUTES,
    LATENCY_CAP_S,
    access_log_line,
    choose,
    concrete_path,
    fails,
    latency,
    routes_for,
)
from redline.sidecars.adapter.formats import make_format

ROUTE = {route.template: route for route in APP_ROUTES}


def test_latency_is_centred_on_the_median_and_search_has_the_heavy_tail() -> None:
    rng = random.Random(1)
    items = [latency(ROUTE["/api/items"], rng) for _ in range(20_000)]
    search = [latency(ROUTE["/api/search"], rng) for _ in range(20_000)]
    assert statistics.median(items) == pytest.approx(0.004, rel=0.05)
    p99 = statistics.quantiles(search, n=100)[98]
    assert p99 / statistics.median(search) > 10  # heavy tail: p99 an order above p50
    assert max(search) <= LATENCY_CAP_S


def test_error_ratios_and_load_weights_follow_the_table() -> None:
    rng = random.Random(2)
    checkout = ROUTE["/api/checkout"]
    failures = sum(fails(checkout, rng) for _ in range(50_000))
    assert failures / 50_000 == pytest.approx(0.04, abs=0.005)
    picked = [choose(APP_ROUTES, rng).template for _ in range(50_000)]
    assert picked.count("/api/items") / 50_000 == pytest.approx(0.40, abs=0.01)
    assert picked.count("/api/checkout") / 50_000 == pytest.approx(0.15, abs=0.01)


def test_id_paths_are_many_distinct_paths_of_one_route() -> None:
    rng = random.Random(3)
    paths = {concrete_path(ROUTE["/api/items/{id}"], rng) for _ in range(1000)}
    assert len(paths) > 900
    assert all(p.startswith("/api/items/") and p.rsplit("/", 1)[1].isdigit() for p in paths)


def test_access_log_line_is_read_by_the_adapters_nginx_format() -> None:
    line = access_log_line("10.0.0.7", "POST", "/api/checkout?x=1", 502, 31, 0.1234,
                           'curl "quoted"/8', now=0)
    events, errors = make_format("nginx").parse_block(line)
    assert errors == 0
    assert events[0][:3] == ("POST", "/api/checkout", 502)
    assert events[0][3] == pytest.approx(0.123)
    assert "[01/Jan/1970:00:00:00 +0000]" in line


def test_unknown_role_names_the_flag() -> None:
    with pytest.raises(ValueError, match="--role: expected app or dependency, got 'db'"):
        routes_for("db")
