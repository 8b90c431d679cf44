"""What the ambassador records per HTTP/2 stream: the observation filter between the stream
events of h2streams.py and the RED schema, shared by every HTTP/2 connection of the process.

Inbound (the app serves the streams):
- gRPC (a request content-type `application/grpc`, `application/grpc+proto`, ...): one
  observation of `rpc_server_duration_seconds` when the response stream ends, with the status
  the client sees; calls to the health checking service (`grpc.health.v1.Health`, what
  kubelet's gRPC probes and grpc-health-probe call) are not recorded, as HTTP probes are not.
- anything else: the `http_server_*` metrics, exactly as an HTTP/1 request (routes, the route
  cap, ignored paths and probe user agents, `streaming` routes timed to the response headers).

Outbound (the app calls one dependency): the same calls go to `rpc_client_duration_seconds`
and `http_client_*`, labelled with the dependency's address and port, as HTTP/1 ones are (no
routes: a client's paths are its dependency's, and outbound HTTP/1 has none either).

Tracing is parent-based as for HTTP/1 (`traceparent` read, one span per sampled stream, its
trace id as the exemplar), but nothing is added to the request: the bytes are not rewritten,
so the app's spans join the trace only if the caller sent `traceparent` itself. A span's
attributes and outcome are tracing.py's, as for HTTP/1: outbound, CLIENT spans that name the
dependency (`server.address`, `server.port`) and the scheme the ambassador speaks to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from redline.exporters.instruments import Counter, InstrumentCollector
from redline.exporters.red import CLIENT_CLOSED, ClientRecorder, ServerRecorder, normalize_method
from redline.exporters.routes import RouteTemplater
from redline.exporters.rpc import (
    DEADLINE_EXCEEDED,
    RpcClientRecorder,
    RpcServerRecorder,
    grpc_status,
    past_deadline,
)

# Types only: the HTTP/2 connection's framer, decoder and hpack are imported at the first HTTP/2
# connection (http2.py), not by an ambassador that never sees one; this is imported at start,
# for the counters every ambassador shows.
if TYPE_CHECKING:
    from redline.sidecars.ambassador.h2streams import Http2Streams, Stream

GRPC_CONTENT_TYPE = b"application/grpc"
HEALTH_SERVICE = b"/grpc.health.v1.Health/"
STOPPED_OBSERVING = "redline_ambassador_http2_unobserved_connections"  # _total
STREAMS_UNTRACKED = "redline_ambassador_http2_untracked_streams"  # _total
STREAMS_PUSHED = "redline_ambassador_http2_pushed_streams"  # _total
# Why observation of an HTTP/2 connection stopped (the `reason` label): what could not be
# read, or a client past a bound on what observing it may cost (h2streams.py, rapid reset).
STOP_REASONS = ("client_framing", "server_framing", "client_limit")


class StreamTracer(Protocol):
    """The part of tracing.OtelTracer that streams use (no header is ever added): the span
    attributes and outcomes are HTTP/1's, inbound and outbound alike."""

    def sampled(self, traceparent: bytes | None, tracestate: bytes | None) -> object | None: ...

    def start_span(self, parent: object, name: str, attributes: dict[str, str | int]
                   ) -> tuple[object, str]: ...

    def http_attributes(self, method: str, target: bytes, route: str,
                        user_agent: bytes | None) -> dict[str, str | int]: ...

    def rpc_attributes(self, service: str, method: str,
                       user_agent: bytes | None) -> dict[str, str | int]: ...

    def end_http_span(self, span: object, status: int | None, error: str | None) -> None: ...

    def end_rpc_span(self, span: object, status: int | None, error: str | None) -> None: ...

    def end_span(self, span: object, attributes: dict[str, str | int], error: str) -> None: ...


class HttpSide(Protocol):
    """Where non-gRPC streams are recorded: the server metrics inbound, the client's
    outbound."""

    def started(self, stream: Stream) -> tuple[str, bool] | None:
        """A request began: (its route template, whether the route is `streaming`), or None
        when it is not recorded (an ignored path or probe)."""
        ...

    def finished(self, stream: Stream, template: str, status: int | None, duration: float,
                 error: str | None, trace_id: str | None, sized: bool = False) -> None:
        """`sized`: the stream's DATA byte counts are its whole bodies (body sizes, with
        --record-sizes; the client side records none, as outbound HTTP/1 does not)."""
        ...

    def abandoned(self, stream: Stream) -> None:
        """Its outcome will never be known: no longer in flight, not recorded."""
        ...


class ServerHttp:
    """`http_server_*`, with routes (inbound)."""

    def __init__(self, server: ServerRecorder, routes: RouteTemplater) -> None:
        self.server = server
        self.routes = routes

    def started(self, stream: Stream) -> tuple[str, bool] | None:
        route = self.routes.route(stream.path)
        if route is None or self.routes.ignores_user_agent(stream.user_agent):
            return None
        self.server.request_started(stream.method)
        return route.template, route.streaming

    def finished(self, stream: Stream, template: str, status: int | None, duration: float,
                 error: str | None, trace_id: str | None, sized: bool = False) -> None:
        self.server.request_finished(
            stream.method, template, status, duration, error=error, trace_id=trace_id,
            request_bytes=stream.request_bytes if sized else None,
            response_bytes=stream.response_bytes if sized else None)

    def abandoned(self, stream: Stream) -> None:
        self.server.request_abandoned(stream.method)


class ClientHttp:
    """`http_client_*` for the one dependency (outbound)."""

    def __init__(self, client: ClientRecorder, address: str, port: int) -> None:
        self.client = client
        self.address = address
        self.port = port

    def started(self, stream: Stream) -> tuple[str, bool] | None:
        self.client.request_started(self.address, self.port)
        return "", False

    def finished(self, stream: Stream, template: str, status: int | None, duration: float,
                 error: str | None, trace_id: str | None, sized: bool = False) -> None:
        self.client.request_finished(stream.method, self.address, self.port, status, duration,
                                     error=error, trace_id=trace_id)

    def abandoned(self, stream: Stream) -> None:
        self.client.active.add((self.address, self.port), -1)


class _Call:
    """What a recorded stream carries between its events (`Stream.context`)."""

    __slots__ = ("grpc", "name", "recorded", "span", "streaming", "trace_id")

    def __init__(self, grpc: bool, name: tuple[str, str], streaming: bool) -> None:
        self.grpc = grpc
        self.name = name  # (rpc_service, rpc_method), or (route template, "") for HTTP
        self.streaming = streaming
        self.recorded = False
        self.span: object | None = None
        self.trace_id: str | None = None


class StreamRecorder:
    """Turns stream events into RED observations (h2streams.StreamEvents)."""

    def __init__(self, http: ServerRecorder | HttpSide,
                 rpc: RpcServerRecorder | RpcClientRecorder,
                 routes: RouteTemplater | None = None,
                 tracer: StreamTracer | None = None) -> None:
        """Inbound: the ServerRecorder and the routes; outbound: see outbound()."""
        self.http: HttpSide = (ServerHttp(http, routes or RouteTemplater())
                               if isinstance(http, ServerRecorder) else http)
        self.rpc = rpc
        self.tracer = tracer
        self.stopped = Counter(
            STOPPED_OBSERVING,
            "HTTP/2 connections whose streams stopped being observed (their bytes still "
            "flow), by what could not be read: client_framing or server_framing (framing, "
            "HPACK, a header block or table past its limit), or client_limit (streams per "
            "read, rapid reset: redline_ambassador_limits_total says which).", ("reason",))
        self.untracked = Counter(
            STREAMS_UNTRACKED,
            "HTTP/2 streams not recorded because their connection already had the most "
            "streams observed at once (docs/ambassador.md, HTTP/2 limits).", ())
        self.pushed = Counter(
            STREAMS_PUSHED,
            "HTTP/2 responses the app pushed (PUSH_PROMISE): relayed, not recorded as "
            "requests (the client never made them).", ())
        for reason in STOP_REASONS:
            self.stopped.cell((reason,))
        self.untracked.cell(())
        self.pushed.cell(())

    @classmethod
    def outbound(cls, client: ClientRecorder, rpc: RpcClientRecorder, address: str, port: int,
                 tracer: StreamTracer | None = None) -> StreamRecorder:
        """The app's calls to its one dependency at `address`:`port`."""
        return cls(ClientHttp(client, address, port), rpc, tracer=tracer)

    def collector(self) -> InstrumentCollector:
        return InstrumentCollector([self.stopped, self.untracked, self.pushed])

    def observation_stopped(self, reason: str, limit: str | None = None) -> None:
        """`reason` is what h2streams returned: it starts with the side that broke it;
        `limit` the bound a client reached, if that was why."""
        self.stopped.inc(("client_limit" if limit is not None else
                          "server_framing" if reason.startswith("server") else
                          "client_framing",))

    # --- StreamEvents --------------------------------------------------------------------------

    def request_started(self, stream: Stream, now: float) -> None:
        if stream.content_type.startswith(GRPC_CONTENT_TYPE):
            if stream.path.startswith(HEALTH_SERVICE):
                return
            name = self.rpc.method(stream.path)
            call = _Call(True, name, False)
        else:
            route = self.http.started(stream)
            if route is None:
                return
            template, streaming = route
            call = _Call(False, (template, ""), streaming)
        stream.context = call
        if self.tracer is not None:
            self._start_span(self.tracer, stream, call)

    def response_started(self, stream: Stream, now: float) -> None:
        call = stream.context
        if isinstance(call, _Call) and call.streaming:
            self._record(stream, call, now, None)  # a streaming route: timed to its headers

    def stream_ended(self, stream: Stream, now: float, error: str | None) -> None:
        call = stream.context
        if isinstance(call, _Call) and not call.recorded:
            self._record(stream, call, now, error)

    def stream_abandoned(self, stream: Stream) -> None:
        call = stream.context
        if isinstance(call, _Call) and not call.recorded:
            call.recorded = True
            if not call.grpc:
                self.http.abandoned(stream)
            if self.tracer is not None and call.span is not None:
                self.tracer.end_span(call.span, {}, "")

    # --- recording -----------------------------------------------------------------------------

    def _record(self, stream: Stream, call: _Call, now: float, error: str | None) -> None:
        call.recorded = True
        duration = now - stream.start
        if call.grpc:
            if error == CLIENT_CLOSED and past_deadline(stream.timeout, duration):
                # The client gave up at its deadline (grpc-timeout) and reset the stream: the
                # call ended DEADLINE_EXCEEDED for it, as when the server says so first.
                error, stream.grpc_status = None, b"%d" % DEADLINE_EXCEEDED
            status = None if error else grpc_status(stream.status, stream.grpc_status)
            service, method = call.name
            self.rpc.call_finished(service, method, status, duration, error=error,
                                   trace_id=call.trace_id)
            if self.tracer is not None and call.span is not None:
                self.tracer.end_rpc_span(call.span, status, error)
            return
        status = stream.status
        # Bodies have a size once the response ended: not when it failed, nor at the head
        # of a `streaming` route.
        sized = error is None and status is not None and not call.streaming
        self.http.finished(stream, call.name[0], status, duration, error, call.trace_id, sized)
        if self.tracer is not None and call.span is not None:
            self.tracer.end_http_span(call.span, status, error)

    def _start_span(self, tracer: StreamTracer, stream: Stream, call: _Call) -> None:
        parent = tracer.sampled(stream.traceparent, stream.tracestate)
        if parent is None:
            return
        if call.grpc:
            service, method = call.name
            name = f"{service}/{method}"
            attributes = tracer.rpc_attributes(service, method, stream.user_agent)
        else:
            http_method = normalize_method(stream.method)
            route = call.name[0]  # outbound streams have none
            name = f"{http_method} {route}" if route else http_method
            attributes = tracer.http_attributes(http_method, stream.path, route,
                                                stream.user_agent)
            attributes["network.protocol.version"] = "2"
        call.span, call.trace_id = tracer.start_span(parent, name, attributes)


class StreamCounts:
    """What one connection's observer counted that the process's counters show (streams past
    the tracked limit, streams the app pushed), added as they grow: the observer counts per
    connection, the counters are the process's. One for each observed connection, h2c or
    upgraded."""

    def __init__(self, recorder: StreamRecorder) -> None:
        self.recorder = recorder
        self.untracked = 0  # already added
        self.pushed = 0

    def add(self, streams: Http2Streams) -> None:
        if streams.untracked != self.untracked:
            self.recorder.untracked.inc((), streams.untracked - self.untracked)
            self.untracked = streams.untracked
        if streams.pushed != self.pushed:
            self.recorder.pushed.inc((), streams.pushed - self.pushed)
            self.pushed = streams.pushed
