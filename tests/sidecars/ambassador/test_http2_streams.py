"""The HTTP/2 stream observer, with bytes alone: which events each stream gives, with any
chunking of either direction, the HPACK state kept in step, and observation stopping (never
failing) on what it cannot read."""

from __future__ import annotations

import itertools

import pytest
from hpack import Decoder, Encoder, HPACKError
from hypothesis import given, settings
from hypothesis import strategies as st

from redline.sidecars.ambassador import h2frames
from redline.sidecars.ambassador.h2hpack import MirroredDecoder
from redline.sidecars.ambassador.h2streams import Http2Streams, Stream
from tests.sidecars.ambassador.h2bytes import (
    Peer,
    client_start,
    data,
    grpc_message,
    request,
    rst,
)
from tests.sidecars.ambassador.h2bytes import (
    settings as settings_frame,
)

Event = tuple[str, int, object]


class Events:
    """Keeps every event, with what the stream said at that point."""

    def __init__(self) -> None:
        self.seen: list[Event] = []

    def request_started(self, stream: Stream, now: float) -> None:
        self.seen.append(("started", stream.stream_id, (stream.method, stream.path,
                                                        stream.content_type)))

    def response_started(self, stream: Stream, now: float) -> None:
        self.seen.append(("response", stream.stream_id, stream.status))

    def stream_ended(self, stream: Stream, now: float, error: str | None) -> None:
        self.seen.append(("ended", stream.stream_id, (error, stream.status, stream.grpc_status)))

    def stream_abandoned(self, stream: Stream) -> None:
        self.seen.append(("abandoned", stream.stream_id, None))


def observer(max_streams: int = 100, max_block: int = 65536) -> tuple[Http2Streams, Events]:
    events = Events()
    return Http2Streams(events, max_block=max_block, max_streams=max_streams,
                        max_table_size=65536), events


OK_TRAILERS = [(b"grpc-status", b"0"), (b"grpc-message", b"")]
RESPONSE = [(b":status", b"200"), (b"content-type", b"application/grpc")]


def conversation() -> list[tuple[str, bytes]]:
    """Both directions of a connection, in order: a unary call, a Trailers-Only failure,
    a call the client cancels, a call the server refuses, an HTTP request, and a server
    GOAWAY refusing the last one."""
    client, server = Peer(), Peer()
    return [
        ("client", client_start()),
        ("server", settings_frame()),
        ("client", settings_frame(ack=True)),
        ("client", client.headers(1, request()) + data(1, grpc_message(b"hi"), end=True)),
        ("server", server.headers(1, RESPONSE) + data(1, grpc_message(b"hi"))
         + server.headers(1, OK_TRAILERS, end=True)),
        ("client", client.headers(3, request(path=b"/test.Echo/Missing"), end=True)),
        ("server", server.headers(3, [*RESPONSE, (b"grpc-status", b"12")], end=True)),
        ("client", client.headers(5, request()) + rst(5, h2frames.CANCEL)),
        ("client", client.headers(7, request(), end=True)),
        ("server", h2frames.goaway(7) + Peer().headers(0, [], end=False)[:0]
         + rst(7, h2frames.REFUSED_STREAM)),
        ("client", client.headers(9, request(b"GET", b"/users/7", b""), end=True)),
        ("server", server.headers(9, [(b":status", b"100")])
         + server.headers(9, [(b":status", b"404")]) + data(9, b"no", end=True)),
        ("client", client.headers(11, request(b"GET", b"/late", b""), end=True)),
        ("server", h2frames.goaway(9)),
    ]


EXPECTED: list[Event] = [
    ("started", 1, (b"POST", b"/test.Echo/Unary", b"application/grpc")),
    ("response", 1, 200),
    ("ended", 1, (None, 200, b"0")),
    ("started", 3, (b"POST", b"/test.Echo/Missing", b"application/grpc")),
    ("response", 3, 200),
    ("ended", 3, (None, 200, b"12")),
    ("started", 5, (b"POST", b"/test.Echo/Unary", b"application/grpc")),
    ("ended", 5, ("client_closed", None, None)),
    ("started", 7, (b"POST", b"/test.Echo/Unary", b"application/grpc")),
    ("ended", 7, ("connection_refused", None, None)),
    ("started", 9, (b"GET", b"/users/7", b"")),
    ("response", 9, 404),
    ("ended", 9, (None, 404, None)),
    ("started", 11, (b"GET", b"/late", b"")),
    ("ended", 11, ("connection_refused", None, None)),
]


def play(parts: list[tuple[str, bytes]], chunk_cuts: list[int] | None = None) -> list[Event]:
    streams, events = observer()
    for side, payload in parts:
        feed = streams.client_bytes if side == "client" else streams.server_bytes
        pieces = [payload]
        if chunk_cuts:
            points = sorted({0, len(payload), *(c % (len(payload) + 1) for c in chunk_cuts)})
            pieces = [payload[a:b] for a, b in itertools.pairwise(points)]
        for piece in pieces:
            assert feed(piece, 0.0) is None
    assert streams.stopped is None
    return events.seen


def test_each_stream_starts_and_ends_once_with_how_it_ended() -> None:
    assert play(conversation()) == EXPECTED


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=0), max_size=12))
def test_any_chunking_of_either_direction_gives_the_same_events(cuts: list[int]) -> None:
    assert play(conversation(), cuts) == EXPECTED


def test_streams_left_open_end_with_the_connection() -> None:
    streams, events = observer()
    client = Peer()
    streams.client_bytes(client_start() + client.headers(1, request()), 0.0)
    streams.connection_lost(1.0, "connection_reset")
    assert events.seen[-1] == ("ended", 1, ("connection_reset", None, None))
    assert streams.open_streams == 0


def test_streams_past_the_cap_are_decoded_but_not_tracked() -> None:
    """HPACK state is shared by every block: an untracked stream's block must still be decoded,
    or the next stream's headers (indexed from it) would be read wrong."""
    streams, events = observer(max_streams=1)
    client = Peer()
    for side, payload in [
        ("client", client_start() + client.headers(1, request(path=b"/a.S/One"))),
        ("server", settings_frame()),
        ("client", client.headers(3, request(path=b"/a.S/Two", x_new=b"v"))),
        ("server", Peer().headers(1, [(b":status", b"200"), *OK_TRAILERS], end=True)),
        ("client", client.headers(5, request(path=b"/a.S/Two", x_new=b"v"))),
    ]:
        feed = streams.client_bytes if side == "client" else streams.server_bytes
        assert feed(payload, 0.0) is None
    assert streams.untracked == 1
    assert [e for e in events.seen if e[0] == "started"] == [
        ("started", 1, (b"POST", b"/a.S/One", b"application/grpc")),
        ("started", 5, (b"POST", b"/a.S/Two", b"application/grpc"))]


def test_a_smaller_header_table_applies_once_the_peer_acknowledged_it() -> None:
    """The server allows the client a 0-byte table: the client's encoder must drop its
    table and say so; the mirror applies the limit at the client's ACK, not before."""
    streams, events = observer()
    client = Peer()
    streams.client_bytes(client_start() + client.headers(1, request(), end=True), 0.0)
    streams.server_bytes(settings_frame((h2frames.SETTINGS_HEADER_TABLE_SIZE, 0)), 0.0)
    # Sent before the client saw the SETTINGS: still under the old size.
    assert streams.client_bytes(client.headers(3, request(), end=True), 0.0) is None
    client.encoder.header_table_size = 0
    assert streams.client_bytes(settings_frame(ack=True)
                                + client.headers(5, request(), end=True), 0.0) is None
    assert [e[1] for e in events.seen if e[0] == "started"] == [1, 3, 5]
    # A client that keeps a table the server refused is not followed.
    rogue = Peer()
    streams2, _ = observer()
    streams2.client_bytes(client_start() + rogue.headers(1, request()), 0.0)
    streams2.server_bytes(settings_frame((h2frames.SETTINGS_HEADER_TABLE_SIZE, 0)), 0.0)
    reason = streams2.client_bytes(settings_frame(ack=True) + rogue.headers(3, request()), 0.0)
    assert reason is not None and reason.startswith("client:")


def test_a_table_larger_than_observation_keeps_stops_it() -> None:
    streams, _ = observer()
    streams.client_bytes(client_start(), 0.0)
    streams.server_bytes(settings_frame((h2frames.SETTINGS_HEADER_TABLE_SIZE, 1 << 20)), 0.0)
    reason = streams.client_bytes(settings_frame(ack=True), 0.0)
    assert reason is not None and "HPACK table" in reason


@pytest.mark.parametrize(("side", "garbage"), [
    ("client", b"\x00\x00\x02\x01\x05\x00\x00\x00\x03\xff\xff"),  # HPACK that decodes to nothing
    ("server", b"HTTP/1.1 400 Bad Request\r\n\r\n"),  # an app that is not HTTP/2 at all
])
def test_what_cannot_be_read_stops_observation_once(side: str, garbage: bytes) -> None:
    streams, events = observer()
    client = Peer()
    assert streams.client_bytes(client_start() + client.headers(1, request()), 0.0) is None
    feed = streams.client_bytes if side == "client" else streams.server_bytes
    reason = feed(garbage, 0.0)
    assert reason is not None and reason.startswith(f"{side}:")
    assert events.seen[-1] == ("abandoned", 1, None)
    # Afterwards nothing is read, nothing is told, nothing is raised.
    assert feed(garbage * 3, 0.0) is None
    assert streams.server_bytes(b"\x00" * 100, 0.0) is None
    assert events.seen[-1] == ("abandoned", 1, None)


def test_a_cached_block_is_decoded_again_once_the_table_changed() -> None:
    """The same bytes mean other headers after an insertion: the cache must not answer."""
    decoder = MirroredDecoder(65536)
    encoder = Peer().encoder
    encoder.encode([(b"x-a", b"1")])  # the encoder's table now holds x-a: 1 at index 62
    decoder.decode(bytes(Peer().encoder.encode([(b"x-a", b"1")])))  # the mirror's too
    newest = b"\xbe"  # indexed field 62: the newest dynamic entry
    assert decoder.decode(newest) == [(b"x-a", b"1")]
    assert decoder.decode(newest) == [(b"x-a", b"1")]  # cached
    decoder.decode(encoder.encode([(b"x-b", b"2")]))  # inserts x-b: 2 at 62
    assert decoder.decode(newest) == [(b"x-b", b"2")]
    decoder.decode(b"\x3f\xe1\x1f")  # a size update to 4096 (unchanged): nothing evicted
    decoder.decode(b"\x20")  # a size update to 0 evicts everything
    with pytest.raises(HPACKError):
        decoder.decode(newest)


FIELDS = [(b":status", b"200"), (b":status", b"404"), (b"server", b"nginx"),
          (b"date", b"Wed, 02 Dec 2026 13:00:00 GMT"), (b"x-big", b"v" * 3000),
          (b"content-type", b"application/grpc"), (b"grpc-timeout", b"99m"), (b"x-id", b"7")]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.lists(st.sampled_from(FIELDS), min_size=1,
                                                  max_size=5)), max_size=30))
def test_the_cached_decoder_reads_every_block_as_hpack_does(
        blocks: list[tuple[bool, list[tuple[bytes, bytes]]]]) -> None:
    """Blocks from one encoder (indexed fields, insertions) mixed with blocks from a fresh
    encoder each time (literals with incremental indexing and static names, as nginx sends):
    the cached decoder gives hpack's headers, and keeps hpack's table, block after block."""
    shared = Encoder()
    mirrored, reference = MirroredDecoder(65536), Decoder(65536)
    for fresh, fields in blocks:
        block = bytes((Encoder() if fresh else shared).encode(fields))
        try:
            expected = [(bytes(n), bytes(v)) for n, v in reference.decode(block, raw=True)]
        except HPACKError:  # a fresh encoder's block desynchronised the shared one's indexes
            with pytest.raises(HPACKError):
                mirrored.decode(block)
            return
        assert [(bytes(n), bytes(v)) for n, v in mirrored.decode(block)] == expected
        assert list(mirrored.decoder.header_table.dynamic_entries) == list(
            reference.header_table.dynamic_entries)
