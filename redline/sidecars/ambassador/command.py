"""`redline ambassador`: flags -> AmbassadorConfig -> run on uvloop until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import os

from redline.config import ConfigError
from redline.exporters.instruments import DEFAULT_MAX_SERIES
from redline.exporters.red import DEFAULT_BUCKETS
from redline.exporters.routes import RouteTemplater, load_routes
from redline.flags import (
    SubParsers,
    buckets,
    flag_type,
    host_port,
    non_negative_seconds,
    positive_integer,
    positive_seconds,
    ratio,
)
from redline.sidecars.ambassador.config import (
    MIN_HEADER_BYTES,
    AmbassadorConfig,
    Limits,
    PortConfig,
    Upstream,
)
from redline.sidecars.ambassador.protocols import AUTO, H2C, HTTP1, PORT_PROTOCOLS
from redline.sidecars.ambassador.proxy import Ambassador


def header_bytes(text: str) -> int:
    """--max-header-bytes: a whole number of at least MIN_HEADER_BYTES (config.py says why)."""
    try:
        value = positive_integer(text)
    except ValueError:
        value = 0
    if value < MIN_HEADER_BYTES:
        raise ValueError(f"expected a whole number of bytes >= {MIN_HEADER_BYTES}, got {text!r}")
    return value


def whole_bytes(text: str) -> int:
    """A number of bytes >= 0 (0: no such limit)."""
    if not text.strip().isdigit():
        raise ValueError(f"expected a whole number of bytes >= 0, got {text!r}")
    return int(text)


def add_parser(sub: SubParsers,
               common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "ambassador", parents=[common],
        help="proxy beside the app that records RED metrics for every request",
        description="Proxy between clients and the app (inbound) or between the app and a "
                    "dependency (outbound), forwarding every byte unchanged: HTTP/1.1 with RED "
                    "metrics per request, h2c and gRPC with RED metrics per stream, anything "
                    "else (TLS, databases) as TCP with TCP metrics per connection. Several "
                    "ports: repeat --listen, --upstream and --protocol as pairs. Metrics, "
                    "/healthz and /readyz are served on --admin.",
    )
    add = parser.add_argument
    add("--listen", type=flag_type(host_port), action="append", required=True, metavar="H:P",
        help="where clients (inbound) or the app (outbound) connect; repeat for more ports")
    add("--upstream", type=flag_type(Upstream.parse), action="append", required=True,
        metavar="H:P|URL",
        help="where to forward, the i-th --upstream for the i-th --listen: the app (inbound, "
             "e.g. 127.0.0.1:8080) or the dependency (outbound; https://host[:port] "
             "originates TLS)")
    add("--protocol", choices=PORT_PROTOCOLS, action="append", metavar="P",
        help="what clients of the i-th --listen speak: auto (the default: detected from "
             "their first bytes), http1, h2c (HTTP/2 with prior knowledge: relayed, "
             "observed per stream, gRPC included), tls (passed through), opaque (TCP); "
             "omitted: all auto, else once per pair")
    add("--detect-timeout", type=flag_type(positive_seconds), default=0.3, metavar="S",
        help="auto ports: a client silent this long is passed through as TCP, for protocols "
             "where the server speaks first; on outbound auto ports it is HTTP/1 "
             "(default 0.3)")
    add("--tcp-idle-timeout", type=flag_type(non_negative_seconds), default=0.0, metavar="S",
        help="close TCP pass-through connections with no bytes either way for this long "
             "(default 0: never)")
    add("--admin", type=flag_type(host_port), default=("0.0.0.0", 9901), metavar="H:P",
        help="admin port for /metrics, /healthz, /readyz (default 0.0.0.0:9901)")
    add("--service", default=os.environ.get("OTEL_SERVICE_NAME", "unknown_service"),
        metavar="NAME", help="service_name label (default $OTEL_SERVICE_NAME or unknown_service)")
    add("--mode", choices=("inbound", "outbound"), default="inbound",
        help="inbound records http_server_* with routes; outbound records http_client_* "
             "(and rpc_client_* for h2c, declared or detected) (default inbound)")
    add("--routes", metavar="FILE", help="routes file: patterns, ignores, cap (docs/metrics.md)")
    add("--buckets", type=flag_type(buckets), default=DEFAULT_BUCKETS, metavar="LIST",
        help="duration buckets in seconds, comma-separated (default: OpenTelemetry's advice, "
             + ",".join(f"{bound:g}" for bound in DEFAULT_BUCKETS) + ")")
    add("--record-sizes", action="store_true",
        help="also record request and response body size histograms")
    add("--upstream-ca", metavar="FILE", help="CA bundle to verify an https upstream "
                                               "(default: the system's CAs)")
    add("--upstream-timeout", type=flag_type(positive_seconds), default=60.0, metavar="S",
        help="504 when the upstream sends nothing for this long during a request (default 60)")
    add("--connect-timeout", type=flag_type(positive_seconds), default=5.0, metavar="S",
        help="504 when connecting to the upstream takes longer (default 5)")
    add("--header-timeout", type=flag_type(positive_seconds), default=10.0, metavar="S",
        help="408 and close when a request head takes longer to arrive (default 10)")
    add("--idle-timeout", type=flag_type(positive_seconds), default=75.0, metavar="S",
        help="close keep-alive connections idle this long (default 75)")
    add("--drain-delay", type=float, default=5.0, metavar="S",
        help="after SIGTERM keep serving this long while endpoints update (default 5)")
    add("--drain-timeout", type=flag_type(positive_seconds), default=30.0, metavar="S",
        help="after SIGTERM exit within this long, aborting what is left (default 30)")
    add("--max-header-bytes", type=flag_type(header_bytes), default=65536, metavar="N",
        help=f"431 for request heads larger than this (default 65536, at least "
             f"{MIN_HEADER_BYTES})")
    add("--max-pipelined-requests", type=flag_type(positive_integer), default=128, metavar="N",
        help="stop reading a client while this many of its requests are in flight, until "
             "responses drain (default 128)")
    add("--max-connections", type=flag_type(positive_integer), default=1024, metavar="N",
        help="client connections of the process, all ports together; past it new ones are "
             "closed at once (default 1024)")
    add("--max-series", type=flag_type(positive_integer), default=DEFAULT_MAX_SERIES,
        metavar="N",
        help="label sets one metric family holds; past it new ones are recorded as the "
             f"family's _OTHER label set and counted (default {DEFAULT_MAX_SERIES})")
    add("--http2-max-streams-per-read", type=flag_type(positive_integer), default=128,
        metavar="N",
        help="HTTP/2 request header blocks observed in one read of a client's; past it the "
             "connection is relayed unobserved (rapid reset; default 128)")
    add("--http2-max-early-resets", type=flag_type(positive_integer), default=100, metavar="N",
        help="HTTP/2 streams a client may reset within 1 s of their start and before their "
             "response, when more than half it opened; past it the connection is relayed "
             "unobserved (rapid reset; default 100)")
    add("--min-average-chunk-bytes", type=flag_type(whole_bytes), default=256, metavar="N",
        help="400 for a chunked request body whose chunks average fewer data bytes than this "
             "after its first 1024 (default 256; 0: no minimum)")
    add("--max-held-head-bytes", type=flag_type(positive_integer), default=8 * 1024 * 1024,
        metavar="N",
        help="unfinished request heads held by all connections together; past it a "
             "connection whose head is not whole gets 503 (default 8388608, at least "
             "--max-header-bytes)")
    add("--allow-connect", action="store_true",
        help="forward CONNECT requests (a 2xx answer makes a tunnel); refused with 405 "
             "otherwise")
    add("--keep-host", action="store_true",
        help="outbound: forward the app's Host header as it is instead of naming the upstream")
    add("--otlp-endpoint", default=os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"), metavar="URL",
        help="send spans over OTLP/HTTP to this collector (default $OTEL_EXPORTER_OTLP_ENDPOINT; "
             "unset: no tracing)")
    add("--trace-sample-ratio", type=flag_type(ratio), default=0.01, metavar="F",
        help="share of requests without a sampled parent that are traced (default 0.01)")
    parser.set_defaults(func=run)


def ports_from_args(args: argparse.Namespace) -> tuple[PortConfig, ...]:
    """The --listen/--upstream/--protocol pairs: the i-th of each go together."""
    listens, upstreams = args.listen, args.upstream
    protocols = args.protocol or [AUTO] * len(listens)
    if len(listens) != len(upstreams):
        raise ConfigError(f"--listen, --upstream: expected them in pairs, got {len(listens)} "
                          f"--listen and {len(upstreams)} --upstream")
    if len(protocols) != len(listens):
        raise ConfigError(f"--protocol: expected none (every port auto) or one per "
                          f"--listen/--upstream pair, got {len(protocols)} for "
                          f"{len(listens)} pairs")
    if args.mode == "outbound" and (len(listens) > 1
                                    or protocols[0] not in (AUTO, HTTP1, H2C)):
        raise ConfigError("--mode outbound: expected one --listen/--upstream pair of HTTP/1 "
                          "(--protocol http1), h2c (--protocol h2c: gRPC) or either (auto)")
    ports = []
    for listen, upstream, declared in zip(listens, upstreams, protocols, strict=True):
        protocol = declared
        if upstream.tls and declared not in (AUTO, HTTP1, H2C):
            # Originating TLS makes no sense for bytes that are TLS already or not HTTP.
            raise ConfigError(f"--protocol {declared}: --upstream https://... originates "
                              f"TLS, which only HTTP/1 and h2c ports do (--protocol "
                              f"http1, auto or h2c)")
        if upstream.tls and declared == AUTO and args.mode != "outbound":
            # `auto` means HTTP/1 there; an outbound `auto` port detects h2c from HTTP/1
            # (detector.py), TLS or not.
            protocol = HTTP1
        ports.append(PortConfig(listen, upstream, protocol))
    return tuple(ports)


def config_from_args(args: argparse.Namespace) -> AmbassadorConfig:
    routes = load_routes(args.routes) if args.routes else RouteTemplater()
    if args.upstream_ca and not os.path.isfile(args.upstream_ca):
        raise ConfigError(f"--upstream-ca: {args.upstream_ca}: expected a readable CA file")
    try:
        limits = Limits(max_header_bytes=args.max_header_bytes, header_timeout=args.header_timeout,
                        upstream_timeout=args.upstream_timeout, idle_timeout=args.idle_timeout,
                        detect_timeout=args.detect_timeout, tcp_idle_timeout=args.tcp_idle_timeout,
                        max_pipelined=args.max_pipelined_requests,
                        max_connections=args.max_connections,
                        min_average_chunk_bytes=args.min_average_chunk_bytes,
                        max_held_head_bytes=args.max_held_head_bytes,
                        allow_connect=args.allow_connect, max_series=args.max_series,
                        http2_max_streams_per_read=args.http2_max_streams_per_read,
                        http2_max_early_resets=args.http2_max_early_resets)
    except ValueError as exc:  # limits that contradict each other
        raise ConfigError(f"ambassador limits: {exc}") from exc
    return AmbassadorConfig(
        ports=ports_from_args(args), admin=args.admin, service=args.service,
        mode=args.mode, routes=routes, buckets=args.buckets, record_sizes=args.record_sizes,
        upstream_ca=args.upstream_ca, connect_timeout=args.connect_timeout, limits=limits,
        drain_delay=args.drain_delay, drain_timeout=args.drain_timeout,
        keep_host=args.keep_host, otlp_endpoint=args.otlp_endpoint or None,
        trace_sample_ratio=args.trace_sample_ratio,
    )


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(Ambassador(config).run_until_signalled())
