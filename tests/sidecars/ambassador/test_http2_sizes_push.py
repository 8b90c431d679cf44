"""HTTP/2 body sizes (`--record-sizes`) and server push (#18): a stream's DATA bytes each way
are its body sizes once its response ended; pushed responses are relayed and counted, never
recorded as requests; streams past the tracked limit are counted."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from redline.exporters.exposition import new_registry
from redline.exporters.red import ServerRecorder
from redline.exporters.routes import RouteTemplater
from redline.exporters.rpc import RpcServerRecorder
from redline.sidecars.ambassador import h2frames
from redline.sidecars.ambassador.h2record import StreamRecorder
from redline.sidecars.ambassador.h2streams import Http2Streams
from tests.sidecars.ambassador.conftest import AmbassadorProcess
from tests.sidecars.ambassador.h2bytes import Peer, client_start, data, frame, request
from tests.sidecars.ambassador.h2bytes import settings as settings_frame
from tests.sidecars.ambassador.h2c_app import H2cApp
from tests.sidecars.ambassador.test_http2_limits import Counts

SIZE_SUM = "http_server_{}_body_size_bytes_sum"


def observed(**limits: int) -> tuple[Http2Streams, Counts, Peer, Peer]:
    counts = Counts()
    streams = Http2Streams(counts, max_block=65536, max_streams=4, max_table_size=65536,
                           **limits)
    streams.client_bytes(client_start(), 0.0)
    streams.server_bytes(settings_frame(), 0.0)
    return streams, counts, Peer(), Peer()


def test_data_bytes_each_way_are_kept_per_stream() -> None:
    streams, _, client, server = observed()
    streams.client_bytes(client.headers(1, request(b"POST", b"/upload", b"text/plain"))
                         + data(1, b"a" * 1000) + data(1, b"b" * 500, end=True), 1.0)
    stream = streams.streams[1]
    streams.server_bytes(server.headers(1, [(b":status", b"200")]) + data(1, b"c" * 70_000),
                         1.5)
    assert (stream.request_bytes, stream.response_bytes) == (1500, 70_000)
    streams.server_bytes(data(1, b"", end=True), 2.0)
    assert 1 not in streams.streams


def test_a_push_promise_is_counted_and_never_a_stream() -> None:
    streams, counts, client, server = observed()
    streams.client_bytes(client.headers(1, request(b"GET", b"/page", b""), end=True), 1.0)
    promise = server.encoder.encode([(b":method", b"GET"), (b":path", b"/style.css"),
                                     (b":scheme", b"http"), (b":authority", b"shop")])
    pushed = frame(h2frames.PUSH_PROMISE, h2frames.END_HEADERS, 1,
                   (2).to_bytes(4, "big") + promise)
    streams.server_bytes(pushed + server.headers(1, [(b":status", b"200")], end=True)
                         + server.headers(2, [(b":status", b"200")])
                         + data(2, b"css", end=True), 1.5)
    assert streams.stopped is None and streams.pushed == 1
    assert (counts.started, counts.ended) == (1, 1)  # the page; the pushed stylesheet: none


def test_streams_past_the_tracked_limit_are_counted_untracked() -> None:
    streams, counts, client, _ = observed()
    streams.client_bytes(b"".join(client.headers(sid, request()) for sid in range(1, 13, 2)),
                         1.0)
    assert counts.started == 4 and streams.untracked == 2


def sized_recorder() -> tuple[StreamRecorder, ServerRecorder]:
    server = ServerRecorder("shop", record_sizes=True)
    return StreamRecorder(server, RpcServerRecorder("shop"), RouteTemplater()), server


def test_body_sizes_are_recorded_for_responses_that_ended() -> None:
    recorder, server = sized_recorder()
    streams = Http2Streams(recorder, max_block=65536, max_streams=8, max_table_size=65536)
    client, app = Peer(), Peer()
    streams.client_bytes(client_start(), 0.0)
    streams.server_bytes(settings_frame(), 0.0)
    streams.client_bytes(client.headers(1, request(b"POST", b"/upload", b"text/plain"))
                         + data(1, b"x" * 1234, end=True), 1.0)
    streams.server_bytes(app.headers(1, [(b":status", b"201")]) + data(1, b"y" * 99, end=True),
                         1.1)
    # A response that fails halfway has no body size: its duration alone is recorded.
    streams.client_bytes(client.headers(3, request(b"POST", b"/upload", b"text/plain"))
                         + data(3, b"z" * 10, end=True), 2.0)
    streams.server_bytes(app.headers(3, [(b":status", b"200")]) + data(3, b"partial"), 2.1)
    streams.server_bytes(frame(h2frames.RST_STREAM, 0, 3, (2).to_bytes(4, "big")), 2.2)
    registry = new_registry("test", server.collector())
    labels = {"service_name": "shop", "http_request_method": "POST", "http_route": "/upload",
              "url_scheme": "http"}
    ok = {**labels, "http_response_status_code": "201", "error_type": ""}
    failed = {**labels, "http_response_status_code": "200", "error_type": "connection_reset"}
    assert registry.get_sample_value(SIZE_SUM.format("request"), ok) == 1234
    assert registry.get_sample_value(SIZE_SUM.format("response"), ok) == 99
    assert registry.get_sample_value(
        "http_server_request_duration_seconds_count", failed) == 1
    assert not registry.get_sample_value(
        SIZE_SUM.format("request").replace("_sum", "_count"), failed)


@pytest.fixture(scope="module")
def app() -> Iterator[H2cApp]:
    with H2cApp() as server:
        yield server


def test_curl_bodies_are_measured_with_record_sizes(app: H2cApp) -> None:
    proc = AmbassadorProcess("--upstream", f"127.0.0.1:{app.port}", "--protocol", "h2c",
                             "--record-sizes", "--drain-delay", "0")
    try:
        base = f"http://127.0.0.1:{proc.port}"
        # Two runs: curl 7.88 fails to reuse an h2c connection (test_http2_curl.py).
        for args, stdin, size in ((("--data-binary", "@-", f"{base}/echo"), b"e" * 70_000,
                                   70_000), ((f"{base}/bytes/300000",), b"", 300_000)):
            result = subprocess.run(
                ["curl", "-sS", "--fail-with-body", "--http2-prior-knowledge", "--max-time",
                 "30", *args], input=stdin, capture_output=True, timeout=40, check=False)
            assert result.returncode == 0, result.stderr
            assert len(result.stdout) == size
        assert proc.wait_value("http_server_request_duration_seconds_count", 2) == 2
        assert proc.value(SIZE_SUM.format("request"), http_request_method="POST") == 70_000
        assert proc.value(SIZE_SUM.format("response"), http_request_method="POST") == 70_000
        assert proc.value(SIZE_SUM.format("request"), http_request_method="GET") == 0
        assert proc.value(SIZE_SUM.format("response"), http_request_method="GET") == 300_000
    finally:
        assert proc.stop() == 0
