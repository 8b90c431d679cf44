"""One client connection and the upstream connection paired with it.

Bytes go through unchanged: each chunk the client sends is framed (to find request heads and
body ends) and written upstream as it is; each chunk the upstream sends is written to the client
first and framed afterwards. Pairing one upstream connection with each client connection keeps
pipelining trivially correct: the upstream answers in order and so do we.

The only exceptions to "unchanged": a request head may be replaced by its rewrite (tracing adds
`traceparent`), an incomplete request head is held back until complete (so a malformed one never
reaches the app), and the ambassador answers by itself when it cannot forward (400, 431, 502,
504), always in order behind earlier responses, and then closes the connection.

One request may be sent twice, as nginx and Envoy do it: when an upstream connection that had
already answered (a keep-alive one) closes before sending a byte of the next response, the app
most likely closed it as idle while the request was on its way (Node's 5 s keep-alive timeout
is the classic). If every request in flight is idempotent and what was sent for them is still
at hand (at most REPLAY_LIMIT bytes), it is sent again on a new connection, once.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque
from time import monotonic
from typing import TYPE_CHECKING

from redline.exporters.red import (
    BAD_REQUEST,
    CLIENT_CLOSED,
    CONNECTION_REFUSED,
    CONNECTION_RESET,
    TIMEOUT,
)
from redline.sidecars.ambassador.http1 import (
    Body,
    ProtocolError,
    UntilCloseBody,
    error_response,
    parse_request_head,
    parse_response_head,
    request_body,
    response_body,
)
from redline.sidecars.ambassador.observe import Exchange

if TYPE_CHECKING:
    from redline.sidecars.ambassador.proxy import Ambassador

log = logging.getLogger("redline.ambassador")

# Pause reading the client while this much is queued for an upstream that is still connecting.
CONNECT_QUEUE_LIMIT = 256 * 1024
MAX_RESPONSE_HEAD = 65536
UNPARSABLE_RESPONSE = "invalid_response"  # becomes error_type "_OTHER"
# What the ambassador keeps of the requests in flight to send them again (see above).
REPLAY_LIMIT = 64 * 1024
IDEMPOTENT = frozenset((b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"))


class ClientSide(asyncio.Protocol):
    def __init__(self, proxy: Ambassador) -> None:
        self.proxy = proxy
        self.observer = proxy.observer
        self.max_head = proxy.config.max_header_bytes
        self.transport: asyncio.Transport | None = None
        self.upstream: UpstreamSide | None = None
        self.pending: deque[Exchange] = deque()
        self.held = b""  # an incomplete request head, not forwarded yet
        self.head_since = 0.0  # when the held head started arriving
        self.body: Body | None = None  # the request body being forwarded
        self.raw = False  # forwarding client bytes without framing (upgrade asked or granted)
        self.raw_after_body = False
        self.tunnel = False  # upgrade granted: both directions are raw for good
        self.closed = False
        self.rejecting = False  # the ambassador answers itself once earlier responses are out
        self.deferred: bytes | None = None
        self.last_read = monotonic()
        self.last_upstream_read = self.last_read
        # What was sent upstream for the requests in flight, while they can be sent again;
        # None once they cannot (not idempotent, too large, upgraded, or a response finished
        # while others were in flight). Starts afresh whenever nothing is in flight.
        self.replay: list[bytes] | None = []
        self.replay_bytes = 0
        self.replay_mark = 0  # upstream.bytes_in when nothing was in flight

    # --- client events ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.proxy.connection_opened(self)

    def data_received(self, data: bytes) -> None:
        now = monotonic()
        self.last_read = now
        if self.rejecting or self.closed:
            return
        if self.raw:
            self._to_upstream(data)
            return
        if self.held:
            data = self.held + data
            self.held = b""
        try:
            self._frame_requests(data, now)
        except ProtocolError as exc:
            # Inside a body already partly forwarded: the app saw a broken request too, so
            # there is no clean answer to give; record and close both sides.
            log.debug("bad request body", extra={"error": str(exc)})
            if self.pending:
                self.observer.finish(self.pending[-1], None, BAD_REQUEST, now)
            self.proxy.count_rejected("bad_body")
            self.close()

    def _frame_requests(self, data: bytes, now: float) -> None:
        pos = 0
        end = len(data)
        mark = 0  # data[mark:pos] is framed and not yet forwarded
        rewritten: list[bytes] | None = None
        while pos < end:
            body = self.body
            if body is not None:
                pos = body.consume(data, pos)
                if body.done:
                    self.body = None
                    if self.raw_after_body:
                        self.raw = True
                continue
            if self.raw:
                break  # an upgrade was asked: the rest is forwarded as it is
            if data[pos:pos + 2] == b"\r\n":  # RFC 9112 2.2: ignore empty lines before a request
                pos += 2
                continue
            head_end = data.find(b"\r\n\r\n", pos)
            if head_end < 0 or head_end + 4 - pos > self.max_head:
                if end - pos > self.max_head:
                    self._forward(data, mark, pos, rewritten)
                    self._reject(data[pos:pos + 32], 431, "request head too large")
                    return
                self.held = data[pos:]
                if not self.head_since:
                    self.head_since = now
                break
            head_end += 4
            self.head_since = 0.0
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
        self._forward(data, mark, end - len(self.held), rewritten)

    def _start_exchange(self, raw_head: bytes, now: float) -> Exchange:
        head = parse_request_head(raw_head)
        exchange = self.observer.begin(head, raw_head, now)
        exchange.close = head.close
        self.pending.append(exchange)
        if head.method not in IDEMPOTENT or head.upgrade:
            self.replay = None
        self.body = request_body(head)
        if head.upgrade:
            # Forward what follows unframed until the upstream grants or declines the upgrade.
            if self.body is None:
                self.raw = True
            else:
                self.raw_after_body = True
        return exchange

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
        now = monotonic()
        while self.pending:
            exchange = self.pending.popleft()
            self.observer.finish(exchange, exchange.status, CLIENT_CLOSED, now)
        if self.upstream is not None:
            self.upstream.abort()
            self.upstream = None
        self.proxy.connection_closed(self)

    def pause_writing(self) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.resume_reading()

    # --- towards the upstream --------------------------------------------------------------

    def _to_upstream(self, data: bytes) -> None:
        replay = self.replay
        if replay is not None:  # (None for upgrades: raw bytes are never replayed)
            self.replay_bytes += len(data)
            if self.replay_bytes > REPLAY_LIMIT:
                self.replay = None
            else:
                replay.append(data)
        upstream = self.upstream
        if upstream is None:
            upstream = self.upstream = UpstreamSide(self)
            self.proxy.open_upstream(upstream)
        if upstream.transport is None:
            upstream.queue.append(data)
            upstream.queued += len(data)
            if upstream.queued > CONNECT_QUEUE_LIMIT and self.transport is not None:
                self.transport.pause_reading()
        else:
            upstream.transport.write(data)

    # --- outcomes --------------------------------------------------------------------------

    def response_complete(self, now: float) -> None:
        exchange = self.pending.popleft()
        self.observer.finish(exchange, exchange.status, None, now)
        upstream = self.upstream
        if upstream is not None:
            upstream.answered = True
            if self.pending:
                self.replay = None  # the bytes of the next requests are not told apart
            else:
                if self.replay is None:
                    self.replay = []
                else:
                    self.replay.clear()
                self.replay_bytes = 0
                self.replay_mark = upstream.bytes_in
        if exchange.close:
            self.close()
        elif not self.pending:
            self._after_last_response()

    def _after_last_response(self) -> None:
        if self.deferred is not None:
            self._send_and_close(self.deferred)
        elif self.proxy.shutting_down and self.idle():
            self.close()

    def idle(self) -> bool:
        return not (self.pending or self.held or self.body is not None or self.tunnel
                    or self.rejecting)

    def _reject(self, start_of_head: bytes, status: int, detail: str) -> None:
        """Answer a request the ambassador will not forward, after the earlier responses."""
        self.rejecting = True
        self.held = b""
        method = start_of_head.split(b" ", 1)[0]
        self.observer.rejected(method, status, BAD_REQUEST)
        self.proxy.count_rejected("head_too_large" if status == 431 else "bad_request")
        response = error_response(status, detail)
        if self.pending:
            self.deferred = response
            if self.transport is not None:
                self.transport.pause_reading()
        else:
            self._send_and_close(response)

    def upstream_failed(self, status: int | None, error: str, detail: str) -> None:
        """The upstream refused, reset or timed out. The first exchange still waiting for its
        response head gets `status` (502/504); every other one in flight is recorded as failed."""
        now = monotonic()
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
                self._write(error_response(status, detail))
            else:
                self.observer.finish(exchange, exchange.status if first else None, error, now)
            first = False
        self.close()

    def upstream_closed(self, now: float) -> None:
        """The upstream ended its side of the connection."""
        upstream = self.upstream
        self.upstream = None
        if upstream is not None and isinstance(upstream.body, UntilCloseBody):
            self.response_complete(now)  # the close delimits this response
            self.close()
            return
        if self.tunnel:
            self.close()
        elif self.pending:
            if upstream is not None and self._send_again(upstream):
                return
            detail = "the upstream closed the connection before responding"
            self.upstream = upstream  # so upstream_failed sees what was already answered
            self.upstream_failed(502, CONNECTION_RESET, detail)
        # else: an idle keep-alive connection closed; the next request opens a new one.

    def _send_again(self, closed: UpstreamSide) -> bool:
        """The requests in flight sent again on a new connection, if they may be (see the
        module's docstring): the closed one had answered before and sent nothing since."""
        replay = self.replay
        if (replay is None or not replay or not closed.answered
                or closed.bytes_in != self.replay_mark):
            return False
        self.replay, self.replay_bytes = [], 0
        self.replay_mark = 0
        self.proxy.count_retry()
        for data in replay:  # a new UpstreamSide: it has not answered, so this happens once
            self._to_upstream(data)
        return True

    def check_timeouts(self, now: float) -> None:
        """Called about every tenth of the shortest timeout by the ambassador's sweeper."""
        config = self.proxy.config
        if self.head_since and now - self.head_since > config.header_timeout:
            # A slow or stalled client (slowloris); not a request yet, so no RED observation.
            self.head_since = 0.0
            self.held = b""
            self.rejecting = True
            self.proxy.count_rejected("header_timeout")
            response = error_response(408, "request head not received in time")
            if self.pending:
                self.deferred = response
            else:
                self._send_and_close(response)
            return
        if self.pending and not self.tunnel:
            last = max(self.last_read, self.last_upstream_read, self.pending[0].start)
            if now - last > config.upstream_timeout:
                self.upstream_failed(504, TIMEOUT, "the upstream did not answer in time")
        elif self.idle() and now - max(self.last_read, self.last_upstream_read) \
                > config.idle_timeout:
            self.close()

    def connect_failed(self, error: str, detail: str) -> None:
        self.upstream_failed(504 if error == TIMEOUT else 502, error, detail)

    # --- plumbing --------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def _send_and_close(self, response: bytes) -> None:
        self._write(response)
        self.close()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()  # flushes what is buffered, then connection_lost
        if self.upstream is not None:
            self.upstream.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class UpstreamSide(asyncio.Protocol):
    def __init__(self, client: ClientSide) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.queue: list[bytes] = []
        self.queued = 0
        self.held = b""  # an incomplete response head (already forwarded; kept to parse)
        self.body: Body | None = None
        self.response_bytes_seen = False  # bytes of the current response reached the client
        self.answered = False  # a whole response came over this connection
        self.bytes_in = 0
        self.gone = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.client.proxy.upstream_opened()
        if self.client.closed or self.gone:
            transport.close()
            return
        if self.queue:
            self.transport.writelines(self.queue)  # type: ignore[union-attr]
            if self.queued > CONNECT_QUEUE_LIMIT and self.client.transport is not None:
                self.client.transport.resume_reading()
            self.queue = []
            self.queued = 0

    def data_received(self, data: bytes) -> None:
        client = self.client
        now = monotonic()
        client.last_upstream_read = now
        self.bytes_in += len(data)
        client._write(data)
        if client.tunnel:
            return
        if self.held:
            data = self.held + data
            self.held = b""
        try:
            self._frame_responses(data, now)
            # Has the client got part of a response that is not finished? Then a 502 can no
            # longer be sent if the upstream fails (derived, so pipelined chunks get it right).
            self.response_bytes_seen = bool(self.held) or self.body is not None
        except ProtocolError as exc:
            log.warning("unparsable response from upstream", extra={"error": str(exc)})
            self.client.proxy.count_rejected("bad_response")
            client.upstream_failed(None, UNPARSABLE_RESPONSE, str(exc))

    def _frame_responses(self, data: bytes, now: float) -> None:
        client = self.client
        pending = client.pending
        pos = 0
        end = len(data)
        while pos < end:
            body = self.body
            if body is not None:
                pos = body.consume(data, pos)
                if body.done:
                    self.body = None
                    client.response_complete(now)
                    if client.closed or client.transport is None \
                            or client.transport.is_closing():
                        return
                continue
            head_end = data.find(b"\r\n\r\n", pos)
            if head_end < 0:
                if end - pos > MAX_RESPONSE_HEAD:
                    raise ProtocolError("response head too large", 502)
                self.held = data[pos:]
                return
            head_end += 4
            if not pending:
                raise ProtocolError("response without a request", 502)
            head = parse_response_head(data[pos:head_end])
            pos = head_end
            exchange = pending[0]
            status = head.status
            if status == 101 or (exchange.method == b"CONNECT" and 200 <= status < 300):
                exchange.status = status  # duration of an upgrade ends at the 101
                client.tunnel = client.raw = True
                client.response_complete(now)
                return  # everything after the 101 is the tunnel's
            if status < 200:
                continue  # interim (100 Continue, 103 Early Hints); the final one follows
            if exchange.upgrade:
                client.raw = client.raw_after_body = False  # upgrade declined: HTTP goes on
            exchange.status = status
            exchange.close = exchange.close or head.close
            if (exchange.streaming or head.event_stream) and exchange.record:
                # Streaming routes are timed to the first byte; the exchange stays in line.
                client.observer.finish(exchange, status, None, now)
            self.body = response_body(head, exchange.method)
            if self.body is None:
                client.response_complete(now)
                if client.closed or client.transport is None or client.transport.is_closing():
                    return

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.proxy.upstream_gone()
        if self.gone:  # we closed it ourselves; the client side already knows
            return
        self.gone = True
        if self.client.upstream is self and not self.client.closed:
            self.client.upstream_closed(monotonic())

    def pause_writing(self) -> None:
        if self.client.transport is not None:
            self.client.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.client.transport is not None and not self.client.rejecting:
            self.client.transport.resume_reading()

    def close(self) -> None:
        self.gone = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.gone = True
        if self.transport is not None:
            self.transport.abort()


def connect_error(exc: BaseException) -> tuple[str, str]:
    """Classify a failed upstream connect as an error_type and a human detail."""
    if isinstance(exc, TimeoutError):
        return TIMEOUT, "connecting to the upstream timed out"
    if isinstance(exc, ConnectionRefusedError):
        return CONNECTION_REFUSED, "the upstream refused the connection"
    if isinstance(exc, ConnectionResetError):
        return CONNECTION_RESET, "the upstream reset the connection"
    if isinstance(exc, ssl.SSLError):
        return "tls_error", f"TLS with the upstream failed: {exc}"
    return "connect_error", f"cannot connect to the upstream: {exc}"
