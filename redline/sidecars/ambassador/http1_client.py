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
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from time import monotonic
from typing import Protocol, cast

from redline.exporters.red import BAD_REQUEST, CLIENT_CLOSED, CONNECTION_RESET, TIMEOUT
from redline.exporters.tcp import ConnectionMeter
from redline.sidecars.ambassador.detect import HTTP1
from redline.sidecars.ambassador.handler import ConnectionOwner, Handler
from redline.sidecars.ambassador.http1 import (
    Body,
    LimitError,
    ProtocolError,
    error_response,
    parse_request_head,
    request_body,
)
from redline.sidecars.ambassador.http1_upstream import UpstreamSide
from redline.sidecars.ambassador.observe import Exchange
from redline.sidecars.ambassador.replay import IDEMPOTENT, Replay

log = logging.getLogger("redline.ambassador")
# The reason label of redline_ambassador_rejected_total for a request head refused by status.
_REJECTED_REASONS = {431: "head_too_large", 405: "connect"}


class Upgraded(Protocol):
    """What becomes of a client connection once the app granted its upgrade: called with the
    connection, the protocol asked for (the Upgrade header's value; CONNECT for a CONNECT)
    and the client's bytes sent since the upgrade request, not forwarded yet. The seam for a
    protocol with an observer of its own (an h2c upgrade could become an HTTP/2 connection);
    the default, `tunnel`, forwards bytes both ways unobserved."""

    def __call__(self, client: ClientSide, protocol: bytes, held: bytes) -> None: ...


def tunnel(client: ClientSide, protocol: bytes, held: bytes) -> None:
    client.start_tunnel(held)


class ClientSide(Handler):
    def __init__(self, owner: ConnectionOwner, meter: ConnectionMeter | None = None,
                 upgraded: Upgraded | None = None) -> None:
        """`upgraded`: what becomes of the connection once the app granted an upgrade (by
        default a byte tunnel, `tunnel`)."""
        self.owner = owner
        # The TCP metrics; detection passes the meter it opened (timed from the accept).
        self.meter = meter if meter is not None else owner.tcp.meter(HTTP1, monotonic())
        self.observer = owner.observer
        self.limits = owner.limits
        self.max_head = self.limits.max_header_bytes
        self.max_pipelined = self.limits.max_pipelined
        # Reading resumes at half: the waiting chunk is then framed (and the rest of it copied)
        # once per batch of responses, not once per response.
        self.pipeline_resume = self.max_pipelined // 2
        self.transport: asyncio.Transport | None = None
        self.upstream: UpstreamSide | None = None
        self.pending: deque[Exchange] = deque()
        self.held = b""  # an incomplete request head, not forwarded yet
        # Its bytes taken from the process's budget for unfinished heads (limits.held_heads).
        self.held_charged = 0
        self.held_heads = self.limits.held_heads
        self.head_since = 0.0  # when the held head (or empty lines before it) started arriving
        self.empty_line_bytes = 0  # before the head being waited for; counted from head_since
        self.body: Body | None = None  # the request body being forwarded
        # An upgrade asked (Upgrade, or CONNECT): once its head (and body) went upstream, the
        # client's next bytes wait unframed in `backlog`, and its reading pauses, until the
        # app answers: a 101 makes them the tunnel's, anything else HTTP again.
        self.upgrade_after_body = False
        self.awaiting_upgrade = False
        self.upgrade_to: bytes | None = None
        self.upgraded: Upgraded = upgraded if upgraded is not None else tunnel
        self.raw = False  # forwarding client bytes without framing (an upgrade was granted)
        self.tunnel = False  # upgrade granted: both directions are raw for good
        self.closed = False
        self.rejecting = False  # the ambassador answers itself once earlier responses are out
        self.deferred: bytes | None = None
        # Reading the client is paused while one is set: the upstream side cannot take more
        # (connecting, or its write buffer is full), max_pipelined requests are in flight, or
        # an upgrade awaits its answer; in the latter two the rest of the chunk read waits in
        # `backlog`, unframed.
        self.upstream_full = False
        self.pipeline_full = False
        self.backlog = b""
        self.last_read = monotonic()
        self.last_upstream_read = self.last_read
        # Since when the client has not been taking what is written to it (its transport's
        # buffer is full, so the upstream is not read): the upstream timeout does not run then.
        self.stalled_since = 0.0
        self.replay = Replay(self.limits.replay_bytes)

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
            return
        if self.held:
            data = self.held + data
            self.held = b""
            self._receive(data, now)
            if not self.held:  # the head is whole (or refused): its bytes go back
                self._release_held()
            return
        self._receive(data, now)

    def _receive(self, data: bytes, now: float) -> None:
        try:
            self._frame_requests(data, now)
        except ProtocolError as exc:
            self._bad_body(exc, now)

    def _bad_body(self, exc: ProtocolError, now: float) -> None:
        """A request body broke its framing (or a limit) after part of it was forwarded. It is
        the client's fault: recorded as bad_request, answered with 400 after the responses to
        the requests before it, then both connections close (the app holds half a request).
        If the app already began answering it, no 400 can be sent: the connection closes."""
        log.debug("bad request body", extra={"error": str(exc)})
        self.body = None
        if isinstance(exc, LimitError):
            self.owner.count_limit(exc.limit)
            reason = exc.limit
        else:
            reason = "bad_body"
        # The body is the last exchange's; it is gone from the line if the app answered it
        # already (an early 413, say), and has its response under way if that began.
        upstream = self.upstream
        answering = not self.pending or (len(self.pending) == 1 and upstream is not None
                                         and upstream.response_bytes_seen)
        if self.pending:
            exchange = self.pending.pop()
            self.observer.finish(exchange, exchange.status if answering else exc.status,
                                 BAD_REQUEST, now)
        if answering:
            self.owner.count_rejected(reason)
            self.rejecting = True
            self.close()
        else:
            self._refuse(exc.status, str(exc), reason)

    def _frame_requests(self, data: bytes, now: float) -> None:
        pos = 0
        end = len(data)
        mark = 0  # data[mark:pos] is framed and not yet forwarded
        rewritten: list[bytes] | None = None
        while pos < end:
            body = self.body
            if body is not None:
                try:
                    pos = body.consume(data, pos)
                except ProtocolError:
                    self._forward(data, mark, pos, rewritten)  # the requests before it
                    raise
                if body.done:
                    self.body = None
                    if self.upgrade_after_body:
                        self._await_upgrade()
                continue
            if self.raw:
                break  # an upgrade was granted: the rest is the tunnel's, as it is
            if self.pipeline_full or self.awaiting_upgrade:
                # Framed once responses drain, or as the tunnel's once the upgrade is granted.
                self.backlog = data[pos:]
                break
            if data[pos:pos + 2] == b"\r\n":  # RFC 9112 2.2: ignore empty lines before a request
                if not self._empty_line(now):
                    self._forward(data, mark, pos, rewritten)
                    return
                pos += 2
                continue
            head_end = data.find(b"\r\n\r\n", pos)
            if head_end < 0 or head_end + 4 - pos > self.max_head:
                if self._hold_head(data, pos, now):
                    break
                self._forward(data, mark, pos, rewritten)
                return
            head_end += 4
            raw_head = data[pos:head_end]
            try:
                exchange = self._start_exchange(raw_head, now)
            except ProtocolError as exc:
                self._forward(data, mark, pos, rewritten)
                self._reject(raw_head[:32], exc.status, str(exc))
                return
            if exchange.head_rewrite is not None:
                if rewritten is None:
                    rewritten = []
                rewritten += (data[mark:pos], exchange.head_rewrite)
                mark = head_end
            pos = head_end
        stop = end - len(self.held) - len(self.backlog)
        if rewritten is None and mark == 0 and stop == end:
            self._to_upstream(data)  # the common case, without a copy or another call
        else:
            self._forward(data, mark, stop, rewritten)

    def _hold_head(self, data: bytes, pos: int, now: float) -> bool:
        """Keep the start of a request head, data[pos:], until the rest arrives; False if it
        is refused instead (too large, or the process holds too many unfinished heads)."""
        size = len(data) - pos
        if size > self.max_head:
            self._reject(data[pos:pos + 32], 431, "request head too large")
            return False
        if not self.held_heads.change(size - self.held_charged):
            # Not the client's request yet, nor the app's: answered, not recorded.
            self.owner.count_limit("held_head_bytes")
            self._refuse(503, "too many unfinished request heads held; try again",
                         "held_head_bytes")
            return False
        self.held_charged = size
        self.held = data[pos:]
        self._waiting_for_head(now)
        return True

    def _release_held(self) -> None:
        if self.held_charged:
            self.held_heads.change(-self.held_charged)
            self.held_charged = 0

    def _waiting_for_head(self, now: float) -> None:
        """Part of a request head (or empty lines before one) arrived: its clock runs."""
        if not self.head_since:
            self.head_since = now
            self.empty_line_bytes = 0

    def _empty_line(self, now: float) -> bool:
        """An empty line before a request head: part of the wait for the head, on its clock;
        False, and refused, past max_empty_line_bytes of them."""
        self._waiting_for_head(now)
        self.empty_line_bytes += 2
        if self.empty_line_bytes <= self.limits.max_empty_line_bytes:
            return True
        # Not a request: answered, not recorded (as a head that timed out).
        self._refuse(400, "too many empty lines before a request", "empty_lines")
        return False

    def _start_exchange(self, raw_head: bytes, now: float) -> Exchange:
        self.head_since = 0.0  # the head is whole: its clock stops
        head = parse_request_head(raw_head)
        if head.upgrade and head.method == b"CONNECT" and not self.limits.allow_connect:
            raise ProtocolError("CONNECT is not allowed (the ambassador is no forward proxy; "
                                "see --allow-connect)", 405)
        exchange = self.observer.begin(head, raw_head, now)
        exchange.close = head.close
        pending = self.pending
        pending.append(exchange)
        if len(pending) >= self.max_pipelined:
            self._pause_pipeline()
        if head.method not in IDEMPOTENT or head.upgrade:
            self.replay.forbid()
        self.body = request_body(head, self.limits.min_average_chunk_bytes)
        if head.upgrade:
            self.upgrade_to = head.upgrade_to or head.method
            if self.body is None:
                self._await_upgrade()
            else:
                self.upgrade_after_body = True
        return exchange

    def _await_upgrade(self) -> None:
        """The upgrade request went whole: hold what the client sends next until the app
        answers it (bytes sent before a 101 are not the new protocol's if the app declines)."""
        self.upgrade_after_body = False
        self.awaiting_upgrade = True
        if self.transport is not None:
            self.transport.pause_reading()

    def _pause_pipeline(self) -> None:
        self.pipeline_full = True
        self.owner.count_limit("pipeline_full")
        if self.transport is not None:
            self.transport.pause_reading()

    def _resume_pipeline(self, now: float) -> None:
        """Responses brought the requests in flight down to half: frame what waited,
        then read the client again (unless that filled the line once more)."""
        self.pipeline_full = False
        self._frame_backlog(now)

    def _frame_backlog(self, now: float) -> None:
        """Frame what waited unframed, then read the client again unless that stopped it."""
        backlog = self.backlog
        self.backlog = b""
        if backlog and not (self.rejecting or self.closed):
            self._receive(backlog, now)
        self._resume_transport()

    def _forward(self, data: bytes, mark: int, stop: int, rewritten: list[bytes] | None) -> None:
        if rewritten is None:
            if mark == 0 and stop == len(data):
                self._to_upstream(data)
            elif stop > mark:
                self._to_upstream(data[mark:stop])
            return
        rewritten.append(data[mark:stop])
        self._to_upstream(b"".join(rewritten))

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

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.meter.sent += len(data)
            self.transport.write(data)

    def pause_reading(self) -> None:
        """The upstream side cannot take more for now."""
        self.upstream_full = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        self.upstream_full = False
        self._resume_transport()

    def _resume_transport(self) -> None:
        if self.transport is not None and not (self.rejecting or self.upstream_full
                                               or self.pipeline_full or self.awaiting_upgrade):
            self.transport.resume_reading()

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

    def upgrade_granted(self, now: float) -> None:
        """The app answered the upgrade with 101 (or 2xx to CONNECT): the connection is the
        new protocol's from now on, with what the client sent meanwhile."""
        self.awaiting_upgrade = self.upgrade_after_body = False
        self.tunnel = True  # not HTTP any more: never idle as a keep-alive connection is
        held, self.backlog = self.backlog, b""
        if self.response_complete(now):
            self.upgraded(self, self.upgrade_to or b"", held)

    def upgrade_declined(self, now: float) -> None:
        """The app answered the upgrade request without switching: HTTP goes on, and what the
        client sent meanwhile is framed as the requests it is."""
        self.upgrade_after_body = False
        if self.awaiting_upgrade:
            self.awaiting_upgrade = False
            self._frame_backlog(now)

    def start_tunnel(self, held: bytes) -> None:
        """Both directions raw for good (the upstream side stopped framing at the 101)."""
        self.raw = True
        if held:
            self._to_upstream(held)
        self._resume_transport()

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

    # --- the ambassador's own answers ------------------------------------------------------

    def _reject(self, start_of_head: bytes, status: int, detail: str) -> None:
        """Answer a request the ambassador will not forward, after the earlier responses."""
        method = start_of_head.split(b" ", 1)[0]
        self.observer.rejected(method, status, BAD_REQUEST)
        self._refuse(status, detail, _REJECTED_REASONS.get(status, "bad_request"))

    def _refuse(self, status: int, detail: str, reason: str) -> None:
        """Answer by itself after the earlier responses, then close; nothing more is read."""
        self.rejecting = True
        self.held = b""
        self.owner.count_rejected(reason)
        response = error_response(status, detail)
        if self.pending:
            self.deferred = response
            if self.transport is not None:
                self.transport.pause_reading()
        else:
            self._send_and_close(response)

    def check_timeouts(self, now: float) -> None:
        """Called about every tenth of the shortest timeout by the owner's sweeper."""
        limits = self.limits
        if self.head_since and now - self.head_since > limits.header_timeout:
            # A slow or stalled client (slowloris); not a request yet, so no RED observation.
            self.head_since = 0.0
            self._refuse(408, "request head not received in time", "header_timeout")
            return
        if self.tunnel:
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

    def _send_and_close(self, response: bytes) -> None:
        self.write(response)
        self.close()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()  # flushes what is buffered, then connection_lost
        if self.upstream is not None:
            self.upstream.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
