"""The RED service dashboard: rate, errors and duration of one service, by route, and of its
gRPC calls by method (a service may serve both)."""

from __future__ import annotations

from typing import Any

from grafanalib.core import Heatmap, Stat, TimeSeries

from redline import queries
from redline.dashboards.common import (
    CLUSTER,
    P99_THRESHOLDS,
    cluster_variable,
    dashboard,
    query_variable,
    red_table,
    target,
)
from redline.dashboards.grpc import GrpcQueries, service_panels
from redline.dashboards.layout import Layout
from redline.exporters.red import SERVER_ACTIVE
from redline.queries import (
    DEFAULT,
    GRPC_CLIENT,
    GRPC_SERVER,
    HTTP_CLIENT,
    HTTP_SERVER,
    Grouping,
    any_of,
    eq,
    regex,
    series,
)

UID = "redline-red-service"
RATE = "$__rate_interval"
SERVED = (HTTP_SERVER.count, GRPC_SERVER.count)  # a service is listed for either


class ServiceQueries:
    """One service's queries, in the clusters chosen, one series per cluster."""

    def __init__(self, grouping: Grouping = DEFAULT) -> None:
        self.grouping = grouping
        self.service = [grouping.chosen(CLUSTER), eq("service_name", "$service")]
        self.chosen = [*self.service, regex("http_route", "$route")]  # and the routes chosen

    def legend(self, text: str = "") -> str:
        """`text` and the cluster, last: on one Prometheus (no label) nothing is left over."""
        return f"{text} {{{{{self.grouping.cluster}}}}}".lstrip()

    def by(self, *labels: str) -> tuple[str, ...]:
        return (*self.grouping.only, *labels)

    def requests(self, *group: str) -> str:
        return queries.requests(HTTP_SERVER, self.chosen, self.by(*group), RATE)

    def error_ratio(self, *group: str) -> str:
        return queries.error_ratio(HTTP_SERVER, self.chosen, self.by(*group), RATE)

    def quantile(self, q: float, *group: str) -> str:
        return queries.latency_quantile(q, HTTP_SERVER, self.chosen, self.by(*group), RATE)

    def sidecar_health(self) -> list[str]:
        """Route overflow (labelled by service) and the ambassador's own counters (not
        labelled: kept for the scrape targets of the chosen service only, see
        queries.of_sidecars)."""
        def own(metric: str) -> str:
            selector = series(metric, self.grouping.chosen(CLUSTER))
            return queries.of_sidecars(queries.rate(selector, RATE), self.service,
                                       self.grouping.scrape_target)

        return [queries.sum_rate("redline_route_overflow_total", self.service, self.by(),
                                 RATE),
                queries.aggregate("sum", self.by("reason"),
                                  f"\n{own('redline_ambassador_rejected_total')}\n"),
                queries.aggregate("sum", self.by(),
                                  f"\n{own('redline_ambassador_upstream_retries_total')}\n")]


def stat(title: str, expr: str, unit: str, thresholds: list[tuple[str, float | None]],
         description: str, legend: str) -> Stat:
    return Stat(title=title, description=description, targets=[target(expr, legend)],
                format=unit, reduceCalc="lastNotNull", graphMode="area", colorMode="value",
                thresholds=[{"color": color, "value": value} for color, value in thresholds])


def build(grouping: Grouping = DEFAULT) -> dict[str, Any]:
    q = ServiceQueries(grouping)
    layout = Layout()
    layout.row("Golden signals")
    layout.add(stat("Requests", q.requests(), "reqps", [("blue", None)],
                    "Requests per second, timed and untimed.", q.legend()), 4, 4)
    layout.add(stat("Errors", q.error_ratio(), "percentunit",
                    [("green", None), ("orange", 0.001), ("red", 0.01)],
                    "Share of requests with an error_type (5xx and transport failures).",
                    q.legend()), 4, 4)
    layout.add(stat("p50", q.quantile(0.5), "s", [("green", None), ("orange", 0.25),
                                                  ("red", 1.0)], "Median duration.",
                    q.legend()), 4, 4)
    layout.add(stat("p99", q.quantile(0.99), "s", P99_THRESHOLDS, "99th percentile duration.",
                    q.legend()), 4, 4)
    layout.add(stat("Error budget left",
                    series("slo:error_budget:remaining_ratio", q.service,
                           eq("slo", "availability")), "percentunit",
                    [("red", None), ("orange", 0.25), ("green", 0.5)],
                    "Of the availability SLO's budget over its period (needs an SLO and "
                    "redline's rules; empty otherwise).", q.legend()), 4, 4)
    layout.add(stat("In flight", queries.aggregate("sum", q.by(), series(SERVER_ACTIVE,
                                                                       q.service)), "short",
                    [("blue", None)], "Requests in flight at the ambassador.", q.legend()),
               4, 4)

    layout.row("Rate and errors")
    layout.add(TimeSeries(
        title="Requests by status class", unit="reqps", stacking={"mode": "normal"},
        targets=[target(
            queries.aggregate("sum", q.by("class"), (
                f'label_replace({q.requests("http_response_status_code")}, '
                f'"class", "${{1}}xx", "http_response_status_code", "([0-9])..")')),
            q.legend("{{class}}"))]), 12, 8)
    layout.add(TimeSeries(
        title="Error ratio by route", unit="percentunit",
        targets=[target(q.error_ratio("http_route"), q.legend("{{http_route}}"))]),
        12, 8)

    layout.row("Duration")
    layout.add(TimeSeries(
        title="Latency", unit="s",
        targets=[target(q.quantile(0.5), q.legend("p50"), ref="A"),
                 target(q.quantile(0.9), q.legend("p90"), ref="B"),
                 target(q.quantile(0.99), q.legend("p99"), ref="C", exemplar=True)]),
        12, 8)
    # One distribution over the chosen clusters: a heatmap has one row per bucket, and a
    # bucket per cluster would not stack into one.
    layout.add(Heatmap(
        title="Latency distribution", dataFormat="tsbuckets", hideZeroBuckets=True,
        targets=[target(f"sum by (le) (increase({series(HTTP_SERVER.bucket, q.chosen)}"
                        f"[{RATE}]))",
                        "{{le}}", heatmap=True)],
        extraJson={"type": "heatmap", "options": {"calculate": False,
                                                  "yAxis": {"unit": "s"},
                                                  "cellValues": {"unit": "short"}},
                   "fieldConfig": {"defaults": {"unit": "short"}}}), 12, 8)

    layout.row("Routes")
    layout.add(red_table(
        "Routes", "Sort by any column.",
        [q.requests("http_route"), q.error_ratio("http_route"), q.quantile(0.5, "http_route"),
         q.quantile(0.99, "http_route")], {"http_route": "Route"}, sort=True), 24, 9)

    layout.row("gRPC calls")
    for panel, width, height in service_panels(GrpcQueries(q.service, grouping.only), q.legend):
        layout.add(panel, width, height)

    layout.row("Dependencies and sidecar")
    layout.add(TimeSeries(
        title="Outbound calls: p99 by dependency", unit="s",
        targets=[target(queries.latency_quantile(0.99, metrics, q.service,
                                                 q.by("server_address"), RATE),
                        q.legend(f"{kind} {{{{server_address}}}}"), ref=ref)
                 for ref, kind, metrics in (("A", "HTTP", HTTP_CLIENT),
                                            ("B", "gRPC", GRPC_CLIENT))]), 12, 8)
    overflow, rejected, retries = q.sidecar_health()
    layout.add(TimeSeries(
        title="Sidecar health", unit="reqps",
        description="Requests per second: routed to /{other} (route overflow), rejected, and "
                    "retried on a fresh upstream connection (keep-alive race), at the "
                    "ambassadors that serve this service.",
        targets=[target(overflow, q.legend("route overflow /s"), ref="A"),
                 target(rejected, q.legend("rejected: {{reason}}"), ref="B"),
                 target(retries, q.legend("keep-alive retries /s"), ref="C")]), 12, 8)

    return dashboard(
        title="redline / RED service", uid=UID, tags=["redline", "red"],
        description="Rate, errors and duration of one service's HTTP requests and gRPC calls, "
                    "from redline's ambassador or adapter, OpenTelemetry SDKs or Beyla.",
        panels=layout.panels,
        variables=[
            cluster_variable(grouping, any_of(SERVED)),
            query_variable("service", "Service", "label_values(" + any_of(
                SERVED, grouping.chosen(CLUSTER)) + ", service_name)"),
            query_variable("route", "Route",
                           f"label_values({series(HTTP_SERVER.count, q.service)}, http_route)",
                           include_all=True, multi=True),
        ],
        links=[{"title": "USE nodes", "type": "dashboards", "tags": ["use"],
                "asDropdown": True},
               {"title": "Runbooks", "type": "link", "url": "docs/alerts.md",
                "targetBlank": True}],
    )
