"""The app's own metrics stay scraped after injection: the Prometheus job of
deploy/kubernetes/examples/prometheus-app-metrics.yaml finds what inject moved to
redline.io/app-metrics-* (redline/kubernetes/scrape.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import promtool_path

REPO = Path(__file__).resolve().parents[2]

Doc = dict[str, Any]


def relabel(labels: dict[str, str], configs: list[Doc]) -> dict[str, str] | None:
    """Prometheus's relabelling, for the actions the example uses (keep, replace)."""
    labels = dict(labels)
    for config in configs:
        value = config.get("separator", ";").join(
            labels.get(name, "") for name in config["source_labels"])
        match = re.fullmatch(config.get("regex", "(.*)"), value)
        if config.get("action", "replace") == "keep":
            if match is None:
                return None
        elif match is not None:
            replacement = re.sub(r"\$(\d)", r"\\\1", config.get("replacement", "$1"))
            labels[config["target_label"]] = match.expand(replacement)
    return labels


def test_the_app_metrics_scrape_job_finds_what_inject_moved(tmp_path: Path) -> None:
    example = REPO / "deploy/kubernetes/examples/prometheus-app-metrics.yaml"
    [job] = yaml.safe_load(example.read_text())["scrape_configs"]
    corpus = REPO / "tests/kubernetes/inject_corpus/pod-http-metrics-grpc.yaml"
    injected = subprocess.run([sys.executable, "-m", "redline.cli", "inject", "-f", str(corpus)],
                              capture_output=True, text=True, timeout=60, check=True).stdout
    [pod] = [d for d in yaml.safe_load_all(injected) if d["kind"] == "Pod"]

    def target(annotations: dict[str, str]) -> dict[str, str]:
        """What Kubernetes discovery gives for the pod's port 8080 (role: pod)."""
        meta = {f"__meta_kubernetes_pod_annotation_{re.sub('[^a-zA-Z0-9_]', '_', k)}": v
                for k, v in annotations.items()}
        return {**meta, "__address__": "10.1.2.3:8080", "__meta_kubernetes_pod_ip": "10.1.2.3",
                "__meta_kubernetes_namespace": "shop", "__meta_kubernetes_pod_name": "gateway",
                "__metrics_path__": "/metrics", "__scheme__": "http"}

    scraped = relabel(target(pod["metadata"]["annotations"]), job["relabel_configs"])
    assert scraped is not None
    assert (scraped["__address__"], scraped["__metrics_path__"]) == ("10.1.2.3:9090", "/stats")
    assert (scraped["namespace"], scraped["pod"]) == ("shop", "gateway")
    # pods whose app had no metrics of its own are not scraped twice
    assert relabel(target({"prometheus.io/port": "9901"}), job["relabel_configs"]) is None
    # and Prometheus accepts the job (this promtool has no Kubernetes discovery: the same job
    # with the pod's labels as a static target)
    config = tmp_path / "prometheus.yml"
    static = {**job, "static_configs": [{"targets": ["10.1.2.3:8080"]}]}
    del static["kubernetes_sd_configs"]
    config.write_text(yaml.safe_dump({"scrape_configs": [static]}))
    checked = subprocess.run([promtool_path(), "check", "config", str(config)],
                             capture_output=True, text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
