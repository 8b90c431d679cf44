"""What observing one HTTP/2 connection may cost (#18, rapid reset): streams per read of the
client's, and streams reset as soon as opened. Past either bound observation stops at once,
in the middle of the read, with the bound named; short of them nothing changes."""

from __future__ import annotations

from redline.sidecars.ambassador.h2frames import CANCEL
from redline.sidecars.ambassador.h2streams import (
    RAPID_RESET,
    STREAMS_PER_READ,
    Http2Streams,
    Stream,
)
from tests.sidecars.ambassador.h2bytes import Peer, client_start, request, rst
from tests.sidecars.ambassador.h2bytes import settings as settings_frame


class Counts:
    def __init__(self) -> None:
        self.started = self.ended = self.abandoned = 0

    def request_started(self, stream: Stream, now: float) -> None:
        self.started += 1

    def response_started(self, stream: Stream, now: float) -> None:
        pass

    def stream_ended(self, stream: Stream, now: float, error: str | None) -> None:
        self.ended += 1

    def stream_abandoned(self, stream: Stream) -> None:
        self.abandoned += 1


def connection(**limits: int) -> tuple[Http2Streams, Counts, Peer]:
    counts = Counts()
    limits.setdefault("max_streams", 1024)
    streams = Http2Streams(counts, max_block=65536, max_table_size=65536, **limits)
    assert streams.client_bytes(client_start(), 0.0) is None
    assert streams.server_bytes(settings_frame(), 0.0) is None
    return streams, counts, Peer()


def opened_and_reset(peer: Peer, first: int, count: int) -> bytes:
    return b"".join(peer.headers(sid, request()) + rst(sid, CANCEL)
                    for sid in range(first, first + 2 * count, 2))


def test_rapid_reset_stops_observation_at_the_bound_in_the_middle_of_the_read() -> None:
    streams, counts, peer = connection(max_resets=100)
    stopped = streams.client_bytes(opened_and_reset(peer, 1, 4000), 1.0)
    assert stopped is not None and "100 of 100 streams reset" in stopped
    assert streams.limit == RAPID_RESET
    # The 3,900 streams after the bound were not parsed, let alone decoded or recorded.
    assert (counts.started, counts.ended, counts.abandoned) == (100, 100, 0)
    assert streams.client_bytes(opened_and_reset(peer, 8001, 10), 2.0) is None  # ignored
    assert counts.started == 100


def test_resets_of_a_client_that_mostly_finishes_its_calls_are_no_attack() -> None:
    streams, counts, peer = connection(max_resets=10)
    server = Peer()
    sid = 1
    for _ in range(300):  # two calls answered, one cancelled at once: a third reset
        for cancel in (False, False, True):
            chunk = peer.headers(sid, request())
            streams.client_bytes(chunk + (rst(sid, CANCEL) if cancel else b""), 1.0)
            if not cancel:
                streams.server_bytes(server.headers(sid, [(b":status", b"200")], end=True), 1.0)
            sid += 2
    assert streams.stopped is None and streams.early_resets == 300
    assert counts.started == counts.ended == 900


def test_resets_long_after_the_start_or_after_the_response_do_not_count() -> None:
    streams, _, peer = connection(max_resets=10)
    server = Peer()
    for sid in range(1, 41, 2):  # reset after a second: a deadline, not an attack
        streams.client_bytes(peer.headers(sid, request()), 1.0)
        streams.client_bytes(rst(sid, CANCEL), 2.5)
    for sid in range(41, 81, 2):  # reset once the response began: a client done reading
        streams.client_bytes(peer.headers(sid, request()), 3.0)
        streams.server_bytes(server.headers(sid, [(b":status", b"200")]), 3.0)
        streams.client_bytes(rst(sid, CANCEL), 3.0)
    assert streams.stopped is None and streams.early_resets == 0


def test_calls_reset_at_their_own_deadline_while_the_app_is_slow_keep_observation() -> None:
    """An app slowing down: gRPC clients with 250 ms deadlines cancel every call as it expires,
    before any response. Those are the app's DEADLINE_EXCEEDED, the very errors its SLO alerts
    need, not an attack: they never count as early resets."""
    streams, counts, peer = connection(max_resets=100)
    server = Peer()
    sid = 1
    for _ in range(300):  # healthy
        streams.client_bytes(peer.headers(sid, request(grpc_timeout=b"250m")), 1.0)
        streams.server_bytes(server.headers(sid, [(b":status", b"200")], end=True), 1.0)
        sid += 2
    for _ in range(400):  # slow: each call reset by its client at its deadline
        streams.client_bytes(peer.headers(sid, request(grpc_timeout=b"250m")), 2.0)
        streams.client_bytes(rst(sid, CANCEL), 2.25)
        sid += 2
    assert streams.stopped is None and streams.early_resets == 0
    assert counts.started == counts.ended == 700
    streams.client_bytes(opened_and_reset(peer, sid, 120), 3.0)  # no deadline: counted
    assert streams.early_resets == 120


def test_holding_the_tracked_streams_open_does_not_get_resets_past_the_bound() -> None:
    """A client that keeps max_streams streams open has every later stream untracked; streams
    it opens and resets in one read still count as early resets."""
    streams, counts, peer = connection(max_streams=64, max_resets=100)
    held = b"".join(peer.headers(sid, request()) for sid in range(1, 2 * 64, 2))
    assert streams.client_bytes(held, 1.0) is None
    sid = 2 * 64 + 1
    for _ in range(20):  # 100 streams opened and reset per read, none tracked
        if streams.client_bytes(opened_and_reset(peer, sid, 100), 1.5) is not None:
            break
        sid += 2 * 100
    assert streams.limit == RAPID_RESET and streams.untracked <= 200
    assert counts.started == 64


def test_more_streams_in_one_read_than_the_bound_stop_observation() -> None:
    streams, counts, peer = connection(max_streams_per_read=128)
    burst = b"".join(peer.headers(sid, request()) for sid in range(1, 2 * 2000, 2))
    stopped = streams.client_bytes(burst, 1.0)
    assert stopped is not None and streams.limit == STREAMS_PER_READ
    assert counts.started == 128 and counts.abandoned == 128


def test_the_same_streams_over_several_reads_are_observed() -> None:
    streams, counts, peer = connection(max_streams_per_read=128)
    for first in range(1, 2 * 1000, 2 * 100):  # 100 per read: a busy, honest client
        chunk = b"".join(peer.headers(sid, request()) for sid in range(first, first + 200, 2))
        assert streams.client_bytes(chunk, 1.0) is None
    assert streams.stopped is None and counts.started == 1000
