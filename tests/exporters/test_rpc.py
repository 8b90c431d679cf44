"""The RPC schema: the status a gRPC client sees, which statuses are errors, method names from
paths, and the cap on distinct methods."""

from __future__ import annotations

import pytest

from redline.exporters.exposition import new_registry
from redline.exporters.rpc import (
    OTHER,
    RpcServerRecorder,
    grpc_error_type,
    grpc_status,
    grpc_timeout,
    split_path,
)


@pytest.mark.parametrize(("http_status", "value", "expected"), [
    (200, b"0", 0), (200, b"5", 5), (200, b" 14 ", 14),
    (200, b"17", 2), (200, b"999", 2), (200, b"x", 2),  # not a status: UNKNOWN, as clients read it
    (None, b"13", 13),  # trailers after a response whose head we did not see
    (200, None, 2),  # a response that ended without grpc-status
    (503, None, 14), (429, None, 14), (404, None, 12), (400, None, 13), (401, None, 16),
    (403, None, 7), (418, None, 2),
    (None, None, None),  # no response at all
])
def test_the_status_is_the_one_the_client_sees(http_status: int | None, value: bytes | None,
                                               expected: int | None) -> None:
    assert grpc_status(http_status, value) == expected


@pytest.mark.parametrize(("status", "error", "expected"), [
    (0, None, ""), (1, None, ""), (3, None, ""), (5, None, ""), (7, None, ""), (16, None, ""),
    (2, None, "UNKNOWN"), (4, None, "DEADLINE_EXCEEDED"), (12, None, "UNIMPLEMENTED"),
    (13, None, "INTERNAL"), (14, None, "UNAVAILABLE"), (15, None, "DATA_LOSS"),
    (None, "connection_reset", "connection_reset"), (None, "client_closed", "client_closed"),
    (0, "connection_reset", "connection_reset"),  # a transport failure wins
    (None, "something_new", "_OTHER"),
])
def test_server_faults_and_transport_failures_are_errors(status: int | None, error: str | None,
                                                         expected: str) -> None:
    assert grpc_error_type(status, error) == expected


@pytest.mark.parametrize(("value", "seconds"), [
    (b"1S", 1.0), (b"250m", 0.25), (b"2M", 120.0), (b"1H", 3600.0), (b"100u", 1e-4),
    (b"5n", 5e-9), (None, None), (b"", None), (b"S", None), (b"1x", None), (b"-1S", None),
    (b"123456789S", None),  # more than 8 digits
])
def test_grpc_timeout(value: bytes | None, seconds: float | None) -> None:
    assert grpc_timeout(value) == (pytest.approx(seconds) if seconds is not None else None)


@pytest.mark.parametrize(("path", "expected"), [
    (b"/helloworld.Greeter/SayHello", ("helloworld.Greeter", "SayHello")),
    (b"/grpc.health.v1.Health/Check", ("grpc.health.v1.Health", "Check")),
    (b"/a/b/c", None), (b"/only", None), (b"//Method", None), (b"/Svc/", None),
    (b"/Svc/Met hod", None), (b"Svc/Method", None), (b"/Svc/M\xc3\xa9thode", None),
])
def test_a_path_names_a_service_and_a_method(path: bytes,
                                             expected: tuple[str, str] | None) -> None:
    assert split_path(path) == expected


def test_methods_past_the_cap_are_other_and_counted() -> None:
    recorder = RpcServerRecorder("shop", max_methods=2)
    registry = new_registry("test", recorder.collector())
    names = [recorder.method(b"/a.S/%d" % i) for i in (1, 2, 3, 1, 4)]
    assert names == [("a.S", "1"), ("a.S", "2"), (OTHER, OTHER), ("a.S", "1"), (OTHER, OTHER)]
    assert recorder.method(b"not a path") == (OTHER, OTHER)  # not a method: not an overflow
    for service, method in names:
        recorder.call_finished(service, method, 0, 0.01)
    recorder.call_finished("a.S", "1", None, 0.5, error="connection_reset")
    value = registry.get_sample_value
    assert value("redline_rpc_method_overflow_total", {"service_name": "shop"}) == 2
    labels = {"service_name": "shop", "rpc_system": "grpc", "rpc_service": OTHER,
              "rpc_method": OTHER, "rpc_grpc_status_code": "0", "error_type": ""}
    assert value("rpc_server_duration_seconds_count", labels) == 2
    assert value("rpc_server_duration_seconds_count", {
        **labels, "rpc_service": "a.S", "rpc_method": "1", "rpc_grpc_status_code": "",
        "error_type": "connection_reset"}) == 1


def test_a_recorder_needs_a_service_and_a_cap() -> None:
    with pytest.raises(ValueError, match="service_name"):
        RpcServerRecorder("")
    with pytest.raises(ValueError, match="max_methods: expected at least 1, got 0"):
        RpcServerRecorder("shop", max_methods=0)
