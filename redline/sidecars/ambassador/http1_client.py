"""The HTTP/1 handler: one client connection and the upstream connection paired with it.

Bytes go through unchanged: each chunk the client sends is framed (to find request heads and
body ends) and written upstream as it is; the upstream side writes each response chunk to the
client before framing it. Pairing one upstream connection with each client connection keeps
pipelining trivially correct: the upstream answers in order and so do we.

The only exceptions to "unchanged": a request head may be replaced by its rewrite (tracing adds
`traceparent`), an incomplete request head is held back until complete (so a malformed one never
reaches the app), and the ambassador answers by itself when it cannot forward (400, 431, 502,
504), always in order behind earlier responses, and then closes the connection. One request may
be sent twice, after the keep-alive race (replay.py).

`ClientSide` is the top of three layers: the connection's state and the request-framing loop
(http1_requests.py), the upgrade (http1_upgrade.py), and here the events from the client and
from the upstream side, the timeouts and the connection's end.
"""

from __future__ import annotations

import asyncio
from time import monotonic as _monotonic
from typing import Final, cast

from redline.exporters.red import CLIENT_CLOSED, CONNECTION_RESET, TIMEOUT
from redline.exporters.tcp import ConnectionMeter
from redline.sidecars.ambassador.handler import ConnectionOwner
from redline.sidecars.ambassador.http1 import error_response
from redline.sidecars.ambassador.http1_upgrade import Upgraded, Upgrading
from redline.sidecars.ambassador.http1_upstream import UpstreamSide

# Final: compiled, a C static, not a lookup in the module's dict at every event.
monotonic: Final = _monotonic


class ClientSide(Upgrading):
    def __init__(self, owner: ConnectionOwner, meter: ConnectionMeter | None = None,
                 upgraded: Upgraded | None = None) -> None:
        """`upgraded`: what becomes of the connection once the app granted an upgrade (by
        default a byte tunnel, `tunnel`)."""
        super().__init__(owner, meter, upgraded)
        self.last_read = monotonic()
        self.last_upstream_read = self.last_read
        # Since when the client has not been taking what is written to it (its transport's
        # buffer is full, so the upstream is not read): the upstream timeout does not run then.
        self.stalled_since = 0.0

    # --- client events ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.owner.connection_opened(self)
        # A stream connection always gets a Transport (uvloop's is not a subclass of it).
        self.take_over(cast(asyncio.Transport, transport), b"")

    def take_over(self, transport: asyncio.Transport, first: bytes) -> None:
        self.transport = transport
        if first:
            self.data_received(first)

    def data_received(self, data: bytes) -> None:
        now = monotonic()
        self.last_read = now
        self.meter.received += len(data)
        if self.rejecting or self.closed:
            return
        if self.raw:
            self._to_upstream(data)
            if self.h2c is not None:  # an upgraded h2c connection, observed
                self.h2c.client_bytes(data)
            return
        if self.held:
            data = self.held + data
            self.held = b""
            self._receive(data, now)
            if not self.held:  # the head is whole (or refused): its bytes go back
                self._release_held()
            return
        self._receive(data, now)

    def eof_received(self) -> bool:
        # As nginx (499) and Envoy do: a client that ends its side while a request is in
        # flight has given up on it. Closing records what is pending as client_closed and
        # frees the upstream connection.
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._release_held()
        now = monotonic()
        if exc is not None:
            self.meter.fail(CONNECTION_RESET)
        self.meter.close(now)
        if self.h2c is not None:  # its open streams end with the side that ended first
            self.h2c.ended(CONNECTION_RESET if self.upstream is None else CLIENT_CLOSED)
        while self.pending:
            exchange = self.pending.popleft()
            self.observer.finish(exchange, exchange.status, CLIENT_CLOSED, now)
        if self.upstream is not None:
            self.upstream.abort()
            self.upstream = None
        self.owner.connection_closed(self)

    def pause_writing(self) -> None:
        self.stalled_since = monotonic()
        if self.upstream is not None:
            self.upstream.pause_reading()

    def resume_writing(self) -> None:
        self.stalled_since = 0.0
        # The upstream could not send while it was not read: its clock starts again.
        self.last_upstream_read = monotonic()
        if self.upstream is not None:
            self.upstream.resume_reading()

    # --- towards the upstream --------------------------------------------------------------

    def _to_upstream(self, data: bytes) -> None:
        self.replay.record(data)
        upstream = self.upstream
        if upstream is None:
            upstream = self.upstream = UpstreamSide(self, self.pending, self.owner)
            self.owner.open_upstream(upstream, upstream.connect_failed)
        upstream.write(data)

    # --- what the upstream side tells ------------------------------------------------------

    def pause_reading(self) -> None:
        """The upstream side cannot take more for now."""
        self.upstream_full = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        self.upstream_full = False
        self._resume_transport()

    def response_complete(self, now: float) -> bool:
        pending = self.pending
        exchange = pending.popleft()
        self.observer.finish(exchange, exchange.status, None, now)
        upstream = self.upstream
        if upstream is not None:
            if pending:
                self.replay.forbid()  # the bytes of the next requests are not told apart
            else:
                self.replay.restart(upstream.bytes_in)
        if exchange.close:
            self.close()
            return False
        if self.pipeline_full and len(pending) <= self.pipeline_resume:
            self._resume_pipeline(now)
        if not pending:
            if self.deferred is not None:
                self._send_and_close(self.deferred)
                return False
            if self.owner.shutting_down and self.idle():
                self.close()
                return False
        transport = self.transport
        return not self.closed and transport is not None and not transport.is_closing()

    def upstream_failed(self, status: int | None, error: str, detail: str) -> None:
        """The upstream refused, reset or timed out. The first exchange still waiting for its
        response head gets `status` (502/504); every other one in flight is recorded as failed."""
        now = monotonic()
        self.meter.fail(error)  # the transport failure that ends the connection
        upstream = self.upstream
        answered = upstream is not None and upstream.response_bytes_seen
        self.upstream = None
        if upstream is not None:
            upstream.abort()
        first = True
        while self.pending:
            exchange = self.pending.popleft()
            if first and not answered and status is not None:
                self.observer.finish(exchange, status, error, now)
                self.write(error_response(status, detail))
            else:
                self.observer.finish(exchange, exchange.status if first else None, error, now)
            first = False
        self.close()

    def upstream_closed(self, upstream: UpstreamSide, now: float) -> None:
        """The upstream ended its side of the connection."""
        if upstream is not self.upstream or self.closed:
            return
        if upstream.ends_by_close:
            self.upstream = None
            self.response_complete(now)  # the close delimits this response
            self.close()
        elif self.tunnel:
            self.upstream = None
            self.close()
        elif self.pending:
            if not self._send_again(upstream):
                self.upstream_failed(502, CONNECTION_RESET,
                                     "the upstream closed the connection before responding")
        else:
            self.upstream = None  # an idle keep-alive connection; the next request opens one

    def _send_again(self, closed: UpstreamSide) -> bool:
        """The requests in flight sent again on a new connection, if they may be."""
        replay = self.replay.take(closed.answered, closed.bytes_in)
        if replay is None:
            return False
        self.upstream = None
        self.owner.count_retry()
        for data in replay:  # a new UpstreamSide: it has not answered, so this happens once
            self._to_upstream(data)
        return True

    def connect_failed(self, upstream: UpstreamSide, error: str, detail: str) -> None:
        if upstream is self.upstream and not self.closed:
            self.upstream_failed(504 if error == TIMEOUT else 502, error, detail)

    # --- timeouts --------------------------------------------------------------------------

    def check_timeouts(self, now: float) -> None:
        """Called about every tenth of the shortest timeout by the owner's sweeper."""
        limits = self.limits
        if self.head_since and now - self.head_since > limits.header_timeout:
            # A slow or stalled client (slowloris); not a request yet, so no RED observation.
            self.head_since = 0.0
            self._refuse(408, "request head not received in time", "header_timeout")
            return
        if self.tunnel:
            h2c = self.h2c
            if self.owner.shutting_down and h2c is not None and h2c.drain(self.write):
                self.close()  # an observed h2c upgrade drains as an h2c port's connection
                return
            # Nothing is a request any more; a tunnel with no byte either way for
            # --idle-timeout holds two connections for nobody.
            if now - max(self.last_read, self.last_upstream_read) > limits.idle_timeout:
                self.owner.count_limit("tunnel_idle")
                self.close()
            return
        if self.stalled_since:
            # The ambassador holds the upstream back for a client that does not read: not the
            # app's failure. A client that takes nothing for --idle-timeout has gone.
            if now - self.stalled_since > limits.idle_timeout:
                self._drop_stalled_client(now)
            return
        if self.pending:
            last = max(self.last_read, self.last_upstream_read, self.pending[0].start)
            if now - last > limits.upstream_timeout:
                self.upstream_failed(504, TIMEOUT, "the upstream did not answer in time")
        elif self.idle() and now - max(self.last_read, self.last_upstream_read) \
                > limits.idle_timeout:
            self.close()

    def _drop_stalled_client(self, now: float) -> None:
        self.stalled_since = 0.0
        self.owner.count_limit("client_stalled")
        self.meter.fail(TIMEOUT)
        while self.pending:
            exchange = self.pending.popleft()
            self.observer.finish(exchange, exchange.status, CLIENT_CLOSED, now)
        upstream = self.upstream
        self.upstream = None
        if upstream is not None:
            upstream.abort()
        self.abort()  # what is buffered for it will not be read

    # --- lifecycle -------------------------------------------------------------------------

    def idle(self) -> bool:
        return not (self.pending or self.held or self.body is not None or self.tunnel
                    or self.rejecting)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()  # flushes what is buffered, then connection_lost
        if self.upstream is not None:
            self.upstream.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
