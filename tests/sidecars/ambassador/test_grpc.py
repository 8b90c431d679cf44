"""A real grpcio client and server through the ambassador (h2c, prior knowledge or detected):
every kind of call returns what it returns direct, and each is recorded once, with the status
its client saw, in rpc_server_duration_seconds."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.conftest import promtool_check_metrics
from tests.sidecars.ambassador.conftest import AmbassadorProcess
from tests.sidecars.ambassador.grpc_app import SERVICE, Client, GrpcApp

COUNT = "rpc_server_duration_seconds_count"


@pytest.fixture(scope="module")
def app() -> Iterator[GrpcApp]:
    with GrpcApp() as server:
        yield server


@pytest.fixture(scope="module", params=["h2c", "auto"])
def ambassador(app: GrpcApp, request: pytest.FixtureRequest) -> Iterator[AmbassadorProcess]:
    proc = AmbassadorProcess("--upstream", f"127.0.0.1:{app.port}", "--drain-delay", "0",
                             "--protocol", str(request.param))
    yield proc
    assert proc.stop() == 0


@pytest.fixture
def client(ambassador: AmbassadorProcess) -> Iterator[Client]:
    with Client(ambassador.port) as channel:
        yield channel


def calls(ambassador: AmbassadorProcess, method: str, status: str = "0",
          error_type: str = "") -> float:
    return ambassador.value(COUNT, rpc_system="grpc", rpc_service=SERVICE, rpc_method=method,
                            rpc_grpc_status_code=status, error_type=error_type,
                            service_name="shop")


def test_every_kind_of_call_returns_what_it_returns_direct(
        app: GrpcApp, ambassador: AmbassadorProcess, client: Client) -> None:
    before = {m: calls(ambassador, m) for m in ("Unary", "ServerStream", "ClientStream", "Bidi")}
    requests = [os.urandom(n) for n in (0, 1, 1000, 70_000)]
    with Client(app.port) as direct:
        for one in (client, direct):
            results = (
                [one.unary(r, timeout=10) for r in requests],
                list(one.server_stream(b"5:70000", timeout=10)),
                one.client_stream(iter(requests), timeout=10),
                list(one.bidi(iter(requests), timeout=10)),
            )
            if one is client:
                through = results
    assert through == results
    assert through[0] == requests and through[3] == requests
    for method, base in before.items():
        expected = base + (len(requests) if method == "Unary" else 1)
        assert ambassador.wait_value(COUNT, expected, rpc_method=method,
                                     rpc_grpc_status_code="0", error_type="") == expected


@pytest.mark.parametrize(("status", "code", "error_type"), [
    ("NOT_FOUND", "5", ""),  # the client's fault: not an error, as a 404 is not
    ("INTERNAL", "13", "INTERNAL"),
    ("DEADLINE_EXCEEDED", "4", "DEADLINE_EXCEEDED"),
    ("UNAVAILABLE", "14", "UNAVAILABLE"),
])
def test_a_status_is_counted_once_with_its_labels(
        ambassador: AmbassadorProcess, client: Client, status: str, code: str,
        error_type: str) -> None:
    before = calls(ambassador, "Unary", code, error_type)
    with pytest.raises(grpc.RpcError) as failure:
        client.unary(f"status:{status}".encode(), timeout=10)
    assert failure.value.code() == grpc.StatusCode[status]
    assert ambassador.wait_value(COUNT, before + 1, rpc_method="Unary",
                                 rpc_grpc_status_code=code, error_type=error_type) == before + 1
    assert ambassador.value(COUNT, rpc_method="Unary", rpc_grpc_status_code=code) == before + 1


def test_a_real_deadline_is_deadline_exceeded_whoever_ends_the_stream(
        ambassador: AmbassadorProcess, client: Client) -> None:
    """The client resets the stream at its deadline, or the server's trailers say it first:
    the same call, the same record."""
    before = calls(ambassador, "Sleep", "4", "DEADLINE_EXCEEDED")
    with pytest.raises(grpc.RpcError) as failure:
        client.sleep(b"2000", timeout=0.5)
    assert failure.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert ambassador.wait_value(COUNT, before + 1, rpc_method="Sleep") == before + 1
    assert calls(ambassador, "Sleep", "4", "DEADLINE_EXCEEDED") == before + 1


def test_16_mib_each_way(ambassador: AmbassadorProcess, client: Client) -> None:
    message = os.urandom(16 * 1024 * 1024)
    before = calls(ambassador, "Unary")
    answer = client.unary(message, timeout=60)
    assert hashlib.sha256(answer).digest() == hashlib.sha256(message).digest()
    assert ambassador.wait_value(COUNT, before + 1, rpc_method="Unary",
                                 rpc_grpc_status_code="0") == before + 1


def closed_connections(ambassador: AmbassadorProcess) -> float:
    """The HTTP/2 connections counted, once none is open (bounded wait): an earlier test's
    channel, closed at its end, may still be closing, and be counted during the next test."""
    deadline = time.monotonic() + 20
    while ambassador.tcp("active_connections", "http2") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ambassador.tcp("active_connections", "http2") == 0, "a connection stayed open"
    return ambassador.tcp("connections", "http2")


def test_1000_calls_on_one_connection(ambassador: AmbassadorProcess) -> None:
    connections = closed_connections(ambassador)
    before = calls(ambassador, "Unary")
    with Client(ambassador.port) as channel:
        answers = [channel.unary(b"%d" % i, timeout=10) for i in range(1000)]
        assert ambassador.tcp("active_connections", "http2") == 1
    assert answers == [b"%d" % i for i in range(1000)]
    assert ambassador.wait_value(COUNT, before + 1000, rpc_method="Unary",
                                 rpc_grpc_status_code="0") == before + 1000
    assert ambassador.wait_value("tcp_server_connections_total", connections + 1,
                                 network_protocol_name="http2") == connections + 1


def test_100_concurrent_streams(ambassador: AmbassadorProcess, client: Client) -> None:
    before = calls(ambassador, "Sleep")
    pending = [client.sleep.future(b"300", timeout=20) for _ in range(100)]
    assert [call.result(timeout=30) for call in pending] == [b"300"] * 100
    assert ambassador.wait_value(COUNT, before + 100, rpc_method="Sleep",
                                 rpc_grpc_status_code="0") == before + 100
    assert ambassador.value("redline_ambassador_http2_untracked_streams_total") == 0


def test_health_checks_pass_through_unrecorded(ambassador: AmbassadorProcess,
                                               client: Client) -> None:
    stub = health_pb2_grpc.HealthStub(client.channel)
    for _ in range(3):
        answer = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    client.unary(b"after", timeout=10)  # recorded after the checks: they had their chance
    assert ambassador.wait_value(COUNT, 1, rpc_method="Unary") >= 1
    assert ambassador.value(COUNT, rpc_service="grpc.health.v1.Health") == 0


def test_an_app_that_is_down_is_unavailable_and_its_connections_refused() -> None:
    """The client is reset before its first stream (it waits for the server's SETTINGS):
    no call to record, and the connections say why."""
    proc = AmbassadorProcess("--upstream", "127.0.0.1:1", "--drain-delay", "0",
                             "--protocol", "h2c")
    try:
        with Client(proc.port) as channel:
            with pytest.raises(grpc.RpcError) as failure:
                channel.unary(b"x", timeout=5)
            assert failure.value.code() in (grpc.StatusCode.UNAVAILABLE,
                                            grpc.StatusCode.DEADLINE_EXCEEDED)
        assert proc.wait_value("tcp_server_connections_total", 1, network_protocol_name="http2",
                               error_type="connection_refused") >= 1
        assert proc.value(COUNT) == 0
    finally:
        assert proc.stop() == 0


def test_the_exposition_passes_promtool(ambassador: AmbassadorProcess, client: Client) -> None:
    client.unary(b"x", timeout=10)
    with pytest.raises(grpc.RpcError):
        client.unary(b"status:INTERNAL", timeout=10)
    ambassador.wait_value(COUNT, 2)
    promtool_check_metrics(ambassador.metrics_text().encode())
