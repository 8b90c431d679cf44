"""Overviews: every service (RED) and every node (USE) on one screen, linking to the details."""

from __future__ import annotations

from typing import Any

from grafanalib.core import TimeSeries

from redline import queries
from redline.alerts import red_rules
from redline.dashboards import red, use
from redline.dashboards.common import (
    CLUSTER,
    P99_THRESHOLDS,
    cluster_variable,
    dashboard,
    red_table,
    target,
)
from redline.dashboards.extensions import CurrentBarGauge
from redline.dashboards.grpc import METHOD, METHOD_LEGEND, GrpcQueries, RecordedGrpcQueries
from redline.dashboards.layout import Layout
from redline.queries import ALL_SERVICES, DEFAULT, HTTP_SERVER, Grouping, any_of, series

RED_UID = "redline-red-overview"
USE_UID = "redline-use-cluster"
RATE = "$__rate_interval"


def _link_to(uid: str, variable: str, field: str) -> dict[str, Any]:
    """A table cell's link to a details dashboard for its value, in the clusters chosen."""
    return {"matcher": {"id": "byName", "options": field},
            "properties": [{"id": "links", "value": [{
                "title": "Open the details",
                "url": f"/d/{uid}?var-{variable}=${{__value.raw}}&${{cluster:queryparam}}"
                       f"&${{__url_time_range}}"}]}]}


class RedQueries:
    """The overview's expressions, from the raw histograms with the dashboard's rate interval
    (any Prometheus, no rules needed), per service and cluster, in the clusters chosen."""

    def __init__(self, grouping: Grouping = DEFAULT) -> None:
        self.grouping = grouping
        self.chosen = [grouping.chosen(CLUSTER)]

    def requests(self) -> str:
        return queries.requests(HTTP_SERVER, [ALL_SERVICES, *self.chosen],
                                self.grouping.service, RATE)

    def error_ratio(self) -> str:
        return queries.error_ratio(HTTP_SERVER, [ALL_SERVICES, *self.chosen],
                                   self.grouping.service, RATE)

    def quantile(self, q: float, per_route: bool = False) -> str:
        group = self.grouping.service_route if per_route else self.grouping.service
        return queries.latency_quantile(q, HTTP_SERVER, [ALL_SERVICES, *self.chosen], group,
                                        RATE)

    def route_errors(self) -> str:
        return queries.errors(HTTP_SERVER, [ALL_SERVICES, *self.chosen],
                              self.grouping.service_route, RATE)


class RecordedRedQueries(RedQueries):
    """The same from redline's RED recording rules (redline/alerts/red_rules.py; 5m windows):
    for many services on one Prometheus or a central VictoriaMetrics, where the raw queries
    read every bucket of every service. No fallback to the raw series: PromQL evaluates both
    sides of an `or`, so a fallback would cost the raw query whether or not rules exist."""

    def requests(self) -> str:
        return series(red_rules.requests_name("service"), self.chosen)

    def error_ratio(self) -> str:
        return series(red_rules.error_ratio_name("service"), self.chosen)

    def quantile(self, q: float, per_route: bool = False) -> str:
        level = "service_route" if per_route else "service"
        return f"histogram_quantile({q:g}, {series(red_rules.buckets_name(level), self.chosen)})"

    def route_errors(self) -> str:
        return series(red_rules.errors_name("service_route"), self.chosen)


def bar_gauge(title: str, unit: str, expr: str, legend: str,
              thresholds: list[tuple[str, float | None]], max_value: float | None = None
              ) -> CurrentBarGauge:
    """Horizontal bars of an instant query, coloured by `thresholds` (colour from value)."""
    return CurrentBarGauge(
        title=title, format=unit, orientation="horizontal", displayMode="gradient",
        calc="lastNotNull", min=0, max=max_value,
        thresholds=[{"color": color, "value": value} for color, value in thresholds],
        targets=[target(expr, legend, instant=True)])


def red_overview(recorded: bool = False, grouping: Grouping = DEFAULT) -> dict[str, Any]:
    red_queries = (RecordedRedQueries if recorded else RedQueries)(grouping)
    cluster = f"{{{{{grouping.cluster}}}}}"  # last in legends: empty on one Prometheus
    layout = Layout()
    layout.row("Services")
    layout.add(red_table(
        "Services", "Click a service for its RED dashboard.",
        [red_queries.requests(), red_queries.error_ratio(), red_queries.quantile(0.5),
         red_queries.quantile(0.99)], {"service_name": "Service"},
        links=[_link_to(red.UID, "service", "Service")]), 24, 8)
    # gRPC services beside HTTP ones, from the raw rpc_* series or from their records
    grpc = (RecordedGrpcQueries(red_queries.chosen, grouping.service) if recorded
            else GrpcQueries([ALL_SERVICES, *red_queries.chosen], grouping.service))
    layout.add(red_table(
        "gRPC services", "Calls per second, share failed (server-fault statuses), p50 and "
        "p99 of each service's gRPC calls. Click a service for its RED dashboard.",
        grpc.red(), {"service_name": "Service"},
        links=[_link_to(red.UID, "service", "Service")]), 24, 8)
    # Every bar of the errors' gauges is an error rate: red whatever its size. The p99s'
    # colours follow the p99 stat of the service dashboard.
    layout.row("Routes that need attention")
    layout.add(bar_gauge("Top routes by errors per second", "reqps",
                         f"topk(10, {red_queries.route_errors()})",
                         f"{{{{service_name}}}} {{{{http_route}}}} {cluster}",
                         [("red", None)]), 12, 9)
    layout.add(bar_gauge("Top routes by p99", "s",
                         f"topk(10, {red_queries.quantile(0.99, per_route=True)})",
                         f"{{{{service_name}}}} {{{{http_route}}}} {cluster}",
                         P99_THRESHOLDS), 12, 9)
    layout.row("gRPC methods that need attention")
    method = f"{{{{service_name}}}} {METHOD_LEGEND} {cluster}"
    layout.add(bar_gauge("Top gRPC methods by errors per second", "reqps",
                         f"topk(10, {grpc.errors(*METHOD)})", method, [("red", None)]), 12, 9)
    layout.add(bar_gauge("Top gRPC methods by p99", "s",
                         f"topk(10, {grpc.quantile(0.99, *METHOD)})", method,
                         P99_THRESHOLDS), 12, 9)
    layout.row("Traffic")
    traffic = [target(red_queries.requests(), f"{{{{service_name}}}} {cluster}", ref="A"),
               target(grpc.calls(), f"{{{{service_name}}}} gRPC {cluster}", ref="B")]
    layout.add(TimeSeries(title="Requests by service", unit="reqps",
                          stacking={"mode": "normal"}, targets=traffic), 24, 8)
    return dashboard(
        title="redline / RED overview", uid=RED_UID, tags=["redline", "red"],
        description=("Every service's rate, errors and duration, HTTP and gRPC, from "
                     "redline's RED recording rules; click through to a service."
                     if recorded else "Every service's rate, errors and duration, HTTP and "
                     "gRPC; click through to a service."),
        panels=layout.panels,
        variables=[cluster_variable(grouping, any_of(
            [red_rules.requests_name("service", f) for f in red_rules.FAMILIES.values()])
            if recorded else any_of(red.SERVED))],
        links=[{"title": "RED service", "type": "link", "url": f"/d/{red.UID}",
                "keepTime": True, "includeVars": True},
               {"title": "USE cluster", "type": "link", "url": f"/d/{USE_UID}",
                "keepTime": True, "includeVars": True},
               {"title": "Runbooks", "type": "link", "url": "docs/alerts.md",
                "targetBlank": True}])


def use_cluster(grouping: Grouping = DEFAULT) -> dict[str, Any]:
    """Each node's share of its own cluster: the totals are per cluster and joined `on` it,
    never one total over every cluster chosen."""
    chosen = grouping.chosen(CLUSTER)
    node, per_cluster = grouping.node, grouping.only
    share = f"\n/ {queries.on(per_cluster)} group_left ()\n"
    cluster = f"{{{{{grouping.cluster}}}}}"
    legend = f"{{{{instance}}}} {cluster}"

    def node_sum(expr: str) -> str:
        return queries.aggregate("sum", node, expr)

    def of(metric: str, *matchers: str) -> str:
        return series(metric, chosen, *matchers)

    layout = Layout()
    layout.row("Utilisation: each node's share of its cluster (stacks to at most 100%)")
    layout.add(TimeSeries(
        title="CPU", unit="percentunit", stacking={"mode": "normal"},
        targets=[target(node_sum(queries.rate(of("node_cpu_seconds_total", queries.CPU_BUSY),
                                              RATE))
                        + share + queries.aggregate("count", per_cluster, of(
                            "node_cpu_seconds_total", queries.ONE_PER_CPU)), legend)]), 12, 8)
    layout.add(TimeSeries(
        title="Memory", unit="percentunit", stacking={"mode": "normal"},
        targets=[target(node_sum(f"{of('node_memory_MemTotal_bytes')} - "
                                 f"{of('node_memory_MemAvailable_bytes')}")
                        + share + queries.aggregate("sum", per_cluster,
                                                    of("node_memory_MemTotal_bytes")),
                        legend)]), 12, 8)
    layout.add(TimeSeries(
        title="Disk busy", unit="percentunit", stacking={"mode": "normal"},
        targets=[target(node_sum(queries.rate(of("node_disk_io_time_seconds_total"), RATE))
                        + share + queries.aggregate("count", per_cluster,
                                                    of("node_disk_io_time_seconds_total")),
                        legend)]), 12, 8)
    layout.add(TimeSeries(
        title="Network traffic", unit="Bps", stacking={"mode": "normal"},
        targets=[target(node_sum(f"{queries.rate(of('node_network_receive_bytes_total'), RATE)}"
                                 f" + "
                                 f"{queries.rate(of('node_network_transmit_bytes_total'), RATE)}"),
                        legend)]), 12, 8)
    layout.row("Saturation and errors")
    layout.add(TimeSeries(
        title="CPU pressure (PSI)", unit="percentunit",
        targets=[target(queries.pressure("cpu", [chosen], RATE), legend)]), 8, 8)
    layout.add(TimeSeries(
        title="Memory pressure (PSI)", unit="percentunit",
        targets=[target(queries.pressure("memory", [chosen], RATE), legend)]), 8, 8)
    layout.add(bar_gauge("Fullest filesystem per node", "percentunit",
                         queries.aggregate("max", node, queries.filesystem_used([chosen])),
                         legend, use.THRESHOLDS["percentunit"], max_value=1), 8, 8)
    return dashboard(
        title="redline / USE cluster", uid=USE_UID, tags=["redline", "use"],
        description="Every node's utilisation as a share of its cluster, saturation and "
                    "the fullest filesystems.",
        panels=layout.panels,
        variables=[cluster_variable(grouping, "node_cpu_seconds_total")],
        links=[{"title": "USE node", "type": "link", "url": f"/d/{use.UID}",
                "keepTime": True, "includeVars": True},
               {"title": "RED overview", "type": "link", "url": f"/d/{RED_UID}",
                "keepTime": True, "includeVars": True}])
