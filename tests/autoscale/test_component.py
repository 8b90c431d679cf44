"""deploy/kubernetes/components/autoscaling: generated from deploy/prometheus/slo.yaml and
current, builds with `kubectl kustomize` in an app's kustomization, and fits KEDA's and the
VPA's CRDs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.autoscale.crds import SCALED_OBJECT, VERTICAL_POD_AUTOSCALER, keda_rules, problems
from tests.conftest import tool_path

REPO = Path(__file__).resolve().parents[2]
COMPONENT = REPO / "deploy/kubernetes/components/autoscaling"
SPEC = REPO / "deploy/prometheus/slo.yaml"


def test_the_component_is_current(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "redline.cli", "autoscale", "--slo",
                             str(SPEC), "--out", str(tmp_path)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    [generated] = tmp_path.iterdir()
    committed = COMPONENT / generated.name
    assert committed.read_text() == generated.read_text(), (
        f"{committed.relative_to(REPO)} is stale: `redline autoscale --slo "
        f"deploy/prometheus/slo.yaml --out {COMPONENT.relative_to(REPO)}`")


def test_an_app_kustomization_with_the_component_builds_valid_objects(tmp_path: Path) -> None:
    shutil.copytree(COMPONENT, tmp_path / "autoscaling")
    app = tmp_path / "app"
    app.mkdir()
    (app / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "components:\n  - ../autoscaling\n")
    result = subprocess.run([tool_path("kubectl"), "kustomize", str(app)], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert sorted((d["kind"], d["metadata"]["name"]) for d in docs) == [
        ("ScaledObject", "checkout"), ("ScaledObject", "search"),
        ("VerticalPodAutoscaler", "checkout")]
    for doc in docs:
        assert doc["metadata"]["namespace"] == "shop"
        if doc["kind"] == "ScaledObject":
            assert problems(doc, SCALED_OBJECT) == [] and keda_rules(doc) == []
        else:
            assert problems(doc, VERTICAL_POD_AUTOSCALER) == []
