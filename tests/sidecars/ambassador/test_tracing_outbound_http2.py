"""Spans of the app's HTTP/2 calls through an outbound ambassador that originates TLS (#18):
CLIENT spans that say what outbound HTTP/1 spans say (tracing.py): the dependency's
`server.address` and `server.port`, `url.scheme` https; gRPC calls with OpenTelemetry's RPC
conventions (`rpc.system`, `rpc.service`, `rpc.method`, `rpc.grpc.status_code`), a client's
call failed for every status but OK. Real grpcio and curl clients, real TLS servers, spans
read from an OTLP/HTTP receiver."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.sidecars.ambassador.conftest import AmbassadorProcess
from tests.sidecars.ambassador.grpc_app import SERVICE, Client, GrpcApp
from tests.sidecars.ambassador.h2c_app import H2cApp
from tests.sidecars.ambassador.test_grpc_outbound import app
from tests.sidecars.ambassador.test_outbound_and_tracing import OtlpReceiver, receiver

__all__ = ["app", "receiver"]  # the fixtures, shared

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def outbound(upstream_port: int, test_ca: Path, receiver: OtlpReceiver) -> AmbassadorProcess:
    """An h2c port to https://localhost:`upstream_port`, every call traced."""
    return AmbassadorProcess("--mode", "outbound", "--protocol", "h2c",
                             "--upstream", f"https://localhost:{upstream_port}",
                             "--upstream-ca", str(test_ca / "ca.pem"), "--drain-delay", "0",
                             "--otlp-endpoint", f"http://127.0.0.1:{receiver.port}",
                             "--trace-sample-ratio", "1")


def by_status(spans: list[dict[str, object]], key: str) -> dict[int, dict[str, object]]:
    """The spans by their status attribute `key` (distinct in each test)."""
    found = {}
    for span in spans:
        attributes = span["attributes"]
        assert isinstance(attributes, dict) and isinstance(attributes[key], int)
        found[attributes[key]] = span
    return found


def test_grpc_client_spans_name_the_dependency_and_fail_on_every_status_but_ok(
        app: GrpcApp, test_ca: Path, receiver: OtlpReceiver) -> None:
    proc = outbound(app.port, test_ca, receiver)
    try:
        with Client(proc.port) as client:
            assert client.unary(b"x", timeout=10, metadata=(("traceparent", PARENT),)) == b"x"
            for status in ("NOT_FOUND", "INTERNAL"):
                with pytest.raises(grpc.RpcError):
                    client.unary(f"status:{status}".encode(), timeout=10)
        spans = by_status(receiver.wait_for(3), "rpc.grpc.status_code")
    finally:
        assert proc.stop() == 0
    assert sorted(spans) == [0, 5, 13]
    for code, span in spans.items():
        assert span["name"] == f"{SERVICE}/Unary"
        assert span["kind"] == Span.SPAN_KIND_CLIENT
        attributes = dict(span["attributes"])  # type: ignore[call-overload]
        assert str(attributes.pop("user_agent.original")).startswith("grpc-python")
        assert attributes == {
            "rpc.system": "grpc", "rpc.service": SERVICE, "rpc.method": "Unary",
            "rpc.grpc.status_code": code, "server.address": "localhost",
            "server.port": app.port,
            **({} if code == 0 else {"error.type": {5: "NOT_FOUND", 13: "INTERNAL"}[code]})}
        assert span["failed"] is (code != 0)  # NOT_FOUND too: the client's call failed
    assert (spans[0]["trace_id"], spans[0]["parent_id"]) == (
        "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")


@pytest.fixture(scope="module")
def https_h2_app(test_ca: Path) -> Iterator[H2cApp]:
    """tests/sidecars/ambassador/h2c_app.py's plain HTTP/2 app over TLS (ALPN h2)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(test_ca / "server.pem", test_ca / "server.key")
    with H2cApp(context) as server:
        yield server


def test_http2_client_spans_say_https_and_name_the_dependency(
        https_h2_app: H2cApp, test_ca: Path, receiver: OtlpReceiver) -> None:
    proc = outbound(https_h2_app.port, test_ca, receiver)
    try:
        for path, answered in (("/bytes/10", "200"), ("/status/404", "404"),
                               ("/status/503", "503")):
            result = subprocess.run(
                ["curl", "-sS", "--http2-prior-knowledge", "--max-time", "30", "-o",
                 "/dev/null", "-w", "%{http_code}", f"http://127.0.0.1:{proc.port}{path}"],
                capture_output=True, timeout=40, check=False, text=True)
            assert result.stdout == answered, result
        spans = by_status(receiver.wait_for(3), "http.response.status_code")
    finally:
        assert proc.stop() == 0
    assert sorted(spans) == [200, 404, 503]
    for status, span in spans.items():
        assert span["name"] == "GET" and span["kind"] == Span.SPAN_KIND_CLIENT
        attributes = span["attributes"]
        assert isinstance(attributes, dict)
        assert (attributes["url.scheme"], attributes["server.address"],
                attributes["server.port"], attributes["network.protocol.version"]) == (
            "https", "localhost", https_h2_app.port, "2")
        assert "http.route" not in attributes  # a client's paths are its dependency's
        # A client's 4xx failed too, and says so (OpenTelemetry's HTTP client spans).
        assert attributes.get("error.type") == (None if status == 200 else str(status))
        assert span["failed"] is (status != 200)
