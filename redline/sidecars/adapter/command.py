"""`redline adapter`: flags -> AdapterConfig -> follow logs until SIGTERM, or `--once`."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from redline.config import ConfigError
from redline.exporters.red import DEFAULT_BUCKETS
from redline.exporters.routes import RouteTemplater, load_routes
from redline.flags import (
    SubParsers,
    buckets,
    flag_type,
    host_port,
    positive_integer,
    positive_seconds,
)
from redline.sidecars.adapter.formats import FORMATS, JsonFields, make_format
from redline.sidecars.adapter.limits import (
    MAX_BODY_BYTES,
    MAX_LINE,
    MAX_SERIES_PER_RULE,
    MIN_LINE_BYTES,
)

if TYPE_CHECKING:
    from redline.sidecars.adapter.config import AdapterConfig

_JSON_FIELDS = ("method", "path", "status", "duration", "duration_ms")


def _json_fields(text: str) -> tuple[str, tuple[str, ...]]:
    name, sep, names = text.partition("=")
    if not sep or name not in _JSON_FIELDS or not names:
        raise ValueError(f"expected FIELD=name[,name...] with FIELD one of "
                         f"{', '.join(_JSON_FIELDS)}, got {text!r}")
    return name, tuple(n.strip() for n in names.split(",") if n.strip())


def add_parser(sub: SubParsers,
               common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "adapter", parents=[common],
        help="RED metrics from the app's access logs, statsd, JSON stats or own metrics",
        description="Follow access logs (across rotation and truncation), receive statsd, or "
                    "translate the app's JSON stats or Prometheus metrics, and publish the same "
                    "RED metrics as the ambassador on --admin. --once reads the files (or "
                    "fetches once), prints the exposition and exits.",
    )
    add = parser.add_argument
    add("--service", default=os.environ.get("OTEL_SERVICE_NAME"), metavar="NAME",
        help="service_name label (default $OTEL_SERVICE_NAME; required)")
    sources = parser.add_mutually_exclusive_group(required=True)
    sources.add_argument("--access-log", action="append", metavar="PATH",
                         help="access log to follow; repeatable; globs allowed (quote them)")
    sources.add_argument("--statsd", type=flag_type(host_port), metavar="H:P",
                         help="receive statsd / DogStatsD on this UDP address (with --mapping)")
    sources.add_argument("--scrape", metavar="URL",
                         help="re-export the app's Prometheus metrics from URL under the RED "
                              "names, at scrape time (with --mapping)")
    sources.add_argument("--json-url", metavar="URL",
                         help="translate the app's JSON stats at URL at scrape time "
                              "(with --mapping)")
    add("--mapping", metavar="FILE",
        help="mapping rules for --statsd, --scrape and --json-url (docs/adapter.md)")
    add("--fetch-timeout", type=flag_type(positive_seconds), default=2.0, metavar="S",
        help="--scrape / --json-url: give up on the app after this long, for the whole fetch "
             "(default 2)")
    add("--max-body-bytes", type=flag_type(positive_integer), default=MAX_BODY_BYTES,
        metavar="N", help="--scrape / --json-url: a longer answer is not read further nor "
                          f"parsed (default {MAX_BODY_BYTES})")
    add("--max-series-per-rule", type=flag_type(positive_integer),
        default=MAX_SERIES_PER_RULE, metavar="N",
        help="a mapping rule's plain metric gets at most this many series: then a counter's "
             "new labels add up in one _OTHER series, a gauge's are dropped "
             f"(default {MAX_SERIES_PER_RULE})")
    add("--format", default="nginx", metavar="FORMAT",
        help=f"log format: {', '.join(FORMATS)} (default nginx)")
    add("--apache-time-unit", choices=("us", "ms", "s"), default="us",
        help="unit of the number after an apache combined line: us for %%D, s for %%T "
             "(default us)")
    add("--json-field", type=flag_type(_json_fields), action="append", metavar="FIELD=NAMES",
        help="json format: where FIELD (method, path, status, duration, duration_ms) is; "
             "dotted names reach into objects; repeatable (default: the usual names, "
             "docs/adapter.md)")
    add("--admin", type=flag_type(host_port), default=("0.0.0.0", 9902), metavar="H:P",
        help="admin port for /metrics, /healthz, /readyz (default 0.0.0.0:9902)")
    add("--routes", metavar="FILE", help="routes file: patterns, ignores, cap (docs/metrics.md)")
    add("--buckets", type=flag_type(buckets), default=DEFAULT_BUCKETS, metavar="LIST",
        help="duration buckets in seconds, increasing, comma-separated (default "
             f"OpenTelemetry's advice: {','.join(f'{b:g}' for b in DEFAULT_BUCKETS)})")
    add("--from-start", action="store_true",
        help="read files present at start from their beginning (default: from their end)")
    add("--once", action="store_true",
        help="read the files from start to end, print the exposition, exit; a log that is "
             "missing or unreadable is an error here (exit 2), where live it is waited for")
    add("--poll-interval", type=flag_type(positive_seconds), default=0.25, metavar="S",
        help="how often to look for new lines, rotations and new files (default 0.25)")
    add("--rotate-wait", type=flag_type(positive_seconds), default=5.0, metavar="S",
        help="keep reading a file renamed or deleted for this long: the app writes to it "
             "until it reopens its log (default 5)")
    add("--max-line-bytes", type=flag_type(positive_integer), default=MAX_LINE,
        metavar="N", help="longer lines are dropped and counted as parse errors (at least "
                          f"{MIN_LINE_BYTES}; default {MAX_LINE})")
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> AdapterConfig:
    from redline.sidecars.adapter.config import AdapterConfig
    from redline.sidecars.adapter.mapping import load_mapping

    if not args.service:
        raise ConfigError("--service: expected the service name (or $OTEL_SERVICE_NAME)")
    mapped = args.statsd or args.scrape or args.json_url
    if mapped and not args.mapping:
        raise ConfigError("--mapping: expected a mapping file with --statsd, --scrape or "
                          "--json-url")
    if args.mapping and not mapped:
        raise ConfigError("--mapping: only --statsd, --scrape and --json-url use a mapping")
    if args.once and args.statsd:
        raise ConfigError("--once: reads files or fetches once; statsd has nothing to read")
    for flag, url in (("--scrape", args.scrape), ("--json-url", args.json_url)):
        if url and not url.startswith(("http://", "https://")):
            raise ConfigError(f"{flag}: expected an http:// or https:// URL, got {url!r}")
    mapping = load_mapping(args.mapping) if args.mapping else None
    try:
        fields = JsonFields(**dict(args.json_field)) if args.json_field else None
        log_format = make_format(args.format, apache_time_unit=args.apache_time_unit,
                                 json_fields=fields)
    except ValueError as exc:
        raise ConfigError(f"--format: {exc}") from exc
    if args.max_line_bytes < MIN_LINE_BYTES:
        raise ConfigError(f"--max-line-bytes: expected at least {MIN_LINE_BYTES}, "
                          f"got {args.max_line_bytes}")
    return AdapterConfig(
        service=args.service, access_logs=args.access_log or [], log_format=log_format,
        statsd=args.statsd, scrape_url=args.scrape, json_url=args.json_url, mapping=mapping,
        fetch_timeout=args.fetch_timeout, max_body_bytes=args.max_body_bytes,
        max_series_per_rule=args.max_series_per_rule,
        admin=args.admin, routes=load_routes(args.routes) if args.routes else RouteTemplater(),
        buckets=args.buckets, from_start=args.from_start or args.once,
        poll_interval=args.poll_interval, rotate_wait=args.rotate_wait,
        max_line_bytes=args.max_line_bytes,
    )


def run(args: argparse.Namespace) -> int:
    from redline.sidecars.adapter.process import Adapter

    adapter = Adapter(config_from_args(args))
    if args.once:
        return adapter.run_once()
    import asyncio  # not for --once: about 20 ms of its start-up

    from redline.sidecars.adapter.serve import serve

    return asyncio.run(serve(adapter))
