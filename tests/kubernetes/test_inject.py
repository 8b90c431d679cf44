"""`redline inject` / `uninject` over a corpus of realistic manifests, as a user runs them."""

from __future__ import annotations

import difflib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from redline.cli import build_parser
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
from redline.sidecars.ambassador.command import ports_from_args
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


def validate(tmp_path: Path, docs: list[dict[str, Any]], *versions: str) -> None:
    """kubernetes-validate --strict on each document for each version (List items one by one;
    it has no schema for List, nor for the PodMonitor CRD, which is checked by hand below)."""
    path = tmp_path / "validate.yaml"
    path.write_text(yaml.safe_dump_all([d for d in flat(docs) if d["kind"] != "PodMonitor"]))
    kubernetes_validate(path, *versions)


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
    validate(tmp_path, out, "1.29.0", "1.33.0")
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


def contract(args: list[str]) -> list[tuple[str, str, str]]:
    """(listen, upstream, protocol) per port, read as the ambassador's CLI contract says: the
    i-th --listen goes with the i-th --upstream and --protocol, which defaults to auto."""
    def values(flag: str) -> list[str]:
        return [args[i + 1] for i, arg in enumerate(args) if arg == flag]

    listen, upstream, protocol = values("--listen"), values("--upstream"), values("--protocol")
    assert len(listen) == len(upstream) and len(protocol) in (0, len(listen)), args
    return list(zip(listen, upstream, protocol or ["auto"] * len(listen), strict=True))


def ambassador_of(doc: Doc) -> Doc:
    pod = pod_template(doc)
    assert pod is not None
    [sidecar] = [c for c in pod["spec"].get("initContainers", []) if c["name"] == AMBASSADOR]
    assert isinstance(sidecar, dict)
    return sidecar


def test_several_ports_one_ambassador_services_follow_and_app_metrics_stay_scraped() -> None:
    docs = flat(documents((CORPUS / "pod-http-metrics-grpc.yaml").read_text()))
    pod, service, monitor = inject_documents(docs, Options(podmonitor=True))
    sidecar = ambassador_of(pod)
    assert contract(sidecar["args"]) == [("0.0.0.0:15080", "127.0.0.1:8080", "http1"),
                                         ("0.0.0.0:15081", "127.0.0.1:9000", "h2c")]
    assert [(p["name"], p["containerPort"]) for p in sidecar["ports"]] == [
        ("redline-http", 15080), ("redline-15081", 15081), ("redline-admin", 9901)]
    # Only fronted ports are retargeted; the app's metrics port is not
    assert [p["targetPort"] for p in service["spec"]["ports"]] == [
        "redline-http", "redline-15081", "metrics"]
    # Prometheus's annotations name the ambassador; the app's own move, for the scrape job of
    # deploy/kubernetes/examples/prometheus-app-metrics.yaml and the PodMonitor
    annotations = pod["metadata"]["annotations"]
    assert {k: v for k, v in annotations.items() if k != INJECTED} == {
        "prometheus.io/scrape": "true", "prometheus.io/port": "9901",
        "prometheus.io/path": "/metrics", "redline.io/app-metrics-port": "9090",
        "redline.io/app-metrics-path": "/stats"}
    assert monitor["spec"]["podMetricsEndpoints"] == [
        {"port": "redline-admin", "path": "/metrics"}, {"port": "metrics", "path": "/stats"}]
    assert uninject_documents([pod, service, monitor]) == docs


def test_a_single_http_port_keeps_the_single_pair_output_others_say_their_protocol() -> None:
    http = inject_documents(flat(documents((CORPUS / "deployment-with-service.yaml")
                                           .read_text())), Options())[0]
    assert ambassador_of(http)["args"] == [
        "ambassador", "--listen", "0.0.0.0:15080", "--upstream", "127.0.0.1:8080",
        "--admin", "0.0.0.0:9901", "--service", "checkout"]
    inventory, service, pricing, _ = inject_documents(
        flat(documents((CORPUS / "grpc.yaml").read_text())), Options())
    assert contract(ambassador_of(inventory)["args"]) == [
        ("0.0.0.0:15080", "127.0.0.1:50051", "h2c")]
    assert "--protocol" in ambassador_of(inventory)["args"]
    assert service["spec"]["ports"][0]["targetPort"] == "redline-http"
    assert contract(ambassador_of(pricing)["args"]) == [
        ("0.0.0.0:15080", "127.0.0.1:8081", "h2c")]  # from its Service's appProtocol


def test_opaque_ports_front_a_database_for_tcp_metrics_only_when_asked(tmp_path: Path) -> None:
    text = (CORPUS / "redis-statefulset.yaml").read_text().replace(
        "      labels: {app: cache}\n",
        "      labels: {app: cache}\n      annotations: {redline.io/opaque-ports: \"6379\"}\n")
    statefulset, service = inject_documents(flat(documents(text)), Options())
    assert contract(ambassador_of(statefulset)["args"]) == [
        ("0.0.0.0:15080", "127.0.0.1:6379", "opaque")]
    assert service["spec"]["ports"][0]["targetPort"] == "redline-http"
    validate(tmp_path, [statefulset, service], "1.29.0")


def test_the_diff_of_inject_is_only_what_redline_changes() -> None:
    path = CORPUS / "gitops-comments-and-styles.yaml"
    text = path.read_text()
    injected = redline("inject", "-f", str(path))
    assert injected.returncode == 0, injected.stderr
    diff = list(difflib.unified_diff(text.splitlines(), injected.stdout.splitlines(),
                                     lineterm="", n=0))
    removed = [line[1:] for line in diff if line.startswith("-") and not line.startswith("---")]
    added = [line[1:] for line in diff if line.startswith("+") and not line.startswith("+++")]
    # the two values redline changes; quotes and comments kept
    assert removed == [
        '        prometheus.io/scrape: "false"   # the app has no metrics of its own',
        '    targetPort: "web"  # quoted on purpose']
    assert '        prometheus.io/scrape: "true"    # the app has no metrics of its own' in added
    assert '    targetPort: "redline-http" # quoted on purpose' in added
    # what it adds is in the file's style: kubectl's unindented sequences
    assert "      initContainers:" in added and "      - name: redline-ambassador" in added
    # every comment of the input is still there
    comments = [line[line.index("#"):] for line in text.splitlines() if "#" in line]
    assert all(comment in injected.stdout for comment in comments)


def test_the_image_warning_and_the_report_go_to_stderr() -> None:
    corpus = str(CORPUS / "deployment-with-service.yaml")
    default = redline("inject", "-f", corpus)
    assert default.stderr.splitlines()[0] == (
        "redline inject: image redline:0.1.0 names no registry, so nodes look for it on Docker "
        "Hub, where it is not: push the image to your registry and set --image (docs/deploy.md)")
    pushed = redline("inject", "--image", "registry.example.com/platform/redline:0.1.0",
                     "-f", corpus)
    assert pushed.returncode == 0 and "names no registry" not in pushed.stderr
    assert pushed.stderr.splitlines() == [
        "redline inject: deployment/checkout: fronted 8080/http as http1 at redline-http "
        "(port name http)",
        "redline inject: deployment/checkout: skipped 9090/metrics: protocol not declared (no "
        "appProtocol, known port name or well-known number); declare it HTTP (appProtocol, a "
        "port name http-...) or list it in redline.io/ports"]
    assert "registry.example.com/platform/redline:0.1.0" in pushed.stdout


@pytest.mark.parametrize("name", FILES)
def test_every_injected_command_is_one_the_ambassador_and_adapter_accept(name: str) -> None:
    """The sidecars' arguments parse with the real CLI into the ports the contract says."""
    injected = redline("inject", "-f", str(CORPUS / name), "--adapter",
                       "access-log=/var/log/app/access.log")
    for doc in flat(documents(injected.stdout)):
        pod = pod_template(doc)
        if pod is None or INJECTED not in pod["metadata"].get("annotations", {}):
            continue
        sidecar = ambassador_of(doc)
        args = sidecar["args"]
        ports = ports_from_args(build_parser({}, "ambassador").parse_args(args))
        assert [(f"{p.listen[0]}:{p.listen[1]}", f"{p.upstream.host}:{p.upstream.port}",
                 p.protocol) for p in ports] == contract(args)
        [adapter] = [c for c in pod["spec"]["containers"] if c["name"] == ADAPTER]
        assert build_parser({}, "adapter").parse_args(adapter["args"]).func is not None


def test_several_files_are_separate_documents_and_uninject_gives_them_back(
        tmp_path: Path) -> None:
    """Each further file starts a document of its own (the first file's last document ran into
    the next file's first: a YAML mapping with duplicate keys that uninject could not read)."""
    names = ["deployment-with-service.yaml", "postgres-with-service.yaml"]
    injected = redline("inject", *(arg for n in names for arg in ("-f", str(CORPUS / n))))
    assert injected.returncode == 0, injected.stderr
    documents = [d for d in yaml.safe_load_all(injected.stdout) if d is not None]
    assert [d["kind"] for d in documents] == ["Deployment", "Service", "Deployment", "Service"]
    (tmp_path / "injected.yaml").write_text(injected.stdout)
    restored = redline("uninject", "-f", str(tmp_path / "injected.yaml"))
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout == "---\n".join((CORPUS / n).read_text() for n in names)
