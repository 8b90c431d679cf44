"""The HTTP/1 connection pair (ClientSide + UpstreamSide) on fake transports: every byte
through unchanged and in order, one observation per exchange, and the ambassador's own answers."""

from __future__ import annotations

import pytest

from redline.sidecars.ambassador.config import Limits
from redline.sidecars.ambassador.http1_client import ClientSide
from tests.sidecars.ambassador.pair import FakeOwner, FakeTransport, Pair

GET_A = b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
GET_B = b"GET /b HTTP/1.1\r\nHost: t\r\n\r\n"
POST = b"POST /pay HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nnot\r\n0\r\n\r\n"


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def test_a_keep_alive_connection_forwards_both_ways_unchanged() -> None:
    pair = Pair()
    pair.client.data_received(GET_A)
    upstream, upstream_transport = pair.connect()
    assert upstream_transport.take() == GET_A
    upstream.data_received(OK)
    assert pair.client_transport.take() == OK
    pair.client.data_received(GET_B)
    assert upstream_transport.take() == GET_B
    upstream.data_received(NOT_FOUND)
    assert pair.client_transport.take() == NOT_FOUND
    assert len(pair.owner.connects) == 1  # one upstream connection per client connection
    assert pair.finished == [(b"GET", 200, None), (b"GET", 404, None)]
    assert pair.client.idle() and not pair.client_transport.closing


def test_pipelined_requests_are_answered_in_order_whatever_the_chunking() -> None:
    pair = Pair()
    pair.client.data_received(GET_A + POST + GET_B)
    upstream, upstream_transport = pair.connect()
    assert upstream_transport.take() == GET_A + POST + GET_B
    responses = OK + NOT_FOUND + OK
    for index in range(len(responses)):  # one byte at a time: framing must not care
        upstream.data_received(responses[index:index + 1])
    assert pair.client_transport.take() == responses
    assert pair.finished == [(b"GET", 200, None), (b"POST", 404, None), (b"GET", 200, None)]


def test_bytes_sent_while_connecting_are_queued_with_backpressure() -> None:
    owner = FakeOwner(limits=Limits(connect_queue_bytes=40))
    pair = Pair(owner)
    pair.client.data_received(POST)  # 60 bytes: above the queue limit
    assert not pair.client_transport.reading
    upstream, upstream_transport = pair.connect()
    assert upstream_transport.take() == POST
    assert pair.client_transport.reading
    upstream.data_received(OK)
    assert pair.finished == [(b"POST", 200, None)]


def test_the_keep_alive_race_sends_an_idempotent_request_again_once() -> None:
    pair = Pair()
    pair.client.data_received(GET_A)
    first, _ = pair.connect()
    first.data_received(OK)
    pair.client.data_received(GET_B)
    first.connection_lost(None)  # closed as idle while GET /b was on its way
    assert pair.owner.retries == 1 and len(pair.owner.connects) == 2
    second, second_transport = pair.connect()
    assert second_transport.take() == GET_B
    second.data_received(OK)
    assert pair.client_transport.take() == OK + OK
    assert pair.finished == [(b"GET", 200, None), (b"GET", 200, None)]
    # Once it answered, the new connection may meet the race too; the one opened for that
    # retry had not answered when it closed, so its failure is final: a 502.
    pair.client.data_received(GET_A)
    second.data_received(OK)
    assert pair.client_transport.take() == OK
    pair.client.data_received(GET_B)
    second.connection_lost(None)
    assert pair.owner.retries == 2
    third, _ = pair.connect()
    third.connection_lost(None)
    assert pair.owner.retries == 2 and len(pair.owner.connects) == 3
    assert status_of(pair.client_transport.take()) == 502
    assert pair.finished[-1] == (b"GET", 502, "connection_reset")
    assert pair.client_transport.closing


def test_a_post_meeting_a_closed_connection_gets_502_and_is_not_sent_again() -> None:
    pair = Pair()
    pair.client.data_received(GET_A)
    upstream, _ = pair.connect()
    upstream.data_received(OK)
    pair.client_transport.take()
    pair.client.data_received(POST)
    upstream.connection_lost(None)
    assert pair.owner.retries == 0 and len(pair.owner.connects) == 1
    assert status_of(pair.client_transport.take()) == 502
    assert pair.finished[-1] == (b"POST", 502, "connection_reset")


def test_no_replay_once_a_byte_of_the_next_response_arrived() -> None:
    pair = Pair()
    pair.client.data_received(GET_A)
    upstream, _ = pair.connect()
    upstream.data_received(OK)
    pair.client.data_received(GET_B)
    upstream.data_received(b"HTTP/1.1 2")
    upstream.connection_lost(None)
    assert pair.owner.retries == 0
    # The client already has part of a response: no 502 may follow it.
    assert pair.client_transport.take() == OK + b"HTTP/1.1 2"
    assert pair.finished[-1] == (b"GET", None, "connection_reset")


@pytest.mark.parametrize(("error", "status"), [("connection_refused", 502), ("tls_error", 502),
                                               ("connect_error", 502), ("timeout", 504)])
def test_a_failed_connect_is_answered_with_its_error_type(error: str, status: int) -> None:
    pair = Pair()
    pair.client.data_received(GET_A)
    pair.fail_connect(error, "why")
    assert status_of(pair.client_transport.take()) == status
    assert pair.finished == [(b"GET", status, error)]
    assert pair.client_transport.closing


def test_a_connect_failing_after_the_client_left_changes_nothing() -> None:
    pair = Pair()
    pair.client.data_received(GET_A)
    pair.lose_client()
    pair.fail_connect("timeout", "too late")
    assert pair.finished == [(b"GET", None, "client_closed")]
    assert pair.owner.connections == set()


def test_an_unparsable_response_is_invalid_response() -> None:
    pair = Pair()
    pair.client.data_received(GET_A)
    upstream, upstream_transport = pair.connect()
    upstream.data_received(b"SSH-2.0-OpenSSH\r\n\r\n")
    assert pair.owner.rejected == ["bad_response"]
    assert pair.finished == [(b"GET", None, "invalid_response")]
    assert pair.client_transport.closing and upstream_transport.aborted


UPGRADE = b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"


def test_an_upgrade_turns_the_pair_into_a_tunnel_once_granted() -> None:
    pair = Pair()
    pair.client.data_received(UPGRADE + b"\x81\x02hi")  # a frame right behind the head
    upstream, upstream_transport = pair.connect()
    assert upstream_transport.take() == UPGRADE  # the frame waits for the 101
    assert not pair.client_transport.reading
    granted = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
    upstream.data_received(granted + b"\x81\x02yo")
    assert upstream_transport.take() == b"\x81\x02hi" and pair.client_transport.reading
    upstream.data_received(b"not HTTP\r\n\r\n")  # the tunnel's bytes are never framed
    pair.client.data_received(b"GET /not-a-request\r\n\r\n")
    assert pair.client_transport.take() == granted + b"\x81\x02yo" + b"not HTTP\r\n\r\n"
    assert upstream_transport.take() == b"GET /not-a-request\r\n\r\n"
    assert pair.finished == [(b"GET", 101, None)]  # timed to the 101
    assert not pair.client.idle()
    upstream.connection_lost(None)
    assert pair.client_transport.closing


def test_a_declined_upgrade_frames_the_requests_behind_it() -> None:
    pair = Pair()
    pair.client.data_received(UPGRADE + GET_A)  # pipelined behind the upgrade request
    upstream, upstream_transport = pair.connect()
    assert upstream_transport.take() == UPGRADE
    upstream.data_received(b"HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\n\r\n")
    assert upstream_transport.take() == GET_A and pair.client_transport.reading
    upstream.data_received(OK)
    assert pair.finished == [(b"GET", 426, None), (b"GET", 200, None)]  # both recorded
    assert pair.client.idle()


def test_a_granted_upgrade_can_be_handed_to_another_protocol() -> None:
    handed: list[tuple[bytes, bytes]] = []
    owner = FakeOwner()
    client = ClientSide(owner, upgraded=lambda side, protocol, held: handed.append(
        (protocol, held)))
    client.connection_made(FakeTransport())
    client.data_received(UPGRADE.replace(b"websocket", b"h2c") + b"PRI * HTTP/2.0")
    upstream = owner.connects[0][0]
    upstream.connection_made(FakeTransport())
    upstream.data_received(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n")
    assert handed == [(b"h2c", b"PRI * HTTP/2.0")] and not client.raw


def test_connect_is_refused_with_405_unless_allowed() -> None:
    connect = b"CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n"
    pair = Pair()
    pair.client.data_received(connect)
    assert status_of(pair.client_transport.take()) == 405 and pair.client_transport.closing
    assert pair.owner.connects == [] and pair.owner.rejected == ["connect"]
    assert pair.owner.recording.rejections == [(b"CONNECT", 405, "bad_request")]
    allowed = Pair(FakeOwner(limits=Limits(allow_connect=True)))
    allowed.client.data_received(connect + b"bytes")
    upstream, upstream_transport = allowed.connect()
    upstream.data_received(b"HTTP/1.1 200 Connection Established\r\n\r\n")
    assert upstream_transport.take() == connect + b"bytes" and allowed.client.tunnel


def test_an_idle_tunnel_is_closed_after_the_idle_timeout() -> None:
    pair = Pair(FakeOwner(limits=Limits(idle_timeout=5.0, upstream_timeout=1.0)))
    pair.client.data_received(UPGRADE)
    upstream, _ = pair.connect()
    upstream.data_received(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
    last = max(pair.client.last_read, pair.client.last_upstream_read)
    pair.client.check_timeouts(last + 4)  # past --upstream-timeout: not a request any more
    assert not pair.client_transport.closing
    pair.client.check_timeouts(last + 6)
    assert pair.client_transport.closing and pair.owner.limits_reached == ["tunnel_idle"]
    assert pair.finished == [(b"GET", 101, None)]  # not charged to the app


def test_a_request_head_over_the_limit_gets_431_and_is_not_forwarded() -> None:
    pair = Pair(FakeOwner(limits=Limits(max_header_bytes=1024)))
    pair.client.data_received(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 600)
    assert pair.client_transport.take() == b""  # held: it may still end in time
    pair.client.data_received(b"a" * 600 + b"\r\n\r\n")
    assert status_of(pair.client_transport.take()) == 431
    assert pair.owner.connects == []
    assert pair.owner.rejected == ["head_too_large"]
    assert pair.owner.recording.rejections == [(b"GET", 431, "bad_request")]


def test_unfinished_heads_of_all_connections_share_one_budget() -> None:
    owner = FakeOwner(limits=Limits(max_header_bytes=1024, max_held_head_bytes=2048))
    first, second, third = Pair(owner), Pair(owner), Pair(owner)
    part = b"GET / HTTP/1.1\r\nX-Pad: " + b"a" * 900
    first.client.data_received(part)
    second.client.data_received(part)
    assert owner.limits.held_heads.held == 2 * len(part)
    third.client.data_received(part[:300])  # past the budget
    assert status_of(third.client_transport.take()) == 503 and third.client_transport.closing
    assert owner.limits_reached == ["held_head_bytes"] and owner.connects == []
    assert owner.recording.rejections == [] and third.finished == []  # not a request
    third.client.connection_lost(None)
    assert owner.limits.held_heads.held == 2 * len(part)  # the refused one held nothing
    first.client.data_received(b"\r\nHost: a\r\n\r\n")  # whole: its bytes go back
    assert owner.limits.held_heads.held == len(part)
    assert first.connect()[1].take().startswith(part)
    second.client.connection_lost(None)  # a client gone gives its bytes back too
    assert owner.limits.held_heads.held == 0
    fourth = Pair(owner)
    fourth.client.data_received(part + b"a" * 100)
    assert fourth.client_transport.take() == b"" and not fourth.client_transport.closing


def test_a_bad_request_is_answered_after_the_responses_before_it() -> None:
    pair = Pair()
    pair.client.data_received(GET_A + b"BROKEN\r\n\r\n")
    upstream, upstream_transport = pair.connect()
    assert upstream_transport.take() == GET_A  # the app never sees the broken one
    assert not pair.client_transport.reading and pair.client_transport.take() == b""
    upstream.data_received(OK)
    answer = pair.client_transport.take()
    assert answer.startswith(OK) and status_of(answer[len(OK):]) == 400
    assert pair.client_transport.closing and upstream_transport.closing


def test_a_slow_request_head_gets_408_without_an_observation() -> None:
    pair = Pair(FakeOwner(limits=Limits(header_timeout=1.0)))
    pair.client.data_received(b"GET / HTTP/1.1\r\n")
    pair.client.check_timeouts(pair.client.head_since + 0.5)
    assert pair.client_transport.take() == b""
    pair.client.check_timeouts(pair.client.head_since + 1.5)
    assert status_of(pair.client_transport.take()) == 408
    assert pair.owner.rejected == ["header_timeout"] and pair.finished == []


def test_a_silent_upstream_gets_504_timeout() -> None:
    pair = Pair(FakeOwner(limits=Limits(upstream_timeout=2.0)))
    pair.client.data_received(GET_A)
    _, upstream_transport = pair.connect()
    started = pair.client.last_read
    pair.client.check_timeouts(started + 1.0)
    assert pair.finished == []
    pair.client.check_timeouts(started + 3.0)
    assert status_of(pair.client_transport.take()) == 504
    assert pair.finished == [(b"GET", 504, "timeout")]
    assert upstream_transport.aborted


def test_a_client_leaving_mid_request_is_client_closed_and_frees_the_upstream() -> None:
    pair = Pair()
    pair.client.data_received(GET_A)
    upstream, upstream_transport = pair.connect()
    assert pair.owner.upstreams_open == 1 and len(pair.owner.connections) == 1
    pair.lose_client()
    assert pair.finished == [(b"GET", None, "client_closed")]
    assert upstream_transport.aborted
    upstream.connection_lost(None)
    assert pair.owner.upstreams_open == 0 and pair.owner.connections == set()


def test_draining_closes_a_connection_once_its_last_response_ended() -> None:
    pair = Pair()
    pair.client.data_received(GET_A)
    upstream, _ = pair.connect()
    pair.owner.shutting_down = True
    upstream.data_received(OK)
    assert pair.client_transport.take() == OK
    assert pair.client_transport.closing


def test_a_full_pipeline_stops_reading_the_client_until_responses_drain() -> None:
    pair = Pair(FakeOwner(limits=Limits(max_pipelined=4)))
    pair.client.data_received(GET_A + GET_B)
    upstream, upstream_transport = pair.connect()
    assert pair.client_transport.reading
    # The fourth request fills the line: reading stops, and the rest of the chunk waits.
    pair.client.data_received(GET_A + GET_B + GET_A + GET_B + GET_A)
    assert not pair.client_transport.reading
    assert pair.owner.limits_reached == ["pipeline_full"]
    assert upstream_transport.take() == GET_A + GET_B + GET_A + GET_B
    upstream.data_received(OK)  # three in flight: still paused until half of the limit
    assert upstream_transport.take() == b"" and not pair.client_transport.reading
    upstream.data_received(OK)  # two: what waited goes on, and fills the line again
    assert upstream_transport.take() == GET_A + GET_B
    assert not pair.client_transport.reading
    assert pair.owner.limits_reached == ["pipeline_full"] * 2
    upstream.data_received(OK)
    # Paused by the upstream side too (its buffer is full): draining the line is not enough.
    upstream.pause_writing()
    upstream.data_received(OK)
    assert upstream_transport.take() == GET_A and not pair.client_transport.reading
    upstream.resume_writing()
    assert pair.client_transport.reading
    upstream.data_received(OK * 3)
    assert pair.client_transport.take() == OK * 7
    assert pair.finished == [(b"GET", 200, None)] * 7 and pair.client.idle()


def test_empty_lines_before_a_request_run_the_header_timeout() -> None:
    pair = Pair(FakeOwner(limits=Limits(header_timeout=1.0)))
    pair.client.data_received(b"\r\n")
    started = pair.client.head_since
    assert started
    for second in range(1, 4):  # one empty line a second, each before the timeout
        pair.client.data_received(b"\r\n")
        pair.client.check_timeouts(started + 0.5 * second)
        if pair.client_transport.closing:
            break
    assert status_of(pair.client_transport.take()) == 408 and pair.client_transport.closing
    assert pair.owner.rejected == ["header_timeout"] and pair.finished == []


def test_a_few_empty_lines_are_ignored_and_more_get_400() -> None:
    pair = Pair()
    pair.client.data_received(b"\r\n" * 32 + GET_A)  # 64 bytes: ignored, as RFC 9112 allows
    upstream, _ = pair.connect()
    upstream.data_received(OK)
    assert pair.client_transport.take() == OK and not pair.client.head_since
    pair.client.data_received(b"\r\n" * 32)  # the count starts again after each request
    pair.client.data_received(b"\r\n")
    assert status_of(pair.client_transport.take()) == 400 and pair.client_transport.closing
    assert pair.owner.rejected == ["empty_lines"]
    assert pair.finished == [(b"GET", 200, None)] and pair.owner.recording.rejections == []


def test_a_client_that_stops_reading_is_not_the_apps_timeout() -> None:
    pair = Pair(FakeOwner(limits=Limits(upstream_timeout=5.0, idle_timeout=20.0)))
    pair.client.data_received(GET_A)
    upstream, upstream_transport = pair.connect()
    upstream.data_received(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
    pair.client.pause_writing()  # the client's buffer is full: the upstream is not read
    assert not upstream_transport.reading
    stalled = pair.client.stalled_since
    pair.client.check_timeouts(stalled + 6.0)  # past --upstream-timeout: the app is not late
    assert pair.finished == [] and not pair.client_transport.closing
    pair.client.resume_writing()  # it read: the upstream's clock starts again
    assert upstream_transport.reading
    pair.client.check_timeouts(pair.client.last_upstream_read + 4.0)
    assert pair.finished == []
    pair.client.pause_writing()
    pair.client.check_timeouts(pair.client.stalled_since + 21.0)  # nothing read for the idle one
    assert pair.finished == [(b"GET", 200, "client_closed")]
    assert pair.client_transport.aborted and upstream_transport.aborted
    assert pair.owner.limits_reached == ["client_stalled"]
