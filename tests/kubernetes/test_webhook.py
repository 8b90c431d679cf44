"""The admission webhook over HTTPS with real AdmissionReview payloads."""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonpatch
import pytest

from redline.kubernetes.inject import Options, inject_documents
from tests.process import free_port, wait_port

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


@pytest.fixture(scope="module")
def webhook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, ssl.SSLContext]]:
    tmp = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(tmp / "key.pem"), "-out", str(tmp / "cert.pem"), "-days", "2", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "redline.cli", "webhook", "--tls-cert", str(tmp / "cert.pem"),
         "--tls-key", str(tmp / "key.pem"), "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, timeout=20)
    context = ssl.create_default_context(cafile=str(tmp / "cert.pem"))
    yield port, context
    process.terminate()
    process.wait(timeout=10)


def post(webhook: tuple[int, ssl.SSLContext], body: bytes) -> dict[str, Any]:
    port, context = webhook
    request = urllib.request.Request(f"https://127.0.0.1:{port}/mutate", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        result: dict[str, Any] = json.loads(response.read())
    return result


def test_patch_applied_equals_the_cli_injection(webhook: tuple[int, ssl.SSLContext]) -> None:
    answer = post(webhook, json.dumps(review(POD)).encode())["response"]
    assert answer["allowed"] is True and answer["patchType"] == "JSONPatch"
    assert answer["uid"] == "705ab4f5-6393-11e8-b7cc-42010a800002"
    patch = json.loads(base64.b64decode(answer["patch"]))
    patched = jsonpatch.apply_patch(POD, patch)
    expected = inject_documents([{**POD, "metadata": {**POD["metadata"],
                                                      "name": "checkout-7d9f-"}}],
                                Options())[0]
    expected["metadata"].pop("name")
    assert patched == expected


def test_never_twice(webhook: tuple[int, ssl.SSLContext]) -> None:
    injected = inject_documents([{**POD, "metadata": {**POD["metadata"], "name": "x"}}],
                                Options())[0]
    answer = post(webhook, json.dumps(review(injected)).encode())["response"]
    assert answer["allowed"] is True and "patch" not in answer


@pytest.mark.parametrize("body", [
    b"{not json", b"[]", json.dumps({"request": {"uid": "u"}}).encode(),
    json.dumps(review({"kind": "Pod", "spec": {"containers": [{"name": "a", "image": "b"}]}})
               ).encode(),  # no port: nothing to proxy
    json.dumps(review({"kind": "Service"}, kind="Service")).encode(),
])
def test_anything_unexpected_fails_open(webhook: tuple[int, ssl.SSLContext],
                                        body: bytes) -> None:
    answer = post(webhook, body)["response"]
    assert answer["allowed"] is True and "patch" not in answer


def test_healthz_over_tls(webhook: tuple[int, ssl.SSLContext]) -> None:
    port, context = webhook
    with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", context=context,
                                timeout=10) as response:
        assert response.read() == b"ok\n"


def test_bad_certificate_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate")
    result = subprocess.run([sys.executable, "-m", "redline.cli", "webhook", "--tls-cert",
                             str(tmp_path / "cert.pem"), "--tls-key",
                             str(tmp_path / "cert.pem")], capture_output=True, text=True,
                            timeout=30, check=False)
    assert result.returncode == 2 and "--tls-cert/--tls-key: cannot load" in result.stderr
