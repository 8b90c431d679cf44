"""The HTTP/2 frame reader, with bytes alone: the frames observation needs, whatever the
chunking, and a clear error on what it cannot follow."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redline.sidecars.ambassador import h2frames
from redline.sidecars.ambassador.h2frames import Frame, FrameReader, FramingError
from tests.sidecars.ambassador.h2bytes import (
    Peer,
    client_start,
    data,
    frame,
    ping,
    request,
    rst,
    window_update,
)
from tests.sidecars.ambassador.h2bytes import settings as settings_frame


def frames_of(chunks: list[bytes], *, preface: bool = True, max_block: int = 65536
              ) -> list[Frame]:
    reader = FrameReader(preface=preface, max_block=max_block)
    out: list[Frame] = []
    for chunk in chunks:
        out += reader.feed(chunk)
    assert reader.at_boundary
    return out


def split(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    return [stream[a:b] for a, b in itertools.pairwise(points)]


def connection_bytes() -> tuple[bytes, bytes]:
    """A client's bytes using every framing feature, and the header block of stream 3."""
    client = Peer()
    headers = request(te=b"trailers", user_agent=b"grpc-python/1.0 " + b"x" * 300)
    block_of_3 = Peer().encoder.encode(headers)  # a fresh encoder encodes it the same
    stream = (client_start()
              + client.headers(3, headers, split=50, pad=7, priority=True)
              + window_update(0, 65535) + ping()
              + data(3, b"\x00" * 40_000) + data(3, b"tail", end=True)
              + frame(0xFA, 0, 0, b"an extension frame type, ignored")
              + rst(3, h2frames.CANCEL))
    return stream, block_of_3


def test_frames_come_out_joined_unpadded_and_without_payloads_not_needed() -> None:
    stream, block = connection_bytes()
    frames = frames_of([stream])
    assert [(f.type, f.flags & h2frames.END_STREAM, f.stream_id) for f in frames] == [
        (h2frames.SETTINGS, 0, 0), (h2frames.HEADERS, 0, 3), (h2frames.DATA, 0, 3),
        (h2frames.DATA, 1, 3), (h2frames.RST_STREAM, 0, 3)]
    assert frames[1].payload == block  # CONTINUATIONs joined, padding and priority removed
    assert frames[2].payload == b""  # DATA is never kept
    assert h2frames.error_code(frames[4].payload) == h2frames.CANCEL


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0), max_size=40))
def test_any_chunking_gives_the_same_frames(cuts: list[int]) -> None:
    stream, _ = connection_bytes()
    assert frames_of(split(stream, cuts)) == frames_of([stream])


def test_one_byte_at_a_time() -> None:
    stream, _ = connection_bytes()
    assert frames_of([stream[i:i + 1] for i in range(len(stream))]) == frames_of([stream])


def test_at_boundary_only_between_frames() -> None:
    reader = FrameReader(preface=False, max_block=65536)
    reader.feed(settings_frame())
    whole = data(1, b"x" * 100)
    reader.feed(whole[:5])
    assert not reader.at_boundary  # inside a frame header
    reader.feed(whole[5:50])
    assert not reader.at_boundary  # inside a payload being skipped
    reader.feed(whole[50:])
    assert reader.at_boundary
    reader.feed(Peer().headers(1, request(), split=10)[:30])
    assert not reader.at_boundary  # a header block not ended


@pytest.mark.parametrize(("stream", "message"), [
    (b"GET / HTTP/1.1\r\n", "preface"),
    (h2frames.PREFACE + b"HTTP/1.1 400 Bad Request\r\n\r\n", "not SETTINGS"),
    (h2frames.PREFACE + settings_frame(ack=True), "not SETTINGS"),
    (client_start() + Peer().headers(1, request(), split=5)[:20] + ping(),
     "inside a header block"),
    (client_start() + frame(h2frames.CONTINUATION, h2frames.END_HEADERS, 1, b"\x82"),
     "without HEADERS"),
    (client_start() + frame(h2frames.HEADERS, h2frames.END_HEADERS, 0, b"\x82"), "on stream 0"),
    (client_start() + frame(h2frames.PING, 0, 1, b"12345678"), "on stream 1"),
    (client_start() + frame(h2frames.HEADERS, h2frames.END_HEADERS | h2frames.PADDED, 1,
                            b"\x09abc"), "padding"),
    (client_start() + frame(h2frames.HEADERS, h2frames.END_HEADERS, 1, b"\x82" * 2000),
     "more than the 1024 bytes kept"),
    (client_start() + Peer().headers(1, request(path=b"/" + b"p" * 3000), split=900),
     "a header block of more than 1024 bytes"),
])
def test_what_cannot_be_followed_is_a_framing_error(stream: bytes, message: str) -> None:
    reader = FrameReader(preface=True, max_block=1024)
    with pytest.raises(FramingError, match=message):
        reader.feed(stream)


def test_a_large_data_frame_is_skipped_without_being_kept() -> None:
    reader = FrameReader(preface=False, max_block=1024)
    reader.feed(settings_frame())
    big = data(1, b"\xff" * (1 << 20), end=True)
    assert reader.feed(big[:9 + 1000]) == []
    assert len(reader._pending) == 0
    assert reader.feed(big[9 + 1000:]) == [
        Frame(h2frames.DATA, h2frames.END_STREAM, 1, b"", size=1 << 20)]


def test_goaway_is_a_frame_the_reader_reads_back() -> None:
    _, read = FrameReader(preface=False, max_block=1024).feed(settings_frame()
                                                              + h2frames.goaway(7))
    assert (read.type, read.stream_id) == (h2frames.GOAWAY, 0)
    assert h2frames.goaway_fields(read.payload) == (7, h2frames.NO_ERROR)


def test_settings_payload_must_be_whole_entries() -> None:
    assert h2frames.settings(b"\x00\x01\x00\x00\x10\x00") == [(1, 4096)]
    with pytest.raises(FramingError, match="multiple of 6"):
        h2frames.settings(b"\x00\x01\x00")
