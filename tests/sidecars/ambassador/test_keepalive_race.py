"""The keep-alive race: the app closes an idle upstream connection just as the next request is
sent on it. Idempotent requests are sent again on a new connection, once (as nginx and Envoy
do); others get the 502 they always got."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from tests.sidecars.ambassador.conftest import AmbassadorProcess

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class ClosingUpstream:
    """A raw HTTP upstream. Its n-th connection answers `answers[n - 1]` requests and closes
    on reading the next one without a byte of answer (what an idle timeout racing a request
    looks like from the proxy); connections beyond the list answer everything."""

    def __init__(self, answers: tuple[int, ...] = (1,)) -> None:
        self.answers = answers
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.requests: list[tuple[int, bytes]] = []  # (connection number, request line)
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            number = self.connections
            threading.Thread(target=self._connection, args=(conn, number), daemon=True).start()

    def _connection(self, conn: socket.socket, number: int) -> None:
        conn.settimeout(10)
        answered, buffer = 0, b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                buffer = buffer[length:]
                self.requests.append((number, head.split(b"\r\n")[0]))
                if number <= len(self.answers) and answered >= self.answers[number - 1]:
                    return  # closed with the request unanswered
                conn.sendall(OK)
                answered += 1

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def race() -> Iterator[tuple[ClosingUpstream, AmbassadorProcess]]:
    upstream = ClosingUpstream()
    proc = AmbassadorProcess("--upstream", f"127.0.0.1:{upstream.port}", "--drain-delay", "0",
                             "--upstream-timeout", "5")
    yield upstream, proc
    assert proc.stop() == 0
    upstream.close()


def two_requests(port: int, second: bytes) -> bytes:
    """One keep-alive connection: a GET answered, then `second` after its answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /first HTTP/1.1\r\nHost: t\r\n\r\n")
        received = b""
        while not received.endswith(b"ok"):
            received += sock.recv(65536)
        sock.sendall(second)
        answer = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
            if answer.endswith(b"ok") or b"Connection: close" in answer \
                    or b"connection: close" in answer:
                break
        return answer


@pytest.mark.parametrize("method", [b"GET", b"HEAD", b"PUT", b"DELETE"])
def test_an_idempotent_request_is_sent_again_on_a_new_connection(
        race: tuple[ClosingUpstream, AmbassadorProcess], method: bytes) -> None:
    upstream, proc = race
    body = b"Content-Length: 3\r\n\r\nabc" if method == b"PUT" else b"\r\n"
    answer = two_requests(proc.port, method + b" /second HTTP/1.1\r\nHost: t\r\n" + body)
    assert answer.startswith(b"HTTP/1.1 200 OK")
    # The app saw it on the closing connection, then on a new one.
    assert upstream.requests == [(1, b"GET /first HTTP/1.1"),
                                 (1, method + b" /second HTTP/1.1"),
                                 (2, method + b" /second HTTP/1.1")]
    assert proc.wait_recorded(2, http_response_status_code="200") == 2
    assert proc.requests_recorded() == 2  # one observation per request the client sent
    assert proc.value("redline_ambassador_upstream_retries_total") == 1


def test_a_post_is_not_sent_twice(race: tuple[ClosingUpstream, AmbassadorProcess]) -> None:
    upstream, proc = race
    answer = two_requests(proc.port, b"POST /pay HTTP/1.1\r\nHost: t\r\n"
                                     b"Content-Length: 3\r\n\r\nabc")
    assert answer.startswith(b"HTTP/1.1 502")
    assert [r for r in upstream.requests if r[1].startswith(b"POST")] == [
        (1, b"POST /pay HTTP/1.1")]
    assert proc.wait_recorded(1, error_type="connection_reset") == 1
    assert proc.value("redline_ambassador_upstream_retries_total") == 0


@pytest.mark.parametrize("answers", [(0,), (1, 0)], ids=["fresh", "retried"])
def test_never_on_a_fresh_connection_so_at_most_once(answers: tuple[int, ...]) -> None:
    """A connection that never answered gives no reason to think it was idle: its failure is
    a 502, whether it is the first connection or the one a retry opened."""
    upstream = ClosingUpstream(answers)
    proc = AmbassadorProcess("--upstream", f"127.0.0.1:{upstream.port}", "--drain-delay", "0")
    try:
        if answers == (0,):
            with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
                sock.sendall(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
                answer = sock.recv(65536)
            expected_retries, sent = 0, 1
        else:
            answer = two_requests(proc.port, b"GET /second HTTP/1.1\r\nHost: t\r\n\r\n")
            expected_retries, sent = 1, 2
        assert answer.startswith(b"HTTP/1.1 502")
        assert proc.wait_recorded(1, error_type="connection_reset") == 1
        assert proc.requests_recorded() == sent
        assert proc.value("redline_ambassador_upstream_retries_total") == expected_retries
        assert len(upstream.requests) == sent + expected_retries
    finally:
        assert proc.stop() == 0
        upstream.close()
