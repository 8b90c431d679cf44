"""One `redline ambassador` process fronting real servers of other protocols at once: Redis
(redis-benchmark), a TLS server (openssl s_server, curl), a server that speaks first, and an
HTTP/1 app; every byte gets through and the TCP metrics agree with the servers' own counts."""

from __future__ import annotations

import http.client
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import promtool_check_metrics, tool_path
from tests.process import free_port, wait_port
from tests.sidecars.ambassador.conftest import AmbassadorProcess
from tests.sidecars.ambassador.relays import RELAYS, environment
from tests.sidecars.ambassador.upstream import UpstreamServer

# The ambassador's ports, in the order they are declared.
REDIS_AUTO, REDIS_OPAQUE, HTTP, TLS_AUTO, BANNER_AUTO, BANNER_OPAQUE = range(6)
REQUESTS = 20_000  # per redis-benchmark test (CI time); benchmarks/bench_tcp.py runs more


@pytest.fixture(scope="module")
def redis() -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(
        [tool_path("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, still_starting=lambda: proc.poll() is None)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def tls_server(test_ca: Path) -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(
        [tool_path("openssl"), "s_server", "-accept", f"127.0.0.1:{port}", "-cert",
         str(test_ca / "server.pem"), "-key", str(test_ca / "server.key"), "-www", "-quiet"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, still_starting=lambda: proc.poll() is None)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


class Greeter(socketserver.StreamRequestHandler):
    """Speaks first, as MySQL, SMTP and SSH servers do; then echoes one line."""

    def handle(self) -> None:
        self.wfile.write(b"220 hello\r\n")
        self.wfile.write(self.rfile.readline())


@pytest.fixture(scope="module")
def banner() -> Iterator[int]:
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), Greeter) as server:
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield int(server.server_address[1])
        server.shutdown()


@pytest.fixture(scope="module", params=RELAYS)
def fronted(redis: int, upstream: UpstreamServer, tls_server: int, banner: int,
            request: pytest.FixtureRequest) -> Iterator[AmbassadorProcess]:
    pairs = [(redis, "auto"), (redis, "opaque"), (upstream.port, "http1"),
             (tls_server, "auto"), (banner, "auto"), (banner, "opaque")]
    args = [arg for port, protocol in pairs for arg in (
        "--listen", "127.0.0.1:0", "--upstream", f"127.0.0.1:{port}", "--protocol", protocol)]
    proc = AmbassadorProcess(*args, "--drain-delay", "0", "--drain-timeout", "5", listen=False,
                             env=environment(str(request.param)))
    yield proc
    assert proc.stop() == 0


def redis_net(port: int) -> tuple[int, int, int, int]:
    """Redis's own byte counts (input, output), and the bytes this question and its answer
    took: Redis counts a request when it reads it, its answer when it writes it (after)."""
    request = b"*2\r\n$4\r\nINFO\r\n$5\r\nstats\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        reply = b""
        while not reply.endswith(b"\r\n") or reply.count(b"\r\n") < 2 or \
                len(reply) < int(reply[1:reply.index(b"\r\n")]) + reply.index(b"\r\n") + 4:
            chunk = sock.recv(65536)
            assert chunk, "Redis closed the connection"
            reply += chunk
    stats = dict(line.split(":", 1) for line in reply.decode().splitlines() if ":" in line)
    return (int(stats["total_net_input_bytes"]), int(stats["total_net_output_bytes"]),
            len(request), len(reply))


@pytest.mark.parametrize("pipeline", [1, 16])
@pytest.mark.parametrize("port", [REDIS_AUTO, REDIS_OPAQUE], ids=["auto", "opaque"])
def test_redis_benchmark_through_the_ambassador_and_every_byte_counted(
    fronted: AmbassadorProcess, redis: int, port: int, pipeline: int
) -> None:
    received = fronted.tcp("received_bytes", "opaque")
    sent = fronted.tcp("sent_bytes", "opaque")
    clean = fronted.tcp("connections", "opaque", error_type="")
    total = fronted.tcp("connections", "opaque")
    redis_in, redis_out, _, answer = redis_net(redis)
    result = subprocess.run(
        [tool_path("redis-benchmark"), "-h", "127.0.0.1", "-p", str(fronted.ports[port]), "-q",
         "-n", str(REQUESTS), "-t", "get,set", "-P", str(pipeline)],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    report = result.stdout.replace("\r", "\n")
    assert "SET:" in report and "GET:" in report and "rror" not in report, report
    # Every benchmark connection (50 per test, and one to read the server's config) has
    # ended, each cleanly.
    assert fronted.wait_value("tcp_server_connections_total", clean + 100,
                              network_protocol_name="opaque", error_type="") >= clean + 100
    deadline = time.monotonic() + 5
    while fronted.tcp("active_connections", "opaque") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fronted.tcp("active_connections", "opaque") == 0
    assert fronted.tcp("connections", "opaque") - total == \
        fronted.tcp("connections", "opaque", error_type="") - clean
    after_in, after_out, question, _ = redis_net(redis)
    assert fronted.tcp("received_bytes", "opaque") - received == after_in - redis_in - question
    assert fronted.tcp("sent_bytes", "opaque") - sent == after_out - redis_out - answer


def test_tls_passes_through_with_its_server_name_counted(fronted: AmbassadorProcess,
                                                         test_ca: Path) -> None:
    port = fronted.ports[TLS_AUTO]
    before = fronted.tcp("connections", "tls", error_type="")
    result = subprocess.run(
        [tool_path("curl"), "-sS", "--max-time", "10", "--cacert", str(test_ca / "ca.pem"),
         "--resolve", f"shop.test:{port}:127.0.0.1", "-o", "/dev/null", "-w", "%{http_code}",
         f"https://shop.test:{port}/"], capture_output=True, text=True, timeout=30,
        check=False)
    assert (result.returncode, result.stdout) == (0, "200"), result.stderr
    assert fronted.wait_value("tcp_server_connections_total", before + 1,
                              network_protocol_name="tls", error_type="") == before + 1
    assert fronted.value("redline_ambassador_tls_connections_total",
                         server_name="shop.test") >= 1
    assert fronted.tcp("received_bytes", "tls") > 0 and fronted.tcp("sent_bytes", "tls") > 0


def greeting_after(port: int) -> float:
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        reader = sock.makefile("rb")
        assert reader.readline() == b"220 hello\r\n"
        greeted = time.monotonic() - start
        sock.sendall(b"EHLO shop\r\n")
        assert reader.readline() == b"EHLO shop\r\n"
    return greeted


def test_a_server_that_speaks_first_works_with_auto_after_the_detection_timeout(
    fronted: AmbassadorProcess
) -> None:
    # --detect-timeout's default: 0.3 s once per connection on an auto port, none on opaque.
    assert 0.3 <= greeting_after(fronted.ports[BANNER_AUTO]) < 0.8
    assert greeting_after(fronted.ports[BANNER_OPAQUE]) < 0.2


def test_http1_and_redis_on_one_process_at_once(fronted: AmbassadorProcess) -> None:
    requests = fronted.requests_recorded()
    benchmark = subprocess.Popen(
        [tool_path("redis-benchmark"), "-h", "127.0.0.1", "-p", str(fronted.ports[REDIS_AUTO]),
         "-q", "-n", "5000", "-t", "ping"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    conn = http.client.HTTPConnection("127.0.0.1", fronted.ports[HTTP], timeout=10)
    for index in range(100):
        conn.request("GET", f"/say/{index}")
        assert conn.getresponse().read() == str(index).encode()
    conn.close()
    output, _ = benchmark.communicate(timeout=60)
    assert benchmark.returncode == 0 and "PING_INLINE:" in output, output
    assert fronted.wait_recorded(requests + 100) == requests + 100
    assert fronted.wait_value("tcp_server_connections_total", 1, network_protocol_name="http",
                              error_type="") >= 1


def test_the_exposition_passes_promtool(fronted: AmbassadorProcess) -> None:
    text = fronted.metrics_text()
    assert "tcp_server_connection_duration_seconds_bucket" in text
    promtool_check_metrics(text.encode())
