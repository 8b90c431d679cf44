"""Add redline's sidecars to Kubernetes workloads. Sans IO: documents (parsed YAML/JSON) in,
documents and a report out; the CLI and the webhook are thin shells around it.

Injection puts the ambassador in front of the app's ports that ports.py chooses (a native
sidecar: an init container with `restartPolicy: Always`, or with `classic` a regular container
for clusters before 1.29), points Services of the same input that target those ports at the
ambassador, moves Prometheus scrape annotations to the ambassador (the app's own go to
`redline.io/app-metrics-*`), and optionally adds the adapter sharing the app's log directory.
Everything it changes is recorded in the pod template's `redline.io/injected` annotation, so
injecting twice changes nothing and `uninject` restores the input exactly.

Never break a pod: a workload redline cannot inject safely (opted out, no port to front, a bad
annotation, the sidecar's ports or name already taken) is passed through unchanged, and the
report says why. Nothing here raises for a workload.

The native sidecar's startup probe asks /healthz (the proxy listens), not /readyz: /readyz
needs the app, and the app only starts once the sidecar has started.
"""

from __future__ import annotations

import copy
import json
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from redline import __version__
from redline.kubernetes.manifests import replace, saved
from redline.kubernetes.ports import PORTS_ANNOTATION, Fronted, PortError, Skipped, choose
from redline.kubernetes.scrape import ADMIN_PORT_NAME, app_metrics_annotations, podmonitor

Doc = dict[str, Any]

INJECTED = "redline.io/injected"
INJECT_ANNOTATION = "redline.io/inject"  # `disabled` opts a workload out
ORIGINAL_TARGET_PORTS = "redline.io/original-target-ports"
SERVICE_ANNOTATION = "redline.io/service"
AMBASSADOR = "redline-ambassador"
ADAPTER = "redline-adapter"
LOG_VOLUME = "redline-logs"
PROXY_PORT_NAME = "redline-http"
ADAPTER_PORT_NAME = "redline-adapter"
# `-` first would make the value a flag of the sidecar's command line
_SERVICE_NAME = re.compile(r"[^\s-][^\x00-\x1f\x7f]{0,252}")
_REGISTRY_HOST = re.compile(r"[^/]*[.:][^/]*|localhost")

_POD_TEMPLATE = {  # kind -> path to the pod template (metadata + spec)
    "Deployment": ("spec", "template"), "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"), "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"), "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


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


@dataclass(frozen=True)
class Listener:
    """An app port the ambassador fronts, and where it listens for it."""

    front: Fronted
    listen: int
    name: str

    def targets(self, target: Any) -> bool:
        """Whether a Service's targetPort (a number, or a container port's name) is this."""
        if isinstance(target, int):
            return target == self.front.port.number
        return target is not None and target == self.front.port.name


@dataclass
class Injection:
    """The documents, and one line per thing a user should know, each naming its object."""

    documents: list[Doc]
    report: list[str] = field(default_factory=list)


class _NotSafe(Exception):  # noqa: N818 (a pass-through, not an error)
    """Why a workload is passed through unchanged."""


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


def image_warning(image: str) -> str | None:
    """A warning for an image no node can pull: one without a registry host."""
    head, slash, _ = image.partition("/")
    if slash and _REGISTRY_HOST.fullmatch(head):
        return None
    return (f"image {image} names no registry, so nodes look for it on Docker Hub, where it is "
            f"not: push the image to your registry and set --image (docs/deploy.md)")


def security_context() -> Doc:
    return {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
            "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}


def _annotations(doc: Doc, pod: Doc) -> dict[str, Any]:
    """The workload's annotations, overridden by its pod template's."""
    return {**(doc.get("metadata", {}).get("annotations") or {}),
            **(pod.get("metadata", {}).get("annotations") or {})}


def _opted_out(doc: Doc, pod: Doc) -> bool:
    labels = {**(doc.get("metadata", {}).get("labels") or {}),
              **(pod.get("metadata", {}).get("labels") or {})}
    return "disabled" in (labels.get(INJECT_ANNOTATION), _annotations(doc, pod).get(
        INJECT_ANNOTATION))


def _service_name(doc: Doc, pod: Doc) -> str:
    labels = pod.get("metadata", {}).get("labels") or {}
    wanted = _annotations(doc, pod).get(SERVICE_ANNOTATION)
    if wanted is not None and not _SERVICE_NAME.fullmatch(str(wanted)):
        raise _NotSafe(f"annotation {SERVICE_ANNOTATION}={wanted!r}: expected a name that does "
                       f"not start with '-' or a space, without control characters")
    return str(wanted or labels.get("app.kubernetes.io/name") or labels.get("app")
               or doc.get("metadata", {}).get("name", "app"))


def _listeners(doc: Doc, pod: Doc, options: Options, services: list[Doc]
               ) -> tuple[list[Listener], tuple[Skipped, ...]]:
    """The app ports to front and the ambassador's port for each, and the ports skipped;
    refused when unsafe."""
    spec = pod.get("spec") or {}
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    for name in (AMBASSADOR, ADAPTER):
        if any(c.get("name") == name for c in containers):
            raise _NotSafe(f"it already has a {name} container, not added by redline inject")
    used = {p.get("containerPort"): (c.get("name"), p.get("name"))
            for c in containers for p in c.get("ports") or []}
    ours = [options.proxy_port, options.admin_port]
    if options.access_logs:
        ours.append(options.adapter_admin_port)
    for number, (container, name) in used.items():
        if number in ours or str(name).startswith("redline-"):
            raise _NotSafe(f"container {container} uses port {number}"
                           f"{f' named {name}' if name else ''}, which the sidecars need "
                           f"(--proxy-port, --admin-port choose others)")
    try:
        plan = choose(spec.get("containers") or [], _annotations(doc, pod),
                      {_target(port): port["appProtocol"] for service in services
                       for port in service["spec"].get("ports") or [] if "appProtocol" in port})
    except PortError as exc:
        raise _NotSafe(str(exc)) from exc
    if not plan.fronted:
        reasons = "; ".join(f"{s.port}: {s.why}" for s in plan.skipped) or \
            f"no container port; list the app's port in {PORTS_ANNOTATION}"
        raise _NotSafe(f"no port to front: {reasons}")
    listeners: list[Listener] = []
    candidate = options.proxy_port
    for front in plan.fronted:
        while candidate in used or candidate in ours[1:]:
            candidate += 1
        if candidate > 65535:
            raise _NotSafe(f"no free port above --proxy-port {options.proxy_port} for "
                           f"{front.port}; choose a lower one")
        name = PROXY_PORT_NAME if not listeners else f"redline-{candidate}"
        listeners.append(Listener(front, candidate, name))
        candidate += 1
    return listeners, plan.skipped


def _probe(path: str, port: str, **extra: int) -> Doc:
    return {"httpGet": {"path": path, "port": port}, **extra}


def ambassador_args(listeners: list[Listener]) -> list[str]:
    """--listen/--upstream per port, each with its --protocol; a single HTTP pair without it,
    as every ambassador release understands that (and --protocol defaults to auto)."""
    def pair(lis: Listener) -> list[str]:
        return ["--listen", f"0.0.0.0:{lis.listen}",
                "--upstream", f"127.0.0.1:{lis.front.port.number}"]

    if len(listeners) == 1 and listeners[0].front.protocol in ("http1", "auto"):
        return pair(listeners[0])
    return [arg for lis in listeners for arg in (*pair(lis), "--protocol", lis.front.protocol)]


def ambassador(service: str, listeners: list[Listener], options: Options) -> Doc:
    container: Doc = {
        "name": AMBASSADOR,
        "image": options.image,
        "args": ["ambassador", *ambassador_args(listeners),
                 "--admin", f"0.0.0.0:{options.admin_port}", "--service", service],
        "ports": [*({"name": lis.name, "containerPort": lis.listen} for lis in listeners),
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
        "ports": [{"name": ADAPTER_PORT_NAME, "containerPort": options.adapter_admin_port}],
        # No readiness probe: the adapter is off the traffic path, and a regular container's
        # readiness gates the pod's, so a log it cannot read would take the app out of its
        # Service. That is the adapter's problem to report (source_up 0, the health alerts).
        "livenessProbe": _probe("/healthz", ADAPTER_PORT_NAME, periodSeconds=10),
        "volumeMounts": [{"name": name, "mountPath": directory, "readOnly": True}
                         for name, directory in log_volumes(options.access_logs)],
        "resources": {"requests": dict(options.requests), "limits": dict(options.limits)},
        "securityContext": security_context(),
    }


def inject_documents(docs: list[Doc], options: Options) -> Injection:
    """Every workload in `docs` injected, or passed through unchanged with the reason;
    Services pointing at a fronted port re-targeted; PodMonitors appended with
    `options.podmonitor`."""
    result = Injection([copy.deepcopy(doc) for doc in docs])
    monitors: list[Doc] = []
    injected = False
    for doc in result.documents:
        pod = pod_template(doc)
        if pod is None or INJECTED in (pod.get("metadata", {}).get("annotations") or {}):
            continue
        name = _name(doc)
        try:
            if _opted_out(doc, pod):
                raise _NotSafe(f"opted out ({INJECT_ANNOTATION}: disabled)")
            listeners, skipped = _listeners(doc, pod, options, _services(result.documents, doc))
            service = _service_name(doc, pod)
        except _NotSafe as exc:
            result.report.append(f"{name}: not injected: {exc}")
            continue
        app_metrics = _inject_pod(pod, listeners, service, options)
        injected = True
        result.report += [f"{name}: fronted {lis.front.port} as {lis.front.protocol} at "
                          f"{lis.name} ({lis.front.why})" for lis in listeners]
        result.report += [f"{name}: skipped {s.port}: {s.why}"
                          for s in skipped]
        labels = pod.get("metadata", {}).get("labels") or {}
        for other in _services(result.documents, doc):
            _retarget(other, listeners)
        if options.podmonitor and labels:
            monitors.append(podmonitor(doc, labels, pod, app_metrics))
    warning = image_warning(options.image)
    if warning and injected:
        result.report.insert(0, warning)
    result.documents += monitors
    return result


def _inject_pod(pod: Doc, listeners: list[Listener], service: str,
                options: Options) -> dict[str, str]:
    """Add the sidecars; the app's own scrape annotations moved to redline.io/app-metrics-*."""
    spec = pod.setdefault("spec", {})
    metadata = pod.setdefault("metadata", {})
    record: Doc = {"version": 2, "created": [], "annotations": {}, "containers": [],
                   "initContainers": [], "volumes": [], "mounts": [],
                   "ports": [{"port": lis.front.port.number, "listen": lis.listen,
                              "protocol": lis.front.protocol} for lis in listeners]}
    for key, owner in (("annotations", metadata), ("initContainers", spec)):
        if key not in owner:
            record["created"].append(key)
    annotations = metadata.setdefault("annotations", {})
    where = "containers" if options.classic else "initContainers"
    spec.setdefault(where, []).append(ambassador(service, listeners, options))
    record[where].append(AMBASSADOR)
    if options.access_logs:
        _add_adapter(spec, listeners, service, options, record)
    app_metrics = app_metrics_annotations(annotations, options.admin_port)
    scrape = {"prometheus.io/scrape": "true", "prometheus.io/port": str(options.admin_port),
              "prometheus.io/path": "/metrics"}
    if "prometheus.io/scheme" in annotations:
        scrape["prometheus.io/scheme"] = "http"
    for key, value in {**app_metrics, **scrape}.items():
        record["annotations"][key] = saved(annotations, key)
        replace(annotations, key, value)
    annotations[INJECTED] = json.dumps(record, sort_keys=True)
    return app_metrics


def _add_adapter(spec: Doc, listeners: list[Listener], service: str, options: Options,
                 record: Doc) -> None:
    containers = spec["containers"]
    app = next((c for c in containers if c.get("name") == listeners[0].front.port.container),
               containers[0])
    if "volumes" not in spec:
        record["created"].append("volumes")
    if "volumeMounts" not in app:
        record["created"].append("app.volumeMounts")
    for name, directory in log_volumes(options.access_logs):
        spec.setdefault("volumes", []).append({"name": name, "emptyDir": {}})
        record["volumes"].append(name)
        app.setdefault("volumeMounts", []).append({"name": name, "mountPath": directory})
        record["mounts"].append({"container": app["name"], "volume": name})
    containers.append(adapter(service, options))
    record["containers"].append(ADAPTER)


def _services(docs: list[Doc], workload: Doc) -> list[Doc]:
    """The Services of the input that select the workload's pods."""
    pod = pod_template(workload) or {}
    labels = pod.get("metadata", {}).get("labels") or {}
    namespace = workload.get("metadata", {}).get("namespace")
    return [doc for doc in docs if doc.get("kind") == "Service"
            and (selector := (doc.get("spec") or {}).get("selector"))
            and all(labels.get(k) == v for k, v in selector.items())
            and doc.get("metadata", {}).get("namespace") == namespace]


def _target(port: Doc) -> Any:
    """A Service port's target: a number, or a container port's name."""
    return port.get("targetPort", port.get("port"))


def _retarget(service: Doc, listeners: list[Listener]) -> None:
    originals: dict[str, Any] = {}
    for index, port in enumerate(service["spec"].get("ports") or []):
        listener = next((lis for lis in listeners if lis.targets(_target(port))), None)
        if listener is not None:
            originals[str(index)] = saved(port, "targetPort")
            replace(port, "targetPort", listener.name)
    if originals:
        service.setdefault("metadata", {}).setdefault("annotations", {})[
            ORIGINAL_TARGET_PORTS] = json.dumps(originals, sort_keys=True)


def iter_documents(loaded: Any) -> Iterator[Doc]:
    """Documents of a parsed file: one object, or the items of a `kind: List`."""
    if isinstance(loaded, dict) and loaded.get("kind") == "List":
        yield from loaded.get("items") or []
    elif isinstance(loaded, dict):
        yield loaded
