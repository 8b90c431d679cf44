"""Plain HTTP/2 through the ambassador, as curl speaks it (`--http2-prior-knowledge`) to an h2c
app: bodies arrive byte-identical both ways and each request is recorded in the http_* metrics
as an HTTP/1 request would be; mixed HTTP/1, HTTP/2 and gRPC pass promtool; SIGTERM lets open
streams finish and tells idle clients GOAWAY."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from redline.sidecars.ambassador import h2frames
from redline.sidecars.ambassador.h2frames import FrameReader
from tests.conftest import promtool_check_metrics
from tests.sidecars.ambassador.conftest import AmbassadorProcess
from tests.sidecars.ambassador.grpc_app import Client, GrpcApp
from tests.sidecars.ambassador.h2bytes import Peer, client_start, request
from tests.sidecars.ambassador.h2bytes import settings as settings_frame
from tests.sidecars.ambassador.h2c_app import H2cApp
from tests.sidecars.ambassador.upstream import UpstreamServer, pattern_bytes

SIZES = [0, 1024, 1024 * 1024, 10 * 1024 * 1024]
COUNT = "http_server_request_duration_seconds_count"


@pytest.fixture(scope="module")
def app() -> Iterator[H2cApp]:
    with H2cApp() as server:
        yield server


@pytest.fixture(scope="module", params=["h2c", "auto"])
def ambassador(app: H2cApp, request: pytest.FixtureRequest) -> Iterator[AmbassadorProcess]:
    proc = AmbassadorProcess("--upstream", f"127.0.0.1:{app.port}", "--drain-delay", "0",
                             "--protocol", str(request.param))
    yield proc
    assert proc.stop() == 0


def curl(*args: str) -> bytes:
    result = subprocess.run(["curl", "-sS", "--fail-with-body", "--http2-prior-knowledge",
                             "--max-time", "30", *args], capture_output=True, timeout=40,
                            check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("size", SIZES)
def test_response_bodies_arrive_byte_identical(ambassador: AmbassadorProcess,
                                               size: int) -> None:
    before = ambassador.requests_recorded(http_route="/bytes/{id}", http_request_method="GET",
                                          http_response_status_code="200", error_type="")
    body = curl(f"http://127.0.0.1:{ambassador.port}/bytes/{size}")
    assert (len(body), sha(body)) == (size, sha(pattern_bytes(size)))
    assert ambassador.wait_recorded(before + 1, http_route="/bytes/{id}",
                                    http_response_status_code="200") == before + 1


@pytest.mark.parametrize("size", SIZES)
def test_request_bodies_arrive_byte_identical(ambassador: AmbassadorProcess, size: int,
                                              tmp_path: Path) -> None:
    sent = os.urandom(size)
    (tmp_path / "body").write_bytes(sent)
    before = ambassador.requests_recorded(http_route="/echo", http_request_method="POST")
    echoed = curl("--data-binary", f"@{tmp_path / 'body'}",
                  f"http://127.0.0.1:{ambassador.port}/echo")
    assert (len(echoed), sha(echoed)) == (size, sha(sent))
    assert ambassador.wait_recorded(before + 1, http_route="/echo",
                                    http_request_method="POST") == before + 1


def test_requests_sharing_a_connection_are_each_recorded(ambassador: AmbassadorProcess
                                                         ) -> None:
    """nghttp sends them at once on one connection, with PRIORITY frames and prioritised
    HEADERS (curl 7.88 fails to reuse an h2c connection on its own)."""
    before_ok = ambassador.requests_recorded(http_route="/bytes/{id}", error_type="")
    before_failed = ambassador.requests_recorded(http_route="/status/{id}", error_type="503")
    before_404 = ambassador.requests_recorded(http_route="/status/{id}",
                                              http_response_status_code="404", error_type="")
    connections = ambassador.tcp("connections", "http2")
    base = f"http://127.0.0.1:{ambassador.port}"
    result = subprocess.run(
        ["nghttp", "-n", "--stat", *[f"{base}/bytes/{n}" for n in range(1, 6)],
         f"{base}/status/503", f"{base}/status/404"],
        capture_output=True, timeout=40, check=False)
    assert result.returncode == 0, result.stderr
    statuses = re.findall(rb"\s(\d{3})\s+\d+\s+(/\S+)\n", result.stdout)
    assert sorted((path, code) for code, path in statuses) == sorted(
        [(f"/bytes/{n}".encode(), b"200") for n in range(1, 6)]
        + [(b"/status/503", b"503"), (b"/status/404", b"404")])
    assert ambassador.wait_recorded(before_ok + 5, http_route="/bytes/{id}",
                                    error_type="") == before_ok + 5
    assert ambassador.wait_recorded(before_failed + 1, http_route="/status/{id}",
                                    error_type="503") == before_failed + 1
    assert ambassador.requests_recorded(http_route="/status/{id}",
                                        http_response_status_code="404",
                                        error_type="") == before_404 + 1
    assert ambassador.wait_value("tcp_server_connections_total", connections + 1,
                                 network_protocol_name="http2") == connections + 1


def test_mixed_http1_http2_and_grpc_pass_promtool(app: H2cApp) -> None:
    with UpstreamServer() as http1, GrpcApp() as grpc_app:
        proc = AmbassadorProcess(
            "--listen", "127.0.0.1:0", "--upstream", f"127.0.0.1:{http1.port}",
            "--listen", "127.0.0.1:0", "--upstream", f"127.0.0.1:{app.port}",
            "--listen", "127.0.0.1:0", "--upstream", f"127.0.0.1:{grpc_app.port}",
            "--protocol", "auto", "--protocol", "auto", "--protocol", "h2c",
            "--drain-delay", "0", listen=False)
        try:
            http1_port, h2_port, grpc_port = proc.ports
            with urllib.request.urlopen(f"http://127.0.0.1:{http1_port}/users/7",
                                        timeout=10) as response:
                response.read()
            curl(f"http://127.0.0.1:{h2_port}/bytes/10")
            with Client(grpc_port) as client:
                client.unary(b"x", timeout=10)
                with pytest.raises(grpc.RpcError):
                    client.unary(b"status:UNAVAILABLE", timeout=10)
            assert proc.wait_recorded(2) == 2
            assert proc.wait_value("rpc_server_duration_seconds_count", 2) == 2
            exposition = proc.metrics_text()
            assert 'error_type="UNAVAILABLE"' in exposition
            promtool_check_metrics(exposition.encode())
        finally:
            assert proc.stop() == 0


def read_frames(sock: socket.socket, reader: FrameReader) -> list[h2frames.Frame]:
    """Every frame until the ambassador closes the connection (bounded by the timeout)."""
    frames: list[h2frames.Frame] = []
    while chunk := sock.recv(65536):
        frames += reader.feed(chunk)
    return frames


def test_sigterm_tells_an_idle_client_goaway_then_closes(app: H2cApp) -> None:
    proc = AmbassadorProcess("--upstream", f"127.0.0.1:{app.port}", "--drain-delay", "0",
                             "--protocol", "h2c")
    try:
        with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
            client = Peer()
            sock.sendall(client_start() + settings_frame(ack=True)
                         + client.headers(1, request(b"GET", b"/bytes/10", b""), end=True))
            reader = FrameReader(preface=False, max_block=65536)
            frames: list[h2frames.Frame] = []
            while not any(f.type == h2frames.DATA and f.flags & h2frames.END_STREAM
                          for f in frames):
                frames += reader.feed(sock.recv(65536))
            proc.proc.send_signal(signal.SIGTERM)
            rest = read_frames(sock, reader)
        goaways = [h2frames.goaway_fields(f.payload) for f in rest if f.type == h2frames.GOAWAY]
        assert goaways == [(1, h2frames.NO_ERROR)]
        assert proc.aborted_at_drain(timeout=20) == 0
    finally:
        proc.stop()


def test_sigterm_lets_an_open_stream_finish(app: H2cApp) -> None:
    with GrpcApp() as grpc_app:
        proc = AmbassadorProcess("--upstream", f"127.0.0.1:{grpc_app.port}",
                                 "--drain-delay", "0", "--drain-timeout", "20",
                                 "--protocol", "h2c")
        try:
            with Client(proc.port) as client:
                client.unary(b"warm", timeout=10)  # the connection is open
                call = client.sleep.future(b"2000", timeout=15)
                time.sleep(0.5)  # the call reaches the app (it answers after 2 s)
                proc.proc.send_signal(signal.SIGTERM)
                assert call.result(timeout=15) == b"2000"
            assert proc.aborted_at_drain(timeout=20) == 0
            assert any(entry.get("msg") == "draining" for entry in proc.logs)
        finally:
            proc.stop()


def test_what_the_observer_cannot_read_still_flows_and_is_counted() -> None:
    """An h2c port in front of an HTTP/1 app: the app's answer to the preface is not HTTP/2.
    The client gets it byte for byte; the connection is counted as no longer observed."""
    with UpstreamServer() as http1:
        proc = AmbassadorProcess("--upstream", f"127.0.0.1:{http1.port}", "--drain-delay", "0",
                                 "--protocol", "h2c")
        try:
            with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
                sock.sendall(client_start())
                answer = b""
                while chunk := sock.recv(65536):
                    answer += chunk
            # The app's own words (http.server refuses HTTP/2.0 with a 505 page), unchanged.
            assert b"HTTP version (2.0)" in answer and b"505" in answer
            assert proc.wait_value("redline_ambassador_http2_unobserved_connections_total", 1,
                                   reason="server_framing") == 1
            assert proc.value("redline_ambassador_http2_unobserved_connections_total",
                              reason="client_framing") == 0
        finally:
            assert proc.stop() == 0
