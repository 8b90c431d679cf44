"""What `redline adapter` was asked to do, checked and parsed by command.py."""

from __future__ import annotations

from dataclasses import dataclass, field

from redline.exporters.red import DEFAULT_BUCKETS
from redline.exporters.routes import RouteTemplater
from redline.sidecars.adapter.formats import LogFormat
from redline.sidecars.adapter.limits import MAX_BODY_BYTES, MAX_LINE, MAX_SERIES_PER_RULE
from redline.sidecars.adapter.mapping import Mapping


@dataclass
class AdapterConfig:
    service: str
    access_logs: list[str] = field(default_factory=list)
    log_format: LogFormat | None = None
    statsd: tuple[str, int] | None = None
    scrape_url: str | None = None
    json_url: str | None = None
    mapping: Mapping | None = None
    fetch_timeout: float = 2.0
    max_body_bytes: int = MAX_BODY_BYTES
    max_series_per_rule: int = MAX_SERIES_PER_RULE
    admin: tuple[str, int] | None = ("0.0.0.0", 9902)
    routes: RouteTemplater = field(default_factory=RouteTemplater)
    buckets: tuple[float, ...] = DEFAULT_BUCKETS
    from_start: bool = False
    poll_interval: float = 0.25
    rotate_wait: float = 5.0
    max_line_bytes: int = MAX_LINE
