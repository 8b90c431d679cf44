"""h2c Upgrade from HTTP/1.1 (#18): `curl --http2` (and `nghttp -u`) send `Upgrade: h2c`;
an app that answers 101 has the connection observed as HTTP/2 from then on, the upgrade
request recorded as stream 1 with its HTTP/2 response's status (not the 101); an app that
ignores the Upgrade header is recorded as HTTP/1, as before."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator

import pytest

from redline.exporters.red import ServerRecorder
from redline.exporters.routes import RouteTemplater
from redline.exporters.rpc import RpcServerRecorder
from redline.sidecars.ambassador import h2frames
from redline.sidecars.ambassador.config import Limits
from redline.sidecars.ambassador.h2record import StreamRecorder
from redline.sidecars.ambassador.http2 import H2cUpgrade
from redline.sidecars.ambassador.observe import Exchange
from tests.sidecars.ambassador.conftest import AmbassadorProcess
from tests.sidecars.ambassador.h2bytes import Peer, client_start, data, frame, request
from tests.sidecars.ambassador.h2bytes import settings as settings_frame
from tests.sidecars.ambassador.h2c_app import H2cApp
from tests.sidecars.ambassador.upstream import UpstreamServer, pattern_bytes

COUNT = "http_server_request_duration_seconds_count"


@pytest.fixture(scope="module")
def app() -> Iterator[H2cApp]:
    with H2cApp() as server:
        yield server


@pytest.fixture(scope="module", params=["auto", "http1"])
def ambassador(app: H2cApp, request: pytest.FixtureRequest) -> Iterator[AmbassadorProcess]:
    proc = AmbassadorProcess("--upstream", f"127.0.0.1:{app.port}", "--drain-delay", "0",
                             "--protocol", str(request.param))
    yield proc
    assert proc.stop() == 0
    assert not [entry for entry in proc.logs if "exc" in entry]


def curl_http2(url: str) -> tuple[bytes, str]:
    result = subprocess.run(["curl", "-sS", "-v", "--http2", "--max-time", "30", url],
                            capture_output=True, timeout=40, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout, result.stderr.decode()


@pytest.mark.parametrize("size", [0, 1000, 1024 * 1024])
def test_an_upgraded_request_is_stream_1_recorded_with_its_http2_status(
        ambassador: AmbassadorProcess, size: int) -> None:
    before = ambassador.requests_recorded()
    ok = ambassador.requests_recorded(http_route="/bytes/{id}", http_response_status_code="200",
                                      error_type="")
    body, trace = curl_http2(f"http://127.0.0.1:{ambassador.port}/bytes/{size}")
    assert "101 Switching Protocols" in trace and "HTTP/2 200" in trace  # really upgraded
    assert hashlib.sha256(body).digest() == hashlib.sha256(pattern_bytes(size)).digest()
    assert ambassador.wait_recorded(ok + 1, http_route="/bytes/{id}",
                                    http_response_status_code="200") == ok + 1
    assert ambassador.requests_recorded() == before + 1  # once, and never as its 101
    assert ambassador.requests_recorded(http_response_status_code="101") == 0
    assert ambassador.value("http_server_active_requests") == 0


def test_the_status_of_stream_1_is_the_one_recorded(ambassador: AmbassadorProcess) -> None:
    before = ambassador.requests_recorded(http_response_status_code="503", error_type="503")
    curl_http2(f"http://127.0.0.1:{ambassador.port}/status/503")
    assert ambassador.wait_recorded(before + 1, http_response_status_code="503",
                                    error_type="503") == before + 1


def test_streams_after_the_upgrade_are_recorded_as_http2(ambassador: AmbassadorProcess) -> None:
    """nghttp -u: the first request is the upgrade's, the next ones streams 3 and 5."""
    before = ambassador.requests_recorded(http_route="/bytes/{id}",
                                          http_response_status_code="200")
    missing = ambassador.requests_recorded(http_response_status_code="404")
    base = f"http://127.0.0.1:{ambassador.port}"
    result = subprocess.run(["nghttp", "-u", "-n", f"{base}/bytes/10", f"{base}/bytes/70000",
                             f"{base}/nowhere"], capture_output=True, timeout=40, check=False)
    assert result.returncode == 0, result.stderr
    assert ambassador.wait_recorded(before + 2, http_route="/bytes/{id}",
                                    http_response_status_code="200") == before + 2
    assert ambassador.wait_recorded(missing + 1, http_response_status_code="404") == missing + 1
    assert ambassador.value("http_server_active_requests") == 0


def test_an_app_that_ignores_the_upgrade_is_recorded_as_http1() -> None:
    with UpstreamServer() as http1_app:
        proc = AmbassadorProcess("--upstream", f"127.0.0.1:{http1_app.port}",
                                 "--drain-delay", "0")
        try:
            body, trace = curl_http2(f"http://127.0.0.1:{proc.port}/say/declined")
            assert body == b"declined" and "HTTP/1.1 200" in trace and "101" not in trace
            assert proc.wait_recorded(1, http_route="/say/declined",
                                      http_response_status_code="200") == 1
            assert proc.requests_recorded() == 1
            # The app saw the Upgrade request, as curl sent it.
            assert http1_app.seen[-1][2].get("Upgrade") == "h2c"
        finally:
            assert proc.stop() == 0


class Owner:
    """What H2cUpgrade needs of the port: its limits, and where limits are counted."""

    limits = Limits()

    def __init__(self) -> None:
        self.counted: list[str] = []

    def count_limit(self, limit: str) -> None:
        self.counted.append(limit)


def upgraded() -> tuple[H2cUpgrade, list[tuple[int | None, str | None, float]]]:
    finished: list[tuple[int | None, str | None, float]] = []

    def finish(exchange: Exchange, status: int | None, error: str | None, now: float) -> None:
        assert exchange.recorded is False  # handed back, to be recorded now
        finished.append((status, error, now))

    exchange = Exchange(b"GET", 5.0, True)
    exchange.status = 101
    H2cUpgrade.hold(exchange)
    recorder = StreamRecorder(ServerRecorder("shop"), RpcServerRecorder("shop"),
                              RouteTemplater())
    observer = H2cUpgrade(Owner(), recorder, exchange, finish, 6.0)  # type: ignore[arg-type]
    return observer, finished


def test_stream_1_ends_with_its_response_and_other_streams_go_to_the_recorder() -> None:
    observer, finished = upgraded()
    app, client = Peer(), Peer()
    observer.client_bytes(client_start() + client.headers(3, request(b"GET", b"/x", b""),
                                                          end=True))
    observer.server_bytes(settings_frame() + app.headers(1, [(b":status", b"404")])
                          + data(1, b"gone", end=True))
    assert [(status, error) for status, error, _ in finished] == [(404, None)]
    assert set(observer.streams.streams) == {3}  # still open, the recorder's
    observer.ended("client_closed")
    assert len(finished) == 1 and not observer.streams.streams


def test_the_upgrade_is_its_101_when_observation_stops_before_stream_1_ended() -> None:
    observer, finished = upgraded()
    observer.client_bytes(client_start())
    observer.server_bytes(b"HTTP/1.1 200 OK\r\n\r\n")  # not HTTP/2 after all
    assert finished == [(101, None, 6.0)]
    observer.ended("client_closed")
    assert len(finished) == 1


def test_an_upgraded_connection_counts_pushed_streams_in_the_process_counter() -> None:
    """As on an h2c port: the app's PUSH_PROMISEs are relayed, not recorded, and counted in
    redline_ambassador_http2_pushed_streams_total (the process's counter), once each."""
    observer, finished = upgraded()
    app = Peer()
    observer.client_bytes(client_start())
    promise = app.encoder.encode([(b":method", b"GET"), (b":path", b"/style.css"),
                                  (b":scheme", b"http"), (b":authority", b"shop")])
    pushed = frame(h2frames.PUSH_PROMISE, h2frames.END_HEADERS, 1,
                   (2).to_bytes(4, "big") + promise)
    observer.server_bytes(settings_frame() + pushed + app.headers(1, [(b":status", b"200")],
                                                                  end=True))
    observer.server_bytes(app.headers(2, [(b":status", b"200")]) + data(2, b"css", end=True))
    assert [status for status, _, _ in finished] == [200]
    assert observer.recorder.pushed.value(()) == 1
