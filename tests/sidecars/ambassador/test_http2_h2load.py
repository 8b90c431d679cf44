"""h2load through the ambassador (#18's "Must show"), beside curl (test_http2_curl.py, which
compares the bytes themselves): nghttp2's load generator, many streams at once on a few
connections, gets every response whole (h2load counts each body's bytes) and every stream is
recorded once, for bodies of 0 B to 10 MiB."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.conftest import tool_path
from tests.sidecars.ambassador.conftest import AmbassadorProcess
from tests.sidecars.ambassador.test_http2_curl import ambassador, app

__all__ = ["ambassador", "app"]  # the fixtures, shared: an h2c app, `h2c` and `auto` ports

COUNT = "http_server_request_duration_seconds_count"


def h2load(url: str, requests: int, connections: int, streams: int) -> dict[str, int]:
    """Run h2load; its request counts and the response body bytes it received."""
    result = subprocess.run(
        [tool_path("h2load"), "-n", str(requests), "-c", str(connections), "-m", str(streams),
         url], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    done = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, "
                     r"(\d+) failed, (\d+) errored", result.stdout)
    codes = re.search(r"status codes: (\d+) 2xx", result.stdout)
    data = re.search(r"traffic: .*, \S+ \((\d+)\) data", result.stdout)
    assert done and codes and data, result.stdout
    return {"total": int(done[1]), "done": int(done[2]), "succeeded": int(done[3]),
            "failed": int(done[4]) + int(done[5]), "2xx": int(codes[1]),
            "data": int(data[1])}


@pytest.mark.parametrize(("size", "requests"), [(0, 400), (1024, 400), (1024 * 1024, 40),
                                                (10 * 1024 * 1024, 4)])
def test_h2load_gets_every_body_whole_and_every_stream_is_recorded(
        ambassador: AmbassadorProcess, size: int, requests: int) -> None:
    before = ambassador.value(COUNT, http_route="/bytes/{id}", http_response_status_code="200")
    stats = h2load(f"http://127.0.0.1:{ambassador.port}/bytes/{size}", requests,
                   connections=2, streams=10)
    assert stats == {"total": requests, "done": requests, "succeeded": requests, "failed": 0,
                     "2xx": requests, "data": requests * size}
    expected = before + requests
    assert ambassador.wait_value(COUNT, expected, http_route="/bytes/{id}",
                                 http_response_status_code="200") == expected
    assert ambassador.value("http_server_active_requests") == 0
    assert ambassador.value("redline_ambassador_http2_unobserved_connections_total") == 0
