"""The RED service dashboard: rate, errors and duration of one service, by route."""

from __future__ import annotations

from typing import Any

from grafanalib.core import Heatmap, Stat, Table, TableSortByField, TimeSeries

from redline.dashboards.common import dashboard, query_variable, target
from redline.dashboards.layout import Layout
from redline.exporters.red import (
    CLIENT_DURATION,
    SERVER_ACTIVE,
    SERVER_DURATION,
    SERVER_UNTIMED,
)

UID = "redline-red-service"
S = 'service_name="$service",http_route=~"$route"'
RATE = "[$__rate_interval]"
COUNT = f"{SERVER_DURATION}_count"
BUCKET = f"{SERVER_DURATION}_bucket"


def requests(selector: str = S, by: str = "") -> str:
    """Timed and untimed requests per second (access logs without a request time count)."""
    group = f" by ({by})" if by else ""
    if by:
        return (f"sum{group} (\n  label_replace(rate({COUNT}{{{selector}}}{RATE}), "
                f'"source", "histogram", "", "")\n  or\n  label_replace(rate({SERVER_UNTIMED}'
                f'{{{selector}}}{RATE}), "source", "untimed", "", "")\n)')
    return (f"(sum(rate({COUNT}{{{selector}}}{RATE})) or vector(0))\n+ "
            f"(sum(rate({SERVER_UNTIMED}{{{selector}}}{RATE})) or vector(0))")


def quantile(q: float, by: str = "le") -> str:
    return f"histogram_quantile({q}, sum by ({by}) (rate({BUCKET}{{{S}}}{RATE})))"


def stat(title: str, expr: str, unit: str, thresholds: list[tuple[str, float | None]],
         description: str) -> Stat:
    return Stat(title=title, description=description, targets=[target(expr)], format=unit,
                reduceCalc="lastNotNull", graphMode="area", colorMode="value",
                thresholds=[{"color": color, "value": value} for color, value in thresholds])


def build() -> dict[str, Any]:
    errors = f'{S},error_type!=""'
    layout = Layout()
    layout.row("Golden signals")
    layout.add(stat("Requests", requests(), "reqps", [("blue", None)],
                    "Requests per second, timed and untimed."), 4, 4)
    layout.add(stat("Errors", f"({requests(errors)})\n/\n({requests()})", "percentunit",
                    [("green", None), ("orange", 0.001), ("red", 0.01)],
                    "Share of requests with an error_type (5xx and transport failures)."), 4, 4)
    layout.add(stat("p50", quantile(0.5), "s", [("green", None), ("orange", 0.25),
                                                ("red", 1.0)], "Median duration."), 4, 4)
    layout.add(stat("p99", quantile(0.99), "s", [("green", None), ("orange", 0.5),
                                                 ("red", 2.5)], "99th percentile duration."),
               4, 4)
    layout.add(stat("Error budget left",
                    'slo:error_budget:remaining_ratio{service_name="$service",'
                    'slo="availability"}', "percentunit",
                    [("red", None), ("orange", 0.25), ("green", 0.5)],
                    "Of the availability SLO's budget over its period (needs an SLO and "
                    "redline's rules; empty otherwise)."), 4, 4)
    layout.add(stat("In flight", f'sum({SERVER_ACTIVE}{{service_name="$service"}})', "short",
                    [("blue", None)], "Requests in flight at the ambassador."), 4, 4)

    layout.row("Rate and errors")
    layout.add(TimeSeries(
        title="Requests by status class", unit="reqps", stacking={"mode": "normal"},
        targets=[target(
            f'sum by (class) (label_replace(rate({COUNT}{{{S}}}{RATE}), "class", "${{1}}xx", '
            f'"http_response_status_code", "([0-9]).."))', "{{class}}")]), 12, 8)
    layout.add(TimeSeries(
        title="Error ratio by route", unit="percentunit",
        targets=[target(f"sum by (http_route) (rate({COUNT}{{{errors}}}{RATE}))\n/\n"
                        f"sum by (http_route) (rate({COUNT}{{{S}}}{RATE}))",
                        "{{http_route}}")]), 12, 8)

    layout.row("Duration")
    layout.add(TimeSeries(
        title="Latency", unit="s",
        targets=[target(quantile(0.5), "p50", ref="A"),
                 target(quantile(0.9), "p90", ref="B"),
                 target(quantile(0.99), "p99", ref="C", exemplar=True)]), 12, 8)
    layout.add(Heatmap(
        title="Latency distribution", dataFormat="tsbuckets", hideZeroBuckets=True,
        targets=[target(f"sum by (le) (increase({BUCKET}{{{S}}}{RATE}))", "{{le}}")],
        extraJson={"type": "heatmap", "options": {"calculate": False,
                                                  "yAxis": {"unit": "s"}}}), 12, 8)

    layout.row("Routes")
    layout.add(Table(
        title="Routes", description="Sort by any column.",
        targets=[target(requests(by="http_route"), ref="A", instant=True, table=True),
                 target(f"sum by (http_route) (rate({COUNT}{{{errors}}}{RATE}))\n/\n"
                        f"sum by (http_route) (rate({COUNT}{{{S}}}{RATE}))",
                        ref="B", instant=True, table=True),
                 target(quantile(0.5, "le, http_route"), ref="C", instant=True, table=True),
                 target(quantile(0.99, "le, http_route"), ref="D", instant=True, table=True)],
        transformations=[
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {
                "excludeByName": {"Time": True},
                "renameByName": {"http_route": "Route", "Value #A": "Requests/s",
                                 "Value #B": "Errors", "Value #C": "p50",
                                 "Value #D": "p99"}}}],
        sortBy=[TableSortByField(displayName="Requests/s", desc=True)]), 24, 9)

    layout.row("Dependencies and sidecar")
    layout.add(TimeSeries(
        title="Outbound calls: p99 by dependency", unit="s",
        targets=[target(
            f"histogram_quantile(0.99, sum by (le, server_address) (rate({CLIENT_DURATION}"
            f'_bucket{{service_name="$service"}}{RATE})))', "{{server_address}}")]), 12, 8)
    layout.add(TimeSeries(
        title="Sidecar health", unit="short",
        targets=[target(f'sum(rate(redline_route_overflow_total{{service_name="$service"}}'
                        f"{RATE}))", "route overflow /s", ref="A"),
                 target(f"sum by (reason) (rate(redline_ambassador_rejected_total{RATE}))",
                        "rejected: {{reason}}", ref="B"),
                 target(f"sum(rate(redline_ambassador_upstream_retries_total{RATE}))",
                        "keep-alive retries /s", ref="C")]), 12, 8)

    return dashboard(
        title="redline / RED service", uid=UID, tags=["redline", "red"],
        description="Rate, errors and duration of one service, from redline's ambassador or "
                    "adapter, OpenTelemetry SDKs or Beyla.",
        panels=layout.panels,
        variables=[
            query_variable("service", "Service",
                           f"label_values({COUNT}, service_name)"),
            query_variable("route", "Route",
                           f'label_values({COUNT}{{service_name="$service"}}, http_route)',
                           include_all=True, multi=True),
        ],
        links=[{"title": "USE nodes", "type": "dashboards", "tags": ["use"],
                "asDropdown": True},
               {"title": "Runbooks", "type": "link", "url": "docs/alerts.md",
                "targetBlank": True}],
    )
