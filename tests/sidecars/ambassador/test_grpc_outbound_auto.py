"""An outbound `auto` port (#18) tells h2c from HTTP/1: a real grpcio client's prior-knowledge
preface makes the connection HTTP/2, observed as on a port declared `--protocol h2c`
(rpc_client_*, and TLS originated with ALPN h2 to an `https://` dependency). Before, an
outbound `auto` port was HTTP/1, whose handler answered the preface with a 400: every call
failed UNAVAILABLE and was recorded as an `http_client_*` bad_request. HTTP/1 still works on
the same port, also from an app that connects first and sends later."""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from redline.sidecars.ambassador.detect import H2_PREFACE, HTTP1, HTTP2, detect_http
from tests.sidecars.ambassador.conftest import AmbassadorProcess
from tests.sidecars.ambassador.grpc_app import SERVICE, Client, GrpcApp
from tests.sidecars.ambassador.upstream import UpstreamServer

COUNT = "rpc_client_duration_seconds_count"


@pytest.fixture(scope="module", params=["h2c", "tls"])
def outbound(request: pytest.FixtureRequest, test_ca: Path
             ) -> Iterator[tuple[AmbassadorProcess, int]]:
    """An outbound ambassador, --protocol left `auto`, to a grpcio dependency (h2c, or TLS
    that the ambassador originates), and the dependency's port."""
    tls = request.param == "tls"
    credentials = grpc.ssl_server_credentials(
        [((test_ca / "server.key").read_bytes(), (test_ca / "server.pem").read_bytes())]
    ) if tls else None
    with GrpcApp(credentials) as app:
        upstream = (["--upstream", f"https://localhost:{app.port}", "--upstream-ca",
                     str(test_ca / "ca.pem")] if tls else
                    ["--upstream", f"localhost:{app.port}"])
        proc = AmbassadorProcess("--mode", "outbound", *upstream, "--drain-delay", "0")
        try:
            yield proc, app.port
        finally:
            assert proc.stop() == 0
    assert not [entry for entry in proc.logs if "exc" in entry]


def calls(outbound: tuple[AmbassadorProcess, int], method: str, status: str,
          error_type: str = "") -> float:
    proc, port = outbound
    return proc.value(COUNT, rpc_system="grpc", rpc_service=SERVICE, rpc_method=method,
                      rpc_grpc_status_code=status, error_type=error_type,
                      server_address="localhost", server_port=str(port))


def test_grpc_on_an_outbound_auto_port_is_observed_as_on_an_h2c_port(
        outbound: tuple[AmbassadorProcess, int]) -> None:
    ambassador = outbound[0]
    assert ambassador.protocol == "auto"
    with Client(ambassador.port) as client:
        assert client.unary(b"x", timeout=10) == b"x"
        assert list(client.server_stream(b"3:1000", timeout=10)) == [
            bytes([i]) * 1000 for i in range(3)]
        with pytest.raises(grpc.RpcError) as failure:
            client.unary(b"status:INTERNAL", timeout=10)
        assert failure.value.code() == grpc.StatusCode.INTERNAL
    assert ambassador.wait_value(COUNT, 3) == 3
    assert calls(outbound, "Unary", "0") == 1
    assert calls(outbound, "ServerStream", "0") == 1
    assert calls(outbound, "Unary", "13", "INTERNAL") == 1
    # Detected as HTTP/2, and nothing taken for an HTTP/1 request.
    assert ambassador.value("tcp_server_connections_total", network_protocol_name="http2",
                            error_type="") >= 1
    assert ambassador.value("tcp_server_connections_total", network_protocol_name="http") == 0
    assert ambassador.value("http_client_request_duration_seconds_count") == 0
    assert ambassador.value("redline_ambassador_rejected_total") == 0
    assert ambassador.value("redline_ambassador_http2_unobserved_connections_total") == 0


def test_http1_on_an_outbound_auto_port_even_from_an_app_that_waits_to_send() -> None:
    """Past --detect-timeout a silent connection is HTTP/1 (on an inbound port: opaque TCP,
    relayed and never recorded): pools open connections before they need them."""
    with UpstreamServer() as upstream:
        proc = AmbassadorProcess("--mode", "outbound", "--upstream",
                                 f"127.0.0.1:{upstream.port}", "--detect-timeout", "0.05",
                                 "--drain-delay", "0")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", proc.port, timeout=10)
            connection.connect()
            time.sleep(0.3)  # well past the detection timeout
            connection.request("GET", "/say/late")
            response = connection.getresponse()
            assert (response.status, response.read()) == (200, b"late")
            connection.close()
            with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
                sock.sendall(b"GET /say/now HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")
            assert proc.wait_value("http_client_request_duration_seconds_count", 2,
                                   http_response_status_code="200") == 2
            assert proc.wait_value("tcp_server_connections_total", 2,
                                   network_protocol_name="http") == 2
        finally:
            assert proc.stop() == 0


@pytest.mark.parametrize(("first", "expected"), [
    (b"", None), (b"P", None), (H2_PREFACE[:23], None), (H2_PREFACE, HTTP2),
    (H2_PREFACE + b"\x00\x00", HTTP2), (b"PO", HTTP1), (b"GET / HTTP/1.1\r\n", HTTP1),
    (b"\x16\x03\x01\x02\x00\x01", HTTP1), (b"PRI * HTTP/1.1\r\n", HTTP1),
])
def test_an_outbound_port_tells_the_h2_preface_from_http1(first: bytes,
                                                          expected: str | None) -> None:
    """Whatever is not the preface is HTTP/1 there (TLS and opaque bytes too: answered 400
    by the HTTP/1 handler, as before), known as soon as one byte differs."""
    assert detect_http(first) == expected
