"""The `scaling` block of an SLO spec entry: what to scale, between which bounds, on which RED
signal and how fast. Parsed with path-prefixed errors (redline.config.Node); no IO.

```yaml
scaling:
  workload: {kind: Deployment, name: checkout, namespace: shop}
  min_replicas: 2
  max_replicas: 20
  target: {requests_per_second_per_pod: 50}   # and/or active_requests_per_pod,
                                              # latency_p50|p90|p95|p99_seconds
  scale_down_stabilization: 5m                # optional; the fields below too
```

The names of the HPA's own settings (`Pods`/`Percent` policies, `Max`/`Min`/`Disabled`
selection, the 300 s scale-down window) are the HPA's, so that a reader can map the spec to the
Kubernetes documentation one to one.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from redline.config import ConfigError, Node

# kube-prometheus-stack's Service for the Prometheus the Operator runs, where KEDA asks
DEFAULT_SERVER = "http://prometheus-operated.monitoring.svc:9090"
# kind -> apiVersion: the workloads with a /scale subresource that an HPA is usually aimed at.
WORKLOAD_KINDS = {"Deployment": "apps/v1", "StatefulSet": "apps/v1", "ReplicaSet": "apps/v1"}

RATE = "requests_per_second_per_pod"
ACTIVE = "active_requests_per_pod"
_LATENCY = re.compile(r"latency_p(50|90|95|99)_seconds")
TARGET_KEYS = (RATE, ACTIVE, *(f"latency_p{q}_seconds" for q in (50, 90, 95, 99)))

_DURATION = re.compile(r"(\d+)([smh])")
_UNIT = {"s": 1, "m": 60, "h": 3600}
# Kubernetes' limits for HPAScalingRules (stabilizationWindowSeconds, periodSeconds).
MAX_STABILIZATION = 3600
MAX_POLICY_PERIOD = 1800
SELECT = {"max": "Max", "min": "Min", "disabled": "Disabled"}
FALLBACK_BEHAVIORS = ("static", "currentReplicas", "currentReplicasIfHigher",
                      "currentReplicasIfLower")
# A DNS-1123 subdomain (object names) and label (namespaces), as the API server checks them.
_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


@dataclass(frozen=True)
class Workload:
    kind: str
    name: str
    namespace: str | None  # None: the namespace the objects are applied to

    @property
    def api_version(self) -> str:
        return WORKLOAD_KINDS[self.kind]


@dataclass(frozen=True)
class Target:
    """One signal and its target. Rate and in-flight requests are per pod: the HPA divides the
    service's total by its replicas (AverageValue). Latency is the service's (Value): a
    percentile does not divide among pods."""

    key: str  # the spec's key, e.g. requests_per_second_per_pod
    value: float

    @property
    def per_pod(self) -> bool:
        return self.key in (RATE, ACTIVE)

    @property
    def quantile(self) -> float | None:
        match = _LATENCY.fullmatch(self.key)
        return int(match.group(1)) / 100 if match else None


@dataclass(frozen=True)
class Policy:
    type: str  # Pods or Percent
    value: int
    period_seconds: int


@dataclass(frozen=True)
class Rules:
    """HPAScalingRules for one direction."""

    stabilization_seconds: int
    policies: tuple[Policy, ...]
    select: str = "Max"  # Max, Min or Disabled


# The HPA's defaults (autoscaling/v2): up by 4 pods or 100 % per 15 s, whichever is more, at
# once; down by up to 100 % per 15 s after the highest recommendation of the last 300 s.
SCALE_UP = Rules(0, (Policy("Pods", 4, 15), Policy("Percent", 100, 15)))
SCALE_DOWN = Rules(300, (Policy("Percent", 100, 15),))


@dataclass(frozen=True)
class Fallback:
    """KEDA's replicas while Prometheus cannot answer (more than `failure_threshold` failed
    polls in a row)."""

    replicas: int
    failure_threshold: int = 3
    behavior: str | None = None  # KEDA 2.17+; None: KEDA's default, static


@dataclass(frozen=True)
class Scaling:
    workload: Workload
    min_replicas: int
    max_replicas: int
    targets: tuple[Target, ...]
    scale_up: Rules = SCALE_UP
    scale_down: Rules = SCALE_DOWN
    window: str = "2m"  # the rate (and in-flight average) window of every query
    labels: tuple[tuple[str, str], ...] = ()  # extra matchers: namespace, cluster, ...
    fallback: Fallback | None = None  # None: no AverageValue target, which KEDA requires
    vpa: bool = False  # also a VerticalPodAutoscaler in updateMode "Off"


def seconds(text: str) -> int:
    """`0s`, `90s`, `5m`, `1h` -> seconds."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"expected a duration such as 0s, 90s, 5m or 1h, got {text!r}")
    return int(match.group(1)) * _UNIT[match.group(2)]


def _duration(node: Node, default: int, *, low: int, high: int) -> int:
    if node.value is None:
        return default
    expected = f"a duration from {low}s to {high // 60}m such as 0s, 90s or 5m"
    if not isinstance(node.value, str):
        raise node.error(expected)
    try:
        value = seconds(node.value)
    except ValueError:
        raise node.error(expected) from None
    if not low <= value <= high:
        raise node.error(expected)
    return value


def _target(node: Node) -> float:
    """A target the metrics API can carry: it counts in thousandths, and a target that reads
    as 0 there would divide by zero in the HPA."""
    value = node.value
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0.001 \
            or math.isinf(value):
        raise node.error("a number of at least 0.001")
    return float(value)


def _name(node: Node, pattern: re.Pattern[str], what: str) -> str:
    value = node.string()
    if len(value) > 253 or not pattern.fullmatch(value):
        raise node.error(what)
    return value


def _workload(node: Node) -> Workload:
    node.mapping({"kind", "name", "namespace"})
    kind_node = node.child("kind")
    kind = kind_node.string("Deployment")
    if kind not in WORKLOAD_KINDS:
        raise kind_node.error(f"a workload kind, one of {', '.join(WORKLOAD_KINDS)}")
    name = _name(node.child("name"), _NAME, "a Kubernetes object name (lower case, digits, "
                 "'-' and '.')")
    namespace_node = node.child("namespace")
    namespace = None if namespace_node.value is None else _name(
        namespace_node, _NAMESPACE, "a namespace name (lower case, digits and '-')")
    return Workload(kind, name, namespace)


def _targets(node: Node) -> tuple[Target, ...]:
    if node.value is None:
        raise node.error(f"a target, one or more of {', '.join(TARGET_KEYS)}, such as "
                         f"{{{RATE}: 50}}")
    node.mapping(set(TARGET_KEYS))
    if not node.value:
        raise node.error(f"at least one of {', '.join(TARGET_KEYS)}")
    return tuple(Target(key, _target(node.child(key)))
                 for key in TARGET_KEYS if key in node.value)


def _policies(node: Node, default: tuple[Policy, ...]) -> tuple[Policy, ...]:
    if node.value is None:
        return default
    items = node.items()
    if not items:
        raise node.error("a non-empty list of policies such as [{pods: 4, period: 15s}]")
    policies = []
    for item in items:
        item.mapping({"pods", "percent", "period"})
        kinds = [key for key in ("pods", "percent") if item.child(key).value is not None]
        if len(kinds) != 1:
            raise item.error("one of pods or percent, and a period, such as "
                             "{percent: 100, period: 15s}")
        value = item.child(kinds[0]).integer(0, minimum=1)
        if item.child("period").value is None:
            raise item.child("period").error("a period such as 15s or 1m")
        period = _duration(item.child("period"), 0, low=1, high=MAX_POLICY_PERIOD)
        policies.append(Policy("Pods" if kinds[0] == "pods" else "Percent", value, period))
    return tuple(policies)


def _rules(node: Node, direction: str, default: Rules) -> Rules:
    select_node = node.child(f"scale_{direction}_select")
    select = select_node.string("max")
    if select not in SELECT:
        raise select_node.error(f"one of {', '.join(SELECT)}")
    return Rules(
        _duration(node.child(f"scale_{direction}_stabilization"), default.stabilization_seconds,
                  low=0, high=MAX_STABILIZATION),
        _policies(node.child(f"scale_{direction}_policies"), default.policies),
        SELECT[select])


def _labels(node: Node) -> tuple[tuple[str, str], ...]:
    node.mapping(optional=True)
    labels = []
    for key in node.value:
        if not isinstance(key, str) or not _LABEL.fullmatch(key) or key == "service_name":
            raise ConfigError(f"{node.source}: {node.path}: expected Prometheus label names "
                              f"other than service_name, got {key!r}")
        labels.append((key, node.child(key).string()))
    return tuple(labels)


def _fallback(node: Node, targets: tuple[Target, ...], max_replicas: int) -> Fallback | None:
    if not any(target.per_pod for target in targets):
        # KEDA refuses a fallback unless a trigger is AverageValue; without one, an outage
        # leaves the HPA without a metric, and it keeps the replicas it has.
        if node.value is not None:
            raise node.error(f"no fallback: KEDA applies one only with a per-pod target "
                             f"({RATE} or {ACTIVE})")
        return None
    node.mapping({"replicas", "failure_threshold", "behavior"}, optional=True)
    behavior_node = node.child("behavior")
    behavior = None if behavior_node.value is None else behavior_node.string()
    if behavior is not None and behavior not in FALLBACK_BEHAVIORS:
        raise behavior_node.error(f"one of {', '.join(FALLBACK_BEHAVIORS)}")
    # Without data the load is unknown: assume the most, never the least.
    replicas = node.child("replicas").integer(max_replicas, minimum=1)
    if replicas > max_replicas:
        raise node.child("replicas").error(f"at most max_replicas ({max_replicas})")
    return Fallback(replicas, node.child("failure_threshold").integer(3, minimum=1), behavior)


def build_scaling(node: Node) -> Scaling:
    node.mapping({"workload", "min_replicas", "max_replicas", "target", "window", "labels",
                  "fallback", "vpa", *(f"scale_{d}_{what}" for d in ("up", "down")
                                       for what in ("stabilization", "policies", "select"))})
    workload_node = node.child("workload")
    if workload_node.value is None:
        raise workload_node.error("the workload to scale, such as "
                                  "{kind: Deployment, name: checkout, namespace: shop}")
    workload = _workload(workload_node)
    min_replicas = node.child("min_replicas").integer(1, minimum=1)
    max_node = node.child("max_replicas")
    if max_node.value is None:
        raise max_node.error("the most replicas to scale to, a whole number")
    max_replicas = max_node.integer(0, minimum=1)
    if min_replicas > max_replicas:
        raise ConfigError(f"{node.source}: {node.path}.min_replicas: {min_replicas} is above "
                          f"max_replicas ({max_replicas})")
    targets = _targets(node.child("target"))
    window_node = node.child("window")
    _duration(window_node, 0, low=1, high=MAX_STABILIZATION)  # checked; PromQL reads it as is
    return Scaling(
        workload=workload, min_replicas=min_replicas, max_replicas=max_replicas,
        targets=targets, scale_up=_rules(node, "up", SCALE_UP),
        scale_down=_rules(node, "down", SCALE_DOWN),
        window=window_node.string("2m"),
        labels=_labels(node.child("labels")),
        fallback=_fallback(node.child("fallback"), targets, max_replicas),
        vpa=node.child("vpa").boolean(False))
