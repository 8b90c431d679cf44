"""SLO spec -> scaling objects: a KEDA ScaledObject, or an autoscaling/v2 HPA with the
prometheus-adapter rules that serve its metrics, and optionally a VPA for recommendations.
Documents as dicts (the field names are the APIs' own); `render` makes the files.

Both forms scale on the same External metrics with the same HPA algorithm: a per-pod target
is an AverageValue (the service's total over the replicas), latency a Value.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from redline.alerts.render import dump
from redline.alerts.spec import Spec
from redline.autoscale import signals
from redline.autoscale.model import DEFAULT_SERVER, Rules, Scaling, Target
from redline.config import ConfigError
from redline.kubernetes.inject import ADAPTER, AMBASSADOR

Doc = dict[str, Any]
MANAGED = {"app.kubernetes.io/managed-by": "redline"}


@dataclass(frozen=True)
class Options:
    format: str = "keda"  # or "hpa"
    server_address: str = DEFAULT_SERVER  # keda: where KEDA's Prometheus trigger asks


def scaled(spec: Spec) -> list[tuple[str, Scaling]]:
    """(service, scaling) for every SLO with a scaling block; none is an error."""
    found = [(slo.service, slo.scaling) for slo in spec.slos if slo.scaling is not None]
    if not found:
        raise ConfigError("the SLO spec has no `scaling` block: add one to a service "
                          "(docs/autoscaling.md)")
    names: dict[str, str] = {}
    for service, scaling in found:
        for target in scaling.targets:
            name = signals.metric_name(service, target)
            if names.setdefault(name, service) != service:
                raise ConfigError(f"services {names[name]!r} and {service!r} would share the "
                                  f"metric name {name!r}; rename one")
    return found


def quantity(value: float) -> str:
    """A Kubernetes quantity as short as it can be: 50, 0.25."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _rules(rules: Rules) -> Doc:
    return {"stabilizationWindowSeconds": rules.stabilization_seconds,
            "selectPolicy": rules.select,
            "policies": [{"type": p.type, "value": p.value, "periodSeconds": p.period_seconds}
                         for p in rules.policies]}


def behavior(scaling: Scaling) -> Doc:
    """Both directions written out, defaults included: an HPA without `behavior` follows older
    rules (at most max(2x, 4) up, the controller's flag for down), which the replay does not
    model."""
    return {"scaleUp": _rules(scaling.scale_up), "scaleDown": _rules(scaling.scale_down)}


def _metadata(scaling: Scaling) -> Doc:
    metadata: Doc = {"name": scaling.workload.name}
    if scaling.workload.namespace:
        metadata["namespace"] = scaling.workload.namespace
    metadata["labels"] = dict(MANAGED)
    return metadata


def _target_ref(scaling: Scaling) -> Doc:
    w = scaling.workload
    return {"apiVersion": w.api_version, "kind": w.kind, "name": w.name}


def _metric_type(target: Target) -> str:
    return "AverageValue" if target.per_pod else "Value"


def scaled_object(service: str, scaling: Scaling, server_address: str) -> Doc:
    triggers = [{
        "type": "prometheus", "name": signals.trigger_name(target),
        "metricType": _metric_type(target),
        "metadata": {
            "serverAddress": server_address,
            "query": signals.query(service, scaling, target),
            "threshold": quantity(target.value),
            # An empty answer (Prometheus lost the service's series) is an error, counted
            # toward the fallback, instead of a 0 that scales the service to its minimum.
            "ignoreNullValues": "false",
        }} for target in scaling.targets]
    spec: Doc = {"scaleTargetRef": _target_ref(scaling),
                 "minReplicaCount": scaling.min_replicas,
                 "maxReplicaCount": scaling.max_replicas}
    if scaling.fallback is not None:
        fallback: Doc = {"failureThreshold": scaling.fallback.failure_threshold,
                         "replicas": scaling.fallback.replicas}
        if scaling.fallback.behavior:
            fallback["behavior"] = scaling.fallback.behavior
        spec["fallback"] = fallback
    spec["advanced"] = {"horizontalPodAutoscalerConfig": {"behavior": behavior(scaling)}}
    spec["triggers"] = triggers
    return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": _metadata(scaling), "spec": spec}


def horizontal_pod_autoscaler(service: str, scaling: Scaling) -> Doc:
    metrics = []
    for target in scaling.targets:
        value_key = "averageValue" if target.per_pod else "value"
        metrics.append({"type": "External", "external": {
            "metric": {"name": signals.metric_name(service, target)},
            "target": {"type": _metric_type(target), value_key: quantity(target.value)}}})
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": _metadata(scaling),
            "spec": {"scaleTargetRef": _target_ref(scaling),
                     "minReplicas": scaling.min_replicas,
                     "maxReplicas": scaling.max_replicas,
                     "metrics": metrics, "behavior": behavior(scaling)}}


def adapter_rules(found: list[tuple[str, Scaling]]) -> Doc:
    """prometheus-adapter's `externalRules`, one per service and target, each holding the
    whole query: the adapter serves exactly what KEDA would ask and the replay reads.
    `namespaced: false`: the query selects by service_name (and the spec's labels), not by
    the HPA's namespace, which redline's series need not carry."""
    rules = []
    for service, scaling in found:
        for target in scaling.targets:
            source = signals.source_metric(target)
            rules.append({
                "seriesQuery": f"{source}{{{signals.matchers(service, scaling)[0]}}}",
                "resources": {"namespaced": False},
                "name": {"matches": f"^{source}$",
                         "as": signals.metric_name(service, target)},
                "metricsQuery": signals.query(service, scaling, target)})
    return {"externalRules": rules}


def vertical_pod_autoscaler(scaling: Scaling) -> Doc:
    """Recommendations only (updateMode "Off"): a VPA that applied them would change the
    requests under the HPA. redline's sidecars keep the resources inject gave them."""
    return {"apiVersion": "autoscaling.k8s.io/v1", "kind": "VerticalPodAutoscaler",
            "metadata": _metadata(scaling),
            "spec": {"targetRef": _target_ref(scaling),
                     "updatePolicy": {"updateMode": "Off"},
                     "resourcePolicy": {"containerPolicies": [
                         {"containerName": name, "mode": "Off"}
                         for name in (AMBASSADOR, ADAPTER)]}}}


def documents(found: list[tuple[str, Scaling]], options: Options) -> Iterator[Doc]:
    for service, scaling in found:
        if options.format == "keda":
            yield scaled_object(service, scaling, options.server_address)
        else:
            yield horizontal_pod_autoscaler(service, scaling)
        if scaling.vpa:
            yield vertical_pod_autoscaler(scaling)


def render(spec: Spec, options: Options) -> dict[str, str]:
    """File name -> text."""
    if options.format not in ("keda", "hpa"):
        raise ValueError(f"format: expected keda or hpa, got {options.format!r}")
    found = scaled(spec)
    header = f"# Generated by `redline autoscale --format {options.format}`; do not edit.\n"
    objects = header + "---\n".join(dump(doc) for doc in documents(found, options))
    files = {f"redline-autoscaling.{options.format}.yaml": objects}
    if options.format == "hpa":
        files["prometheus-adapter-rules.yaml"] = (
            "# prometheus-adapter config (Helm chart: rules.external); generated by "
            "`redline autoscale --format hpa`.\n" + dump(adapter_rules(found)))
    return files
