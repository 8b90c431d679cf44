"""The request side of the HTTP/1 handler: the client connection's state, and the framing loop
that finds request heads and body ends in what the client sends.

`ClientSide` (http1_client.py) is built in three layers, each a class in its own module:
this one (state, framing, when to read the client, the ambassador's own answers), the upgrade
layer (http1_upgrade.py: what happens between an upgrade request and the app's answer), and
the connection itself (http1_client.py: events from the client and the upstream, timeouts).
A layer calls the ones above it only through the abstract methods it declares.

Bytes go through unchanged except that a request head may be replaced by its rewrite
(tracing adds `traceparent`) and an incomplete request head is held back until complete (so a
malformed one never reaches the app).
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections import deque
from time import monotonic

from redline.exporters.red import BAD_REQUEST
from redline.exporters.tcp import ConnectionMeter
from redline.sidecars.ambassador.detect import HTTP1
from redline.sidecars.ambassador.handler import ConnectionOwner
from redline.sidecars.ambassador.http1 import (
    REPEATED_HEAD_BYTES,
    LimitError,
    ProtocolError,
    RequestHead,
    error_response,
    parse_request_head,
    whole_head,
)
from redline.sidecars.ambassador.http1_body import Body, request_body
from redline.sidecars.ambassador.http1_upstream import Downstream, UpstreamSide
from redline.sidecars.ambassador.observe import Exchange
from redline.sidecars.ambassador.replay import IDEMPOTENT, Replay

log = logging.getLogger("redline.ambassador")
# The reason label of redline_ambassador_rejected_total for a request head refused by status.
_REJECTED_REASONS = {431: "head_too_large", 405: "connect"}


class RequestFraming(Downstream):
    def __init__(self, owner: ConnectionOwner, meter: ConnectionMeter | None = None) -> None:
        self.owner = owner
        # The TCP metrics; detection passes the meter it opened (timed from the accept).
        self.meter = meter if meter is not None else owner.tcp.meter(HTTP1, monotonic())
        self.observer = owner.observer
        self.limits = owner.limits
        self.max_head = self.limits.max_header_bytes
        self.max_pipelined = self.limits.max_pipelined
        self.min_average_chunk = self.limits.min_average_chunk_bytes
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
        self.last_head = b""  # the last request head parsed, and its parse (REPEATED_HEAD_BYTES)
        self.last_parsed: RequestHead | None = None
        # The last head found to let the replay stand (idempotent, no upgrade): a repeated
        # head's parse is the same object, so its check is an identity test, not a set lookup.
        self.replayable: RequestHead | None = None
        # An upgrade asked (Upgrade, or CONNECT): once its head (and body) went upstream, the
        # client's next bytes wait unframed in `backlog`, and its reading pauses, until the
        # app answers: a 101 makes them the tunnel's, anything else HTTP again.
        self.upgrade_after_body = False
        self.awaiting_upgrade = False
        self.upgrade_to: bytes | None = None
        self.raw = False  # forwarding client bytes without framing (an upgrade was granted)
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
        self.replay = Replay(self.limits.replay_bytes)

    # --- what the layers above provide -----------------------------------------------------

    @abc.abstractmethod
    def _to_upstream(self, data: bytes) -> None:
        """Forward client bytes (opening the upstream connection first if there is none)."""

    @abc.abstractmethod
    def _await_upgrade(self) -> None:
        """The upgrade request went whole (head and body): hold what the client sends next."""

    # --- framing ---------------------------------------------------------------------------

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
            raw_head = self._whole_head(data, pos)
            if raw_head is None:
                if self._hold_head(data, pos, now):
                    break
                self._forward(data, mark, pos, rewritten)
                return
            head_end = pos + len(raw_head)
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

    def _whole_head(self, data: bytes, pos: int) -> bytes | None:
        """The request head at data[pos], CRLFs included; None if it is not all there yet or
        is longer than max_head."""
        head = whole_head(data, pos, self.last_head)  # the last head again: its parse reused
        return None if head is None or len(head) > self.max_head else head

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
        head = self.last_parsed
        if head is None or raw_head != self.last_head:
            head = parse_request_head(raw_head)
            if len(raw_head) <= REPEATED_HEAD_BYTES:
                self.last_head, self.last_parsed = raw_head, head
        if head.upgrade and head.method == b"CONNECT" and not self.limits.allow_connect:
            raise ProtocolError("CONNECT is not allowed (the ambassador is no forward proxy; "
                                "see --allow-connect)", 405)
        exchange = self.observer.begin(head, raw_head, now)
        exchange.close = head.close
        pending = self.pending
        pending.append(exchange)
        if len(pending) >= self.max_pipelined:
            self._pause_pipeline()
        if head is not self.replayable:
            if head.method not in IDEMPOTENT or head.upgrade:
                self.replay.forbid()
            else:
                self.replayable = head
        self.body = exchange.request_body = request_body(head, self.min_average_chunk)
        if head.upgrade:
            self.upgrade_to = head.upgrade_to or head.method
            self._upgrade_requested(raw_head)
            if self.body is None:
                self._await_upgrade()
            else:
                self.upgrade_after_body = True
        return exchange

    def _upgrade_requested(self, raw_head: bytes) -> None:
        """An upgrade request's head was read (the upgrade layer reads what it needs of it):
        a hook called for upgrade requests only, so that other exchanges pay no call."""

    def _forward(self, data: bytes, mark: int, stop: int, rewritten: list[bytes] | None) -> None:
        if rewritten is None:
            if mark == 0 and stop == len(data):
                self._to_upstream(data)
            elif stop > mark:
                self._to_upstream(data[mark:stop])
            return
        rewritten.append(data[mark:stop])
        self._to_upstream(b"".join(rewritten))

    # --- when the client is read -----------------------------------------------------------

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

    def _resume_transport(self) -> None:
        if self.transport is not None and not (self.rejecting or self.upstream_full
                                               or self.pipeline_full or self.awaiting_upgrade):
            self.transport.resume_reading()

    # --- the ambassador's own answers ------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.meter.sent += len(data)
            self.transport.write(data)

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

    def _send_and_close(self, response: bytes) -> None:
        self.write(response)
        self.close()
