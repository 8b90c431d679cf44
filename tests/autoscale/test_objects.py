"""`redline autoscale`: the spec's scaling block, the objects it writes (HPAs validated by
kubernetes-validate --strict, KEDA and VPA objects by their CRDs' schemas), the command's
conventions and its errors."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from redline.alerts.spec import load_spec
from redline.autoscale.objects import Options, render
from tests.autoscale.crds import (
    HPA_BEHAVIOR,
    SCALED_OBJECT,
    VERTICAL_POD_AUTOSCALER,
    keda_rules,
    problems,
)
from tests.conftest import kubernetes_validate

REPO = Path(__file__).resolve().parents[2]
SPEC = """\
slos:
  - service: checkout
    availability: 99.9
    scaling:
      workload: {kind: Deployment, name: checkout, namespace: shop}
      min_replicas: 2
      max_replicas: 20
      target: {requests_per_second_per_pod: 50, latency_p95_seconds: 0.25}
      scale_down_stabilization: 5m
      scale_up_policies: [{pods: 2, period: 30s}]
      scale_down_select: min
      fallback: {replicas: 4, behavior: currentReplicasIfHigher}
      vpa: true
  - service: search
    latency: {threshold: 1, target: 95}
    scaling:
      workload: {kind: StatefulSet, name: search}
      max_replicas: 5
      target: {latency_p99_seconds: 1}
  - service: inventory
    availability: 99
    scaling:
      workload: {name: inventory, namespace: shop}
      max_replicas: 8
      target: {active_requests_per_pod: 10}
      window: 5m
      labels: {cluster: eu1}
"""

Doc = dict[str, Any]


def redline(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "redline.cli", "autoscale", *args],
                          capture_output=True, text=True, timeout=60, check=False, cwd=cwd)


@pytest.fixture
def spec_path(tmp_path: Path) -> Path:
    path = tmp_path / "slo.yaml"
    path.write_text(SPEC)
    return path


def objects(path: Path, format: str) -> list[Doc]:
    files = render(load_spec(path), Options(format=format))
    return [doc for doc in yaml.safe_load_all(files[f"redline-autoscaling.{format}.yaml"])]


def test_hpas_pass_kubernetes_validate_strict(tmp_path: Path, spec_path: Path) -> None:
    docs = objects(spec_path, "hpa")
    hpas = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    assert [d["metadata"]["name"] for d in hpas] == ["checkout", "search", "inventory"]
    # KEDA's behavior is the HPA's type: validated the same way, inside an HPA
    keda = [d for d in objects(spec_path, "keda") if d["kind"] == "ScaledObject"]
    for so in keda:
        hpa = copy.deepcopy(hpas[0])
        hpa["metadata"]["name"] = f"keda-{so['metadata']['name']}"
        hpa["spec"]["behavior"] = so["spec"]["advanced"]["horizontalPodAutoscalerConfig"][
            "behavior"]
        hpas.append(hpa)
    path = tmp_path / "hpa.yaml"
    path.write_text(yaml.safe_dump_all(hpas))
    assert kubernetes_validate(path, "1.33").count("passed for resource") == len(hpas)


def test_hpa_metrics_and_behavior_follow_the_spec(spec_path: Path) -> None:
    checkout, _vpa, search, inventory = objects(spec_path, "hpa")
    assert checkout["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1",
                                                  "kind": "Deployment", "name": "checkout"}
    assert [m["external"]["target"] for m in checkout["spec"]["metrics"]] == [
        {"type": "AverageValue", "averageValue": "50"}, {"type": "Value", "value": "0.25"}]
    behavior = checkout["spec"]["behavior"]
    assert behavior["scaleUp"] == {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                                   "policies": [{"type": "Pods", "value": 2,
                                                 "periodSeconds": 30}]}
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert behavior["scaleDown"]["selectPolicy"] == "Min"
    assert search["metadata"] == {"name": "search",
                                  "labels": {"app.kubernetes.io/managed-by": "redline"}}
    assert (search["spec"]["minReplicas"], search["spec"]["scaleTargetRef"]["kind"]) == (
        1, "StatefulSet")
    assert inventory["spec"]["metrics"][0]["external"]["metric"]["name"] == \
        "redline_inventory_active_requests"


def test_adapter_rules_serve_the_hpas_metrics(spec_path: Path) -> None:
    files = render(load_spec(spec_path), Options(format="hpa"))
    rules = yaml.safe_load(files["prometheus-adapter-rules.yaml"])["externalRules"]
    served = {rule["name"]["as"]: rule for rule in rules}
    asked = [m["external"]["metric"]["name"] for d in objects(spec_path, "hpa")
             if d["kind"] == "HorizontalPodAutoscaler" for m in d["spec"]["metrics"]]
    assert sorted(served) == sorted(asked)
    for rule in rules:
        assert rule["resources"] == {"namespaced": False}
        assert set(rule) == {"seriesQuery", "resources", "name", "metricsQuery"}
        metric = rule["seriesQuery"].split("{")[0]
        assert rule["name"]["matches"] == f"^{metric}$" and metric in rule["metricsQuery"]
    inventory = served["redline_inventory_active_requests"]["metricsQuery"]
    assert inventory == ('sum by (cluster, service_name) (avg_over_time(http_server_active_requests'
                         '{service_name="inventory",cluster="eu1"}[5m]))')


def test_keda_and_vpa_objects_fit_their_crds(spec_path: Path) -> None:
    docs = objects(spec_path, "keda")
    assert [d["kind"] for d in docs] == ["ScaledObject", "VerticalPodAutoscaler",
                                         "ScaledObject", "ScaledObject"]
    for doc in docs:
        schema = SCALED_OBJECT if doc["kind"] == "ScaledObject" else VERTICAL_POD_AUTOSCALER
        assert problems(doc, schema) == [], doc["metadata"]["name"]
        if doc["kind"] == "ScaledObject":
            assert keda_rules(doc) == []
    checkout, vpa, search, _ = docs
    assert checkout["spec"]["fallback"] == {"failureThreshold": 3, "replicas": 4,
                                            "behavior": "currentReplicasIfHigher"}
    for trigger in checkout["spec"]["triggers"]:
        assert trigger["metadata"]["ignoreNullValues"] == "false"
        assert trigger["metadata"]["serverAddress"] == \
            "http://prometheus-operated.monitoring.svc:9090"
    assert [(t["name"], t["metricType"], t["metadata"]["threshold"])
            for t in checkout["spec"]["triggers"]] == [
        ("requests-per-second-per-pod", "AverageValue", "50"),
        ("latency-p95-seconds", "Value", "0.25")]
    # latency only: KEDA refuses a fallback without an AverageValue trigger, so none
    assert "fallback" not in search["spec"]
    assert vpa["spec"]["updatePolicy"] == {"updateMode": "Off"}


def test_the_crd_checks_catch_what_the_crds_refuse(spec_path: Path) -> None:
    so, vpa = objects(spec_path, "keda")[:2]
    bad = copy.deepcopy(so)
    bad["spec"]["triggers"][0]["metadata"]["threshold"] = 50
    bad["spec"]["minReplicaCount"] = "2"
    bad["spec"]["fallback"]["behavior"] = "hold"
    bad["spec"]["scaleTargetRef"].pop("name")
    bad["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleUp"][
        "selectPolicy"] = "Fastest"
    bad["spec"]["cooldown"] = 30
    assert problems(bad, SCALED_OBJECT) == [
        ".spec.scaleTargetRef.name: required",
        ".spec.minReplicaCount: expected integer, got '2'",
        ".spec.fallback.behavior: expected one of ['static', 'currentReplicas', "
        "'currentReplicasIfHigher', 'currentReplicasIfLower'], got 'hold'",
        ".spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleUp.selectPolicy: "
        "expected one of ['Max', 'Min', 'Disabled'], got 'Fastest'",
        ".spec.triggers[0].metadata.threshold: expected string, got 50",
        ".spec.cooldown: unknown field"]
    latency_only = copy.deepcopy(so)
    latency_only["spec"]["triggers"] = latency_only["spec"]["triggers"][1:]
    latency_only["spec"]["minReplicaCount"] = 30
    assert keda_rules(latency_only) == [
        "minReplicaCount above maxReplicaCount",
        "a fallback needs a trigger with metricType AverageValue"]
    vpa["spec"]["updatePolicy"]["updateMode"] = False  # YAML's unquoted Off
    assert problems(vpa, VERTICAL_POD_AUTOSCALER) == [
        ".spec.updatePolicy.updateMode: expected string, got False"]
    assert problems({"scaleUp": {"policies": [{"type": "Pods"}]}}, HPA_BEHAVIOR) == [
        ".scaleUp.policies[0].value: required", ".scaleUp.policies[0].periodSeconds: required"]


@pytest.mark.parametrize(("scaling", "message"), [
    ("{workload: {name: a}, max_replicas: 3}",
     r"slo\.yaml: slos\[0\]\.scaling\.target: expected a target, one or more of "
     r"requests_per_second_per_pod, .* got None"),
    ("{workload: {name: a}, min_replicas: 5, max_replicas: 3, target: "
     "{requests_per_second_per_pod: 5}}",
     r"slo\.yaml: slos\[0\]\.scaling\.min_replicas: 5 is above max_replicas \(3\)"),
    ("{workload: {kind: DaemonSet, name: a}, max_replicas: 3, target: "
     "{requests_per_second_per_pod: 5}}",
     r"slo\.yaml: slos\[0\]\.scaling\.workload\.kind: expected a workload kind, one of "
     r"Deployment, StatefulSet, ReplicaSet, got 'DaemonSet'"),
    ("{workload: {name: a}, max_replicas: 3, target: {requests_per_pod: 5}}",
     r"slos\[0\]\.scaling\.target: unknown key 'requests_per_pod'"),
    ("{workload: {name: a}, max_replicas: 3, target: {requests_per_second_per_pod: 0}}",
     r"slos\[0\]\.scaling\.target\.requests_per_second_per_pod: expected a number of at "
     r"least 0\.001, got 0"),
    ("{workload: {name: a}, target: {requests_per_second_per_pod: 5}}",
     r"slos\[0\]\.scaling\.max_replicas: expected the most replicas"),
    ("{workload: {name: A_b}, max_replicas: 3, target: {active_requests_per_pod: 5}}",
     r"slos\[0\]\.scaling\.workload\.name: expected a Kubernetes object name"),
    ("{workload: {name: a}, max_replicas: 3, target: {latency_p95_seconds: 0.5}, "
     "fallback: {replicas: 2}}",
     r"slos\[0\]\.scaling\.fallback: expected no fallback: KEDA applies one only with a "
     r"per-pod target"),
    ("{workload: {name: a}, max_replicas: 3, target: {active_requests_per_pod: 5}, "
     "scale_down_stabilization: 2h}",
     r"slos\[0\]\.scaling\.scale_down_stabilization: expected a duration from 0s to 60m"),
    ("{workload: {name: a}, max_replicas: 3, target: {active_requests_per_pod: 5}, "
     "scale_up_policies: [{pods: 1, percent: 10, period: 15s}]}",
     r"slos\[0\]\.scaling\.scale_up_policies\[0\]: expected one of pods or percent"),
    ("{workload: {name: a}, max_replicas: 3, target: {active_requests_per_pod: 5}, "
     "labels: {service_name: x}}",
     r"slos\[0\]\.scaling\.labels: expected Prometheus label names other than service_name"),
])
def test_bad_scaling_blocks_exit_2_naming_the_path(tmp_path: Path, scaling: str,
                                                   message: str) -> None:
    (tmp_path / "slo.yaml").write_text(
        f"slos:\n  - service: a\n    availability: 99\n    scaling: {scaling}\n")
    result = redline("--slo", "slo.yaml", cwd=tmp_path)
    assert result.returncode == 2, result.stdout
    assert result.stdout == ""
    assert result.stderr.startswith("redline: ") and len(result.stderr.splitlines()) == 1
    assert re.search(message, result.stderr), result.stderr


def test_a_spec_without_scaling_is_an_error_and_alerts_ignore_the_block(
        tmp_path: Path, spec_path: Path) -> None:
    (tmp_path / "none.yaml").write_text("slos:\n  - service: a\n    availability: 99\n")
    result = redline("--slo", "none.yaml", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (
        2, "redline: the SLO spec has no `scaling` block: add one to a service "
           "(docs/autoscaling.md)\n")
    stripped = tmp_path / "stripped.yaml"
    stripped.write_text(yaml.safe_dump({"slos": [
        {k: v for k, v in slo.items() if k != "scaling"}
        for slo in yaml.safe_load(SPEC)["slos"]]}))
    with_block, without = (subprocess.run(
        [sys.executable, "-m", "redline.cli", "alerts", "--slo", str(path)],
        capture_output=True, text=True, timeout=60, check=True).stdout
        for path in (spec_path, stripped))
    assert with_block == without


def test_out_names_each_file_and_stdout_has_them_otherwise(tmp_path: Path,
                                                          spec_path: Path) -> None:
    result = redline("--slo", str(spec_path), "--format", "hpa", "--out", "objects",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert sorted(result.stderr.splitlines()) == [
        "wrote objects/prometheus-adapter-rules.yaml", "wrote objects/redline-autoscaling.hpa.yaml"]
    printed = redline("--slo", str(spec_path), "--format", "hpa", cwd=tmp_path)
    assert printed.stdout == "---\n".join(
        (tmp_path / "objects" / name).read_text()
        for name in ("redline-autoscaling.hpa.yaml", "prometheus-adapter-rules.yaml"))
    one = redline("--slo", str(spec_path), "--service", "search", cwd=tmp_path)
    assert [d["metadata"]["name"] for d in yaml.safe_load_all(one.stdout)] == ["search"]
