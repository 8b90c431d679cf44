"""The replay's IO shell with Prometheus' answers faked (the real one: test_prometheus.py):
subqueries over the range, gaps, the starting replicas, errors; and the text it prints."""

from __future__ import annotations

from typing import Any

import pytest

from redline.autoscale.chart import chart, table
from redline.autoscale.hpa import desired_replicas
from redline.autoscale.model import Scaling, Target, Workload
from redline.autoscale.replay import ReplayConfig, current_values, replay
from redline.config import ConfigError

RATE = Target("requests_per_second_per_pod", 50)
SCALING = Scaling(Workload("Deployment", "checkout", "shop"), 2, 6, (RATE,))


def prometheus(values: list[dict[str, Any]], pods: list[dict[str, Any]] | None = None
               ) -> tuple[Any, list[str]]:
    """A query function answering the pods' count with `pods`, the rest with `values`; the
    queries it got."""
    asked: list[str] = []

    def run(url: str, expr: str) -> list[dict[str, Any]]:
        asked.append(expr)
        return (pods or []) if expr.startswith("(count by") else values

    return run, asked


def matrix(*points: tuple[float, str]) -> list[dict[str, Any]]:
    return [{"metric": {"service_name": "checkout"}, "values": [list(p) for p in points]}]


def test_values_feed_the_hpa_on_the_step_grid_with_gaps_as_missing() -> None:
    run, asked = prometheus(matrix((0, "100"), (30, "400"), (45, "NaN")),  # 15 s: none
                            pods=matrix((0, "3"), (30, "3")))
    result = replay("checkout", SCALING, ReplayConfig(since="5m", step=15), run)
    assert asked[0].endswith(")[5m:15s]") and 'service_name="checkout"' in asked[0]
    assert asked[1].startswith("(count by (cluster, service_name) (count by (cluster, "
                                "service_name, instance)")
    assert result.times == (0, 15, 30)
    assert result.values == {RATE.key: [100.0, None, 400.0]}
    assert result.observed == [3.0, None, 3.0]
    # starts at the 3 pods seen: 100 / 150 = 0.67 -> 2; no metric; ceil(400 / 50) = 8 -> 6
    assert [(d.current, d.replicas, d.reason) for d in result.decisions] == [
        (3, 2, ""), (2, 2, "no metric"), (2, 6, "max replicas")]


def test_the_start_is_the_flag_else_the_pods_seen_else_min_replicas() -> None:
    run, _ = prometheus(matrix((0, "100")))
    assert replay("checkout", SCALING, ReplayConfig(), run).decisions[0].current == 2
    assert replay("checkout", SCALING, ReplayConfig(replicas=5), run).decisions[0].current == 5


def test_no_data_and_several_series_are_errors_that_say_what_to_do() -> None:
    run, _ = prometheus([])
    with pytest.raises(ConfigError, match="has no data for service 'checkout' in the last 1h"):
        replay("checkout", SCALING, ReplayConfig(), run)
    two = matrix((0, "1")) + matrix((0, "2"))
    run, _ = prometheus(two)
    with pytest.raises(ConfigError, match=r"checkout: requests_per_second_per_pod: the query "
                                          r"returned 2 series, expected one; add labels"):
        replay("checkout", SCALING, ReplayConfig(), run)


def test_the_table_keeps_the_changes_and_the_chart_draws_the_replicas() -> None:
    points = [(i * 15.0, str(v)) for i, v in enumerate([100, 100, 400, 400, 400, 100])]
    run, _ = prometheus(matrix(*points))
    result = replay("checkout", SCALING, ReplayConfig(replicas=2), run)
    # 2 at 50 per pod; 400 asks ceil(400 / 50) = 8, capped at 6; at 75 s 100 / 6 = 16.67
    # asks for 2, held by the 300 s scale-down window (the table shows the changes only)
    assert table(result).splitlines() == [
        "TIME (UTC)  RPS/POD  PODS  WANT  REPLICAS  NOTE",
        "00:00:00    50.00    -     2     2",
        "00:00:30    200.00   -     8     6         max replicas",
        "00:01:15    16.67    -     2     6         scale-down stabilized",
    ]
    assert chart(result, height=3).splitlines() == [
        "6 |  ####",
        "4 |  ####",
        "2 |######",
        "  +------",
        "   00:00:00 00:01:15",
    ]


def test_current_values_feed_desired_replicas_as_the_demo_calls_them() -> None:
    latency = Target("latency_p95_seconds", 0.25)
    both = Scaling(SCALING.workload, 2, 6, (RATE, latency))
    asked: list[str] = []

    def run(url: str, expr: str) -> list[dict[str, Any]]:
        asked.append(expr)
        value = "NaN" if "histogram_quantile" in expr else "230"
        return [{"metric": {"service_name": "checkout"}, "value": [0, value]}]

    values = current_values("checkout", both, "http://p:9090", run)
    assert values == {RATE.key: 230.0}  # NaN is no value
    assert len(asked) == 2 and all('service_name="checkout"' in q for q in asked)
    assert desired_replicas(both, values, current=2) == 5  # ceil(230 / 50)
