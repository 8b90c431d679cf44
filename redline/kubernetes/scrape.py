"""How Prometheus finds an injected pod's metrics: the ambassador's, and the app's own.

Prometheus's pod annotations (`prometheus.io/scrape`, `port`, `path`, `scheme`) name one port
per pod, and injection gives it to the ambassador. An app that had its own metrics scraped that
way keeps them: its values move to `redline.io/app-metrics-port`, `-path` and `-scheme`, which
the scrape job in deploy/kubernetes/examples/prometheus-app-metrics.yaml follows (a Prometheus
without the Operator), and `--podmonitor` writes a second endpoint for them (with it).
"""

from __future__ import annotations

from typing import Any

APP_METRICS_PORT = "redline.io/app-metrics-port"
APP_METRICS_PATH = "redline.io/app-metrics-path"
APP_METRICS_SCHEME = "redline.io/app-metrics-scheme"
ADMIN_PORT_NAME = "redline-admin"

Doc = dict[str, Any]


def app_metrics_annotations(annotations: dict[str, Any], admin_port: int) -> dict[str, str]:
    """The app's own scrape annotations, under redline's names: Prometheus's pod annotations
    name one port, which becomes the ambassador's."""
    port = annotations.get("prometheus.io/port")
    if str(annotations.get("prometheus.io/scrape")).lower() != "true" or \
            not str(port).isdigit() or str(port) == str(admin_port):
        return {}
    moved = {APP_METRICS_PORT: str(port),
             APP_METRICS_PATH: str(annotations.get("prometheus.io/path") or "/metrics")}
    if "prometheus.io/scheme" in annotations:
        moved[APP_METRICS_SCHEME] = str(annotations["prometheus.io/scheme"])
    return moved


def podmonitor(doc: Doc, labels: dict[str, str], pod: Doc,
               app_metrics: dict[str, str]) -> Doc:
    """The ambassador's metrics, and the app's own when it had them scraped."""
    metadata = {"name": f"{doc['metadata']['name']}-redline"}
    if "namespace" in doc.get("metadata", {}):
        metadata["namespace"] = doc["metadata"]["namespace"]
    endpoints: list[Doc] = [{"port": ADMIN_PORT_NAME, "path": "/metrics"}]
    if app_metrics:
        number = app_metrics[APP_METRICS_PORT]
        named = [p.get("name") for c in pod.get("spec", {}).get("containers") or []
                 for p in c.get("ports") or [] if str(p.get("containerPort")) == number]
        where: Doc = {"port": named[0]} if named and named[0] else {"targetPort": int(number)}
        endpoints.append({**where, "path": app_metrics[APP_METRICS_PATH]})
        if APP_METRICS_SCHEME in app_metrics:
            endpoints[-1]["scheme"] = app_metrics[APP_METRICS_SCHEME]
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
            "metadata": metadata,
            "spec": {"selector": {"matchLabels": dict(labels)},
                     "podMetricsEndpoints": endpoints}}
