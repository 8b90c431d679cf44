"""The upstream half of an HTTP/1 connection pair: the connection to the app (or dependency)
opened for one client connection.

Each chunk the upstream sends is written to the client first and framed afterwards, so framing
never delays a byte; framing finds the response heads (status, for the exchange at the head of
the line) and where each response ends. The client side owns the line of exchanges in flight
(`pending`) and everything that outlives this connection (the replay, the deferred answer).
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections import deque
from collections.abc import Callable
from time import monotonic as _monotonic
from typing import TYPE_CHECKING, Final, cast

from redline.exporters.red import INVALID_RESPONSE
from redline.sidecars.ambassador.handler import ConnectionOwner, Handler
from redline.sidecars.ambassador.http1 import (
    REPEATED_HEAD_BYTES,
    ProtocolError,
    ResponseHead,
    parse_response_head,
    whole_head,
)
from redline.sidecars.ambassador.http1_body import NO_BODY, Body, UntilCloseBody, response_body
from redline.sidecars.ambassador.observe import Exchange

if TYPE_CHECKING:
    from redline.sidecars.ambassador.http2 import H2cUpgrade

log = logging.getLogger("redline.ambassador")
# Final: compiled, a C static, not a lookup in the module's dict for every chunk.
monotonic: Final = _monotonic


# An abstract base class of the client side (RequestFraming, the lowest of ClientSide's layers,
# derives from it), not a Protocol: compiled, the calls for every response (write,
# response_complete, last_upstream_read) are then native calls with unboxed arguments, not
# Python method calls, and this module needs no import of the client side's (which imports it).
class Downstream(Handler):
    """What the upstream side needs from the client connection it serves."""

    last_upstream_read: float
    # The observer of an upgraded h2c connection, which sees the tunnel's bytes.
    h2c: H2cUpgrade | None

    @abc.abstractmethod
    def write(self, data: bytes) -> None: ...

    @abc.abstractmethod
    def response_complete(self, now: float) -> bool:
        """The oldest exchange's response ended; False once the client takes no more."""

    @abc.abstractmethod
    def upgrade_granted(self, now: float) -> None: ...

    @abc.abstractmethod
    def upgrade_declined(self, now: float) -> None: ...

    @abc.abstractmethod
    def pause_reading(self) -> None: ...

    @abc.abstractmethod
    def resume_reading(self) -> None: ...

    @abc.abstractmethod
    def upstream_failed(self, status: int | None, error: str, detail: str) -> None: ...

    @abc.abstractmethod
    def upstream_closed(self, upstream: UpstreamSide, now: float) -> None: ...

    @abc.abstractmethod
    def connect_failed(self, upstream: UpstreamSide, error: str, detail: str) -> None: ...


class UpstreamSide(asyncio.Protocol):
    def __init__(self, client: Downstream, pending: deque[Exchange],
                 owner: ConnectionOwner) -> None:
        self.client = client
        # The client's line of exchanges in flight, oldest first: responses come in its order.
        self.pending = pending
        self.owner = owner
        self.observer = owner.observer
        limits = owner.limits
        self.queue_limit = limits.connect_queue_bytes
        self.max_head = limits.max_response_head
        self.transport: asyncio.Transport | None = None
        # Until connected, what the client sends is queued; then this is the transport's own
        # write, so forwarding a chunk costs no check.
        self.write: Callable[[bytes], None] = self._enqueue
        self.queue: list[bytes] = []
        self.queued = 0
        self.held = b""  # an incomplete response head (already forwarded; kept to parse)
        self.body: Body | None = None
        self.last_head = b""  # the last response head parsed, and its parse (REPEATED_HEAD_BYTES)
        self.last_parsed: ResponseHead | None = None
        self.response_bytes_seen = False  # bytes of the current response reached the client
        self.answered = False  # a whole response came over this connection
        self.tunnel = False  # an upgrade was granted: bytes go through unframed from now on
        self.bytes_in = 0
        self.gone = False

    @property
    def ends_by_close(self) -> bool:
        """The response being forwarded is delimited by the close of the connection."""
        return isinstance(self.body, UntilCloseBody)

    def _enqueue(self, data: bytes) -> None:
        self.queue.append(data)
        self.queued += len(data)
        if self.queued > self.queue_limit:
            self.client.pause_reading()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream connection always gets a Transport (uvloop's is not a subclass of it).
        stream = cast(asyncio.Transport, transport)
        self.transport = stream
        self.write = stream.write
        self.owner.upstream_opened()
        if self.client.closed or self.gone:
            stream.close()
            return
        if self.queue:
            stream.writelines(self.queue)
            if self.queued > self.queue_limit:
                self.client.resume_reading()
            self.queue = []
            self.queued = 0

    def connect_failed(self, error: str, detail: str) -> None:
        self.client.connect_failed(self, error, detail)

    def data_received(self, data: bytes) -> None:
        client = self.client
        now = monotonic()
        client.last_upstream_read = now
        self.bytes_in += len(data)
        client.write(data)
        if self.tunnel:
            if client.h2c is not None:
                client.h2c.server_bytes(data)
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
            self.owner.count_rejected("bad_response")
            client.upstream_failed(None, INVALID_RESPONSE, str(exc))

    def _frame_responses(self, data: bytes, now: float) -> None:
        client = self.client
        pending = self.pending
        pos = 0
        end = len(data)
        while pos < end:
            body = self.body
            if body is not None:
                pos = body.consume(data, pos)
                if body.done:
                    self.body = None
                    self.answered = True
                    if not client.response_complete(now):
                        return
                continue
            raw_head = self._whole_head(data, pos)
            if raw_head is None:
                return
            if not pending:
                raise ProtocolError("response without a request", 502)
            head = self.last_parsed
            if head is None or raw_head != self.last_head:
                head = parse_response_head(raw_head)
                if len(raw_head) <= REPEATED_HEAD_BYTES:
                    self.last_head, self.last_parsed = raw_head, head
            pos += len(raw_head)
            exchange = pending[0]
            status = head.status
            if status == 101 or (exchange.method == b"CONNECT" and 200 <= status < 300):
                exchange.status = status  # duration of an upgrade ends at the 101
                self.tunnel = self.answered = True
                client.upgrade_granted(now)
                if client.h2c is not None and pos < end:
                    client.h2c.server_bytes(data[pos:])  # the app's first HTTP/2 bytes
                return  # everything after the 101 is the tunnel's
            if status < 200:
                continue  # interim (100 Continue, 103 Early Hints); the final one follows
            if exchange.upgrade:
                client.upgrade_declined(now)
            exchange.status = status
            exchange.close = exchange.close or head.close
            body = self.body = response_body(head, exchange.method)
            if (exchange.streaming or head.event_stream) and exchange.record:
                # Streaming routes are timed to the first byte, with no body size; the
                # exchange stays in line.
                self.observer.finish(exchange, status, None, now)
            else:
                exchange.response_body = body if body is not None else NO_BODY
            if body is None:
                self.answered = True
                if not client.response_complete(now):
                    return

    def _whole_head(self, data: bytes, pos: int) -> bytes | None:
        """The response head at data[pos], CRLFs included; None when it is not all there yet
        (data[pos:] is then held until the rest arrives)."""
        head = whole_head(data, pos, self.last_head)  # the last head again: its parse reused
        if head is None:
            if len(data) - pos > self.max_head:
                raise ProtocolError("response head too large", 502)
            self.held = data[pos:]
        return head

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.upstream_gone()
        if self.gone:  # we closed it ourselves; the client side already knows
            return
        self.gone = True
        self.client.upstream_closed(self, monotonic())

    def pause_writing(self) -> None:
        self.client.pause_reading()

    def resume_writing(self) -> None:
        self.client.resume_reading()

    def pause_reading(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None:
            self.transport.resume_reading()

    def close(self) -> None:
        self.gone = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.gone = True
        if self.transport is not None:
            self.transport.abort()
