"""The RED service dashboard: rate, errors and duration of one service, by route."""

from __future__ import annotations

from typing import Any

from grafanalib.core import Heatmap, Stat, Table, TableSortByField, TimeSeries

from redline import queries
from redline.dashboards.common import dashboard, query_variable, table_columns, target
from redline.dashboards.layout import Layout
from redline.exporters.red import SERVER_ACTIVE
from redline.queries import HTTP_CLIENT, HTTP_SERVER, eq, regex, series

UID = "redline-red-service"
RATE = "$__rate_interval"
SERVICE = eq("service_name", "$service")
S = (SERVICE, regex("http_route", "$route"))  # the service and the routes chosen
# The RED columns of a table of services or routes: title and unit, queries A to D in order.
RED_COLUMNS = [("Requests/s", "reqps"), ("Errors", "percentunit"), ("p50", "s"), ("p99", "s")]
P99_THRESHOLDS: list[tuple[str, float | None]] = [("green", None), ("orange", 0.5), ("red", 2.5)]


def requests(group: tuple[str, ...] = ()) -> str:
    return queries.requests(HTTP_SERVER, S, group, RATE)


def error_ratio(group: tuple[str, ...] = ()) -> str:
    return queries.error_ratio(HTTP_SERVER, S, group, RATE)


def quantile(q: float, group: tuple[str, ...] = ()) -> str:
    return queries.latency_quantile(q, HTTP_SERVER, S, group, RATE)


def sidecar_health() -> list[str]:
    """Route overflow (labelled by service) and the ambassador's own counters (not labelled:
    kept for the scrape targets of the chosen service only, see queries.of_sidecars)."""
    def own(metric: str) -> str:
        return queries.of_sidecars(queries.rate(metric, RATE), [SERVICE])

    return [queries.sum_rate("redline_route_overflow_total", [SERVICE], (), RATE),
            f"sum by (reason) (\n{own('redline_ambassador_rejected_total')}\n)",
            f"sum(\n{own('redline_ambassador_upstream_retries_total')}\n)"]


def stat(title: str, expr: str, unit: str, thresholds: list[tuple[str, float | None]],
         description: str) -> Stat:
    return Stat(title=title, description=description, targets=[target(expr)], format=unit,
                reduceCalc="lastNotNull", graphMode="area", colorMode="value",
                thresholds=[{"color": color, "value": value} for color, value in thresholds])


def build() -> dict[str, Any]:
    layout = Layout()
    layout.row("Golden signals")
    layout.add(stat("Requests", requests(), "reqps", [("blue", None)],
                    "Requests per second, timed and untimed."), 4, 4)
    layout.add(stat("Errors", error_ratio(), "percentunit",
                    [("green", None), ("orange", 0.001), ("red", 0.01)],
                    "Share of requests with an error_type (5xx and transport failures)."), 4, 4)
    layout.add(stat("p50", quantile(0.5), "s", [("green", None), ("orange", 0.25),
                                                ("red", 1.0)], "Median duration."), 4, 4)
    layout.add(stat("p99", quantile(0.99), "s", P99_THRESHOLDS, "99th percentile duration."),
               4, 4)
    layout.add(stat("Error budget left",
                    series("slo:error_budget:remaining_ratio", SERVICE,
                           eq("slo", "availability")), "percentunit",
                    [("red", None), ("orange", 0.25), ("green", 0.5)],
                    "Of the availability SLO's budget over its period (needs an SLO and "
                    "redline's rules; empty otherwise)."), 4, 4)
    layout.add(stat("In flight", f"sum({series(SERVER_ACTIVE, SERVICE)})", "short",
                    [("blue", None)], "Requests in flight at the ambassador."), 4, 4)

    layout.row("Rate and errors")
    layout.add(TimeSeries(
        title="Requests by status class", unit="reqps", stacking={"mode": "normal"},
        targets=[target(
            f'sum by (class) (label_replace({requests(("http_response_status_code",))}, '
            f'"class", "${{1}}xx", "http_response_status_code", "([0-9]).."))',
            "{{class}}")]), 12, 8)
    layout.add(TimeSeries(
        title="Error ratio by route", unit="percentunit",
        targets=[target(error_ratio(("http_route",)), "{{http_route}}")]), 12, 8)

    layout.row("Duration")
    layout.add(TimeSeries(
        title="Latency", unit="s",
        targets=[target(quantile(0.5), "p50", ref="A"),
                 target(quantile(0.9), "p90", ref="B"),
                 target(quantile(0.99), "p99", ref="C", exemplar=True)]), 12, 8)
    layout.add(Heatmap(
        title="Latency distribution", dataFormat="tsbuckets", hideZeroBuckets=True,
        targets=[target(f"sum by (le) (increase({series(HTTP_SERVER.bucket, S)}[{RATE}]))",
                        "{{le}}", heatmap=True)],
        extraJson={"type": "heatmap", "options": {"calculate": False,
                                                  "yAxis": {"unit": "s"},
                                                  "cellValues": {"unit": "short"}},
                   "fieldConfig": {"defaults": {"unit": "short"}}}), 12, 8)

    layout.row("Routes")
    transformations, units = table_columns("http_route", "Route", RED_COLUMNS)
    layout.add(Table(
        title="Routes", description="Sort by any column.",
        targets=[target(requests(("http_route",)), ref="A", instant=True, table=True),
                 target(error_ratio(("http_route",)), ref="B", instant=True, table=True),
                 target(quantile(0.5, ("http_route",)), ref="C", instant=True, table=True),
                 target(quantile(0.99, ("http_route",)), ref="D", instant=True, table=True)],
        transformations=transformations, overrides=units,
        sortBy=[TableSortByField(displayName="Requests/s", desc=True)]), 24, 9)

    layout.row("Dependencies and sidecar")
    layout.add(TimeSeries(
        title="Outbound calls: p99 by dependency", unit="s",
        targets=[target(queries.latency_quantile(0.99, HTTP_CLIENT, [SERVICE],
                                                 ("server_address",), RATE),
                        "{{server_address}}")]), 12, 8)
    overflow, rejected, retries = sidecar_health()
    layout.add(TimeSeries(
        title="Sidecar health", unit="reqps",
        description="Requests per second: routed to /{other} (route overflow), rejected, and "
                    "retried on a fresh upstream connection (keep-alive race), at the "
                    "ambassadors that serve this service.",
        targets=[target(overflow, "route overflow /s", ref="A"),
                 target(rejected, "rejected: {{reason}}", ref="B"),
                 target(retries, "keep-alive retries /s", ref="C")]), 12, 8)

    return dashboard(
        title="redline / RED service", uid=UID, tags=["redline", "red"],
        description="Rate, errors and duration of one service, from redline's ambassador or "
                    "adapter, OpenTelemetry SDKs or Beyla.",
        panels=layout.panels,
        variables=[
            query_variable("service", "Service",
                           f"label_values({HTTP_SERVER.count}, service_name)"),
            query_variable("route", "Route",
                           f"label_values({series(HTTP_SERVER.count, SERVICE)}, http_route)",
                           include_all=True, multi=True),
        ],
        links=[{"title": "USE nodes", "type": "dashboards", "tags": ["use"],
                "asDropdown": True},
               {"title": "Runbooks", "type": "link", "url": "docs/alerts.md",
                "targetBlank": True}],
    )
