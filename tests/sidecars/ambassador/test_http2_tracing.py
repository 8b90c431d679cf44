"""Tracing of gRPC calls through the ambassador: parent-based sampling from the caller's
`traceparent`, one span per sampled stream, its trace id as the exemplar, and nothing added to
the request (HTTP/2 bytes are never rewritten)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import grpc
import pytest

from tests.sidecars.ambassador.conftest import AmbassadorProcess
from tests.sidecars.ambassador.grpc_app import Client, GrpcApp
from tests.sidecars.ambassador.test_outbound_and_tracing import OtlpReceiver

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
UNSAMPLED = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver()
    yield server
    server.shutdown()
    server.server_close()


def test_a_span_per_sampled_call_under_the_callers_parent(receiver: OtlpReceiver) -> None:
    with GrpcApp() as app:
        proc = AmbassadorProcess("--upstream", f"127.0.0.1:{app.port}", "--drain-delay", "0",
                                 "--protocol", "h2c", "--trace-sample-ratio", "1",
                                 "--otlp-endpoint", f"http://127.0.0.1:{receiver.port}")
        try:
            with Client(proc.port) as client:
                client.unary(b"x", timeout=10, metadata=(("traceparent", PARENT),))
                with pytest.raises(grpc.RpcError):
                    client.unary(b"status:INTERNAL", timeout=10)
                client.unary(b"y", timeout=10, metadata=(("traceparent", UNSAMPLED),))
            spans = receiver.wait_for(2)
            child, failed = sorted(spans, key=lambda span: span["parent_id"] == "")
            assert child["name"] == "test.Echo/Unary" and child["service"] == "shop"
            assert (child["trace_id"], child["parent_id"]) == (
                "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
            attributes = child["attributes"]
            assert isinstance(attributes, dict)
            assert (attributes["rpc.system"], attributes["rpc.service"],
                    attributes["rpc.method"], attributes["rpc.grpc.status_code"]) == (
                "grpc", "test.Echo", "Unary", 0)
            failed_attributes = failed["attributes"]
            assert isinstance(failed_attributes, dict)
            assert failed_attributes["error.type"] == "INTERNAL"
            assert failed["parent_id"] == ""  # sampled at ratio 1, without a parent
            exposition = proc.metrics_text("application/openmetrics-text; version=1.0.0")
            exemplars = re.findall(r'rpc_server_duration_seconds_bucket\{[^}]*\} \S+ '
                                   r'# \{trace_id="([0-9a-f]{32})"\}', exposition)
            assert sorted(exemplars) == sorted([str(child["trace_id"]), str(failed["trace_id"])])
        finally:
            assert proc.stop() == 0  # flushes the span queue
        assert len(receiver.spans) == 2  # the unsampled caller's call has none
