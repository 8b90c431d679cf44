"""KEDA's ScaledObject and the VPA's VerticalPodAutoscaler checked against the fields and types
their CRDs define (keda.sh/v1alpha1 ScaledObjectSpec; autoscaling.k8s.io/v1
VerticalPodAutoscalerSpec), written from their documented schemas: an openAPIV3Schema subset
(type, properties, required, enum, items, additionalProperties), strict about unknown fields as
`kubectl apply --validate=strict` is. kubernetes-validate has no schema for custom resources."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

INT32 = {"type": "integer"}
STRING = {"type": "string"}
QUANTITY = {"type": "quantity"}  # int or a quantity string
OBJECT_META = {"type": "object", "properties": {
    "name": STRING, "namespace": STRING,
    "labels": {"type": "object", "additionalProperties": STRING},
    "annotations": {"type": "object", "additionalProperties": STRING}}}


def _object(required: list[str], **properties: Schema) -> Schema:
    return {"type": "object", "required": required, "properties": properties}


_POLICY = _object(["type", "value", "periodSeconds"], type={"type": "string", "enum": [
    "Pods", "Percent"]}, value=INT32, periodSeconds=INT32)
_RULES = _object([], stabilizationWindowSeconds=INT32, selectPolicy={
    "type": "string", "enum": ["Max", "Min", "Disabled"]},
    policies={"type": "array", "items": _POLICY}, tolerance=QUANTITY)
HPA_BEHAVIOR = _object([], scaleUp=_RULES, scaleDown=_RULES)

SCALED_OBJECT = _object(["apiVersion", "kind", "metadata", "spec"], apiVersion={
    "type": "string", "enum": ["keda.sh/v1alpha1"]}, kind={
    "type": "string", "enum": ["ScaledObject"]}, metadata=OBJECT_META, spec=_object(
    ["scaleTargetRef", "triggers"],
    scaleTargetRef=_object(["name"], name=STRING, apiVersion=STRING, kind=STRING,
                           envSourceContainerName=STRING),
    pollingInterval=INT32, initialCooldownPeriod=INT32, cooldownPeriod=INT32,
    idleReplicaCount=INT32, minReplicaCount=INT32, maxReplicaCount=INT32,
    fallback=_object(["failureThreshold", "replicas"], failureThreshold=INT32, replicas=INT32,
                     behavior={"type": "string", "enum": [
                         "static", "currentReplicas", "currentReplicasIfHigher",
                         "currentReplicasIfLower"]}),
    advanced=_object([], restoreToOriginalReplicaCount={"type": "boolean"},
                     horizontalPodAutoscalerConfig=_object([], name=STRING,
                                                           behavior=HPA_BEHAVIOR),
                     scalingModifiers=_object([], formula=STRING, target=STRING,
                                              activationTarget=STRING, metricType={
                                                  "type": "string",
                                                  "enum": ["AverageValue", "Value"]})),
    triggers={"type": "array", "items": _object(
        ["type", "metadata"], type=STRING, name=STRING, useCachedMetrics={"type": "boolean"},
        metricType={"type": "string", "enum": ["AverageValue", "Value", "Utilization"]},
        # every metadata value is a string: `threshold: "50"`, `ignoreNullValues: "false"`
        metadata={"type": "object", "additionalProperties": STRING},
        authenticationRef=_object(["name"], name=STRING, kind=STRING))}))

_RESOURCES = {"type": "object", "additionalProperties": QUANTITY}
VERTICAL_POD_AUTOSCALER = _object(["apiVersion", "kind", "metadata", "spec"], apiVersion={
    "type": "string", "enum": ["autoscaling.k8s.io/v1"]}, kind={
    "type": "string", "enum": ["VerticalPodAutoscaler"]}, metadata=OBJECT_META, spec=_object(
    ["targetRef"],
    targetRef=_object(["kind", "name"], apiVersion=STRING, kind=STRING, name=STRING),
    updatePolicy=_object([], updateMode={"type": "string", "enum": [
        "Off", "Initial", "Recreate", "Auto", "InPlaceOrRecreate"]}, minReplicas=INT32),
    resourcePolicy=_object([], containerPolicies={"type": "array", "items": _object(
        [], containerName=STRING, mode={"type": "string", "enum": ["Auto", "Off"]},
        minAllowed=_RESOURCES, maxAllowed=_RESOURCES,
        controlledResources={"type": "array", "items": STRING},
        controlledValues={"type": "string", "enum": ["RequestsAndLimits",
                                                     "RequestsOnly"]})}),
    recommenders={"type": "array", "items": _object(["name"], name=STRING)}))


def problems(value: Any, schema: Schema, path: str = "") -> list[str]:
    """Every place `value` breaks `schema`, as `path: what`."""
    kind = schema["type"]
    where = path or "."
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{where}: expected an object, got {value!r}"]
        found = [f"{path}.{key}: required" for key in schema.get("required", [])
                 if key not in value]
        for key, item in value.items():
            if "properties" in schema and key in schema["properties"]:
                found += problems(item, schema["properties"][key], f"{path}.{key}")
            elif "additionalProperties" in schema:
                found += problems(item, schema["additionalProperties"], f"{path}.{key}")
            else:
                found.append(f"{path}.{key}: unknown field")
        return found
    if kind == "array":
        if not isinstance(value, list):
            return [f"{where}: expected an array, got {value!r}"]
        return [p for i, item in enumerate(value)
                for p in problems(item, schema["items"], f"{path}[{i}]")]
    expected: dict[str, tuple[type, ...]] = {"string": (str,), "integer": (int,),
                                             "boolean": (bool,), "quantity": (int, str)}
    if isinstance(value, bool) != (kind == "boolean") or not isinstance(value, expected[kind]):
        return [f"{where}: expected {kind}, got {value!r}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: expected one of {schema['enum']}, got {value!r}"]
    return []


def keda_rules(doc: dict[str, Any]) -> list[str]:
    """What KEDA's admission webhook checks beyond the schema (CheckReplicaCountBoundsAreValid,
    CheckFallbackValid): min <= max, and a fallback only with an AverageValue trigger."""
    spec = doc["spec"]
    found = []
    if spec.get("minReplicaCount", 0) > spec.get("maxReplicaCount", 100):
        found.append("minReplicaCount above maxReplicaCount")
    if "fallback" in spec and not any(t.get("metricType", "AverageValue") == "AverageValue"
                                      for t in spec["triggers"]
                                      if t["type"] not in ("cpu", "memory")):
        found.append("a fallback needs a trigger with metricType AverageValue")
    return found
