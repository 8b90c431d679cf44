"""Outbound mode with TLS origination, and tracing to a real OTLP/HTTP receiver."""

from __future__ import annotations

import http.client
import re
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.sidecars.ambassador.conftest import AmbassadorProcess
from tests.sidecars.ambassador.upstream import UpstreamServer


@pytest.fixture(scope="module")
def https_upstream(test_ca: Path) -> Iterator[UpstreamServer]:
    server = UpstreamServer()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(test_ca / "server.pem", test_ca / "server.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    with server:
        yield server


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    result = response.status, response.read()
    conn.close()
    return result


def test_outbound_originates_tls_and_records_client_metrics(
    https_upstream: UpstreamServer, test_ca: Path
) -> None:
    proc = AmbassadorProcess("--mode", "outbound", "--upstream",
                             f"https://localhost:{https_upstream.port}",
                             "--upstream-ca", str(test_ca / "ca.pem"), "--drain-delay", "0")
    try:
        for i in range(5):
            assert get(proc.port, f"/say/{i}", {"Host": f"127.0.0.1:{proc.port}"}) \
                == (200, str(i).encode())
        assert get(proc.port, "/status/503") == (503, b"status body")
        labels = {"server_address": "localhost", "server_port": str(https_upstream.port)}
        assert proc.value("http_client_request_duration_seconds_count",
                          http_response_status_code="200", **labels) == 5
        assert proc.value("http_client_request_duration_seconds_count",
                          error_type="503", **labels) == 1
        assert proc.value("http_server_request_duration_seconds_count") == 0
        # The app named the ambassador; the dependency is told its own name.
        assert https_upstream.seen[-1][2]["Host"] == f"localhost:{https_upstream.port}"
    finally:
        assert proc.stop() == 0


def test_outbound_refuses_an_untrusted_certificate(https_upstream: UpstreamServer) -> None:
    proc = AmbassadorProcess("--mode", "outbound", "--upstream",
                             f"https://localhost:{https_upstream.port}", "--drain-delay", "0")
    try:
        status, body = get(proc.port, "/say/x")
        assert status == 502 and b"TLS" in body
        assert proc.value("http_client_request_duration_seconds_count", error_type="tls_error",
                          http_response_status_code="502") == 1
        assert proc.value("http_client_request_duration_seconds_count", error_type="_OTHER") == 0
    finally:
        assert proc.stop() == 0


class OtlpReceiver(ThreadingHTTPServer):
    """Accepts OTLP/HTTP protobuf trace exports and keeps the spans."""

    daemon_threads = True

    def __init__(self) -> None:
        receiver = self
        self.spans: list[dict[str, object]] = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest.FromString(body)
                for resource_spans in request.resource_spans:
                    service = {a.key: a.value.string_value
                               for a in resource_spans.resource.attributes}["service.name"]
                    for scope in resource_spans.scope_spans:
                        for span in scope.spans:
                            receiver.spans.append({
                                "service": service, "name": span.name, "kind": span.kind,
                                "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                                "parent_id": span.parent_span_id.hex(),
                                "failed": span.status.code == span.status.STATUS_CODE_ERROR,
                                "attributes": {a.key: a.value.string_value or a.value.int_value
                                               for a in span.attributes}})
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

        super().__init__(("127.0.0.1", 0), Handler)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 10) -> list[dict[str, object]]:
        deadline = time.monotonic() + timeout
        while len(self.spans) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.spans


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver()
    yield server
    server.shutdown()
    server.server_close()


def test_tracing_spans_traceparent_and_exemplars(
    upstream: UpstreamServer, receiver: OtlpReceiver
) -> None:
    proc = AmbassadorProcess("--upstream", f"127.0.0.1:{upstream.port}", "--drain-delay", "0",
                             "--otlp-endpoint", f"http://127.0.0.1:{receiver.port}",
                             "--trace-sample-ratio", "1")
    try:
        assert get(proc.port, "/users/42") == (200, b"ok")
        forwarded = upstream.seen[-1][2]["traceparent"]
        _, trace_id, span_id, flags = forwarded.split("-")
        assert flags == "01"
        spans = receiver.wait_for(1)
        assert len(spans) == 1
        span = spans[0]
        assert (span["trace_id"], span["span_id"], span["parent_id"]) == (trace_id, span_id, "")
        assert span["name"] == "GET /users/{id}" and span["service"] == "shop"
        attributes = span["attributes"]
        assert isinstance(attributes, dict)
        assert attributes["http.route"] == "/users/{id}"
        assert attributes["http.response.status_code"] == 200
        exposition = proc.metrics_text("application/openmetrics-text; version=1.0.0")
        exemplars = re.findall(r'# \{trace_id="([0-9a-f]{32})"\}', exposition)
        assert exemplars == [trace_id]

        # A sampled caller: our span is its child and its traceparent goes on unchanged.
        parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        assert get(proc.port, "/say/child", {"traceparent": parent}) == (200, b"child")
        assert upstream.seen[-1][2]["traceparent"] == parent
        spans = receiver.wait_for(2)
        child = spans[-1]
        assert (child["trace_id"], child["parent_id"]) == (
            "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")

        # A caller that decided not to sample: no span, nothing added.
        unsampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
        assert get(proc.port, "/say/no", {"traceparent": unsampled}) == (200, b"no")
        assert upstream.seen[-1][2]["traceparent"] == unsampled
    finally:
        assert proc.stop() == 0  # flushes the queue
    assert len(receiver.spans) == 2


def test_tracing_at_ratio_zero_adds_nothing(
    upstream: UpstreamServer, receiver: OtlpReceiver
) -> None:
    proc = AmbassadorProcess("--upstream", f"127.0.0.1:{upstream.port}", "--drain-delay", "0",
                             "--otlp-endpoint", f"http://127.0.0.1:{receiver.port}",
                             "--trace-sample-ratio", "0")
    try:
        for _ in range(20):
            assert get(proc.port, "/say/x") == (200, b"x")
        assert "traceparent" not in upstream.seen[-1][2]
    finally:
        assert proc.stop() == 0
    assert receiver.spans == []
