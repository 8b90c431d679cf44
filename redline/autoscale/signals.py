"""Which PromQL each target reads, and the names it goes by: one place for KEDA's trigger, the
prometheus-adapter rule, the replay and the tests, so that all of them read the same value.

Each query returns one sample per service: the service's total (requests per second, requests
in flight) or its latency percentile, never a value per pod. The per-pod division is the HPA's
(an AverageValue target divides by the replicas it knows from the workload's /scale), so no
query depends on a `pod` label that a Prometheus without Kubernetes discovery does not have.
"""

from __future__ import annotations

import re

from redline import queries
from redline.autoscale.model import ACTIVE, RATE, Scaling, Target
from redline.exporters.red import SERVER_ACTIVE
from redline.queries import HTTP_SERVER, SERVICE, RequestMetrics, eq

_NOT_A_NAME = re.compile(r"[^a-zA-Z0-9_]")


def matchers(service: str, scaling: Scaling) -> list[str]:
    return [eq("service_name", service), *(eq(name, value) for name, value in scaling.labels)]


def query(service: str, scaling: Scaling, target: Target,
          metrics: RequestMetrics = HTTP_SERVER) -> str:
    """The service's value for `target` (`metrics`: HTTP's server requests today, gRPC's
    another RequestMetrics)."""
    selected = matchers(service, scaling)
    if target.key == RATE:
        return queries.requests(metrics, selected, SERVICE, scaling.window)
    if target.key == ACTIVE:
        return queries.active_requests(selected, SERVICE, scaling.window)
    assert target.quantile is not None
    return queries.latency_quantile_or_idle(target.quantile, metrics, selected, SERVICE,
                                            scaling.window)


def source_metric(target: Target, metrics: RequestMetrics = HTTP_SERVER) -> str:
    """The metric whose series tell that a service exists, for the adapter's discovery."""
    return SERVER_ACTIVE if target.key == ACTIVE else metrics.count


def metric_name(service: str, target: Target) -> str:
    """The external metric's name: per service, because each adapter rule holds its service's
    whole query (`redline_checkout_requests_per_second`)."""
    what = {RATE: "requests_per_second", ACTIVE: "active_requests"}.get(target.key, target.key)
    return f"redline_{_NOT_A_NAME.sub('_', service)}_{what}"


def trigger_name(target: Target) -> str:
    """KEDA's trigger name (in its metric names and events): the target's key, dashed."""
    return target.key.replace("_", "-")
