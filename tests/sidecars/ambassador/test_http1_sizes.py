"""HTTP/1 body sizes (`--record-sizes`, #22): what the framing says a body is (its
Content-Length, its chunk sizes, or the bytes up to the close), each way, recorded when the
response ended; nothing for a failed exchange or a streaming response; no size histograms at all
without the flag. Real clients (curl, http.client) through a real ambassador to a real app."""

from __future__ import annotations

import http.client
import subprocess
from collections.abc import Iterator

import pytest

from redline.sidecars.ambassador.http1_body import ChunkedBody, LengthBody, UntilCloseBody
from tests.sidecars.ambassador.conftest import AmbassadorProcess
from tests.sidecars.ambassador.upstream import UpstreamServer

REQUEST, RESPONSE = "http_server_request_body_size_bytes", "http_server_response_body_size_bytes"


def test_body_readers_count_what_the_framing_says() -> None:
    length = LengthBody(10)
    assert length.size == 10
    chunked = ChunkedBody()
    chunked.consume(b"3;ext=1\r\nabc\r\na\r\n0123456789\r\n0\r\nx-trailer: 1\r\n\r\n", 0)
    assert chunked.done and chunked.size == 13  # the chunk data, not its framing or trailer
    until_close = UntilCloseBody()
    until_close.consume(b"head and 12 bytes", 9)
    until_close.consume(b"more", 0)
    assert until_close.size == 12


@pytest.fixture(scope="module", params=["auto", "http1"])
def sized(upstream: UpstreamServer, request: pytest.FixtureRequest
          ) -> Iterator[AmbassadorProcess]:
    proc = AmbassadorProcess("--upstream", f"127.0.0.1:{upstream.port}", "--drain-delay", "0",
                             "--protocol", str(request.param), "--record-sizes")
    yield proc
    assert proc.stop() == 0


def curl(*args: str, stdin: bytes = b"") -> bytes:
    result = subprocess.run(["curl", "-sS", "--max-time", "30", *args], input=stdin,
                            capture_output=True, timeout=40, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def sizes(proc: AmbassadorProcess, route: str, method: str) -> tuple[float, float, float]:
    """(request bytes, response bytes, responses sized) recorded for one route and method."""
    labels = {"http_route": route, "http_request_method": method}
    return (proc.value(f"{REQUEST}_sum", **labels), proc.value(f"{RESPONSE}_sum", **labels),
            proc.value(f"{RESPONSE}_count", **labels))


def test_curl_bodies_each_way_with_either_framing(sized: AmbassadorProcess) -> None:
    base = f"http://127.0.0.1:{sized.port}"
    before = sized.requests_recorded()
    body = b"e" * 70_000
    assert curl("--data-binary", "@-", f"{base}/echo", stdin=body) == body
    # A chunked upload (curl sends what it reads from stdin in chunks), echoed chunked.
    assert curl("-H", "Transfer-Encoding: chunked", "--data-binary", "@-",
                f"{base}/echo-chunked", stdin=body) == body
    assert len(curl(f"{base}/bytes/300000?chunked=1")) == 300_000
    assert curl("-I", f"{base}/bytes/1000").startswith(b"HTTP/1.1 200")
    assert sized.wait_recorded(before + 4) == before + 4
    assert sizes(sized, "/echo", "POST") == (70_000, 70_000, 1)
    assert sizes(sized, "/echo-chunked", "POST") == (70_000, 70_000, 1)
    # The GET has no body; the HEAD's response has none either, whatever its Content-Length.
    assert sizes(sized, "/bytes/{id}", "GET") == (0, 300_000, 1)
    assert sizes(sized, "/bytes/{id}", "HEAD") == (0, 0, 1)


def test_keep_alive_exchanges_are_sized_one_by_one(sized: AmbassadorProcess) -> None:
    before = sized.requests_recorded()
    connection = http.client.HTTPConnection("127.0.0.1", sized.port, timeout=10)
    try:
        for size in (1, 1000, 65_537):
            connection.request("PUT", f"/say/{size}", body=b"p" * size)
            response = connection.getresponse()
            assert response.read() == str(size).encode()
        connection.request("GET", "/status/204")
        assert connection.getresponse().read() == b""
    finally:
        connection.close()
    assert sized.wait_recorded(before + 4) == before + 4
    assert sizes(sized, "/say/{id}", "PUT") == (1 + 1000 + 65_537, 1 + 4 + 5, 3)
    assert sizes(sized, "/status/{id}", "GET") == (0, 0, 1)


def test_failed_and_streaming_exchanges_have_no_size(sized: AmbassadorProcess) -> None:
    base = f"http://127.0.0.1:{sized.port}"
    before = sized.requests_recorded()
    result = subprocess.run(["curl", "-sS", "--max-time", "10", f"{base}/reset-mid"],
                            capture_output=True, timeout=20, check=False)
    assert result.returncode != 0  # the app reset the connection halfway through the body
    assert curl("-N", f"{base}/stream") == b"data: one\n\ndata: two\n\n"
    assert sized.wait_recorded(before + 2) == before + 2
    assert sizes(sized, "/reset-mid", "GET")[2] == 0
    assert sizes(sized, "/stream", "GET")[2] == 0  # timed to its first byte: no size then


def test_without_the_flag_there_are_no_size_histograms(ambassador: AmbassadorProcess) -> None:
    base = f"http://127.0.0.1:{ambassador.port}"
    before = ambassador.requests_recorded()
    assert curl("--data-binary", "@-", f"{base}/echo", stdin=b"x" * 5000) == b"x" * 5000
    assert ambassador.wait_recorded(before + 1) == before + 1
    names = {name for name, _, _ in ambassador.samples()}
    assert not any(name.startswith((REQUEST, RESPONSE)) for name in names)
