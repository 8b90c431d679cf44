"""`redline inject` / `uninject` over a corpus of realistic manifests, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from redline.kubernetes.inject import (
    ADAPTER,
    AMBASSADOR,
    INJECTED,
    Doc,
    Options,
    iter_documents,
    pod_template,
)
from redline.kubernetes.inject import inject_documents as inject_with_report
from redline.kubernetes.uninject import uninject_documents
from tests.conftest import kubernetes_validate

CORPUS = Path(__file__).parent / "inject_corpus"
FILES = sorted(p.name for p in CORPUS.iterdir())


def redline(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "redline.cli", *args], input=stdin,
                          capture_output=True, text=True, timeout=60, check=False)


def inject_documents(docs: list[Doc], options: Options) -> list[Doc]:
    return inject_with_report(docs, options).documents


def documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


def flat(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item for doc in docs for item in iter_documents(doc)]


def validate(tmp_path: Path, docs: list[dict[str, Any]], version: str) -> None:
    """kubernetes-validate --strict on each document (List items one by one; it has no schema
    for List, nor for the PodMonitor CRD, which is checked by hand below)."""
    path = tmp_path / f"validate-{version}.yaml"
    path.write_text(yaml.safe_dump_all([d for d in flat(docs) if d["kind"] != "PodMonitor"]))
    kubernetes_validate(path, version)


# Workloads redline must leave as they are, and the reason it reports for each.
UNTOUCHED = {
    "statefulset/cache": "no port to front: 6379/redis: port name redis (opaque): fronted only "
                         "when listed in redline.io/opaque-ports",
    "deployment/orders-db": "no port to front: 5432: PostgreSQL's port (opaque): fronted only "
                            "when listed in redline.io/opaque-ports",
    "deployment/batch-api": "opted out (redline.io/inject: disabled)",
    "daemonset/log-agent": "opted out (redline.io/inject: disabled)",
    "pod/manual": "it already has a redline-ambassador container, not added by redline inject",
}


def workload_name(doc: Doc) -> str:
    return f"{doc['kind'].lower()}/{doc['metadata']['name']}"


@pytest.mark.parametrize("name", FILES)
def test_native_sidecar_validates_for_1_29_and_round_trips(tmp_path: Path, name: str) -> None:
    text = (CORPUS / name).read_text()
    original = flat(documents(text))
    injected = redline("inject", "-f", str(CORPUS / name), "--podmonitor")
    assert injected.returncode == 0, injected.stderr
    out = documents(injected.stdout)
    validate(tmp_path, out, "1.29.0")
    validate(tmp_path, out, "1.33.0")
    for before, doc in zip(original, flat(out), strict=False):
        pod = pod_template(doc)
        if pod is None:
            continue
        if workload_name(doc) in UNTOUCHED:
            assert doc == before
            reason = UNTOUCHED[workload_name(doc)]
            assert f"redline inject: {workload_name(doc)}: not injected: {reason}\n" \
                in injected.stderr
            continue
        sidecars = [c for c in pod["spec"].get("initContainers", []) if c["name"] == AMBASSADOR]
        assert len(sidecars) == 1 and sidecars[0]["restartPolicy"] == "Always"
        assert sidecars[0]["startupProbe"]["httpGet"]["path"] == "/healthz"
        assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
        assert f"redline inject: {workload_name(doc)}: fronted " in injected.stderr
    for doc in flat(out)[len(original):]:
        assert doc["kind"] == "PodMonitor"
        assert doc["spec"]["podMetricsEndpoints"][0] == {"port": "redline-admin",
                                                         "path": "/metrics"}
    # Injecting twice is injecting once
    again = redline("inject", "--podmonitor", stdin=injected.stdout)
    assert again.stdout == injected.stdout
    # Uninject restores the input: its very bytes (JSON comes back as indented JSON)
    restored = redline("uninject", stdin=injected.stdout)
    assert restored.returncode == 0, restored.stderr
    if name.endswith(".json"):
        assert documents(restored.stdout) == documents(text)
    else:
        assert restored.stdout == text


@pytest.mark.parametrize("name", FILES)
def test_classic_container_validates_for_1_27(tmp_path: Path, name: str) -> None:
    injected = redline("inject", "--classic", "-f", str(CORPUS / name))
    assert injected.returncode == 0, injected.stderr
    out = documents(injected.stdout)
    validate(tmp_path, out, "1.27.0")
    assert documents(redline("uninject", stdin=injected.stdout).stdout) == \
        documents((CORPUS / name).read_text())
    assert not any(c["name"] == AMBASSADOR for doc in flat(out) if (pod := pod_template(doc))
                   for c in pod["spec"].get("initContainers", []))


def test_ports_services_and_security() -> None:
    docs = flat(documents((CORPUS / "deployment-with-service.yaml").read_text()))
    out = inject_documents(docs, Options())
    deployment, service = out
    sidecar = deployment["spec"]["template"]["spec"]["initContainers"][0]
    assert sidecar["args"][sidecar["args"].index("--upstream") + 1] == "127.0.0.1:8080"
    assert sidecar["args"][sidecar["args"].index("--service") + 1] == "checkout"
    assert sidecar["securityContext"] == {
        "runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
        "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
    assert set(sidecar["resources"]) == {"requests", "limits"}
    # the http port goes through the ambassador; the metrics port does not
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["redline-http", "metrics"]
    # kubelet probes still reach the app directly
    app = deployment["spec"]["template"]["spec"]["containers"][0]
    assert app["readinessProbe"]["httpGet"]["port"] == "http"


def test_port_choice_annotation_unnamed_and_existing_annotations() -> None:
    _, service = inject_documents(flat(documents(
        (CORPUS / "pod-unnamed-port.yaml").read_text())), Options())
    assert service["spec"]["ports"][0]["targetPort"] == "redline-http"  # was implicit 3000
    stateful = inject_documents(flat(documents(
        (CORPUS / "statefulset-init-and-sidecars.yaml").read_text())), Options())[0]
    spec = stateful["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["initContainers"]] == ["migrate", AMBASSADOR]
    assert "127.0.0.1:7700" in spec["initContainers"][1]["args"]  # redline.io/port
    annotations = stateful["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert json.loads(annotations[INJECTED])["annotations"]["prometheus.io/scrape"] == "false"


def test_adapter_shares_the_log_directory() -> None:
    out = inject_documents(flat(documents((CORPUS / "deployment-with-service.yaml")
                                          .read_text())),
                           Options(access_logs=("/var/log/app/access.log",)))
    spec = out[0]["spec"]["template"]["spec"]
    assert spec["volumes"] == [{"name": "redline-logs", "emptyDir": {}}]
    app, adapter = spec["containers"]
    assert adapter["name"] == ADAPTER
    assert app["volumeMounts"] == [{"name": "redline-logs", "mountPath": "/var/log/app"}]
    assert adapter["volumeMounts"][0]["readOnly"] is True
    # The adapter is not on the traffic path: an unreadable log must not take the app's pod
    # out of its Service (a regular container's readiness gates the pod's). Liveness only.
    assert "readinessProbe" not in adapter
    assert adapter["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert uninject_documents(out) == flat(documents(
        (CORPUS / "deployment-with-service.yaml").read_text()))


def test_a_workload_without_ports_passes_through_and_the_rest_is_injected(
        tmp_path: Path) -> None:
    quiet = "apiVersion: v1\nkind: Pod\nmetadata: {name: quiet}\n" \
            "spec: {containers: [{name: a, image: b}]}\n"
    path = tmp_path / "noport.yaml"
    path.write_text(quiet + "---\n" + (CORPUS / "deployment-with-service.yaml").read_text())
    result = redline("inject", "-f", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(quiet + "---\n")  # as it was, byte for byte
    assert "redline inject: pod/quiet: not injected: no port to front: no container port; " \
           "list the app's port in redline.io/ports\n" in result.stderr
    assert INJECTED in result.stdout  # the Deployment after it


def test_errors_name_the_input(tmp_path: Path) -> None:
    path = tmp_path / "noport.yaml"
    path.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: quiet}\n")
    result = redline("inject", "--adapter", "access-log=relative.log", "-f", str(path))
    assert result.returncode == 2 and "--adapter: expected access-log=/absolute/path" \
        in result.stderr
    result = redline("inject", "-f", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2 and "missing.yaml: cannot read" in result.stderr


def test_two_access_logs_are_both_read_and_both_shared(tmp_path: Path) -> None:
    corpus = CORPUS / "deployment-with-service.yaml"
    injected = redline("inject", "-f", str(corpus), "--adapter", "access-log=/var/log/app/a.log",
                       "--adapter", "access-log=/srv/logs/b.log",
                       "--adapter", "access-log=/var/log/app/c.log")
    assert injected.returncode == 0, injected.stderr
    out = documents(injected.stdout)
    validate(tmp_path, out, "1.29.0")
    spec = out[0]["spec"]["template"]["spec"]
    # one emptyDir per directory, mounted in the app where it writes and read-only in the
    # adapter, which follows every log
    assert spec["volumes"] == [{"name": "redline-logs", "emptyDir": {}},
                               {"name": "redline-logs-2", "emptyDir": {}}]
    app, adapter = spec["containers"]
    assert app["volumeMounts"] == [{"name": "redline-logs", "mountPath": "/var/log/app"},
                                   {"name": "redline-logs-2", "mountPath": "/srv/logs"}]
    assert adapter["volumeMounts"] == [
        {"name": "redline-logs", "mountPath": "/var/log/app", "readOnly": True},
        {"name": "redline-logs-2", "mountPath": "/srv/logs", "readOnly": True}]
    args = adapter["args"]
    assert [args[i + 1] for i, arg in enumerate(args) if arg == "--access-log"] == [
        "/var/log/app/a.log", "/srv/logs/b.log", "/var/log/app/c.log"]
    restored = redline("uninject", stdin=injected.stdout)
    assert documents(restored.stdout) == documents(corpus.read_text())


@pytest.mark.parametrize(("value", "expected"), [
    ("access-log=/var/log/app/", "names a directory"),
    ("access-log=/var/*/app/access.log", "the directory cannot hold a glob"),
])
def test_bad_adapter_flags_are_named(value: str, expected: str) -> None:
    result = redline("inject", "--adapter", value,
                     "-f", str(CORPUS / "deployment-with-service.yaml"))
    assert result.returncode == 2
    assert "--adapter" in result.stderr and expected in result.stderr, result.stderr


@pytest.mark.parametrize(("flags", "expected"), [
    (["--proxy-port", "0"], "argument --proxy-port: expected a port from 1 to 65535, got '0'"),
    (["--admin-port", "http"], "argument --admin-port: expected a port from 1 to 65535"),
    (["--proxy-port", "9901"], "--proxy-port, --admin-port: expected two different ports, "
                               "got 9901 for both"),
    (["--admin-port", "9902", "--adapter", "access-log=/var/log/app/access.log"],
     "--proxy-port, --admin-port: 9902 is the adapter's admin port"),
])
def test_ports_that_cannot_work_are_refused(flags: list[str], expected: str) -> None:
    result = redline("inject", *flags, "-f", str(CORPUS / "deployment-with-service.yaml"))
    assert result.returncode == 2 and expected in result.stderr, result.stderr
