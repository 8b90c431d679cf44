"""Outbound gRPC over TLS (#18): a real grpcio client speaks h2c (prior knowledge) to an
outbound ambassador (`--mode outbound --protocol h2c --upstream https://...`), which originates
TLS with ALPN h2 to a real grpcio server, verifying it with `--upstream-ca`. Every kind of call
returns what it returns direct over TLS, each status is counted once in
rpc_client_duration_seconds with the dependency's address and port, and a dependency that
cannot be trusted (its certificate, or no h2 in ALPN) is a counted failed connect."""

from __future__ import annotations

import hashlib
import os
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.conftest import promtool_check_metrics
from tests.sidecars.ambassador.conftest import AmbassadorProcess
from tests.sidecars.ambassador.grpc_app import SERVICE, Client, GrpcApp
from tests.sidecars.ambassador.test_grpc import closed_connections
from tests.sidecars.ambassador.upstream import UpstreamServer

COUNT = "rpc_client_duration_seconds_count"


@pytest.fixture(scope="module")
def app(test_ca: Path) -> Iterator[GrpcApp]:
    credentials = grpc.ssl_server_credentials(
        [((test_ca / "server.key").read_bytes(), (test_ca / "server.pem").read_bytes())])
    with GrpcApp(credentials) as server:
        yield server


@pytest.fixture(scope="module")
def ambassador(app: GrpcApp, test_ca: Path) -> Iterator[AmbassadorProcess]:
    proc = AmbassadorProcess("--mode", "outbound", "--protocol", "h2c",
                             "--upstream", f"https://localhost:{app.port}",
                             "--upstream-ca", str(test_ca / "ca.pem"), "--drain-delay", "0")
    yield proc
    assert proc.stop() == 0
    assert not [entry for entry in proc.logs if "exc" in entry]


@pytest.fixture
def client(ambassador: AmbassadorProcess) -> Iterator[Client]:
    with Client(ambassador.port) as channel:
        yield channel


def direct(app: GrpcApp, test_ca: Path) -> Client:
    credentials = grpc.ssl_channel_credentials((test_ca / "ca.pem").read_bytes())
    return Client(app.port, credentials, host="localhost")


def calls(ambassador: AmbassadorProcess, app: GrpcApp, method: str, status: str = "0",
          error_type: str = "") -> float:
    return ambassador.value(COUNT, rpc_system="grpc", rpc_service=SERVICE, rpc_method=method,
                            rpc_grpc_status_code=status, error_type=error_type,
                            service_name="shop", server_address="localhost",
                            server_port=str(app.port))


def test_every_kind_of_call_returns_what_it_returns_direct(
        app: GrpcApp, test_ca: Path, ambassador: AmbassadorProcess, client: Client) -> None:
    methods = ("Unary", "ServerStream", "ClientStream", "Bidi")
    before = {method: calls(ambassador, app, method) for method in methods}
    requests = [os.urandom(n) for n in (0, 1, 1000, 70_000)]
    results = []
    with direct(app, test_ca) as tls:
        for one in (client, tls):
            results.append((
                [one.unary(r, timeout=10) for r in requests],
                list(one.server_stream(b"5:70000", timeout=10)),
                one.client_stream(iter(requests), timeout=10),
                list(one.bidi(iter(requests), timeout=10)),
            ))
    through, tls_direct = results
    assert through == tls_direct
    assert through[0] == requests and through[3] == requests
    assert through[1] == [bytes([i]) * 70_000 for i in range(5)]
    for method, base in before.items():
        expected = base + (len(requests) if method == "Unary" else 1)
        assert ambassador.wait_value(COUNT, expected, rpc_method=method,
                                     rpc_grpc_status_code="0", error_type="") == expected
        assert calls(ambassador, app, method) == expected
    # gRPC calls are not HTTP requests: nothing in http_client_*.
    assert ambassador.value("http_client_request_duration_seconds_count") == 0
    assert ambassador.value("rpc_server_duration_seconds_count") == 0


@pytest.mark.parametrize(("status", "code", "error_type"), [
    ("NOT_FOUND", "5", ""),  # the dependency said the client asked wrong: not an error
    ("INTERNAL", "13", "INTERNAL"),
    ("DEADLINE_EXCEEDED", "4", "DEADLINE_EXCEEDED"),
    ("UNAVAILABLE", "14", "UNAVAILABLE"),
])
def test_a_status_is_counted_once_with_its_labels(
        app: GrpcApp, ambassador: AmbassadorProcess, client: Client, status: str, code: str,
        error_type: str) -> None:
    before = calls(ambassador, app, "Unary", code, error_type)
    total = ambassador.value(COUNT, rpc_method="Unary")
    with pytest.raises(grpc.RpcError) as failure:
        client.unary(f"status:{status}".encode(), timeout=10)
    assert failure.value.code() == grpc.StatusCode[status]
    assert ambassador.wait_value(COUNT, total + 1, rpc_method="Unary") == total + 1
    assert calls(ambassador, app, "Unary", code, error_type) == before + 1


def test_ok_is_counted_once(app: GrpcApp, ambassador: AmbassadorProcess,
                            client: Client) -> None:
    total = ambassador.value(COUNT)
    assert client.unary(b"ok", timeout=10) == b"ok"
    assert ambassador.wait_value(COUNT, total + 1) == total + 1
    assert ambassador.value(COUNT, rpc_method="Unary", rpc_grpc_status_code="0",
                            error_type="", server_address="localhost",
                            server_port=str(app.port)) >= 1


def test_a_real_deadline_is_deadline_exceeded(app: GrpcApp, ambassador: AmbassadorProcess,
                                              client: Client) -> None:
    before = calls(ambassador, app, "Sleep", "4", "DEADLINE_EXCEEDED")
    with pytest.raises(grpc.RpcError) as failure:
        client.sleep(b"2000", timeout=0.5)
    assert failure.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert ambassador.wait_value(COUNT, before + 1, rpc_method="Sleep") >= before + 1
    assert calls(ambassador, app, "Sleep", "4", "DEADLINE_EXCEEDED") == before + 1


def failed_connect(ambassador: AmbassadorProcess) -> None:
    """A call through `ambassador` whose TLS with the dependency fails: the client sees
    UNAVAILABLE, the connection is counted as a tls_error, the process goes on."""
    with Client(ambassador.port) as channel:
        with pytest.raises(grpc.RpcError) as failure:
            channel.unary(b"x", timeout=5)
        assert failure.value.code() in (grpc.StatusCode.UNAVAILABLE,
                                        grpc.StatusCode.DEADLINE_EXCEEDED)
    assert ambassador.wait_value("tcp_server_connections_total", 1,
                                 network_protocol_name="http2", error_type="tls_error") >= 1
    # A call that never reached the dependency is no status of its: only a transport error.
    assert ambassador.value(COUNT) == ambassador.value(COUNT, error_type="tls_error")
    assert ambassador.admin("/healthz")[0] == 200
    assert ambassador.proc.poll() is None


def test_a_certificate_that_fails_verification_is_a_counted_connect_failure(
        app: GrpcApp) -> None:
    """Without --upstream-ca the test CA is not trusted (the system's CAs are)."""
    proc = AmbassadorProcess("--mode", "outbound", "--protocol", "h2c",
                             "--upstream", f"https://localhost:{app.port}", "--drain-delay", "0")
    try:
        failed_connect(proc)
        assert any(entry.get("error") == "tls_error" and "CERTIFICATE_VERIFY_FAILED"
                   in str(entry.get("detail")) for entry in proc.logs)
    finally:
        assert proc.stop() == 0
    assert not [entry for entry in proc.logs if "exc" in entry]


def test_a_dependency_that_does_not_choose_h2_is_a_counted_connect_failure(
        test_ca: Path) -> None:
    """An HTTPS server that ignores ALPN (HTTP/1 only): not one HTTP/2 byte is sent to it."""
    server = UpstreamServer()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(test_ca / "server.pem", test_ca / "server.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    with server:
        proc = AmbassadorProcess("--mode", "outbound", "--protocol", "h2c", "--upstream",
                                 f"https://localhost:{server.port}",
                                 "--upstream-ca", str(test_ca / "ca.pem"), "--drain-delay", "0")
        try:
            failed_connect(proc)
            assert any("not 'h2'" in str(entry.get("detail")) for entry in proc.logs)
            # Opened and gone: the refused connection is counted out as well as in.
            deadline = time.monotonic() + 10
            while (proc.value("redline_ambassador_connections_open", side="upstream")
                   and time.monotonic() < deadline):
                time.sleep(0.02)
            assert proc.value("redline_ambassador_connections_open", side="upstream") == 0
        finally:
            assert proc.stop() == 0
        assert not server.seen  # the dependency never got a request
    assert not [entry for entry in proc.logs if "exc" in entry]


def test_16_mib_each_way(app: GrpcApp, ambassador: AmbassadorProcess, client: Client) -> None:
    message = os.urandom(16 * 1024 * 1024)
    before = calls(ambassador, app, "Unary")
    answer = client.unary(message, timeout=60)
    assert hashlib.sha256(answer).digest() == hashlib.sha256(message).digest()
    assert ambassador.wait_value(COUNT, before + 1, rpc_method="Unary",
                                 rpc_grpc_status_code="0") == before + 1


def test_1000_calls_on_one_connection(app: GrpcApp, ambassador: AmbassadorProcess) -> None:
    connections = closed_connections(ambassador)
    before = calls(ambassador, app, "Unary")
    with Client(ambassador.port) as channel:
        answers = [channel.unary(b"%d" % i, timeout=10) for i in range(1000)]
        assert ambassador.tcp("active_connections", "http2") == 1
    assert answers == [b"%d" % i for i in range(1000)]
    assert ambassador.wait_value(COUNT, before + 1000, rpc_method="Unary",
                                 rpc_grpc_status_code="0") == before + 1000
    assert ambassador.wait_value("tcp_server_connections_total", connections + 1,
                                 network_protocol_name="http2") == connections + 1


def test_100_concurrent_streams(app: GrpcApp, ambassador: AmbassadorProcess,
                                client: Client) -> None:
    before = calls(ambassador, app, "Sleep")
    pending = [client.sleep.future(b"300", timeout=20) for _ in range(100)]
    assert [call.result(timeout=30) for call in pending] == [b"300"] * 100
    assert ambassador.wait_value(COUNT, before + 100, rpc_method="Sleep",
                                 rpc_grpc_status_code="0") == before + 100
    assert ambassador.value("redline_ambassador_http2_untracked_streams_total") == 0
    assert ambassador.value("redline_ambassador_http2_unobserved_connections_total") == 0


def test_the_exposition_passes_promtool(ambassador: AmbassadorProcess, client: Client) -> None:
    total = ambassador.value(COUNT)
    client.unary(b"x", timeout=10)
    with pytest.raises(grpc.RpcError):
        client.unary(b"status:INTERNAL", timeout=10)
    assert ambassador.wait_value(COUNT, total + 2) == total + 2
    text = ambassador.metrics_text()
    assert "rpc_client_duration_seconds_bucket{" in text
    promtool_check_metrics(text.encode())
