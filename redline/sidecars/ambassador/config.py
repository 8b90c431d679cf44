"""The ambassador's typed configuration: where to listen and forward, and every limit.

`command.py` builds an AmbassadorConfig from flags; nothing below it sees argparse. The limits a
connection enforces are gathered in `Limits` so that a reader finds each one in one place, with
its default and (where there is one) its flag.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from redline.exporters.instruments import DEFAULT_MAX_SERIES
from redline.exporters.red import DEFAULT_BUCKETS
from redline.exporters.routes import RouteTemplater
from redline.sidecars.ambassador.budget import ByteBudget

# The smallest --max-header-bytes: below this, ordinary browser requests (cookies, user agent,
# accept headers) would get 431; a lower limit is a typo, not a policy.
MIN_HEADER_BYTES = 1024


@dataclass(frozen=True)
class Upstream:
    host: str
    port: int
    tls: bool = False

    @classmethod
    def parse(cls, text: str) -> Upstream:
        """`H:P`, `http://H:P` or `https://H[:P]` (TLS originated by the ambassador)."""
        tls = text.startswith("https://")
        rest = text.split("://", 1)[1] if "://" in text else text
        if "://" in text and not text.startswith(("http://", "https://")):
            raise ValueError(f"expected http:// or https://, got {text!r}")
        rest = rest.rstrip("/")
        host, sep, port = rest.rpartition(":")
        if not sep or not port.isdigit():
            if not tls or not rest:
                raise ValueError(f"expected HOST:PORT or an http(s) URL, got {text!r}")
            host, port = rest, "443"
        if not host or not 0 < int(port) < 65536:
            raise ValueError(f"expected HOST:PORT with a port from 1 to 65535, got {text!r}")
        return cls(host.strip("[]"), int(port), tls)


@dataclass(frozen=True)
class Limits:
    """What one connection may cost: sizes in bytes, times in seconds."""

    max_header_bytes: int = 65536  # --max-header-bytes: 431 above
    header_timeout: float = 10.0  # --header-timeout: 408 when a head takes longer
    upstream_timeout: float = 60.0  # --upstream-timeout: 504 when nothing moves for this long
    idle_timeout: float = 75.0  # --idle-timeout: idle keep-alive connections are closed
    # --detect-timeout: an `auto` port's client that sent nothing (or nothing conclusive) by
    # then is passed through as opaque TCP (server-speaks-first protocols: MySQL, SMTP, SSH).
    detect_timeout: float = 0.3
    # --tcp-idle-timeout: pass-through connections (opaque, tls, h2c) with no byte either way
    # for this long are closed; 0, the default: never (database pools idle for hours).
    tcp_idle_timeout: float = 0.0
    # --max-pipelined-requests: with this many requests of a connection in flight, its client
    # is not read until responses bring it below (a client that pipelines without reading
    # the responses would otherwise grow the line of exchanges without bound).
    max_pipelined: int = 128
    # --max-connections: client connections of the process (all ports); past it, new ones are
    # closed as accepted, so that the admin port and the connections open keep their memory.
    max_connections: int = 1024
    # --min-average-chunk-bytes: past the first 1024 chunks of a request body, its chunks must
    # average this many data bytes (framing costs per chunk: 1-byte chunks took 2.8 s of CPU
    # for 13 MiB and stalled every connection meanwhile); 0: no minimum.
    min_average_chunk_bytes: int = 256
    # --max-held-head-bytes: unfinished request heads held by all connections together
    # (--max-header-bytes bounds one); past it a connection whose head is not whole is
    # answered 503 and closed. Shared by every connection of the process: `held_heads`.
    max_held_head_bytes: int = 8 * 1024 * 1024
    # --allow-connect: CONNECT makes the ambassador a forward proxy to wherever the app's
    # 2xx leads, a tunnel no request metric sees; refused (405) unless asked for.
    allow_connect: bool = False
    # --max-series: label sets one metric family holds; past it new ones fold into the
    # family's `_OTHER` label set (instruments.py), counted as the limit `max_series`.
    max_series: int = DEFAULT_MAX_SERIES
    # --http2-max-streams-per-read, --http2-max-early-resets: rapid reset (h2streams.py):
    # request header blocks in one read of a client's, and streams it resets within a second
    # and before their response (when more than half of those it opened), past which its
    # connection stops being observed; counted as the limits `http2_streams_per_read` and
    # `http2_rapid_reset`.
    http2_max_streams_per_read: int = 128
    http2_max_early_resets: int = 100
    held_heads: ByteBudget = field(init=False, compare=False, repr=False)
    # Fixed: no flag, as no app has needed another value.
    connect_queue_bytes: int = 256 * 1024  # client reading pauses above, while connecting
    max_response_head: int = 65536  # a larger response head is a broken upstream
    replay_bytes: int = 64 * 1024  # kept of the requests in flight to send them again
    # Empty lines before a request head (RFC 9112 2.2 lets a server ignore "at least one"):
    # above this many bytes of them, 400; they start the --header-timeout clock as a head does.
    max_empty_line_bytes: int = 64
    # HTTP/2 observation (http2.py): streams of one connection observed at once (more are
    # forwarded, not recorded), and the largest HPACK table a peer may allow that the mirrored
    # decoders keep (a larger one stops observing the connection). A header block is capped
    # by --max-header-bytes.
    http2_max_streams: int = 1024
    http2_max_table_size: int = 65536

    def __post_init__(self) -> None:
        if self.max_header_bytes < MIN_HEADER_BYTES:
            raise ValueError(f"max_header_bytes: expected at least {MIN_HEADER_BYTES} bytes, "
                             f"got {self.max_header_bytes}")
        if self.max_connections < 1:
            raise ValueError(f"max_connections: expected at least 1, got {self.max_connections}")
        if self.max_series < 1:
            raise ValueError(f"max_series: expected at least 1, got {self.max_series}")
        if self.max_pipelined < 1:
            raise ValueError(f"max_pipelined: expected at least 1 request, "
                             f"got {self.max_pipelined}")
        if self.max_held_head_bytes < self.max_header_bytes:
            raise ValueError(f"max_held_head_bytes: expected at least max_header_bytes "
                             f"({self.max_header_bytes}), got {self.max_held_head_bytes}")
        # Frozen for readers; the budget is the one mutable part, created once here.
        object.__setattr__(self, "held_heads", ByteBudget(self.max_held_head_bytes))
        if self.min_average_chunk_bytes < 0:
            raise ValueError(f"min_average_chunk_bytes: expected 0 (none) or more bytes, "
                             f"got {self.min_average_chunk_bytes}")
        if self.tcp_idle_timeout < 0:
            raise ValueError(f"tcp_idle_timeout: expected 0 (none) or more seconds, "
                             f"got {self.tcp_idle_timeout}")

    def timeouts(self) -> tuple[float, ...]:
        """The timeouts the sweeper checks (0 is "none")."""
        return tuple(t for t in (self.header_timeout, self.upstream_timeout, self.idle_timeout,
                                 self.tcp_idle_timeout) if t > 0)


@dataclass(frozen=True)
class PortConfig:
    """One fronted port: where clients connect, where their bytes go, and what they speak
    (`--protocol`, a value of protocols.PORT_PROTOCOLS)."""

    listen: tuple[str, int]
    upstream: Upstream
    protocol: str = "auto"


@dataclass
class AmbassadorConfig:
    ports: tuple[PortConfig, ...]
    admin: tuple[str, int] | None = ("0.0.0.0", 9901)
    service: str = "unknown_service"
    mode: str = "inbound"
    routes: RouteTemplater = field(default_factory=RouteTemplater)
    buckets: tuple[float, ...] = DEFAULT_BUCKETS
    record_sizes: bool = False
    upstream_ca: str | None = None
    connect_timeout: float = 5.0
    limits: Limits = field(default_factory=Limits)
    drain_delay: float = 5.0
    drain_timeout: float = 30.0
    keep_host: bool = False
    otlp_endpoint: str | None = None
    trace_sample_ratio: float = 0.01

    def __post_init__(self) -> None:
        if not self.ports:
            raise ValueError("ports: expected at least one --listen/--upstream pair")

    @property
    def upstream(self) -> Upstream:
        """The first port's upstream: outbound mode's one dependency."""
        return self.ports[0].upstream

    def authority(self) -> bytes:
        """host[:port] as a Host header names the upstream (the port only when not default)."""
        upstream = self.upstream
        default = 443 if upstream.tls else 80
        host = f"[{upstream.host}]" if ":" in upstream.host else upstream.host
        return (host if upstream.port == default else f"{host}:{upstream.port}").encode()
