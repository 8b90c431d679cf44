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
        attributes: dict[str, str | int] = {
            "http.request.method": method,
            "url.path": strip_target(head.target.decode("latin-1")),
            "url.scheme": self.scheme,
        }
        if route:
            attributes["http.route"] = route
        if self.server is not None:
            attributes["server.address"], attributes["server.port"] = self.server
        if head.user_agent:
            attributes["user_agent.original"] = head.user_agent.decode("latin-1")
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
        span = exchange.span
        if not isinstance(span, Span):
            return
        kind = error_type(status, error)
        # Client spans: 4xx are errors too.
        failed = bool(kind) or (self.kind is SpanKind.CLIENT and status is not None
                                and status >= 400)
        self.end_span(span, {} if status is None else {"http.response.status_code": status},
                      kind, failed=failed)

    def end_span(self, span: object, attributes: dict[str, str | int], error: str, *,
                 failed: bool = False) -> None:
        """End a span from `start_span` with its outcome: `error` is its error.type ("" for
        none); it failed when it has one, or when `failed`."""
        if not isinstance(span, Span):
            return
        if attributes:
            span.set_attributes(attributes)
        if error:
            span.set_attribute("error.type", error)
        if error or failed:
            span.set_status(Status(StatusCode.ERROR))
        span.end()

    def shutdown(self) -> None:
        self.provider.shutdown()
