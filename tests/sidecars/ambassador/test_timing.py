"""What a duration measures: to the last byte, to the 101, or to the first byte of a stream."""

from __future__ import annotations

import http.client
from pathlib import Path

from tests.sidecars.ambassador.conftest import AmbassadorProcess
from tests.sidecars.ambassador.upstream import UpstreamServer


def bucket(proc: AmbassadorProcess, route: str, le: str) -> float:
    return proc.value("http_server_request_duration_seconds_bucket", http_route=route, le=le)


def stream(port: int, path: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    body = conn.getresponse().read()
    conn.close()
    return body


def test_streams_are_timed_to_the_first_byte(upstream: UpstreamServer, tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text("routes:\n  - pattern: /slow/{seconds}\n    streaming: true\n")
    proc = AmbassadorProcess("--upstream", f"127.0.0.1:{upstream.port}", "--drain-delay", "0",
                             "--routes", str(routes))
    try:
        # /stream answers text/event-stream at once and ends after ~2 s: first byte counts.
        assert stream(proc.port, "/stream") == b"data: one\n\ndata: two\n\n"
        assert bucket(proc, "/stream", "0.25") == 1
        # A route marked streaming: its first byte comes after 1 s, with the whole response.
        assert stream(proc.port, "/slow/1") == b"slow"
        assert bucket(proc, "/slow/{seconds}", "0.75") == 0
        assert bucket(proc, "/slow/{seconds}", "2.5") == 1
        # An ordinary response is timed to its last byte.
        assert stream(proc.port, "/bytes/100") != b""
        assert proc.requests_recorded() == 3
    finally:
        assert proc.stop() == 0
