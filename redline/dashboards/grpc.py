"""gRPC on the RED dashboards: one service's calls by status code, error type and method (the
service dashboard's gRPC row), and every gRPC service and method (the overview's).

They read `rpc_server_duration_seconds` (DESIGN.md's names, which redline's ambassador, Beyla
and OpenTelemetry SDKs share). A call failed when `error_type` is set: a server-fault status
(UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS) or a transport
failure. NOT_FOUND and the other client-fault statuses are answers, as a 4xx is: they show in
the calls by status code, never in the errors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from grafanalib.core import TimeSeries

from redline import queries
from redline.alerts import red_rules
from redline.dashboards.common import red_table, target
from redline.queries import GRPC_SERVER, Labels

RATE = "$__rate_interval"
METHOD = ("rpc_service", "rpc_method")  # a method is named by both: /package.Service/Method
METHOD_LEGEND = "{{rpc_service}}/{{rpc_method}}"
METHOD_COLUMNS = {"rpc_service": "gRPC service", "rpc_method": "Method"}


class GrpcQueries:
    """gRPC calls of the series `matchers` choose, grouped by `group` (the cluster first) and
    any labels given to each method."""

    def __init__(self, matchers: Sequence[str], group: Labels) -> None:
        self.matchers = list(matchers)
        self.group = tuple(group)

    def _by(self, labels: Labels) -> tuple[str, ...]:
        return (*self.group, *labels)

    def calls(self, *labels: str) -> str:
        return queries.requests(GRPC_SERVER, self.matchers, self._by(labels), RATE)

    def errors(self, *labels: str) -> str:
        return queries.errors(GRPC_SERVER, self.matchers, self._by(labels), RATE)

    def error_ratio(self, *labels: str) -> str:
        return queries.error_ratio(GRPC_SERVER, self.matchers, self._by(labels), RATE)

    def quantile(self, q: float, *labels: str) -> str:
        return queries.latency_quantile(q, GRPC_SERVER, self.matchers, self._by(labels), RATE)

    def red(self, *labels: str) -> list[str]:
        """Calls/s, error ratio, p50 and p99: a red_table's queries A to D."""
        return [self.calls(*labels), self.error_ratio(*labels), self.quantile(0.5, *labels),
                self.quantile(0.99, *labels)]


class RecordedGrpcQueries(GrpcQueries):
    """The same from redline's RED recording rules (redline/alerts/red_rules.py; 5m windows),
    per service or per method: the levels recorded. Other groupings are not recorded and
    are refused rather than read from the raw series behind the reader's back."""

    def _level(self, labels: Labels) -> str:
        if not labels:
            return "service"
        if tuple(labels) == METHOD:
            return red_rules.GRPC.detail
        raise ValueError(f"gRPC calls are recorded per service and per method, not by "
                         f"{', '.join(labels)}")

    def _record(self, name: str) -> str:
        return queries.series(name, self.matchers)

    def calls(self, *labels: str) -> str:
        return self._record(red_rules.requests_name(self._level(labels), red_rules.GRPC))

    def errors(self, *labels: str) -> str:
        return self._record(red_rules.errors_name(self._level(labels), red_rules.GRPC))

    def error_ratio(self, *labels: str) -> str:
        if labels:  # recorded per service only: the overview has no per-method ratio
            raise ValueError("the gRPC error ratio is recorded per service only")
        return self._record(red_rules.error_ratio_name("service", red_rules.GRPC))

    def quantile(self, q: float, *labels: str) -> str:
        buckets = red_rules.buckets_name(self._level(labels), red_rules.GRPC)
        return f"histogram_quantile({q:g}, {self._record(buckets)})"


Placed = tuple[Any, int, int]  # a panel, its width and height on the grid


def service_panels(q: GrpcQueries, legend: Callable[[str], str]) -> list[Placed]:
    """The service dashboard's gRPC row; `legend` adds the cluster to a legend."""
    return [
        (TimeSeries(
            title="gRPC calls by status code", unit="reqps", stacking={"mode": "normal"},
            description="Calls per second by grpc-status (0 OK, 5 NOT_FOUND, 13 INTERNAL, "
                        "14 UNAVAILABLE, ...), failed or not.",
            targets=[target(q.calls("rpc_grpc_status_code"),
                            legend("{{rpc_grpc_status_code}}"))]), 12, 8),
        (TimeSeries(
            title="gRPC errors by type", unit="reqps",
            description="Failed calls per second: server-fault statuses by name and transport "
                        "failures (timeout, connection_reset, ...).",
            targets=[target(q.errors("error_type"), legend("{{error_type}}"))]), 12, 8),
        (TimeSeries(
            title="gRPC latency by method", unit="s",
            targets=[target(q.quantile(0.5, *METHOD), legend(f"p50 {METHOD_LEGEND}"), ref="A"),
                     target(q.quantile(0.99, *METHOD), legend(f"p99 {METHOD_LEGEND}"),
                            ref="B")]), 12, 8),
        (TimeSeries(
            title="gRPC error ratio by method", unit="percentunit",
            targets=[target(q.error_ratio(*METHOD), legend(METHOD_LEGEND))]), 12, 8),
        (red_table("gRPC methods", "Calls per second, share failed, p50 and p99 per method. "
                   "Sort by any column.", q.red(*METHOD), METHOD_COLUMNS, sort=True), 24, 9),
    ]
