"""The SLO spec: load, validate with path-prefixed errors, build the model. Sans IO but for the
one file read.

```yaml
period: 30d                    # optional, default 30d
slos:
  - service: checkout          # matches the service_name label
    protocol: http             # optional, http (default: http_server_*) or grpc (rpc_server_*)
    availability: 99.9         # percent (not a ratio) of requests without error_type
    latency:                   # optional
      threshold: 0.25          # seconds; must be a histogram bucket boundary
      target: 99               # percent (not a ratio) of requests at or under the threshold
    routes: ["/api/*"]         # optional, http only; default all routes
    methods: ["shop.Cart/*"]   # optional, grpc only: rpc_service/rpc_method; default all
    scaling: {...}             # optional; HPA/KEDA objects (redline/autoscale/model.py)
```
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from redline.autoscale.model import Scaling, build_scaling
from redline.config import ConfigError, Node, load_yaml
from redline.exporters.instruments import format_bound
from redline.exporters.red import DEFAULT_BUCKETS

_DURATION = re.compile(r"(\d+)([smhdw])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> int:
    """`30d`, `4w`, `12h` -> seconds."""
    match = _DURATION.fullmatch(text)
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"expected a duration such as 30d, 4w or 12h, got {text!r}")
    return int(match.group(1)) * _SECONDS[match.group(2)]


@dataclass(frozen=True)
class Latency:
    threshold: float
    target: float  # percent


PROTOCOLS = ("http", "grpc")


@dataclass(frozen=True)
class SLO:
    service: str
    availability: float | None  # percent
    latency: Latency | None
    routes: tuple[str, ...]
    scaling: Scaling | None = None  # `redline autoscale`; the alerts ignore it
    protocol: str = "http"  # which request metrics: http_server_* or rpc_server_* (gRPC)
    methods: tuple[str, ...] = ()  # gRPC's route filter: `Service/Method` patterns


@dataclass(frozen=True)
class Spec:
    period: str
    period_seconds: int
    slos: tuple[SLO, ...]


def load_spec(path: str | Path, buckets: Sequence[float] = DEFAULT_BUCKETS) -> Spec:
    return build_spec(Node(str(path), "", load_yaml(path)), buckets)


def build_spec(document: Node, buckets: Sequence[float] = DEFAULT_BUCKETS) -> Spec:
    document.mapping({"period", "slos"})
    period_node = document.child("period")
    period = period_node.string("30d")
    try:
        period_seconds = parse_duration(period)
    except ValueError as exc:
        raise period_node.error("a duration such as 30d, 4w or 12h") from exc
    if period_seconds < 3 * 86400:
        raise period_node.error("at least 3d (the longest alert window)")
    items = document.child("slos").items()
    if not items:
        raise document.child("slos").error("a non-empty list of SLOs")
    slos = [_slo(item, buckets) for item in items]
    seen: set[str] = set()
    for item, slo in zip(items, slos, strict=True):
        if slo.service in seen:
            raise ConfigError(f"{item.source}: {item.path}.service: {slo.service!r} has an SLO "
                              f"already; put both objectives in one entry")
        seen.add(slo.service)
    return Spec(period, period_seconds, tuple(slos))


def _objective(node: Node) -> float:
    """A percentage, as sloth's `objective: 99.9`. A value up to 1 is refused rather than read
    as a percent: `0.999` is almost always OpenSLO's ratio for 99.9 %, and as 0.999 % it would
    give alerts that can never fire."""
    value = node.value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise node.error("a percentage such as 99.9")
    if 0 < value < 1:
        raise ConfigError(
            f"{node.source}: {node.path}: expected a percentage such as 99.9, got {value!r}, "
            f"which reads as {value!r} %; if you meant the ratio {value!r}, write "
            f"{value * 100:.10g}")
    if not 1 < value < 100:
        raise node.error("a percentage above 1 and below 100, such as 99.9")
    return float(value)


def _slo(item: Node, buckets: Sequence[float]) -> SLO:
    item.mapping({"service", "protocol", "availability", "latency", "routes", "methods",
                  "scaling"})
    service = item.child("service").string()
    if '"' in service or "\\" in service:
        raise item.child("service").error("a service name without quotes or backslashes")
    availability_node = item.child("availability")
    availability = None if availability_node.value is None else _objective(availability_node)
    latency = None
    latency_node = item.child("latency")
    if latency_node.value is not None:
        latency_node.mapping({"threshold", "target"})
        threshold_node = latency_node.child("threshold")
        threshold = threshold_node.value
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise threshold_node.error("a number of seconds")
        if float(threshold) not in [float(b) for b in buckets]:
            nearby = ", ".join(format_bound(b).removesuffix(".0") for b in buckets)
            raise ConfigError(
                f"{threshold_node.source}: {threshold_node.path}: {threshold} is not a bucket "
                f"boundary; boundaries are {nearby}")
        latency = Latency(float(threshold), _objective(latency_node.child("target")))
    if availability is None and latency is None:
        raise item.error("an availability or a latency objective")
    protocol_node = item.child("protocol")
    protocol = protocol_node.string("http")
    if protocol not in PROTOCOLS:
        raise protocol_node.error("http or grpc")
    routes = tuple(node.string() for node in item.child("routes").items())
    if routes and protocol != "http":
        # gRPC calls have no http_route: their filter is `methods`.
        raise item.child("routes").error("no routes for a gRPC SLO (filter it with methods)")
    for index, route in enumerate(routes):
        if not route.startswith("/") or any(char.isspace() for char in route):
            # Spaces also separate the patterns in slo:service:info's `routes` label.
            raise item.child("routes").child(index).error(
                "a route pattern starting with '/', without spaces")
    methods = tuple(node.string() for node in item.child("methods").items())
    if methods and protocol != "grpc":
        raise item.child("methods").error("no methods for an HTTP SLO (filter it with routes)")
    for index, method in enumerate(methods):
        # rpc_service and rpc_method, as a gRPC path names them: /shop.Cart/Add
        service_part, _, method_part = method.partition("/")
        if (not service_part or not method_part or "/" in method_part
                or any(char.isspace() for char in method)):
            raise item.child("methods").child(index).error(
                "a method pattern such as shop.Cart/Add or shop.Cart/*")
    scaling_node = item.child("scaling")
    scaling = None if scaling_node.value is None else build_scaling(scaling_node)
    return SLO(service, availability, latency, routes, scaling, protocol, methods)
