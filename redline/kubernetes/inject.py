"""Add redline's sidecars to Kubernetes workloads, and take them out again. Sans IO: documents
(parsed YAML/JSON) in, documents out; the CLI and the webhook are thin shells around it.

Injection adds the ambassador in front of the app's port (a native sidecar: an init container
with `restartPolicy: Always`, or with `classic` a regular container for clusters before 1.29),
points Services of the same input that target the app's port at the ambassador, adds
Prometheus scrape annotations, and optionally the adapter sharing the app's log directory.
Everything it changes is recorded in the pod template's `redline.io/injected` annotation, so
injecting twice changes nothing and `uninject` restores the input exactly.

The native sidecar's startup probe asks /healthz (the proxy listens), not /readyz: /readyz
needs the app, and the app only starts once the sidecar has started.
"""

from __future__ import annotations

import copy
import json
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from redline import __version__

Doc = dict[str, Any]

INJECTED = "redline.io/injected"
ORIGINAL_TARGET_PORTS = "redline.io/original-target-ports"
PORT_ANNOTATION = "redline.io/port"
SERVICE_ANNOTATION = "redline.io/service"
AMBASSADOR = "redline-ambassador"
ADAPTER = "redline-adapter"
LOG_VOLUME = "redline-logs"
PROXY_PORT_NAME = "redline-http"
ADMIN_PORT_NAME = "redline-admin"

_POD_TEMPLATE = {  # kind -> path to the pod template (metadata + spec)
    "Deployment": ("spec", "template"), "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"), "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"), "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


class InjectError(Exception):
    """A workload that cannot be injected, named: `deployment/web: ...`."""


@dataclass(frozen=True)
class Options:
    image: str = f"redline:{__version__}"  # the image this repository builds; --image for yours
    classic: bool = False
    proxy_port: int = 15080
    admin_port: int = 9901
    adapter_admin_port: int = 9902
    access_logs: tuple[str, ...] = ()  # absolute paths; with any, the adapter follows them all
    log_format: str = "nginx"
    requests: dict[str, str] = field(default_factory=lambda: {"cpu": "50m", "memory": "48Mi"})
    limits: dict[str, str] = field(default_factory=lambda: {"cpu": "500m", "memory": "128Mi"})
    podmonitor: bool = False


def _name(doc: Doc) -> str:
    return f"{doc.get('kind', '?').lower()}/{doc.get('metadata', {}).get('name', '?')}"


def pod_template(doc: Doc) -> Doc | None:
    """The pod (metadata + spec) of a workload; None for other kinds."""
    if doc.get("kind") == "Pod":
        return doc
    path = _POD_TEMPLATE.get(str(doc.get("kind")))
    if path is None:
        return None
    node: Any = doc
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def security_context() -> Doc:
    return {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
            "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}


def _app_port(doc: Doc, pod: Doc) -> tuple[Doc, int, str | None]:
    """(app container, port number, port name) from the annotation, a port named http, or the
    first port."""
    containers = pod.get("spec", {}).get("containers") or []
    annotations = {**doc.get("metadata", {}).get("annotations", {}),
                   **pod.get("metadata", {}).get("annotations", {})}
    wanted = annotations.get(PORT_ANNOTATION)
    candidates = [(c, p) for c in containers for p in c.get("ports") or []]
    if wanted is not None:
        for container, port in candidates:
            if str(port.get("containerPort")) == str(wanted) or port.get("name") == wanted:
                return container, int(port["containerPort"]), port.get("name")
        if str(wanted).isdigit() and containers:
            return containers[0], int(wanted), None
        raise InjectError(f"{_name(doc)}: annotation {PORT_ANNOTATION}={wanted!r} names no "
                          f"container port")
    for container, port in candidates:
        if port.get("name") == "http":
            return container, int(port["containerPort"]), "http"
    if candidates:
        container, port = candidates[0]
        return container, int(port["containerPort"]), port.get("name")
    raise InjectError(f"{_name(doc)}: no container port to put the ambassador in front of; "
                      f"set the annotation {PORT_ANNOTATION}")


def _service_name(doc: Doc, pod: Doc) -> str:
    labels = pod.get("metadata", {}).get("labels", {})
    annotations = {**doc.get("metadata", {}).get("annotations", {}),
                   **pod.get("metadata", {}).get("annotations", {})}
    return str(annotations.get(SERVICE_ANNOTATION) or labels.get("app.kubernetes.io/name")
               or labels.get("app") or doc.get("metadata", {}).get("name", "app"))


def _probe(path: str, port: str, **extra: int) -> Doc:
    return {"httpGet": {"path": path, "port": port}, **extra}


def ambassador(service: str, app_port: int, options: Options) -> Doc:
    container: Doc = {
        "name": AMBASSADOR,
        "image": options.image,
        "args": ["ambassador", "--listen", f"0.0.0.0:{options.proxy_port}",
                 "--upstream", f"127.0.0.1:{app_port}",
                 "--admin", f"0.0.0.0:{options.admin_port}", "--service", service],
        "ports": [{"name": PROXY_PORT_NAME, "containerPort": options.proxy_port},
                  {"name": ADMIN_PORT_NAME, "containerPort": options.admin_port}],
        "readinessProbe": _probe("/readyz", ADMIN_PORT_NAME, periodSeconds=2),
        "livenessProbe": _probe("/healthz", ADMIN_PORT_NAME, periodSeconds=10),
        "resources": {"requests": dict(options.requests), "limits": dict(options.limits)},
        "securityContext": security_context(),
    }
    if not options.classic:
        container["restartPolicy"] = "Always"  # a native sidecar (Kubernetes 1.29+)
        container["startupProbe"] = _probe("/healthz", ADMIN_PORT_NAME, periodSeconds=1,
                                           failureThreshold=30)
    return container


def log_volumes(access_logs: tuple[str, ...]) -> list[tuple[str, str]]:
    """(volume name, directory): one emptyDir per directory the logs are in, in order."""
    directories = dict.fromkeys(posixpath.dirname(path) for path in access_logs)
    return [(LOG_VOLUME if index == 1 else f"{LOG_VOLUME}-{index}", directory)
            for index, directory in enumerate(directories, start=1)]


def adapter(service: str, options: Options) -> Doc:
    follow = [arg for path in options.access_logs for arg in ("--access-log", path)]
    return {
        "name": ADAPTER,
        "image": options.image,
        "args": ["adapter", "--service", service, *follow, "--format", options.log_format,
                 "--admin", f"0.0.0.0:{options.adapter_admin_port}"],
        "ports": [{"name": "redline-adapter", "containerPort": options.adapter_admin_port}],
        # No readiness probe: the adapter is off the traffic path, and a regular container's
        # readiness gates the pod's, so a log it cannot read would take the app out of its
        # Service. That is the adapter's problem to report (source_up 0, the health alerts).
        "livenessProbe": _probe("/healthz", "redline-adapter", periodSeconds=10),
        "volumeMounts": [{"name": name, "mountPath": directory, "readOnly": True}
                         for name, directory in log_volumes(options.access_logs)],
        "resources": {"requests": dict(options.requests), "limits": dict(options.limits)},
        "securityContext": security_context(),
    }


def inject_documents(docs: list[Doc], options: Options) -> list[Doc]:
    """Every workload in `docs` injected; Services pointing at an injected app re-targeted;
    PodMonitors appended with `options.podmonitor`."""
    out = [copy.deepcopy(doc) for doc in docs]
    monitors: list[Doc] = []
    for doc in out:
        pod = pod_template(doc)
        if pod is None or INJECTED in pod.get("metadata", {}).get("annotations", {}):
            continue
        record = _inject_pod(doc, pod, options)
        labels = pod.get("metadata", {}).get("labels", {})
        for service in out:
            if service.get("kind") == "Service":
                _retarget(service, labels, record, doc)
        if options.podmonitor and labels:
            monitors.append(podmonitor(doc, labels))
    return out + monitors


def _inject_pod(doc: Doc, pod: Doc, options: Options) -> Doc:
    spec = pod.setdefault("spec", {})
    metadata = pod.setdefault("metadata", {})
    app, port, port_name = _app_port(doc, pod)
    service = _service_name(doc, pod)
    record: Doc = {"version": 1, "created": [], "annotations": {}, "port": port,
                   "portName": port_name, "containers": [], "initContainers": [],
                   "volumes": [], "mounts": []}
    for key, owner in (("annotations", metadata), ("initContainers", spec)):
        if key not in owner:
            record["created"].append(key)
    annotations = metadata.setdefault("annotations", {})
    where = "containers" if options.classic else "initContainers"
    spec.setdefault(where, []).append(ambassador(service, port, options))
    record[where].append(AMBASSADOR)
    if options.access_logs:
        if "volumes" not in spec:
            record["created"].append("volumes")
        if "volumeMounts" not in app:
            record["created"].append("app.volumeMounts")
        for name, directory in log_volumes(options.access_logs):
            spec.setdefault("volumes", []).append({"name": name, "emptyDir": {}})
            record["volumes"].append(name)
            app.setdefault("volumeMounts", []).append({"name": name, "mountPath": directory})
            record["mounts"].append({"container": app["name"], "volume": name})
        spec["containers"].append(adapter(service, options))
        record["containers"].append(ADAPTER)
    for key, value in (("prometheus.io/scrape", "true"),
                       ("prometheus.io/port", str(options.admin_port)),
                       ("prometheus.io/path", "/metrics")):
        record["annotations"][key] = annotations.get(key)
        annotations[key] = value
    annotations[INJECTED] = json.dumps(record, sort_keys=True)
    return record


def _retarget(service: Doc, pod_labels: dict[str, str], record: Doc, workload: Doc) -> None:
    spec = service.get("spec", {})
    selector = spec.get("selector") or {}
    if not selector or any(pod_labels.get(k) != v for k, v in selector.items()):
        return
    if workload.get("metadata", {}).get("namespace") != \
            service.get("metadata", {}).get("namespace"):
        return
    originals: dict[str, Any] = {}
    for index, port in enumerate(spec.get("ports") or []):
        target = port.get("targetPort", port.get("port"))
        if target in (record["port"], record["portName"]) and target is not None:
            originals[str(index)] = port.get("targetPort", None)
            port["targetPort"] = PROXY_PORT_NAME
    if originals:
        service.setdefault("metadata", {}).setdefault("annotations", {})[
            ORIGINAL_TARGET_PORTS] = json.dumps(originals, sort_keys=True)


def podmonitor(doc: Doc, labels: dict[str, str]) -> Doc:
    metadata = {"name": f"{doc['metadata']['name']}-redline"}
    if "namespace" in doc.get("metadata", {}):
        metadata["namespace"] = doc["metadata"]["namespace"]
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
            "metadata": metadata,
            "spec": {"selector": {"matchLabels": dict(labels)},
                     "podMetricsEndpoints": [{"port": ADMIN_PORT_NAME, "path": "/metrics"}]}}


def uninject_documents(docs: list[Doc]) -> list[Doc]:
    """The input of `inject_documents`, from its output."""
    return [doc for doc in uninject_aligned(docs) if doc is not None]


def uninject_aligned(docs: list[Doc]) -> list[Doc | None]:
    """As uninject_documents, one entry per input document: None for those injection added."""
    out: list[Doc | None] = []
    for original in docs:
        doc = copy.deepcopy(original)
        if doc.get("kind") == "PodMonitor" and \
                doc.get("metadata", {}).get("name", "").endswith("-redline"):
            out.append(None)
            continue
        pod = pod_template(doc)
        if pod is not None and INJECTED in pod.get("metadata", {}).get("annotations", {}):
            _uninject_pod(pod)
        if doc.get("kind") == "Service":
            _restore_service(doc)
        out.append(doc)
    return out


def _uninject_pod(pod: Doc) -> None:
    metadata, spec = pod["metadata"], pod["spec"]
    annotations = metadata["annotations"]
    record = json.loads(annotations.pop(INJECTED))
    for key in ("containers", "initContainers"):
        names = set(record[key])
        if names and key in spec:
            spec[key] = [c for c in spec[key] if c.get("name") not in names]
    if "volumes" in spec:
        spec["volumes"] = [v for v in spec["volumes"] if v.get("name") not in record["volumes"]]
    for mount in record["mounts"]:
        for container in spec.get("containers", []):
            if container.get("name") == mount["container"]:
                container["volumeMounts"] = [m for m in container.get("volumeMounts", [])
                                             if m.get("name") != mount["volume"]]
                if "app.volumeMounts" in record["created"] and not container["volumeMounts"]:
                    del container["volumeMounts"]
    for key, previous in record["annotations"].items():
        if previous is None:
            annotations.pop(key, None)
        else:
            annotations[key] = previous
    for key, owner in (("annotations", metadata), ("initContainers", spec),
                       ("volumes", spec)):
        if key in record["created"] and not owner.get(key):
            owner.pop(key, None)


def _restore_service(service: Doc) -> None:
    annotations = service.get("metadata", {}).get("annotations", {})
    if ORIGINAL_TARGET_PORTS not in annotations:
        return
    originals = json.loads(annotations.pop(ORIGINAL_TARGET_PORTS))
    for index, target in originals.items():
        port = service["spec"]["ports"][int(index)]
        if target is None:
            port.pop("targetPort", None)
        else:
            port["targetPort"] = target
    if not annotations:
        del service["metadata"]["annotations"]


def iter_documents(loaded: Any) -> Iterator[Doc]:
    """Documents of a parsed file: one object, a `kind: List`, or many (multi-doc YAML)."""
    if isinstance(loaded, dict) and loaded.get("kind") == "List":
        yield from loaded.get("items") or []
    elif isinstance(loaded, dict):
        yield loaded
