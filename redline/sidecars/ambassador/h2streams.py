"""HTTP/2 streams of one connection, sans IO: what each request and response was, and when
and how each stream ended, from the two directions' bytes.

Each direction has its own frame reader (h2frames.py) and its own HPACK decoder, mirroring the
decoder of the peer it flows to: header blocks are compressed against state both peers keep,
so every block of a direction must be decoded, in order, including those of streams not
recorded. Decoding uses the `hpack` library (python-hyper's, the decoder of the `h2` package):
HPACK's Huffman code and table rules are exact and easy to get subtly wrong, and hpack is
small, pure Python, maintained, and bounds the decoded header list it builds.

Events go to a `StreamEvents` sink: a request started (its request HEADERS), its response
headers arrived, and the stream ended, cleanly at the response's END_STREAM or with a
transport error: a RST_STREAM from either side, a GOAWAY that refused it, the connection lost.
When the bytes stop making sense (framing, HPACK, a limit), the connection stops being
observed: open streams are abandoned (not recorded), later bytes are not looked at, and the
reason is returned once; the bytes themselves keep flowing, as the shell never waits on this.

Memory per connection is bounded: a header block by `max_block` (compressed) and the decoded
list by the same; the tracked streams by `max_streams` (more concurrent streams are decoded
but not recorded); each HPACK table by the size its peer's SETTINGS allowed, itself capped by
`max_table_size` (a larger one stops observation).

So is work (rapid reset, CVE-2023-44487: streams opened and reset at once, thousands per
read). Each request header block must be decoded, in order, to keep the HPACK mirror in step,
and observing a stream costs 25 us with a repeated block and over 200 us with one that is not
(measured), so a 64 KiB read of fresh blocks held the event loop for a quarter of a second.
Two bounds stop observing the connection (its bytes still flow; ObservationLimitError):
`max_streams_per_read` request blocks in one read of the client's, and rapid reset, Envoy's
"premature reset" rule: the client reset `max_resets` streams within EARLY_RESET_S of their
start and before their response began, and those are more than half of the streams it opened
(a client cancelling a call now and then never gets there; a call reset at its own deadline,
grpc-timeout, is the app's DEADLINE_EXCEEDED and never counts). Streams past `max_streams` are
not tracked, so a reset of one counts as early when the stream was opened in the same read
(else holding max_streams open would let every later stream through unbounded). After the stop
its bytes cost nothing more.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

from hpack import HPACKError

from redline.exporters.red import CLIENT_CLOSED, CONNECTION_REFUSED, CONNECTION_RESET
from redline.exporters.rpc import past_deadline
from redline.sidecars.ambassador import h2frames
from redline.sidecars.ambassador.h2frames import Frame, FrameReader, FramingError
from redline.sidecars.ambassador.h2hpack import MirroredDecoder


class ObservationLimitError(Exception):
    """A client made observing its connection cost more than a bound allows (`limit` names
    the bound, as config.Limits and the limits counter do)."""

    def __init__(self, limit: str, detail: str) -> None:
        super().__init__(detail)
        self.limit = limit


EARLY_RESET_S = 1.0
STREAMS_PER_READ = "http2_streams_per_read"
RAPID_RESET = "http2_rapid_reset"


class Stream:
    """One request and its response, as far as observation reads them."""

    __slots__ = ("content_type", "context", "grpc_status", "method", "path", "request_bytes",
                 "response_bytes", "start", "status", "stream_id", "timeout", "traceparent",
                 "tracestate", "user_agent")

    def __init__(self, stream_id: int, start: float) -> None:
        self.stream_id = stream_id
        self.start = start
        self.method = b""
        self.path = b""
        self.content_type = b""  # of the request
        self.user_agent: bytes | None = None
        self.traceparent: bytes | None = None
        self.tracestate: bytes | None = None
        self.timeout: bytes | None = None  # grpc-timeout
        self.status: int | None = None  # the final response's :status
        self.grpc_status: bytes | None = None  # from trailers or a Trailers-Only response
        self.context: object | None = None  # the sink's, for what it records at the end
        # DATA payload bytes each way (padding included, as DATA payloads are not read).
        self.request_bytes = 0
        self.response_bytes = 0


class StreamEvents(Protocol):
    """What observation tells (observe code sees events, never sockets)."""

    def request_started(self, stream: Stream, now: float) -> None: ...

    def response_started(self, stream: Stream, now: float) -> None:
        """The final response headers arrived (`stream.status` is set)."""
        ...

    def stream_ended(self, stream: Stream, now: float, error: str | None) -> None:
        """The response ended (`error` None: its END_STREAM) or the stream failed: `error` is
        the transport error_type (a reset, a GOAWAY, the connection lost)."""
        ...

    def stream_abandoned(self, stream: Stream) -> None:
        """Observation stopped with the stream open: its outcome is unknown."""
        ...


class Http2Streams:
    """The streams of one connection. `client_bytes`/`server_bytes` take each direction's
    bytes as they pass; they return a reason the first time observation stops, else None."""

    def __init__(self, events: StreamEvents, *, max_block: int, max_streams: int,
                 max_table_size: int, max_streams_per_read: int = 128,
                 max_resets: int = 100) -> None:
        self.events = events
        self.max_streams = max_streams
        self.max_table_size = max_table_size
        self.max_streams_per_read = max_streams_per_read
        self.max_resets = max_resets
        self.read_streams = 0  # request blocks in the client's current read
        self.read_first_stream = 0  # the highest stream id opened before the current read
        self.opened = 0  # streams the client opened (tracked or not)
        self.early_resets = 0  # streams it reset before their response began
        self.limit: str | None = None  # the bound that stopped observation, if one did
        self.pushed = 0  # PUSH_PROMISEs of the app's: relayed, not recorded
        self.client = FrameReader(preface=True, max_block=max_block)
        self.server = FrameReader(preface=False, max_block=max_block)
        # The decoder of a direction mirrors the receiving peer's: the client's blocks are
        # decoded with the server's advertised table size, once the client acknowledged it.
        self.client_decoder = MirroredDecoder(max_block)
        self.server_decoder = MirroredDecoder(max_block)
        # SETTINGS_HEADER_TABLE_SIZE each peer sent and the other has not acknowledged yet
        # (None: that SETTINGS frame did not change it), oldest first.
        self.server_settings: deque[int | None] = deque()
        self.client_settings: deque[int | None] = deque()
        self.streams: dict[int, Stream] = {}
        self.last_client_stream = 0  # the highest stream id the client opened
        self.untracked = 0  # streams past max_streams: decoded, not recorded
        self.stopped: str | None = None

    @property
    def open_streams(self) -> int:
        return len(self.streams)

    # --- the two directions --------------------------------------------------------------------

    def client_bytes(self, data: bytes, now: float) -> str | None:
        self.read_streams = 0
        self.read_first_stream = self.last_client_stream  # streams above it opened in this read
        return self._feed("client", self.client, self._client_frame, data, now)

    def server_bytes(self, data: bytes, now: float) -> str | None:
        return self._feed("server", self.server, self._server_frame, data, now)

    def _feed(self, side: str, reader: FrameReader, on_frame: Callable[[Frame, float], None],
              data: bytes, now: float) -> str | None:
        """One direction's bytes; why observation stopped, if it stopped on them."""
        if self.stopped is not None:
            return None
        try:
            for frame in reader.frames(data):
                on_frame(frame, now)
        except (FramingError, HPACKError, ValueError) as exc:
            return self.stop(f"{side}: {exc}")
        except ObservationLimitError as exc:
            self.limit = exc.limit
            return self.stop(f"{side}: {exc}")
        return None

    def upgraded(self, stream: Stream, http2_settings: Sequence[bytes] = ()) -> str | None:
        """An h2c upgrade (RFC 7540 section 3.2; RFC 9113 deprecates it, curl and nghttp2
        still send it): the HTTP/1.1 request that asked for it is stream 1, half closed by
        the client (its body went as HTTP/1); its response comes as stream 1's frames after
        the server's SETTINGS. The caller's sink knows the stream: no request_started.
        `http2_settings`: the request's HTTP2-Settings values, the client's first settings,
        which the 101 acknowledged: its SETTINGS_HEADER_TABLE_SIZE bounds the server's
        encoder from then on, so the decoder of its blocks. Why observation stopped, if
        those settings cannot be read or allow a table past `max_table_size`."""
        self.streams[stream.stream_id] = stream
        self.last_client_stream = stream.stream_id
        self.opened += 1
        try:
            for identifier, value in h2frames.upgrade_settings(http2_settings):
                if identifier == h2frames.SETTINGS_HEADER_TABLE_SIZE:
                    self._table_size(self.server_decoder, value)
        except FramingError as exc:
            return self.stop(f"client: {exc}")
        return None

    def connection_lost(self, now: float, error: str) -> None:
        """The connection ended: streams still open end with `error`."""
        streams, self.streams = self.streams, {}
        for stream in streams.values():
            self.events.stream_ended(stream, now, error)

    def stop(self, reason: str) -> str:
        """Stop observing: open streams are abandoned, later bytes ignored."""
        self.stopped = reason
        streams, self.streams = self.streams, {}
        for stream in streams.values():
            self.events.stream_abandoned(stream)
        return reason

    # --- frames --------------------------------------------------------------------------------

    def _client_frame(self, frame: Frame, now: float) -> None:
        kind = frame.type
        if kind == h2frames.DATA:
            stream = self.streams.get(frame.stream_id)
            if stream is not None:
                stream.request_bytes += frame.size
        elif kind == h2frames.HEADERS:
            self._request_headers(frame, now)
        elif kind == h2frames.RST_STREAM:
            h2frames.error_code(frame.payload)  # validated: a malformed one stops observation
            stream_id = frame.stream_id
            stream = self.streams.get(stream_id)
            self._end(stream_id, now, CLIENT_CLOSED)
            # After the stream's end (it was recorded, as it was). A call the client gave up at
            # its own deadline (grpc-timeout) is the app's DEADLINE_EXCEEDED, not an attack: a
            # slow app must not cost its connections their observation, and so the very errors
            # its SLO alerts need. A stream not tracked (past max_streams) is early when it was
            # opened in this same read: otherwise holding max_streams open would let every
            # later stream be opened and reset unbounded.
            if stream is not None:
                if (stream.status is None and now - stream.start < EARLY_RESET_S
                        and not past_deadline(stream.timeout, now - stream.start)):
                    self._early_reset()
            elif self.read_first_stream < stream_id <= self.last_client_stream and stream_id & 1:
                self._early_reset()
        elif kind == h2frames.SETTINGS:
            self._settings(frame, self.client_settings, self.server_settings,
                           self.client_decoder)
        elif kind == h2frames.PUSH_PROMISE:
            raise FramingError("PUSH_PROMISE from the client")
        # A client's GOAWAY refuses server-initiated (pushed) streams only, never recorded.

    def _server_frame(self, frame: Frame, now: float) -> None:
        kind = frame.type
        if kind == h2frames.HEADERS:
            self._response_headers(frame, now)
        elif kind == h2frames.DATA:
            stream = self.streams.get(frame.stream_id)
            if stream is not None:
                stream.response_bytes += frame.size
                if frame.flags & h2frames.END_STREAM:
                    self._end(frame.stream_id, now, None)
        elif kind == h2frames.RST_STREAM:
            code = h2frames.error_code(frame.payload)
            self._end(frame.stream_id, now,
                      CONNECTION_REFUSED if code == h2frames.REFUSED_STREAM else CONNECTION_RESET)
        elif kind == h2frames.SETTINGS:
            self._settings(frame, self.server_settings, self.client_settings,
                           self.server_decoder)
        elif kind == h2frames.GOAWAY:
            last, _ = h2frames.goaway_fields(frame.payload)
            # Streams above the last one the server processed never reached the app.
            for stream_id in [s for s in self.streams if s > last]:
                self._end(stream_id, now, CONNECTION_REFUSED)
        elif kind == h2frames.PUSH_PROMISE:
            # Pushed responses are not recorded: the client never asked for them, so they
            # are no request rate, error or latency of the app's (Envoy and gRPC do not push
            # at all). They are counted (`pushed`, read by the shell); the block is decoded
            # all the same, to keep this direction's HPACK table in step.
            self.server_decoder.decode(frame.payload)
            self.pushed += 1

    def _settings(self, frame: Frame, sent: deque[int | None], acked: deque[int | None],
                  decoder: MirroredDecoder) -> None:
        """A SETTINGS frame from one side: its values wait for the other side's ACK. An ACK
        from this side means it now encodes within the oldest values the other side sent:
        they apply to `decoder`, the one of this side's blocks."""
        if frame.flags & h2frames.ACK:
            if acked:
                size = acked.popleft()
                if size is not None:
                    self._table_size(decoder, size)
            return
        size = None
        for identifier, value in h2frames.settings(frame.payload):
            if identifier == h2frames.SETTINGS_HEADER_TABLE_SIZE:
                size = value
        sent.append(size)
        if len(sent) > 16:
            raise FramingError("more than 16 SETTINGS frames not acknowledged")

    def _table_size(self, decoder: MirroredDecoder, size: int) -> None:
        if size > self.max_table_size:
            raise FramingError(f"an HPACK table of {size} bytes allowed (at most "
                               f"{self.max_table_size} observed)")
        decoder.allow_table_size(size)

    def _early_reset(self) -> None:
        self.early_resets += 1
        if self.early_resets >= self.max_resets and self.early_resets * 2 > self.opened:
            raise ObservationLimitError(
                RAPID_RESET, f"{self.early_resets} of {self.opened} streams reset before "
                             f"their response began")

    def _request_headers(self, frame: Frame, now: float) -> None:
        # Counted before the decode, the costly part, that the bound is there to bound.
        self.read_streams += 1
        if self.read_streams > self.max_streams_per_read:
            raise ObservationLimitError(
                STREAMS_PER_READ, f"more than {self.max_streams_per_read} header blocks in one "
                                  f"read")
        headers = self.client_decoder.decode(frame.payload)
        stream_id = frame.stream_id
        if stream_id in self.streams:
            return  # trailers of the request
        if stream_id <= self.last_client_stream or not stream_id & 1:
            return  # trailers of a stream whose response already ended
        self.last_client_stream = stream_id
        self.opened += 1
        if len(self.streams) >= self.max_streams:
            self.untracked += 1
            return
        stream = Stream(stream_id, now)
        for name, value in headers:
            if name == b":method":
                stream.method = value
            elif name == b":path":
                stream.path = value
            elif name == b"content-type":
                stream.content_type = value
            elif name == b"user-agent":
                stream.user_agent = value
            elif name == b"traceparent":
                stream.traceparent = value
            elif name == b"tracestate":
                stream.tracestate = value
            elif name == b"grpc-timeout":
                stream.timeout = value
        self.streams[stream_id] = stream
        self.events.request_started(stream, now)

    def _response_headers(self, frame: Frame, now: float) -> None:
        headers = self.server_decoder.decode(frame.payload)
        stream = self.streams.get(frame.stream_id)
        if stream is None:
            return
        final = stream.status is not None
        for name, value in headers:
            if name == b":status" and value.isdigit() and len(value) == 3:
                status = int(value)
                if status >= 200:  # 1xx heads are informational; the final one follows
                    stream.status = status
            elif name == b"grpc-status":
                stream.grpc_status = value
        if not final and stream.status is not None:
            self.events.response_started(stream, now)
        if frame.flags & h2frames.END_STREAM:
            self._end(frame.stream_id, now, None)

    def _end(self, stream_id: int, now: float, error: str | None) -> None:
        stream = self.streams.pop(stream_id, None)
        if stream is not None:
            self.events.stream_ended(stream, now, error)
