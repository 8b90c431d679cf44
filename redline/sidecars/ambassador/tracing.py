"""Tracing for the ambassador: parent-based ratio sampling, one span per sampled request.

The sampling decision is made here, per request, without the SDK: a `traceparent` with the
sampled flag means sample (parent-based), one without it means don't, and a request without any
is sampled with probability `ratio`. Only sampled requests touch OpenTelemetry, so 1% sampling
costs about 1% of the SDK's price. A sampled request without `traceparent` gets one naming the
ambassador's span, so the app's spans join the trace; a request that has one keeps it unchanged
(the only header the ambassador ever adds is `traceparent`).

Spans go out with the SDK's BatchSpanProcessor over OTLP/HTTP: a bounded queue drained by a
background thread, which drops spans rather than block the proxy when the collector is slow.
"""

from __future__ import annotations

import random
import re

from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from redline import __version__
from redline.exporters.red import error_type, normalize_method
from redline.exporters.routes import strip_target
from redline.exporters.rpc import STATUS_NAMES, grpc_error_type
from redline.sidecars.ambassador.http1 import RequestHead
from redline.sidecars.ambassador.observe import Exchange

# What `sampled` returns for a span sampled without a remote parent.
ROOT = object()

_TRACEPARENT = re.compile(rb"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def traces_endpoint(base: str) -> str:
    """OTEL_EXPORTER_OTLP_ENDPOINT semantics: a base URL gets `/v1/traces` appended."""
    return base if base.rstrip("/").endswith("/v1/traces") else base.rstrip("/") + "/v1/traces"


class OtelTracer:
    def __init__(self, service_name: str, endpoint: str, ratio: float, *, kind: SpanKind,
                 scheme: str = "http", server: tuple[str, int] | None = None) -> None:
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"trace sample ratio: expected 0 to 1, got {ratio}")
        self.ratio = ratio
        self.kind = kind
        self.scheme = scheme
        self.server = server
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": service_name,
                                      "telemetry.sdk.name": "redline-ambassador"}),
            sampler=ALWAYS_ON,  # the decision was made before a span is started
        )
        self.provider.add_span_processor(BatchSpanProcessor(
            OTLPSpanExporter(endpoint=traces_endpoint(endpoint), timeout=5),
            max_queue_size=4096, schedule_delay_millis=1000))
        self.tracer = self.provider.get_tracer("redline.ambassador", __version__)
        self._random = random.random

    def sampled(self, traceparent: bytes | None, tracestate: bytes | None) -> object | None:
        """The sampling decision: None (not sampled), else the parent to start the span under
        (the caller's remote span, or ROOT). Costs no OpenTelemetry call when not sampled."""
        if traceparent is not None:
            match = _TRACEPARENT.fullmatch(traceparent.strip().lower())
            if match is not None and match.group(1) != b"ff":
                if not int(match.group(4), 16) & 1:
                    return None  # the caller decided not to sample
                return set_span_in_context(NonRecordingSpan(SpanContext(
                    trace_id=int(match.group(2), 16), span_id=int(match.group(3), 16),
                    is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED),
                    trace_state=TraceState.from_header(
                        [tracestate.decode("latin-1")]) if tracestate else None)))
        return ROOT if self._random() < self.ratio else None

    def start_span(self, parent: object, name: str, attributes: dict[str, str | int]
                   ) -> tuple[Span, str]:
        """A span under what `sampled` returned, and its trace id (hex) for exemplars."""
        context = parent if isinstance(parent, Context) else None
        span = self.tracer.start_span(name, context=context, kind=self.kind,
                                      attributes=attributes)
        return span, f"{span.get_span_context().trace_id:032x}"

    def begin(self, exchange: Exchange, head: RequestHead, raw_head: bytes) -> None:
        parent = self.sampled(head.traceparent, head.tracestate)
        if parent is None:
            return
        method = normalize_method(head.method)
        route = exchange.template
        attributes = self.http_attributes(method, head.target, route, head.user_agent)
        name = f"{method} {route}" if route else method
        span, exchange.trace_id = self.start_span(parent, name, attributes)
        exchange.span = span
        if head.traceparent is None:
            context = span.get_span_context()
            base = exchange.head_rewrite if exchange.head_rewrite is not None else raw_head
            exchange.head_rewrite = (
                base[:-2] + b"traceparent: 00-%032x-%016x-01\r\n\r\n"
                % (context.trace_id, context.span_id))

    def finish(self, exchange: Exchange, status: int | None, error: str | None) -> None:
        self.end_http_span(exchange.span, status, error)

    # --- what HTTP/1 exchanges and HTTP/2 streams share ----------------------------------------

    def http_attributes(self, method: str, target: bytes, route: str,
                        user_agent: bytes | None) -> dict[str, str | int]:
        """An HTTP span's attributes at its start (`method` normalized; `route` "" for none):
        OpenTelemetry's HTTP server or, outbound, client span."""
        attributes: dict[str, str | int] = {
            "http.request.method": method,
            "url.path": strip_target(target.decode("latin-1")),
            "url.scheme": self.scheme,
        }
        if route:
            attributes["http.route"] = route
        self._add_peer(attributes, user_agent)
        return attributes

    def rpc_attributes(self, service: str, method: str,
                       user_agent: bytes | None) -> dict[str, str | int]:
        """A gRPC call's span attributes at its start (OpenTelemetry's RPC conventions)."""
        attributes: dict[str, str | int] = {
            "rpc.system": "grpc", "rpc.service": service, "rpc.method": method}
        self._add_peer(attributes, user_agent)
        return attributes

    def _add_peer(self, attributes: dict[str, str | int], user_agent: bytes | None) -> None:
        if self.server is not None:  # a client span names the dependency it called
            attributes["server.address"], attributes["server.port"] = self.server
        if user_agent:
            attributes["user_agent.original"] = user_agent.decode("latin-1")

    def end_http_span(self, span: object, status: int | None, error: str | None) -> None:
        """An HTTP span's outcome. A server's span failed on a 5xx or a transport error; a
        client's on a 4xx too, which is then its error.type (OpenTelemetry's HTTP span
        status rules: a 4xx is the client's own failure)."""
        kind = error_type(status, error)
        if not kind and self.kind is SpanKind.CLIENT and status is not None and status >= 400:
            kind = str(status)
        self.end_span(span, {} if status is None else {"http.response.status_code": status},
                      kind)

    def end_rpc_span(self, span: object, status: int | None, error: str | None) -> None:
        """A gRPC call's outcome. A server's span failed on a server-fault status (UNKNOWN,
        DEADLINE_EXCEEDED, ...) or a transport error, as the metrics' error_type; a client's
        on every status but OK (OpenTelemetry's gRPC conventions), named in error.type."""
        kind = grpc_error_type(status, error)
        if not kind and self.kind is SpanKind.CLIENT and status:
            kind = STATUS_NAMES[status]
        self.end_span(span, {} if status is None else {"rpc.grpc.status_code": status}, kind)

    def end_span(self, span: object, attributes: dict[str, str | int], error: str) -> None:
        """End a span from `start_span` with its outcome: `error` is its error.type ("" for
        none), and a span with one failed."""
        if not isinstance(span, Span):
            return
        if attributes:
            span.set_attributes(attributes)
        if error:
            span.set_attribute("error.type", error)
            span.set_status(Status(StatusCode.ERROR))
        span.end()

    def shutdown(self) -> None:
        self.provider.shutdown()
