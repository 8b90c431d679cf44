"""h2c Upgrade from HTTP/1.1 (#18): `curl --http2` (and `nghttp -u`) send `Upgrade: h2c`;
an app that answers 101 has the connection observed as HTTP/2 from then on, the upgrade
request recorded as stream 1 with its HTTP/2 response's status (not the 101); an app that
ignores the Upgrade header is recorded as HTTP/1, as before."""

from __future__ import annotations

import base64
import hashlib
import signal
import socket
import subprocess
from collections.abc import Iterator

import pytest
from hpack import Decoder

from redline.exporters.red import ServerRecorder
from redline.exporters.routes import RouteTemplater
from redline.exporters.rpc import RpcServerRecorder
from redline.sidecars.ambassador import h2frames
from redline.sidecars.ambassador.config import Limits
from redline.sidecars.ambassador.h2record import StreamRecorder
from redline.sidecars.ambassador.http2 import H2cUpgrade
from redline.sidecars.ambassador.observe import Exchange
from tests.abuse.h2frames import Response, take_frames
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


def upgraded(*http2_settings: bytes
             ) -> tuple[H2cUpgrade, list[tuple[int | None, str | None, float]]]:
    """An observer of a connection upgraded by a request with these HTTP2-Settings values."""
    finished: list[tuple[int | None, str | None, float]] = []

    def finish(exchange: Exchange, status: int | None, error: str | None, now: float) -> None:
        assert exchange.recorded is False  # handed back, to be recorded now
        finished.append((status, error, now))

    exchange = Exchange(b"GET", 5.0, True)
    exchange.status = 101
    H2cUpgrade.hold(exchange)
    recorder = StreamRecorder(ServerRecorder("shop"), RpcServerRecorder("shop"),
                              RouteTemplater())
    observer = H2cUpgrade(Owner(), recorder, exchange, finish, 6.0,  # type: ignore[arg-type]
                          http2_settings)
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


def http2_settings(*pairs: tuple[int, int]) -> bytes:
    """An HTTP2-Settings value: the SETTINGS payload in base64url, its padding left out."""
    payload = b"".join(k.to_bytes(2, "big") + v.to_bytes(4, "big") for k, v in pairs)
    return base64.urlsafe_b64encode(payload).rstrip(b"=")


@pytest.mark.parametrize(("values", "expected"), [
    ((), []),  # no header (RFC 7540 says no upgrade then; an app that upgrades: defaults)
    ((b"",), []),  # an empty SETTINGS
    ((http2_settings((1, 65536), (4, 1 << 20)),), [(1, 65536), (4, 1 << 20)]),
    ((base64.urlsafe_b64encode(bytes((0, 1, 0, 1, 0, 0))),), [(1, 65536)]),  # padding kept
])
def test_http2_settings_are_the_clients_settings_payload_in_base64url(
        values: tuple[bytes, ...], expected: list[tuple[int, int]]) -> None:
    assert h2frames.upgrade_settings(values) == expected


@pytest.mark.parametrize("values", [
    (b"AAEAAQAA!",),  # not base64url
    (b"AAEAAQAA+/",),  # base64, not base64url
    (base64.urlsafe_b64encode(b"\x00\x01\x00\x01\x00").rstrip(b"="),),  # 5 bytes
    (b"AAEAAQAAA",),  # a length no base64 has
    (http2_settings((1, 8192)), http2_settings((1, 8192))),  # two headers
])
def test_an_http2_settings_header_that_cannot_be_read_is_a_framing_error(
        values: tuple[bytes, ...]) -> None:
    with pytest.raises(h2frames.FramingError):
        h2frames.upgrade_settings(values)


def test_the_clients_http2_settings_bound_the_apps_encoder_from_the_101_on() -> None:
    """The 101 acknowledged them: the app's first block may already use the larger table."""
    observer, finished = upgraded(http2_settings((h2frames.SETTINGS_HEADER_TABLE_SIZE, 65536)))
    app = Peer()
    app.encoder.header_table_size = 65536
    observer.client_bytes(client_start())
    observer.server_bytes(settings_frame() + app.headers(1, [(b":status", b"503"),
                                                             (b"x-filler", b"f" * 5000)],
                                                         end=True))
    assert [(status, error) for status, error, _ in finished] == [(503, None)]
    assert observer.recorder.stopped.value(("server_framing",)) == 0


def test_an_http2_settings_header_that_cannot_be_read_stops_observation_at_once() -> None:
    observer, finished = upgraded(b"AAEAAQAA!")
    assert finished == [(101, None, 6.0)]  # the upgrade, as an unobserved one
    assert observer.recorder.stopped.value(("client_framing",)) == 1
    observer.client_bytes(client_start())  # not looked at any more
    observer.server_bytes(settings_frame() + Peer().headers(1, [(b":status", b"200")],
                                                            end=True))
    assert len(finished) == 1 and observer.streams.stopped is not None


def upgrade(port: int, table_size: int) -> tuple[socket.socket, bytearray]:
    """A connection upgraded to h2c by a client whose HTTP2-Settings allow an HPACK table of
    `table_size`, its preface sent; what was read past the 101."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /status/503 HTTP/1.1\r\nHost: shop\r\nConnection: Upgrade, "
                 b"HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: " + http2_settings(
                     (h2frames.SETTINGS_HEADER_TABLE_SIZE, table_size)) + b"\r\n\r\n")
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        assert chunk, received
        received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 "), head
    sock.sendall(h2frames.PREFACE + settings_frame())
    return sock, bytearray(rest)


def response(sock: socket.socket, buffer: bytearray, decoder: Decoder, stream: int) -> Response:
    answer = Response()
    while not answer.ended:
        for item in take_frames(buffer):
            if item.stream == stream:
                answer.feed(item, decoder)
        if not answer.ended:
            chunk = sock.recv(65536)
            assert chunk, "closed before the response ended"
            buffer += chunk
    return answer


def test_an_app_encoding_with_the_larger_table_the_client_allowed_is_read_right(
        ambassador: AmbassadorProcess) -> None:
    """The client announces a 64 KiB table in HTTP2-Settings (and nowhere else); the app's
    hpack Encoder uses it: entries of 3 KB each, and `:status 503` named by its index
    beyond the first 4,096 bytes of the table. Every status is still recorded right."""
    before = {status: ambassador.requests_recorded(http_response_status_code=status)
              for status in ("200", "418", "503")}
    decoder = Decoder()
    decoder.max_allowed_table_size = 65536
    client, rounds = Peer(), 8
    sock, buffer = upgrade(ambassador.port, 65536)
    with sock:
        statuses = [response(sock, buffer, decoder, 1).header(":status")]
        for index in range(rounds * 3):
            path = (b"/headers/3000", b"/status/503", b"/status/418")[index % 3]
            stream = 3 + 2 * index
            sock.sendall(client.headers(stream, request(b"GET", path, b""), end=True))
            statuses.append(response(sock, buffer, decoder, stream).header(":status"))
    assert statuses == ["503"] + ["200", "503", "418"] * rounds
    # The app did use more than the default 4,096 bytes of table.
    assert sum(32 + len(n) + len(v) for n, v in decoder.header_table.dynamic_entries) > 20_000
    expected = {"200": rounds, "418": rounds, "503": rounds + 1}
    for status, count in expected.items():
        assert ambassador.wait_recorded(before[status] + count,
                                        http_response_status_code=status) == \
            before[status] + count
    assert ambassador.value("redline_ambassador_http2_unobserved_connections_total") == 0


def test_sigterm_tells_an_upgraded_client_goaway_then_closes(app: H2cApp) -> None:
    """An upgraded h2c connection drains as an h2c port's does: a GOAWAY naming the last
    stream the client opened, then the close, well before the drain timeout (a connection
    still open at the timeout is aborted and counted in `aborted_connections`)."""
    proc = AmbassadorProcess("--upstream", f"127.0.0.1:{app.port}", "--drain-delay", "0",
                             "--drain-timeout", "30", "--protocol", "auto")
    try:
        sock, buffer = upgrade(proc.port, 4096)
        with sock:
            decoder = Decoder()
            assert response(sock, buffer, decoder, 1).header(":status") == "503"
            sock.sendall(Peer().headers(3, request(b"GET", b"/bytes/10", b""), end=True))
            assert response(sock, buffer, decoder, 3).header(":status") == "200"
            proc.proc.send_signal(signal.SIGTERM)
            while chunk := sock.recv(65536):  # until the ambassador closes (socket timeout)
                buffer += chunk
        goaways = [h2frames.goaway_fields(item.payload) for item in take_frames(buffer)
                   if item.kind == h2frames.GOAWAY]
        assert goaways == [(3, h2frames.NO_ERROR)]
        assert proc.aborted_at_drain(timeout=40) == 0
    finally:
        proc.stop()
