"""Opaque TCP pass-through: what the ambassador does with bytes it does not parse (TLS it does
not terminate, Redis, PostgreSQL), as Linkerd and Envoy's tcp_proxy do. HTTP/2 (http2.py)
relays through the same classes and observes the bytes on their way.

Bytes go through unchanged both ways, written to the other side as they arrive; the only
per-chunk work is counting them. Backpressure: when one side's transport is over its write
buffer's high-water mark, the other side stops reading until it drains. Half close: an EOF
from one side becomes `write_eof()` on the other, and the connection ends once both sides
have ended theirs (or either fails). A reset on one side resets the other, so that neither
peer takes a failure for a clean end; so does a failed connect to the upstream (the client
would have been refused without the ambassador).

A TLS connection is passed through the same way; the ClientHello is read on the side as it
passes (never waited for) to learn the server name the client asked for (SNI).

Once nothing is left to learn (the upstream connected, the bytes read so far written to it, the
ClientHello read), the pair is handed to the native relay (relay.py) where it is built: the same
behaviour without a Python call per chunk. A subclass that must see every byte sets
`relay_in_kernel = False` and stays here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Callable
from time import monotonic
from typing import cast

from redline.exporters.red import CONNECTION_RESET, TIMEOUT
from redline.exporters.tcp import ConnectionMeter
from redline.sidecars.ambassador.detect import MAX_TLS_RECORD, OPAQUE, TLS, client_hello
from redline.sidecars.ambassador.handler import ConnectionOwner, Handler
from redline.sidecars.ambassador.relay import NativeRelay, error_type, shared

log = logging.getLogger("redline.ambassador")

# The ClientHello is read from at most this many bytes of the client's first record(s).
MAX_HELLO = 5 + MAX_TLS_RECORD


class PassThrough(Handler):
    """The client's connection, and through `upstream` the one to the app paired with it."""

    label = OPAQUE  # network_protocol_name of the connections this class handles
    relay_in_kernel = True  # hand the pair to the native relay once there is nothing to learn

    def __init__(self, owner: ConnectionOwner, meter: ConnectionMeter | None = None) -> None:
        self.owner = owner
        self.transport: asyncio.Transport | None = None
        # The TCP metrics; detection passes the meter it opened (timed from the accept).
        self.meter = meter if meter is not None else owner.tcp.meter(self.label, monotonic())
        self.upstream = _Upstream(self)
        self.closed = False
        self.client_ended = False  # the client sent its EOF
        # For the idle timeout: the byte counts at the last sweep, and since when they held.
        self.quiet_counts = (-1, -1)
        self.quiet_since = 0.0
        # Once handed to the native relay: it, the pair's id there, and the byte counts the
        # meter had then (the relay counts from 0).
        self.relay: NativeRelay | None = None
        self.pair = 0
        self.counted_before = (0, 0)

    # --- the client's events ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.owner.connection_opened(self)
        # A stream connection always gets a Transport (uvloop's is not a subclass of it).
        self.take_over(cast(asyncio.Transport, transport), b"")

    def take_over(self, transport: asyncio.Transport, first: bytes) -> None:
        self.transport = transport
        self.quiet_since = monotonic()
        self.owner.open_upstream(self.upstream, self.upstream.connect_failed)
        if first:
            self.data_received(first)

    def data_received(self, data: bytes) -> None:
        self.meter.received += len(data)
        self.upstream.write(data)

    def eof_received(self) -> bool:
        self.client_ended = True
        self.upstream.write_eof()
        if self.upstream.ended:
            self.close()
        return True  # keep sending what the upstream still has to say

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        upstream = self.upstream
        if exc is not None:
            self.fail(_error_type(exc))
            upstream.abort()
        elif not (self.client_ended and upstream.ended):
            upstream.close()  # we closed the client (drain, timeout): the upstream ends too
        self.meter.close(monotonic())
        self.owner.connection_closed(self)

    def pause_writing(self) -> None:
        self.upstream.pause_reading()

    def resume_writing(self) -> None:
        self.upstream.resume_reading()

    # --- what the upstream side tells ------------------------------------------------------

    def pause_reading(self) -> None:
        set_reading(self.transport, False)

    def resume_reading(self) -> None:
        set_reading(self.transport, True)

    def fail(self, error: str) -> None:
        self.meter.fail(error)

    def connect_failed(self, error: str) -> None:
        self.fail(error)
        self.abort()

    def upstream_ended(self) -> None:
        """The upstream sent its EOF: pass it on, and end if the client had ended too."""
        transport = self.transport
        if transport is None or self.closed:
            return
        if self.client_ended:
            self.close()
        elif transport.can_write_eof():
            transport.write_eof()
        else:
            self.close()

    def upstream_lost(self, error: str | None) -> None:
        if self.closed:
            return
        if error is not None:
            self.fail(error)
            self.abort()
        else:
            self.close()

    # --- the native relay ------------------------------------------------------------------

    def upstream_connected(self) -> None:
        """The upstream is connected and has what the client sent so far."""
        self.hand_over()

    def learned_all(self) -> bool:
        """Nothing more to learn from the bytes (a subclass reading some says when)."""
        return True

    def hand_over(self) -> None:
        """Give the pair to the native relay if it is built and nothing is left for Python to
        do per chunk: otherwise (a TLS upstream, bytes still buffered, a side already ended)
        the pair stays in asyncio, which behaves the same."""
        client, upstream = self.transport, self.upstream.transport
        if (not self.relay_in_kernel or self.relay is not None or client is None
                or upstream is None or self.closed or self.client_ended or self.upstream.ended
                or self.upstream.gone or client.is_closing() or upstream.is_closing()
                or client.get_write_buffer_size() or upstream.get_write_buffer_size()
                or upstream.get_extra_info("ssl_object") is not None or not self.learned_all()):
            return
        relay = shared()
        if relay is None:
            return
        counted = (self.meter.received, self.meter.sent)
        pair = relay.hand_over(client, upstream, self)
        if pair is not None:
            self.relay, self.pair, self.counted_before = relay, pair, counted

    def relay_ended(self, received: int, sent: int, error: int) -> None:
        self._count_relayed(received, sent)
        if error:
            self.fail(error_type(error))
        self.closed = True
        self.meter.close(monotonic())
        self.owner.upstream_gone()
        self.owner.connection_closed(self)

    def _count_relayed(self, received: int, sent: int) -> None:
        before_received, before_sent = self.counted_before
        self.meter.received = before_received + received
        self.meter.sent = before_sent + sent

    # --- Connection: what the owner asks ---------------------------------------------------

    def idle(self) -> bool:
        # Nothing tells where a message of an unknown protocol ends: closing is never safe.
        return False

    def check_timeouts(self, now: float) -> None:
        if self.relay is not None:  # a sweep: the relay's counts into the TCP metrics
            counts = self.relay.counts(self.pair)
            if counts is not None:
                self._count_relayed(*counts)
        timeout = self.owner.limits.tcp_idle_timeout
        meter = self.meter
        if not timeout:
            return
        counts = (meter.received, meter.sent)
        if counts != self.quiet_counts:
            self.quiet_counts = counts
            self.quiet_since = now
        elif now - self.quiet_since > timeout:
            self.fail(TIMEOUT)
            self.close()

    def close(self) -> None:
        """Close both sides once what is buffered for them was sent."""
        if self.relay is not None:
            self.relay.close(self.pair, abort=False)
            return
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self.upstream.close()

    def abort(self) -> None:
        """Reset both sides: neither peer may take a cut stream for a clean end."""
        if self.relay is not None:
            self.relay.close(self.pair, abort=True)
            return
        if self.transport is not None:
            reset(self.transport)
        self.upstream.abort()


class TlsPassThrough(PassThrough):
    """A TLS connection passed through; the server name is read from the ClientHello."""

    label = TLS

    def __init__(self, owner: ConnectionOwner, meter: ConnectionMeter | None = None) -> None:
        super().__init__(owner, meter)
        self.hello: bytes | None = b""  # the start of the client's bytes; None once read

    def data_received(self, data: bytes) -> None:
        self.meter.received += len(data)
        self.upstream.write(data)
        if self.hello is not None:
            self._read_hello(self.hello + data)
            if self.hello is None:  # read (or not TLS): the rest goes to the native relay
                self.hand_over()

    def _read_hello(self, data: bytes) -> None:
        try:
            hello = client_hello(data)
        except ValueError as exc:
            log.debug("no TLS ClientHello", extra={"error": str(exc)})
            self.hello = None
            return
        if hello is None:
            self.hello = data if len(data) < MAX_HELLO else None
            return
        self.hello = None
        log.debug("TLS client hello", extra={"server_name": hello.server_name,
                                             "alpn": ",".join(hello.alpn)})
        self.owner.server_name_seen(hello.server_name)


    def learned_all(self) -> bool:
        return self.hello is None


class _Upstream(asyncio.Protocol):
    """The connection to the app paired with one client connection."""

    def __init__(self, client: PassThrough) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        # Until connected, the client's bytes are queued (its reading paused above the
        # limit); then this is the transport's own write, so a chunk costs no check.
        self.write: Callable[[bytes], None] = self._enqueue
        self.queue: list[bytes] = []
        self.queued = 0
        self.eof_pending = False  # the client ended before the connect completed
        self.ended = False  # the upstream sent its EOF
        self.gone = False
        self.client_write: Callable[[bytes], None] = _nowhere
        self.meter = client.meter

    def _enqueue(self, data: bytes) -> None:
        self.queue.append(data)
        self.queued += len(data)
        if self.queued > self.client.owner.limits.connect_queue_bytes:
            self.client.pause_reading()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream = cast(asyncio.Transport, transport)
        self.transport = stream
        client = self.client
        client.owner.upstream_opened()
        if client.closed or self.gone or client.transport is None:
            stream.close()
            return
        self.client_write = client.transport.write
        self.write = stream.write
        if self.queue:
            stream.writelines(self.queue)
            if self.queued > client.owner.limits.connect_queue_bytes:
                client.resume_reading()
            self.queue = []
            self.queued = 0
        if self.eof_pending:
            self.write_eof()
        else:
            client.upstream_connected()

    def connect_failed(self, error: str, detail: str) -> None:
        self.gone = True
        self.client.connect_failed(error)

    def data_received(self, data: bytes) -> None:
        self.meter.sent += len(data)
        self.client_write(data)

    def eof_received(self) -> bool:
        self.ended = True
        self.client.upstream_ended()
        return True  # the client may still be sending

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.owner.upstream_gone()
        if self.gone:
            return
        self.gone = True
        self.client.upstream_lost(None if exc is None else _error_type(exc))

    def write_eof(self) -> None:
        transport = self.transport
        if transport is None:
            self.eof_pending = True
        elif transport.can_write_eof() and not transport.is_closing():
            transport.write_eof()

    def pause_writing(self) -> None:
        self.client.pause_reading()

    def resume_writing(self) -> None:
        self.client.resume_reading()

    def pause_reading(self) -> None:
        set_reading(self.transport, False)

    def resume_reading(self) -> None:
        set_reading(self.transport, True)

    def close(self) -> None:
        self.gone = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        self.gone = True
        if self.transport is not None:
            reset(self.transport)


def set_reading(transport: asyncio.Transport | None, reading: bool) -> None:
    """Pause or resume reading a side (backpressure from the other), unless it is not connected
    yet or already closing (both raise or mean nothing)."""
    if transport is not None and not transport.is_closing():
        if reading:
            transport.resume_reading()
        else:
            transport.pause_reading()


def reset(transport: asyncio.Transport) -> None:
    """Abort with a TCP reset (SO_LINGER 0), not the FIN a plain abort sends."""
    sock = transport.get_extra_info("socket")
    if sock is not None and not transport.is_closing():
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _nowhere(data: bytes) -> None:
    """Where upstream bytes would go before the client side is known (never called)."""


def _error_type(exc: BaseException) -> str:
    return TIMEOUT if isinstance(exc, TimeoutError) else CONNECTION_RESET
