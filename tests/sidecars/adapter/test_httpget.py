"""The bounded GET of --scrape / --json-url against a real local server: the cap is exact,
a non-200 answer names its status, and a closed fetcher refuses at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from redline.sidecars.adapter.httpget import (
    BodyTooLargeError,
    FetchAbortedError,
    Fetcher,
    FetchError,
)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        server = self
        self.status, self.body, self.chunked = 200, b"", False

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(server.status)
                if server.chunked:  # no Content-Length: the cap is found by reading
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(server.body), server.body))
                else:
                    self.send_header("Content-Length", str(len(server.body)))
                    self.end_headers()
                    self.wfile.write(server.body)

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/stats?x=1"
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.shutdown()
    running.server_close()


@pytest.mark.parametrize("chunked", [False, True])
def test_the_body_cap_is_exact(server: Server, chunked: bool) -> None:
    server.chunked = chunked
    fetcher = Fetcher(2.0, 1000, "application/json")
    server.body = b"x" * 1000
    assert fetcher.get(server.url) == server.body
    server.body = b"x" * 1001
    with pytest.raises(BodyTooLargeError, match="over 1000 bytes"):
        fetcher.get(server.url)


def test_an_answer_other_than_200_is_an_error_naming_it(server: Server) -> None:
    server.status = 302
    with pytest.raises(FetchError, match=r"HTTP 302 .*redirects are not followed"):
        Fetcher(2.0, 1000, "text/plain").get(server.url)


def test_a_closed_fetcher_refuses(server: Server) -> None:
    fetcher = Fetcher(2.0, 1000, "text/plain")
    fetcher.close()
    with pytest.raises(FetchAbortedError):
        fetcher.get(server.url)
