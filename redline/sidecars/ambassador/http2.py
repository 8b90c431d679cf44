"""h2c (HTTP/2 over cleartext TCP, prior knowledge): relayed byte for byte, observed per stream.

Inbound the streams are the app's (server metrics); outbound (`--mode outbound --protocol
h2c`) they are the app's calls to its dependency (client metrics), and with an `https://`
upstream the ambassador originates TLS offering ALPN `h2` only: a dependency that does not
choose `h2` is a failed connect (`tls_error`), as a certificate that fails verification is,
since the app's HTTP/2 bytes would mean nothing to it.

The relay is the pass-through's (passthrough.py: backpressure, half close, resets, TCP metrics,
the TCP idle timeout); each direction's bytes are forwarded first and then shown to the
connection's `Http2Streams` (h2streams.py), which tells the process's `StreamRecorder`
(h2record.py) what each stream was and how it ended. Nothing is rewritten, buffered or
delayed: flow control, SETTINGS, PING, priorities and HPACK state stay between the two peers.
If the bytes stop making sense to the observer, the connection stops being observed (counted,
logged) and its bytes keep flowing exactly as before.

Draining (SIGTERM): the ambassador sends the client one GOAWAY of its own, between two frames
of the server's, naming the last stream the client opened; the streams open then finish, and
the connection closes when none is left (or at the drain timeout). A GOAWAY changes neither
HPACK nor flow-control state, so the two peers stay in step. A connection upgraded to h2c from
HTTP/1.1 drains the same way (H2cUpgrade.drain).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from time import monotonic
from typing import cast

from redline.exporters.red import CLIENT_CLOSED, CONNECTION_RESET, TLS_ERROR
from redline.exporters.tcp import ConnectionMeter
from redline.sidecars.ambassador.connector import H2_ALPN
from redline.sidecars.ambassador.detect import HTTP2
from redline.sidecars.ambassador.h2frames import goaway
from redline.sidecars.ambassador.h2record import StreamCounts, StreamRecorder
from redline.sidecars.ambassador.h2streams import Http2Streams, Stream
from redline.sidecars.ambassador.handler import ConnectionOwner
from redline.sidecars.ambassador.observe import Exchange, InboundObserver, OutboundObserver
from redline.sidecars.ambassador.passthrough import PassThrough, _Upstream

log = logging.getLogger("redline.ambassador")

# How an HTTP/1 exchange is recorded (observe.Observer.finish).
Finish = Callable[[Exchange, int | None, str | None, float], None]


def observation_stopped(owner: ConnectionOwner, recorder: StreamRecorder, streams: Http2Streams,
                        reason: str, message: str) -> None:
    """A connection's streams stopped being observed (`reason`, from `streams`): counted, with
    the limit that stopped them if one did, and logged."""
    limit = streams.limit
    recorder.observation_stopped(reason, limit)
    if limit is not None:
        owner.count_limit(limit)
    log.info(message, extra={"reason": reason})


class Http2(PassThrough):
    """An h2c client connection and, through `upstream`, its connection to the app."""

    label = HTTP2
    relay_in_kernel = False  # every byte is read, so the pair never leaves asyncio

    def __init__(self, owner: ConnectionOwner, meter: ConnectionMeter | None = None) -> None:
        super().__init__(owner, meter)
        self.upstream = _Http2Upstream(self)
        observer = owner.observer
        self.recorder: StreamRecorder | None = (
            observer.http2 if isinstance(observer, InboundObserver | OutboundObserver)
            else None)
        self.streams: Http2Streams | None = None
        if self.recorder is not None:
            limits = owner.limits
            self.streams = Http2Streams(
                self.recorder, max_block=limits.max_header_bytes,
                max_streams=limits.http2_max_streams,
                max_table_size=limits.http2_max_table_size,
                max_streams_per_read=limits.http2_max_streams_per_read,
                max_resets=limits.http2_max_early_resets)
        self.goaway_sent = False
        self.counts = StreamCounts(self.recorder) if self.recorder is not None else None

    # --- the two directions ------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.meter.received += len(data)
        self.upstream.write(data)
        streams = self.streams
        if streams is not None:
            try:
                stopped = streams.client_bytes(data, monotonic())
            except Exception:  # a bug of ours must not cost the app its traffic
                log.exception("HTTP/2 observation failed")
                stopped = streams.stop("client: internal error")
            if stopped is not None:
                self._stopped(stopped)
            assert self.counts is not None
            self.counts.add(streams)

    def upstream_data(self, data: bytes) -> None:
        """The upstream's bytes, already written to the client."""
        streams = self.streams
        if streams is None:
            return
        try:
            stopped = streams.server_bytes(data, monotonic())
        except Exception:
            log.exception("HTTP/2 observation failed")
            stopped = streams.stop("server: internal error")
        assert self.counts is not None
        self.counts.add(streams)
        if stopped is not None:
            self._stopped(stopped)
        elif self.owner.shutting_down:
            self._drain()

    def _stopped(self, reason: str) -> None:
        assert self.recorder is not None and self.streams is not None
        observation_stopped(self.owner, self.recorder, self.streams, reason,
                            "HTTP/2 connection no longer observed; its bytes still flow")

    # --- endings -------------------------------------------------------------------------------

    def connection_lost(self, exc: Exception | None) -> None:
        self._streams_lost(CLIENT_CLOSED)
        super().connection_lost(exc)

    def connect_failed(self, error: str) -> None:
        # The requests the client already sent never reach the app: as refused as they were.
        self._streams_lost(error)
        super().connect_failed(error)

    def upstream_ended(self) -> None:
        # The app ended its side: the streams it did not finish never will.
        self._streams_lost(CONNECTION_RESET)
        super().upstream_ended()

    def upstream_lost(self, error: str | None) -> None:
        self._streams_lost(CONNECTION_RESET)
        super().upstream_lost(error)

    def _streams_lost(self, error: str) -> None:
        streams = self.streams
        if streams is not None and streams.stopped is None:
            try:
                streams.connection_lost(monotonic(), error)
            except Exception:  # the relay's own ending must still run
                log.exception("HTTP/2 observation failed")
                streams.stop("client: internal error")

    # --- Connection ----------------------------------------------------------------------------

    def idle(self) -> bool:
        """No stream open, and no frame half read either way: a close loses nothing."""
        streams = self.streams
        return (streams is not None and streams.stopped is None and not streams.open_streams
                and streams.client.at_boundary and streams.server.at_boundary)

    def check_timeouts(self, now: float) -> None:
        super().check_timeouts(now)
        if self.owner.shutting_down and not self.closed:
            self._drain()

    def close(self) -> None:
        if self.owner.shutting_down:
            self._send_goaway()
        super().close()

    def _drain(self) -> None:
        """Tell the client to open no more streams; close once the open ones ended."""
        streams = self.streams
        if streams is None or streams.stopped is not None:
            return  # not observed: the drain timeout ends it
        self._send_goaway()
        if self.goaway_sent and not streams.open_streams:
            self.close()

    def _send_goaway(self) -> None:
        """A GOAWAY to the client, if one can be written between two frames of the app's."""
        streams, transport = self.streams, self.transport
        if (self.goaway_sent or streams is None or transport is None
                or transport.is_closing()):
            return
        frame = draining_goaway(streams)
        if frame is None:
            return
        self.goaway_sent = True
        transport.write(frame)
        self.meter.sent += len(frame)


def draining_goaway(streams: Http2Streams) -> bytes | None:
    """The GOAWAY a draining ambassador may send the client now, naming the last stream the
    client opened: only between two frames of the app's (inside one, the client would read
    it as the frame's bytes), and only while observed (else where frames end is unknown)."""
    if streams.stopped is not None or not streams.server.at_boundary:
        return None
    return goaway(streams.last_client_stream)


class _Http2Upstream(_Upstream):
    """The connection to the app (or, outbound, the dependency): its bytes go to the client,
    then to the observer."""

    alpn = H2_ALPN  # what connector.py offers when it originates TLS

    def __init__(self, client: Http2) -> None:
        super().__init__(client)
        self.http2 = client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        tls = transport.get_extra_info("ssl_object")
        chosen = tls.selected_alpn_protocol() if tls is not None else "h2"
        if chosen == "h2":
            super().connection_made(transport)
            return
        # Not one byte of the client's is written: the dependency would take the HTTP/2
        # preface for garbage. A failed connect, as a bad certificate is.
        detail = f"the upstream chose ALPN {chosen!r}, not 'h2'"
        log.warning("upstream connect failed", extra={"error": TLS_ERROR, "detail": detail})
        self.client.owner.upstream_opened()  # connection_lost counts it gone
        self.connect_failed(TLS_ERROR, detail)
        cast(asyncio.Transport, transport).abort()

    def data_received(self, data: bytes) -> None:
        self.meter.sent += len(data)
        self.client_write(data)
        self.http2.upstream_data(data)

    def write_eof(self) -> None:
        transport = self.transport
        if transport is None or transport.can_write_eof():
            super().write_eof()
            return
        # TLS (outbound, https://) has no half close, so the client's EOF could not be passed
        # on and the pair stayed open for good. HTTP/2 gives a half close no meaning (a client
        # done with a connection closes it, or says GOAWAY first): the pair is closed, each
        # side once what is buffered for it was written (the dependency's with TLS's
        # close_notify, which may wait for its answer: the client's side does not wait for
        # it); the streams that were open end as the client's doing.
        self.http2._streams_lost(CLIENT_CLOSED)
        self.http2.close()


class H2cUpgrade:
    """The observer of an HTTP/1.1 connection the app upgraded to h2c (`Upgrade: h2c`, a
    101): the HTTP/1 handler (http1_upgrade.py) goes on relaying both directions raw, as any
    tunnel, and shows each side's bytes to this, which reads them as HTTP/2 (the client's
    start with the preface, the app's with its SETTINGS right after the 101).

    The upgrade request is stream 1: its HTTP/1 exchange (method, route, start, span) is
    recorded when stream 1's response ends, with that response's status, by the HTTP/1
    observer as any exchange (`finish`); the other streams are recorded by the process's
    StreamRecorder as on an h2c port. If observation stops before stream 1 ended, the
    exchange is recorded as it would be without observation: its 101, at the 101's time.

    `http2_settings` are the upgrade request's HTTP2-Settings values: the client's first
    settings, in force from the 101 on (h2streams.Http2Streams.upgraded); a header that cannot
    be read stops observation at once (client_framing), the bytes flowing as ever."""

    def __init__(self, owner: ConnectionOwner, recorder: StreamRecorder, exchange: Exchange,
                 finish: Finish, answered: float, http2_settings: Sequence[bytes] = ()) -> None:
        self.owner = owner
        self.recorder = recorder
        self.exchange = exchange
        self.finish = finish
        self.answered = answered  # when the 101 arrived
        self.recorded = False  # stream 1, the exchange
        limits = owner.limits
        self.streams = Http2Streams(
            self, max_block=limits.max_header_bytes, max_streams=limits.http2_max_streams,
            max_table_size=limits.http2_max_table_size,
            max_streams_per_read=limits.http2_max_streams_per_read,
            max_resets=limits.http2_max_early_resets)
        self.counts = StreamCounts(recorder)
        self.goaway_sent = False
        self.upgrade = Stream(1, exchange.start)
        self.upgrade.method = exchange.method
        stopped = self.streams.upgraded(self.upgrade, http2_settings)
        if stopped is not None:
            self._stopped(stopped)

    # --- the bytes, as the tunnel relays them --------------------------------------------

    def client_bytes(self, data: bytes) -> None:
        self._observe(self.streams.client_bytes, data, "client")

    def server_bytes(self, data: bytes) -> None:
        self._observe(self.streams.server_bytes, data, "server")

    def ended(self, error: str) -> None:
        """The tunnel ended: streams still open end with `error`."""
        streams = self.streams
        if streams.stopped is None:
            try:
                streams.connection_lost(monotonic(), error)
            except Exception:  # the HTTP/1 handler's own ending must still run
                log.exception("HTTP/2 observation failed")
                streams.stop("client: internal error")

    def drain(self, write: Callable[[bytes], None]) -> bool:
        """SIGTERM, as on an h2c port: one GOAWAY to the client (`write`) between two of the
        app's frames; True once it went and no stream is open (the connection may close).
        Never True once observation stopped: the drain timeout ends such a connection."""
        streams = self.streams
        if not self.goaway_sent:
            frame = draining_goaway(streams)
            if frame is None:
                return False
            self.goaway_sent = True
            write(frame)
        return streams.stopped is None and not streams.open_streams

    def _observe(self, feed: Callable[[bytes, float], str | None], data: bytes,
                 side: str) -> None:
        streams = self.streams
        try:
            stopped = feed(data, monotonic())
        except Exception:  # a bug of ours must not cost the app its traffic
            log.exception("HTTP/2 observation failed")
            stopped = streams.stop(f"{side}: internal error")
        self.counts.add(streams)
        if stopped is not None:
            self._stopped(stopped)

    def _stopped(self, reason: str) -> None:
        observation_stopped(
            self.owner, self.recorder, self.streams, reason,
            "upgraded h2c connection no longer observed; its bytes still flow")

    # --- StreamEvents: stream 1 is the HTTP/1 exchange's, the others the recorder's -------

    def request_started(self, stream: Stream, now: float) -> None:
        self.recorder.request_started(stream, now)

    def response_started(self, stream: Stream, now: float) -> None:
        if stream is not self.upgrade:
            self.recorder.response_started(stream, now)
        elif self.exchange.streaming:  # a `streaming` route: timed to its response head
            self._record(stream.status, None, now)

    def stream_ended(self, stream: Stream, now: float, error: str | None) -> None:
        if stream is self.upgrade:
            self._record(stream.status, error, now)
        else:
            self.recorder.stream_ended(stream, now, error)

    def stream_abandoned(self, stream: Stream) -> None:
        if stream is self.upgrade:
            self._record(self.exchange.status, None, self.answered)
        else:
            self.recorder.stream_abandoned(stream)

    def _record(self, status: int | None, error: str | None, now: float) -> None:
        if self.recorded:
            return
        self.recorded = True
        self.exchange.recorded = False  # held back from the HTTP/1 handler's finish (hold())
        self.finish(self.exchange, status, error, now)

    @staticmethod
    def hold(exchange: Exchange) -> None:
        """Keep the HTTP/1 handler from recording `exchange` at its 101 (its finish() skips
        an exchange already recorded): stream 1's end will."""
        exchange.recorded = True
