"""deploy/kubernetes: every overlay builds with `kubectl kustomize`, validates, is hardened,
passes checkov, hangs together, and what it runs works (the node exporter with the
DaemonSet's arguments, the webhook with the bootstrapped certificate and caBundle)."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from redline import __version__
from redline.cli import build_parser
from tests.conftest import kubernetes_validate, promtool_path, tool_path
from tests.process import free_port, wait_port

REPO = Path(__file__).resolve().parents[2]
OVERLAYS = ("operator", "plain")
BASES = ("node-exporter", "webhook")
# Custom resources kubernetes-validate has no schema for: each is checked by hand below.
CUSTOM = {"PodMonitor", "PrometheusRule", "Certificate", "Issuer"}
WORKLOADS = {"Deployment", "DaemonSet"}
IMAGE = f"redline:{__version__}"
WEBHOOK_HOST = "redline-webhook.redline.svc"

Doc = dict[str, Any]


@pytest.fixture(scope="module")
def deploy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of deploy/ with the bootstrap certificate made, as a user of `plain` would."""
    copy = tmp_path_factory.mktemp("repo") / "deploy"
    shutil.copytree(REPO / "deploy", copy)
    script = copy / "kubernetes" / "components" / "bootstrap-cert" / "make-cert.sh"
    subprocess.run([str(script)], check=True, capture_output=True, timeout=60)
    return copy / "kubernetes"


def kustomize(directory: Path) -> list[Doc]:
    result = subprocess.run([tool_path("kubectl"), "kustomize", str(directory)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"kubectl kustomize {directory}: {result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def rendered(deploy: Path) -> dict[str, list[Doc]]:
    return {name: kustomize(deploy / "overlays" / name) for name in OVERLAYS}


def one(docs: list[Doc], kind: str, name: str | None = None) -> Doc:
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def containers(doc: Doc) -> list[Doc]:
    spec = doc["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


@pytest.mark.parametrize("base", BASES)
def test_each_base_builds_alone(deploy: Path, base: str) -> None:
    kinds = {doc["kind"] for doc in kustomize(deploy / base)}
    assert {"Namespace", "ServiceAccount", "NetworkPolicy"} <= kinds


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("version", ["1.29", "1.33"])
def test_every_document_validates(tmp_path: Path, rendered: dict[str, list[Doc]],
                                  overlay: str, version: str) -> None:
    docs = rendered[overlay]
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all([d for d in docs if d["kind"] not in CUSTOM]))
    report = kubernetes_validate(path, version)
    assert report.count("passed for resource") == len(docs) - sum(
        d["kind"] in CUSTOM for d in docs)


def test_overlays_have_what_they_promise(rendered: dict[str, list[Doc]]) -> None:
    kinds = {name: sorted(d["kind"] for d in docs) for name, docs in rendered.items()}
    common = ["ConfigMap"] * 5 + ["DaemonSet", "Deployment", "MutatingWebhookConfiguration",
                                  "Namespace", "Namespace", "NetworkPolicy", "NetworkPolicy",
                                  "PodDisruptionBudget", "Service", "ServiceAccount",
                                  "ServiceAccount"]
    assert kinds["operator"] == sorted([*common, "Certificate", "Issuer", "PodMonitor",
                                        "PrometheusRule"])
    assert kinds["plain"] == sorted([*common, "Secret"])
    for docs in rendered.values():
        # Nothing lands in "default"; no Role, no token: neither part calls the API.
        assert all(d["metadata"].get("namespace") for d in docs
                   if d["kind"] not in ("Namespace", "MutatingWebhookConfiguration"))
        for workload in (d for d in docs if d["kind"] in WORKLOADS):
            assert workload["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
        for account in (d for d in docs if d["kind"] == "ServiceAccount"):
            assert account["automountServiceAccountToken"] is False


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_hardened(rendered: dict[str, list[Doc]], overlay: str) -> None:
    for workload in (d for d in rendered[overlay] if d["kind"] in WORKLOADS):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert not any(pod.get(key) for key in ("hostNetwork", "hostPID", "hostIPC"))
        for container in containers(workload):
            where = f"{workload['metadata']['name']}/{container['name']}"
            security = container["securityContext"]
            assert security["runAsNonRoot"] is True and security["runAsUser"] >= 10000, where
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"] == {"drop": ["ALL"]}, where
            assert security["seccompProfile"] == {"type": "RuntimeDefault"}, where
            for bound in ("requests", "limits"):
                assert set(container["resources"][bound]) == {"cpu", "memory"}, where
            assert container["image"] == IMAGE, where
            assert container["readinessProbe"] and container["livenessProbe"], where
            assert all(mount.get("readOnly") for mount in container["volumeMounts"]), where
        for volume in pod["volumes"]:
            assert "hostPath" not in volume or workload["kind"] == "DaemonSet"


def checkov(path: Path) -> Doc:
    result = subprocess.run([tool_path("checkov"), "-f", str(path), "--framework", "kubernetes",
                             "--skip-download", "--output", "json"],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode in (0, 1), result.stderr
    report: Doc = json.loads(result.stdout)
    return report


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_checkov_finds_nothing_and_every_skip_is_justified(
        tmp_path: Path, rendered: dict[str, list[Doc]], overlay: str) -> None:
    path = tmp_path / f"{overlay}.yaml"
    path.write_text(yaml.safe_dump_all(rendered[overlay]))
    report = checkov(path)
    results = report["results"]
    assert results["failed_checks"] == [], [
        (c["check_id"], c["check_name"], c["resource"]) for c in results["failed_checks"]]
    assert report["summary"]["parsing_errors"] == 0
    assert len(results["passed_checks"]) > 100
    for skipped in results["skipped_checks"]:
        kind, namespace, name = skipped["resource"].split(".")
        annotations = one([d for d in rendered[overlay]
                           if d["metadata"].get("namespace") == namespace], kind, name
                          )["metadata"]["annotations"]
        reasons = [value.split("=", 1)[1] for key, value in annotations.items()
                   if key.startswith("checkov.io/skip")
                   and value.startswith(skipped["check_id"] + "=")]
        assert len(reasons) == 1 and len(reasons[0]) > 40, skipped["check_id"]


def test_the_parts_refer_to_each_other(rendered: dict[str, list[Doc]]) -> None:
    for overlay, docs in rendered.items():
        webhook = one(docs, "Deployment", "redline-webhook")
        pod_labels = webhook["spec"]["template"]["metadata"]["labels"]
        port_names = {p["name"] for c in containers(webhook) for p in c.get("ports", [])}
        service = one(docs, "Service", "redline-webhook")
        assert matches(service["spec"]["selector"], pod_labels)
        assert service["spec"]["ports"][0]["targetPort"] in port_names
        mwc = one(docs, "MutatingWebhookConfiguration")
        for hook in mwc["webhooks"]:
            target = hook["clientConfig"]["service"]
            assert (target["name"], target["namespace"], target["port"]) == (
                "redline-webhook", service["metadata"]["namespace"],
                service["spec"]["ports"][0]["port"]), overlay
            assert hook["failurePolicy"] == "Ignore" and hook["sideEffects"] == "None"
            excluded = {e["key"]: e for e in hook["namespaceSelector"]["matchExpressions"]}
            assert {"redline", "redline-node"} <= set(
                excluded["kubernetes.io/metadata.name"]["values"])
        secret = next(v["secret"]["secretName"] for v in
                      webhook["spec"]["template"]["spec"]["volumes"] if v["name"] == "tls")
        if overlay == "operator":
            certificate = one(docs, "Certificate")
            assert certificate["spec"]["secretName"] == secret
            assert WEBHOOK_HOST in certificate["spec"]["dnsNames"]
            one(docs, "Issuer", certificate["spec"]["issuerRef"]["name"])
            assert mwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == (
                f"{certificate['metadata']['namespace']}/{certificate['metadata']['name']}")
        else:
            assert one(docs, "Secret")["metadata"]["name"] == secret  # hashed name followed
            assert all(hook["clientConfig"]["caBundle"] for hook in mwc["webhooks"])
        for policy in (d for d in docs if d["kind"] == "NetworkPolicy"):
            [workload] = [d for d in docs if d["kind"] in WORKLOADS and matches(
                policy["spec"]["podSelector"]["matchLabels"],
                d["spec"]["template"]["metadata"]["labels"])]
            assert policy["spec"]["egress"] == []
            named = {p["name"] for c in containers(workload) for p in c.get("ports", [])}
            for rule in policy["spec"]["ingress"]:
                assert {p["port"] for p in rule["ports"]} <= named


def test_only_prometheus_reaches_the_node_exporter(rendered: dict[str, list[Doc]]) -> None:
    policy = one(rendered["plain"], "NetworkPolicy", "redline-node-exporter")
    [rule] = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert rule["from"] == [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "monitoring"}}, "podSelector": {"matchLabels": {
            "app.kubernetes.io/name": "prometheus"}}}]


def test_podmonitor_scrapes_the_daemonsets_pods(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["operator"]
    monitor = one(docs, "PodMonitor")
    daemonset = one(docs, "DaemonSet")
    assert monitor["metadata"]["namespace"] == daemonset["metadata"]["namespace"]
    assert matches(monitor["spec"]["selector"]["matchLabels"],
                   daemonset["spec"]["template"]["metadata"]["labels"])
    [endpoint] = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] in {p["name"] for c in containers(daemonset) for p in c["ports"]}
    assert {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "instance",
            "action": "replace"} in endpoint["relabelings"]


def test_prometheusrule_is_current_and_checks(tmp_path: Path,
                                              rendered: dict[str, list[Doc]]) -> None:
    committed = REPO / "deploy/kubernetes/components/prometheus-operator/prometheusrule.yaml"
    result = subprocess.run([sys.executable, "-m", "redline.cli", "alerts", "--format",
                             "operator", "--namespace", "redline"],
                            capture_output=True, text=True, timeout=60, check=True)
    assert committed.read_text() == result.stdout, (
        f"{committed} is stale: `redline alerts --format operator --namespace redline > "
        f"{committed.relative_to(REPO)}`")
    rule = one(rendered["operator"], "PrometheusRule")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    checked = subprocess.run([promtool_path(), "check", "rules", str(path)],
                             capture_output=True, text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_dashboard_configmaps_hold_the_committed_dashboards(
        rendered: dict[str, list[Doc]]) -> None:
    for docs in rendered.values():
        maps = [d for d in docs if d["kind"] == "ConfigMap"]
        held = {key: value for m in maps for key, value in m["data"].items()}
        committed = sorted((REPO / "deploy/grafana/dashboards").glob("*.json"))
        assert sorted(held) == [path.name for path in committed]
        for path in committed:
            assert held[path.name] == path.read_text()
            json.loads(held[path.name])
        for configmap in maps:
            assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
            assert configmap["metadata"]["namespace"] == "monitoring"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_command_parses_with_the_real_cli(rendered: dict[str, list[Doc]],
                                                          overlay: str) -> None:
    for workload in (d for d in rendered[overlay] if d["kind"] in WORKLOADS):
        for container in containers(workload):
            args = container["args"]
            env = {e["name"]: e["value"] for e in container.get("env", [])}
            parsed = build_parser(env, args[0]).parse_args(args)
            assert parsed.func is not None
            if args[0] == "webhook":
                assert parsed.image == IMAGE  # the sidecars it injects match the manifests


def test_the_node_exporter_runs_as_the_daemonset_runs_it(
        rendered: dict[str, list[Doc]]) -> None:
    daemonset = one(rendered["plain"], "DaemonSet")
    pod = daemonset["spec"]["template"]["spec"]
    [container] = pod["containers"]
    host_paths = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"]}
    mounts = {m["mountPath"]: host_paths[m["name"]] for m in container["volumeMounts"]}

    def on_this_machine(arg: str) -> str:
        flag, _, value = arg.partition("=")
        for mount_path, host_path in mounts.items():
            if value == mount_path or value.startswith(mount_path + "/"):
                return f"{flag}={host_path.rstrip('/') + value[len(mount_path):] or '/'}"
        return arg

    port = free_port()
    text = ""
    args = [on_this_machine(a) for a in container["args"] if not a.startswith("--listen")]
    process = subprocess.Popen([sys.executable, "-m", "redline.cli", *args,
                                f"--listen=127.0.0.1:{port}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_port(port, timeout=20, still_starting=lambda: process.poll() is None)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            text = r.read().decode()
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert text, stderr
    for collector in ("cpu", "meminfo", "netdev", "netstat", "filesystem", "diskstats"):
        assert f'node_scrape_collector_success{{collector="{collector}"}} 1.0' in text
    assert 'node_network_receive_bytes_total{device="' in text
    assert 'node_filesystem_size_bytes{device="' in text


def test_the_bootstrapped_certificate_and_cabundle_verify_the_webhook(
        deploy: Path, rendered: dict[str, list[Doc]]) -> None:
    cert_dir = deploy / "components" / "bootstrap-cert"
    mwc = one(rendered["plain"], "MutatingWebhookConfiguration")
    bundle = base64.b64decode(mwc["webhooks"][0]["clientConfig"]["caBundle"]).decode()
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "redline.cli", "webhook", "--tls-cert",
         str(cert_dir / "tls.crt"), "--tls-key", str(cert_dir / "tls.key"),
         "--listen", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, timeout=20)
        # As the API server calls it: the Service's DNS name, verified with the caBundle.
        context = ssl.create_default_context(cadata=bundle)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                context.wrap_socket(raw, server_hostname=WEBHOOK_HOST) as tls:
            tls.sendall(f"GET /healthz HTTP/1.1\r\nHost: {WEBHOOK_HOST}\r\n"
                        "Connection: close\r\n\r\n".encode())
            answer = b""
            while chunk := tls.recv(4096):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200")
        with pytest.raises(ssl.SSLCertVerificationError), \
                socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            context.wrap_socket(raw, server_hostname="other.redline.svc")
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_app_namespace_example_fits_an_injected_pod() -> None:
    example = REPO / "deploy/kubernetes/examples/injected-app-networkpolicy.yaml"
    kubernetes_validate(example, "1.29")
    policy = yaml.safe_load(example.read_text())
    corpus = REPO / "tests/kubernetes/inject_corpus/deployment-with-service.yaml"
    injected = subprocess.run([sys.executable, "-m", "redline.cli", "inject", "-f", str(corpus)],
                              capture_output=True, text=True, timeout=60, check=True).stdout
    deployment = one(list(yaml.safe_load_all(injected)), "Deployment")
    assert matches(policy["spec"]["podSelector"]["matchLabels"],
                   deployment["spec"]["template"]["metadata"]["labels"])
    named = {p["name"] for c in containers(deployment) for p in c.get("ports", [])}
    allowed = {p["port"]: rule.get("from") for rule in policy["spec"]["ingress"]
               for p in rule["ports"]}
    assert set(allowed) == {"redline-http", "redline-admin"} and set(allowed) <= named
    assert allowed["redline-http"] is None  # the app's traffic: from anywhere
    node_policy = yaml.safe_load(
        (REPO / "deploy/kubernetes/node-exporter/networkpolicy.yaml").read_text())
    # metrics: from the same Prometheus as the node exporter's
    assert allowed["redline-admin"] == node_policy["spec"]["ingress"][0]["from"]


def test_an_overlay_sets_the_image_once_for_the_webhook_and_its_sidecars(deploy: Path) -> None:
    docs = kustomize(deploy / "examples" / "own-registry")
    image = "registry.example.com/platform/redline:0.1.0"
    webhook = one(docs, "Deployment", "redline-webhook")
    [container] = containers(webhook)
    env = {e["name"]: e["value"] for e in container["env"]}
    assert container["image"] == image and env["REDLINE_IMAGE"] == image
    assert build_parser(env, "webhook").parse_args(container["args"]).image == image
    assert {c["image"] for d in docs if d["kind"] in WORKLOADS for c in containers(d)} == {image}
