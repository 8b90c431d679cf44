"""What the ambassador records per exchange: server metrics inbound, client metrics outbound.

An Exchange is one request and its response on a connection. The connection code calls
`begin` when a request head is complete and `finish` exactly once when the response ended or
the exchange failed; the observer turns that into RED observations (and spans, with tracing).
"""

from __future__ import annotations

import abc
import re
from typing import TYPE_CHECKING, Protocol

from mypy_extensions import mypyc_attr

from redline.exporters.red import ClientRecorder, ServerRecorder
from redline.exporters.routes import RouteTemplater
from redline.sidecars.ambassador.http1 import RequestHead
from redline.sidecars.ambassador.http1_body import Body

if TYPE_CHECKING:  # an HTTP/1 ambassador never imports the HTTP/2 modules (test_lean_imports)
    from redline.sidecars.ambassador.h2record import StreamRecorder


class Exchange:
    __slots__ = ("close", "head_rewrite", "method", "record", "recorded", "request_body",
                 "response_body", "span", "start", "status", "streaming", "template",
                 "trace_id", "upgrade")

    def __init__(self, method: bytes, start: float, upgrade: bool) -> None:
        self.method = method
        self.start = start
        self.upgrade = upgrade
        self.template = ""
        self.record = True  # False for ignored routes and probes: forwarded, not recorded
        self.streaming = False
        self.status: int | None = None  # of the final response, once its head arrived
        self.close = False  # the request or its response asked to close the connection
        self.recorded = False
        self.head_rewrite: bytes | None = None  # the request head to forward instead
        self.span: object | None = None
        self.trace_id: str | None = None
        # The body readers, which count their bytes (--record-sizes): the request's (None: it
        # has none) once its head was framed, the response's once its final head was (None
        # until then, and for a response the HTTP/1 framing never read: an upgrade's).
        self.request_body: Body | None = None
        self.response_body: Body | None = None


class Tracer(Protocol):
    """The tracing hook: may start a span and rewrite the head (to add traceparent)."""

    def begin(self, exchange: Exchange, head: RequestHead, raw_head: bytes) -> None: ...

    def finish(self, exchange: Exchange, status: int | None, error: str | None) -> None: ...


# A base class, not a Protocol: compiled, the connection's calls to begin and finish are then
# native calls to the compiled observers, not Python method calls with boxed arguments (tests
# subclass it with interpreted observers, which the decorator allows).
@mypyc_attr(allow_interpreted_subclasses=True)
class Observer(abc.ABC):
    @abc.abstractmethod
    def begin(self, head: RequestHead, raw_head: bytes, now: float) -> Exchange: ...

    @abc.abstractmethod
    def finish(self, exchange: Exchange, status: int | None, error: str | None,
               now: float) -> None: ...

    @abc.abstractmethod
    def rejected(self, method: bytes, status: int, error: str) -> None: ...


class InboundObserver(Observer):
    """Server metrics for requests reaching the app, labelled by route."""

    def __init__(self, recorder: ServerRecorder, routes: RouteTemplater,
                 tracer: Tracer | None = None, http2: StreamRecorder | None = None) -> None:
        self.recorder = recorder
        self.routes = routes
        self.tracer = tracer
        self.http2 = http2  # HTTP/2 streams' recorder; None: h2c is relayed, not observed
        self.record_sizes = recorder.request_size is not None  # --record-sizes

    def begin(self, head: RequestHead, raw_head: bytes, now: float) -> Exchange:
        exchange = Exchange(head.method, now, head.upgrade)
        route = self.routes.route(head.target)
        if route is None or self.routes.ignores_user_agent(head.user_agent):
            exchange.record = False
            return exchange
        exchange.template = route.template
        exchange.streaming = route.streaming
        self.recorder.request_started(head.method)
        if self.tracer is not None:
            self.tracer.begin(exchange, head, raw_head)
        return exchange

    def finish(self, exchange: Exchange, status: int | None, error: str | None,
               now: float) -> None:
        if exchange.recorded:
            return
        exchange.recorded = True
        if not exchange.record:
            return
        if self.tracer is not None and exchange.span is not None:
            self.tracer.finish(exchange, status, error)
        if self.record_sizes and error is None and exchange.response_body is not None:
            self._finish_sized(exchange, status, now)
            return
        self.recorder.request_finished(
            exchange.method, exchange.template, status, now - exchange.start,
            error=error, trace_id=exchange.trace_id,
        )

    def _finish_sized(self, exchange: Exchange, status: int | None, now: float) -> None:
        """A response that ended as framed, with its body sizes: as for HTTP/2 streams, not
        for a failed exchange nor at the head of a streaming one (timed to its first byte)."""
        response = exchange.response_body
        request = exchange.request_body
        self.recorder.request_finished(
            exchange.method, exchange.template, status, now - exchange.start,
            trace_id=exchange.trace_id, request_bytes=0 if request is None else request.size,
            response_bytes=0 if response is None else response.size)

    def rejected(self, method: bytes, status: int, error: str) -> None:
        # Never reached the app and has no trustworthy route: recorded with an empty route.
        self.recorder.record(method, "", status, 0.0, error=error)


_HOST_LINE = re.compile(rb"\r\nhost:[^\r\n]*", re.IGNORECASE)


def rewrite_host(raw_head: bytes, authority: bytes) -> bytes:
    """The head with its Host header naming `authority` (added when the head had none)."""
    replaced, count = _HOST_LINE.subn(b"\r\nHost: " + authority, raw_head, count=1)
    return replaced if count else raw_head[:-2] + b"Host: " + authority + b"\r\n\r\n"


class OutboundObserver(Observer):
    """Client metrics for the app's calls to one dependency.

    The app calls the ambassador on localhost, so its Host header names localhost; unless
    `host_header` is None it is rewritten to name the dependency, as virtual hosts and TLS
    servers require (the one change outbound mode makes to a request beyond `traceparent`).
    """

    def __init__(self, recorder: ClientRecorder, address: str, port: int,
                 tracer: Tracer | None = None, host_header: bytes | None = None,
                 http2: StreamRecorder | None = None) -> None:
        self.recorder = recorder
        self.address = address
        self.port = port
        self.tracer = tracer
        self.host_header = host_header
        self.http2 = http2  # the app's HTTP/2 calls' recorder (an h2c port); None: relayed

    def begin(self, head: RequestHead, raw_head: bytes, now: float) -> Exchange:
        exchange = Exchange(head.method, now, head.upgrade)
        self.recorder.request_started(self.address, self.port)
        if self.host_header is not None:
            exchange.head_rewrite = rewrite_host(raw_head, self.host_header)
        if self.tracer is not None:
            self.tracer.begin(exchange, head, raw_head)
        return exchange

    def finish(self, exchange: Exchange, status: int | None, error: str | None,
               now: float) -> None:
        if exchange.recorded:
            return
        exchange.recorded = True
        if self.tracer is not None and exchange.span is not None:
            self.tracer.finish(exchange, status, error)
        self.recorder.request_finished(
            exchange.method, self.address, self.port, status, now - exchange.start,
            error=error, trace_id=exchange.trace_id,
        )

    def rejected(self, method: bytes, status: int, error: str) -> None:
        self.recorder.request_started(self.address, self.port)
        self.recorder.request_finished(method, self.address, self.port, status, 0.0, error=error)
