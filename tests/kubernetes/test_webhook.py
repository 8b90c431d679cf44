"""The admission webhook over HTTPS with real AdmissionReview payloads."""

from __future__ import annotations

import base64
import copy
import json
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
import yaml

from redline.kubernetes.inject import Options, inject_documents, iter_documents, pod_template

CORPUS = Path(__file__).parent / "inject_corpus"

POD: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"generateName": "checkout-7d9f-", "namespace": "shop",
                 "labels": {"app.kubernetes.io/name": "checkout"}},
    "spec": {"containers": [{"name": "app", "image": "registry.example/checkout:1",
                             "ports": [{"name": "http", "containerPort": 8080}]}]},
}


def review(obj: Any, kind: str = "Pod") -> dict[str, Any]:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                        "kind": {"group": "", "version": "v1", "kind": kind},
                        "resource": {"group": "", "version": "v1", "resource": "pods"},
                        "namespace": "shop", "operation": "CREATE", "object": obj}}


class Webhook:
    """`redline webhook` as a process on a port of the system's choosing (--listen :0), found
    from its "webhook listening" log line; its stderr kept line by line."""

    def __init__(self, tls: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "redline.cli", "webhook", "--tls-cert", str(tls / "cert.pem"),
             "--tls-key", str(tls / "key.pem"), "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.listening: dict[str, Any] = {}
        started = threading.Event()
        self._reader = threading.Thread(target=self._read, args=(started,), daemon=True)
        self._reader.start()
        if not started.wait(20):
            self.process.kill()
            raise RuntimeError(f"the webhook did not start: {self.lines}")
        self.port = int(str(self.listening["listen"]).rpartition(":")[2])
        self.context = ssl.create_default_context(cafile=str(tls / "cert.pem"))

    def _read(self, started: threading.Event) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)
            if '"webhook listening"' in line:
                self.listening = json.loads(line)
                started.set()

    def stop(self, signalled: bool = False) -> int:
        """SIGTERM (unless `signalled` already); the exit code (-1 if it had to be killed).

        A process that was already sent SIGTERM is only waited for: a second one can land while
        the interpreter finalizes, after its handlers are gone, and end it with -15."""
        if not signalled:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return -1
        finally:
            self._reader.join(5)
            if self.process.stderr is not None:
                self.process.stderr.close()


@pytest.fixture(scope="module")
def webhook(tls: Path) -> Iterator[Webhook]:
    process = Webhook(tls)
    yield process
    process.stop()


def post(webhook: Webhook, body: bytes) -> dict[str, Any]:
    request = urllib.request.Request(f"https://127.0.0.1:{webhook.port}/mutate", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, context=webhook.context, timeout=10) as response:
        result: dict[str, Any] = json.loads(response.read())
    return result


def test_patch_applied_equals_the_cli_injection(webhook: Webhook) -> None:
    answer = post(webhook, json.dumps(review(POD)).encode())["response"]
    assert answer["allowed"] is True and answer["patchType"] == "JSONPatch"
    assert answer["uid"] == "705ab4f5-6393-11e8-b7cc-42010a800002"
    patch = json.loads(base64.b64decode(answer["patch"]))
    patched = jsonpatch.apply_patch(POD, patch)
    expected = inject_documents([{**POD, "metadata": {**POD["metadata"],
                                                      "name": "checkout-7d9f-"}}],
                                Options()).documents[0]
    expected["metadata"].pop("name")
    assert patched == expected


def test_never_twice(webhook: Webhook) -> None:
    injected = inject_documents([{**POD, "metadata": {**POD["metadata"], "name": "x"}}],
                                Options()).documents[0]
    answer = post(webhook, json.dumps(review(injected)).encode())["response"]
    assert answer["allowed"] is True and "patch" not in answer


@pytest.mark.parametrize("body", [
    b"{not json", b"[]", json.dumps({"request": {"uid": "u"}}).encode(),
    json.dumps(review({"kind": "Pod", "spec": {"containers": [{"name": "a", "image": "b"}]}})
               ).encode(),  # no port: nothing to proxy
    json.dumps(review({"kind": "Service"}, kind="Service")).encode(),
])
def test_anything_unexpected_fails_open(webhook: Webhook,
                                        body: bytes) -> None:
    answer = post(webhook, body)["response"]
    assert answer["allowed"] is True and "patch" not in answer
    assert answer["warnings"][0].startswith("redline")


def healthz(webhook: Webhook, timeout: float = 10) -> bytes:
    with urllib.request.urlopen(f"https://127.0.0.1:{webhook.port}/healthz",
                                context=webhook.context, timeout=timeout) as response:
        body: bytes = response.read()
    return body


def test_healthz_over_tls(webhook: Webhook) -> None:
    assert healthz(webhook) == b"ok\n"


def test_the_listening_line_names_the_port_it_serves_on(webhook: Webhook) -> None:
    assert webhook.port != 0  # --listen 127.0.0.1:0: the port the system chose
    assert webhook.listening["listen"] == f"127.0.0.1:{webhook.port}"
    assert healthz(webhook) == b"ok\n"


def test_a_client_that_never_finishes_its_handshake_holds_up_no_one(tls: Path) -> None:
    webhook = Webhook(tls, "--handshake-timeout", "4")
    try:
        silent = socket.create_connection(("127.0.0.1", webhook.port), timeout=10)
        partial = socket.create_connection(("127.0.0.1", webhook.port), timeout=10)
        partial.sendall(b"\x16\x03\x01\x02\x00\x01")  # a ClientHello's first bytes, no more
        connected = time.monotonic()
        # Others are served at once, not after the stuck handshakes give up
        assert healthz(webhook, timeout=3) == b"ok\n"
        assert post(webhook, json.dumps(review(POD)).encode())["response"]["allowed"] is True
        assert time.monotonic() - connected < 3.5
        # and the stuck ones are dropped after --handshake-timeout
        for stuck in (silent, partial):
            with stuck:
                assert stuck.recv(1) == b""
        assert 3 < time.monotonic() - connected < 9
    finally:
        assert webhook.stop() == 0


def test_sigterm_answers_the_request_in_flight_then_exits_0_with_json_logs(tls: Path) -> None:
    webhook = Webhook(tls)
    body = json.dumps(review(POD)).encode()
    with socket.create_connection(("127.0.0.1", webhook.port), timeout=10) as raw, \
            webhook.context.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
        conn.sendall(b"POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                     b"application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
                     % len(body) + body[:10])
        time.sleep(0.3)
        webhook.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        conn.sendall(body[10:])
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["response"]["patchType"] == "JSONPatch"
    assert webhook.stop(signalled=True) == 0
    entries = [json.loads(line) for line in webhook.lines]  # JSON lines, nothing else
    assert [e["msg"] for e in entries if e["msg"].startswith("webhook")] == [
        "webhook listening", "webhook stopping", "webhook stopped"]
    for entry in entries:
        assert not any("\x1b" in str(value) for value in entry.values()), entry  # no colours
        assert entry["logger"].startswith("redline"), entry


def test_bad_certificate_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate")
    result = subprocess.run([sys.executable, "-m", "redline.cli", "webhook", "--tls-cert",
                             str(tmp_path / "cert.pem"), "--tls-key",
                             str(tmp_path / "cert.pem")], capture_output=True, text=True,
                            timeout=30, check=False)
    assert result.returncode == 2 and "--tls-cert/--tls-key: cannot load" in result.stderr


def test_a_port_in_use_is_a_config_error_naming_listen(tls: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "redline.cli", "webhook", "--tls-cert", str(tls / "cert.pem"),
             "--tls-key", str(tls / "key.pem"), "--listen", f"127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2, result.stderr
    assert f"--listen: cannot listen on 127.0.0.1:{port}" in result.stderr, result.stderr


def corpus_workloads() -> list[dict[str, Any]]:
    docs = [item for path in sorted(CORPUS.iterdir())
            for doc in yaml.safe_load_all(path.read_text()) if doc
            for item in iter_documents(doc)]
    return [doc for doc in docs if pod_template(doc) is not None]


def as_created(workload: dict[str, Any]) -> dict[str, Any]:
    """The pod a controller creates from the workload. The webhook sees the pod only: the
    workload's own redline.io/* annotations reach it when put on the pod template."""
    template = copy.deepcopy(pod_template(workload))
    assert template is not None
    metadata = template.get("metadata", {})
    on_workload = {key: value for key, value in
                   (workload["metadata"].get("annotations") or {}).items()
                   if key.startswith("redline.io/")}
    if on_workload:
        metadata["annotations"] = {**on_workload, **metadata.get("annotations", {})}
    if workload["kind"] != "Pod":
        metadata["generateName"] = f"{metadata.pop('name', workload['metadata']['name'])}-"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]}


def test_the_corpus_through_admission_reviews_as_inject_does_it(webhook: Webhook) -> None:
    """Each workload's pod gets what `redline inject` gives the workload (without its
    Services, which the webhook does not see), and the report as warnings."""
    for workload in corpus_workloads():
        pod = as_created(workload)
        answer = post(webhook, json.dumps(review(pod)).encode())["response"]
        assert answer["allowed"] is True
        patched = jsonpatch.apply_patch(pod, json.loads(base64.b64decode(answer["patch"]))) \
            if "patch" in answer else pod
        cli = inject_documents([workload], Options())
        template = pod_template(cli.documents[0])
        assert template is not None
        assert patched["spec"] == template["spec"], workload["metadata"]["name"]
        assert patched["metadata"].get("annotations", {}) == {
            **pod["metadata"].get("annotations", {}),
            **template["metadata"].get("annotations", {})}
        name = f"{workload['kind'].lower()}/{workload['metadata']['name']}: "
        assert answer.get("warnings", []) == [
            f"redline: pod/{pod['metadata'].get('name') or pod['metadata']['generateName']}: "
            f"{line.removeprefix(name)}"
            if line.startswith(name) else f"redline: {line}" for line in cli.report]


@pytest.mark.parametrize(("annotations", "expected"), [
    ({"redline.io/port": "99999"}, "redline.io/port: '99999' is not a port; expected 1 to 65535"),
    ({"redline.io/service": "--admin"}, "annotation redline.io/service='--admin'"),
    ({"redline.io/inject": "disabled"}, "opted out (redline.io/inject: disabled)"),
])
def test_a_pod_it_cannot_handle_safely_is_admitted_unchanged_with_why(
        webhook: Webhook, annotations: dict[str, str], expected: str) -> None:
    pod = copy.deepcopy(POD)
    pod["metadata"]["annotations"] = annotations
    answer = post(webhook, json.dumps(review(pod)).encode())["response"]
    assert answer["allowed"] is True and "patch" not in answer
    [warning] = answer["warnings"]
    assert warning.startswith(f"redline: pod/checkout-7d9f-: not injected: {expected}"), warning


def test_the_warnings_say_what_was_fronted_and_the_image_to_push(webhook: Webhook) -> None:
    pod = copy.deepcopy(POD)
    pod["spec"]["containers"][0]["ports"] += [{"name": "grpc", "containerPort": 9000},
                                              {"name": "postgres", "containerPort": 5432}]
    answer = post(webhook, json.dumps(review(pod)).encode())["response"]
    assert answer["patchType"] == "JSONPatch"
    assert answer["warnings"] == [
        "redline: image redline:0.1.0 names no registry, so nodes look for it on Docker Hub, "
        "where it is not: push the image to your registry and set --image (docs/deploy.md)",
        "redline: pod/checkout-7d9f-: fronted 8080/http as http1 at redline-http (port name "
        "http)",
        "redline: pod/checkout-7d9f-: fronted 9000/grpc as h2c at redline-15081 (port name grpc)",
        "redline: pod/checkout-7d9f-: skipped 5432/postgres: port name postgres (opaque): "
        "fronted only when listed in redline.io/opaque-ports"]
    assert all(len(warning) <= 256 for warning in answer["warnings"])  # the API server's limit
