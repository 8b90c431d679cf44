"""Failures become proper responses and are counted, and never touch other connections."""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Iterator

import pytest

from tests.conftest import promtool_check_metrics
from tests.sidecars.ambassador.conftest import AmbassadorProcess
from tests.sidecars.ambassador.test_passthrough import read_all
from tests.sidecars.ambassador.upstream import UpstreamServer


def exchange(port: int, request: bytes, timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        return read_all(sock)


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET / HTTP/1.1\r\nHost: t\r\nBad Header: 1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n"
        b"\r\nhello",
        b"GET / HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host
        b"GET / HTTP/1.1\r\nHost: t\r\nHost: evil\r\n\r\n",
    ],
)
def test_malformed_request_gets_400_bad_request(
    ambassador: AmbassadorProcess, upstream: UpstreamServer, counted: list[int],
    request_bytes: bytes,
) -> None:
    before = ambassador.requests_recorded(error_type="bad_request")
    seen = len(upstream.seen)
    if ambassador.protocol == "auto" and request_bytes.startswith(b"\x16"):
        # Detection takes a TLS record for TLS, not for a broken request: passed through.
        tls_before = ambassador.tcp("connections", "tls")
        exchange(ambassador.port, request_bytes)
        assert ambassador.wait_value("tcp_server_connections_total", tls_before + 1,
                                     network_protocol_name="tls") == tls_before + 1
        assert ambassador.requests_recorded(error_type="bad_request") == before
        return
    response = exchange(ambassador.port, request_bytes)
    counted.append(1)
    assert status_of(response) == 400
    assert b"connection: close" in response
    assert ambassador.wait_recorded(before + 1, error_type="bad_request") == before + 1
    assert len(upstream.seen) == seen  # the app never saw it


@pytest.mark.parametrize(
    "body",
    [
        b"5 \r\nhello\r\n0\r\n\r\n",  # a padded chunk size
        b"5;x=\ry\r\nhello\r\n0\r\n\r\n",  # a bare CR in a chunk extension
        b"5\r\nhello\r\n0\r\nGET /smuggled HTTP/1.1\r\n\r\n",  # a request line as trailer
        b"zz\r\nhello\r\n0\r\n\r\n",
    ],
)
def test_bad_chunk_framing_gets_400_and_is_the_clients_fault(
    ambassador: AmbassadorProcess, counted: list[int], body: bytes,
) -> None:
    before = ambassador.requests_recorded(error_type="bad_request",
                                          http_response_status_code="400")
    response = exchange(ambassador.port, b"POST /echo HTTP/1.1\r\nHost: t\r\n"
                                         b"Transfer-Encoding: chunked\r\n\r\n" + body)
    counted.append(1)
    assert response.startswith(b"HTTP/1.1 400 Bad Request\r\n"), response[:100]
    assert b"connection: close" in response
    assert ambassador.wait_recorded(before + 1, error_type="bad_request",
                                    http_response_status_code="400") == before + 1


def test_bad_chunk_framing_is_answered_after_earlier_responses(
    ambassador: AmbassadorProcess, counted: list[int]
) -> None:
    response = exchange(ambassador.port, b"GET /say/first HTTP/1.1\r\nHost: t\r\n\r\n"
                                         b"POST /echo HTTP/1.1\r\nHost: t\r\n"
                                         b"Transfer-Encoding: chunked\r\n\r\n"
                                         b"3\r\nabc\r\n -1\r\n")
    counted.append(2)
    assert response.startswith(b"HTTP/1.1 200 OK\r\n") and b"first" in response
    assert response.index(b"first") < response.index(b"HTTP/1.1 400 Bad Request")


def test_bad_request_after_good_ones_is_answered_in_order(
    ambassador: AmbassadorProcess, counted: list[int]
) -> None:
    response = exchange(ambassador.port, b"GET /say/first HTTP/1.1\r\nHost: t\r\n\r\n"
                                         b"GET /say/second HTTP/1.1\r\nHost: t\r\n\r\n"
                                         b"BROKEN\r\n\r\n")
    counted.append(3)
    assert response.count(b"HTTP/1.1 200 OK") == 2
    assert response.index(b"first") < response.index(b"second") < response.index(b"400 Bad")


def test_oversized_head_gets_431(ambassador: AmbassadorProcess, counted: list[int]) -> None:
    big = b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n"
    response = exchange(ambassador.port, big)
    counted.append(1)
    assert status_of(response) == 431
    assert ambassador.wait_recorded(1, http_response_status_code="431",
                                    error_type="bad_request") >= 1
    assert ambassador.value("redline_ambassador_rejected_total", reason="head_too_large") >= 1


def test_upstream_reset_gets_502_connection_reset(
    ambassador: AmbassadorProcess, counted: list[int]
) -> None:
    before = ambassador.requests_recorded(error_type="connection_reset")
    response = exchange(ambassador.port, b"GET /reset HTTP/1.1\r\nHost: t\r\n\r\n")
    counted.append(1)
    assert status_of(response) == 502
    assert ambassador.wait_recorded(
        before + 1, error_type="connection_reset", http_response_status_code="502",
        http_route="/reset") == before + 1


def test_upstream_reset_mid_response_closes_and_counts(
    ambassador: AmbassadorProcess, counted: list[int]
) -> None:
    response = exchange(ambassador.port, b"GET /reset-mid HTTP/1.1\r\nHost: t\r\n\r\n")
    counted.append(1)
    # The client got what the app sent, then the connection closed: the body is short.
    assert response.startswith(b"HTTP/1.1 200 OK") and response.endswith(b"0123456789")
    assert ambassador.wait_recorded(1, error_type="connection_reset",
                                    http_response_status_code="200") == 1


def test_upstream_reset_inside_a_head_after_a_good_response(
    ambassador: AmbassadorProcess, counted: list[int]
) -> None:
    """Part of the second head already reached the client: no 502 may follow it."""
    response = exchange(ambassador.port, b"GET /say/one HTTP/1.1\r\nHost: t\r\n\r\n"
                                         b"GET /reset-in-head HTTP/1.1\r\nHost: t\r\n\r\n")
    counted.append(2)
    assert response.endswith(b"\r\n\r\noneHTTP/1.1 200 OK\r\nContent-Len")
    assert ambassador.wait_recorded(1, error_type="connection_reset",
                                    http_route="/reset-in-head") == 1


def test_client_gone_before_the_response_is_client_closed(
    ambassador: AmbassadorProcess, counted: list[int]
) -> None:
    with socket.create_connection(("127.0.0.1", ambassador.port), timeout=10) as sock:
        sock.sendall(b"GET /slow/1 HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(0.1)
    counted.append(1)
    assert ambassador.wait_recorded(1, error_type="client_closed", http_route="/slow/{id}") == 1


def test_a_bad_request_does_not_affect_other_connections(
    ambassador: AmbassadorProcess, counted: list[int]
) -> None:
    good = http.client.HTTPConnection("127.0.0.1", ambassador.port, timeout=10)
    for i in range(20):
        good.request("GET", f"/say/{i}")
        assert good.getresponse().read() == str(i).encode()
        if i % 5 == 0:
            # A request line, so HTTP/1 to detection too, then a broken header.
            bad = b"GET / HTTP/1.1\r\nNOT A HEADER\r\n\r\n"
            assert status_of(exchange(ambassador.port, bad)) == 400
    good.close()
    counted.append(24)


@pytest.fixture
def short_timeouts(upstream: UpstreamServer) -> Iterator[AmbassadorProcess]:
    proc = AmbassadorProcess("--upstream", f"127.0.0.1:{upstream.port}", "--drain-delay", "0",
                             "--upstream-timeout", "0.5", "--header-timeout", "0.5")
    yield proc
    assert proc.stop() == 0


def test_no_upstream_answer_in_time_gets_504_timeout(
    short_timeouts: AmbassadorProcess,
) -> None:
    started = time.monotonic()
    response = exchange(short_timeouts.port, b"GET /slow/3 HTTP/1.1\r\nHost: t\r\n\r\n")
    assert status_of(response) == 504
    assert time.monotonic() - started < 2.5
    assert short_timeouts.wait_recorded(1, error_type="timeout",
                                        http_response_status_code="504") == 1
    assert short_timeouts.requests_recorded() == 1


def test_slow_request_head_gets_408_and_is_not_a_request(
    short_timeouts: AmbassadorProcess,
) -> None:
    with socket.create_connection(("127.0.0.1", short_timeouts.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n")  # and then nothing
        response = read_all(sock)
    assert status_of(response) == 408
    assert short_timeouts.value("redline_ambassador_rejected_total",
                                reason="header_timeout") == 1
    assert short_timeouts.requests_recorded() == 0


def test_upstream_refusing_gets_502_connection_refused() -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        closed_port = placeholder.getsockname()[1]  # bound, never listening: refuses
        proc = AmbassadorProcess("--upstream", f"127.0.0.1:{closed_port}", "--drain-delay", "0")
        try:
            for _ in range(3):
                response = exchange(proc.port, b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
                assert status_of(response) == 502
            assert proc.wait_recorded(3, error_type="connection_refused",
                                      http_response_status_code="502") == 3
            assert proc.requests_recorded() == 3
            status, detail = proc.admin("/readyz")
            assert status == 503 and "cannot reach upstream" in detail
        finally:
            assert proc.stop() == 0


def test_promtool_accepts_metrics_after_mixed_load(ambassador: AmbassadorProcess) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", ambassador.port, timeout=10)
    for path in ("/status/500", "/status/404", "/users/1", "/users/2", "/status/503"):
        for method in ("GET", "POST", "BREW"):
            conn.request(method, path)
            conn.getresponse().read()
    conn.close()
    promtool_check_metrics(ambassador.metrics_text().encode())
    openmetrics = ambassador.metrics_text("application/openmetrics-text; version=1.0.0")
    assert openmetrics.rstrip().endswith("# EOF")
