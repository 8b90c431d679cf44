"""The ambassador process: listener, upstream connections, timeouts, admin port and drain."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Coroutine
from dataclasses import dataclass, field
from time import monotonic
from typing import TYPE_CHECKING

from redline.admin import AdminServer
from redline.exporters.exposition import new_registry
from redline.exporters.instruments import Counter, Gauge, InstrumentCollector
from redline.exporters.red import DEFAULT_BUCKETS, ClientRecorder, ServerRecorder
from redline.exporters.routes import RouteTemplater
from redline.sidecars.ambassador.connection import ClientSide, UpstreamSide, connect_error
from redline.sidecars.ambassador.observe import InboundObserver, Observer, OutboundObserver, Tracer
from redline.signals import until_stopped

if TYPE_CHECKING:
    from redline.sidecars.ambassador.tracing import OtelTracer

log = logging.getLogger("redline.ambassador")


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


@dataclass
class AmbassadorConfig:
    listen: tuple[str, int]
    upstream: Upstream
    admin: tuple[str, int] | None = ("0.0.0.0", 9901)
    service: str = "unknown_service"
    mode: str = "inbound"
    routes: RouteTemplater = field(default_factory=RouteTemplater)
    buckets: tuple[float, ...] = DEFAULT_BUCKETS
    record_sizes: bool = False
    upstream_ca: str | None = None
    upstream_timeout: float = 60.0
    connect_timeout: float = 5.0
    header_timeout: float = 10.0
    idle_timeout: float = 75.0
    drain_delay: float = 5.0
    drain_timeout: float = 30.0
    max_header_bytes: int = 65536
    keep_host: bool = False
    otlp_endpoint: str | None = None
    trace_sample_ratio: float = 0.01

    def authority(self) -> bytes:
        """host[:port] as a Host header names the upstream (the port only when not default)."""
        default = 443 if self.upstream.tls else 80
        host = self.upstream.host
        host = f"[{host}]" if ":" in host else host
        return (host if self.upstream.port == default else f"{host}:{self.upstream.port}").encode()


class _SelfMetrics:
    def __init__(self) -> None:
        self.opened = Counter("redline_ambassador_connections_opened",
                              "Connections opened, by side (client or upstream).", ("side",))
        self.open = Gauge("redline_ambassador_connections_open",
                          "Connections open now, by side (client or upstream).", ("side",))
        self.rejected = Counter(
            "redline_ambassador_rejected",
            "Requests or responses the ambassador could not forward, by reason.", ("reason",))
        self.retries = Counter(
            "redline_ambassador_upstream_retries",
            "Requests sent again on a new upstream connection because a keep-alive one closed "
            "before answering them.", ())
        self.ready = Gauge("redline_ambassador_draining",
                           "1 while the ambassador drains after SIGTERM.", ())
        for side in ("client", "upstream"):
            self.opened.cell((side,))
            self.open.cell((side,))
        self.ready.set((), 0)
        self.retries.cell(())

    def collector(self) -> InstrumentCollector:
        return InstrumentCollector([self.opened, self.open, self.rejected, self.retries,
                                    self.ready])


class Ambassador:
    def __init__(self, config: AmbassadorConfig) -> None:
        self.config = config
        self.tracer = _make_tracer(config)
        tracer: Tracer | None = self.tracer
        self.connections: set[ClientSide] = set()
        self.draining = False  # /readyz answers 503
        self.shutting_down = False  # listener closed; idle connections are closed
        self.metrics = _SelfMetrics()
        self.observer: Observer
        if config.mode == "outbound":
            client = ClientRecorder(config.service, config.buckets)
            self.observer = OutboundObserver(
                client, config.upstream.host, config.upstream.port, tracer,
                host_header=None if config.keep_host else config.authority())
            red_collector: InstrumentCollector = client.collector()
        else:
            server = ServerRecorder(config.service, config.buckets,
                                    record_sizes=config.record_sizes, routes=config.routes)
            self.observer = InboundObserver(server, config.routes, tracer)
            red_collector = server.collector()
        self.registry = new_registry("ambassador", red_collector, self.metrics.collector())
        self.ssl_context = self._ssl_context() if config.upstream.tls else None
        self.admin = AdminServer(self.registry, self.readiness)
        self.listen_port = 0
        self.admin_port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._ready_cache: tuple[float, bool, str] = (0.0, False, "")

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.config.upstream_ca)
        context.set_alpn_protocols(["http/1.1"])
        return context

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        host, port = self.config.listen
        self._server = await loop.create_server(
            lambda: ClientSide(self), host, port, reuse_address=True, backlog=2048)
        self.listen_port = self._server.sockets[0].getsockname()[1]
        if self.config.admin is not None:
            self.admin_port = await self.admin.start(*self.config.admin)
        self._spawn(self._sweep())
        log.info("ambassador listening", extra={
            "listen": f"{host}:{self.listen_port}", "admin": self.admin_port,
            "upstream": f"{self.config.upstream.host}:{self.config.upstream.port}",
            "mode": self.config.mode, "service": self.config.service})

    async def drain(self) -> None:
        """SIGTERM: stop being ready, keep serving while endpoints update, finish, exit."""
        config = self.config
        deadline = monotonic() + config.drain_timeout
        self.draining = True
        self.metrics.ready.set((), 1)
        log.info("draining", extra={"drain_delay": config.drain_delay,
                                    "open_connections": len(self.connections)})
        await asyncio.sleep(max(0.0, min(config.drain_delay, config.drain_timeout)))
        self.shutting_down = True
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            if connection.idle():
                connection.close()
        while self.connections and monotonic() < deadline:
            await asyncio.sleep(0.02)
        left = len(self.connections)
        for connection in list(self.connections):
            connection.abort()
        self.admin.alive = False
        await self.admin.close()
        for task in list(self._tasks):
            task.cancel()
        if self.tracer is not None:
            # Flush the spans still queued; the exporter blocks, so not on the event loop.
            await asyncio.get_running_loop().run_in_executor(None, self.tracer.shutdown)
        log.info("drained", extra={"aborted_connections": left})

    async def run_until_signalled(self) -> int:
        await self.start()
        await until_stopped()
        await self.drain()
        return 0

    # --- called by connections ---------------------------------------------------------------

    def connection_opened(self, connection: ClientSide) -> None:
        self.connections.add(connection)
        self.metrics.opened.inc(("client",))
        self.metrics.open.add(("client",), 1)

    def connection_closed(self, connection: ClientSide) -> None:
        self.connections.discard(connection)
        self.metrics.open.add(("client",), -1)

    def upstream_opened(self) -> None:
        self.metrics.opened.inc(("upstream",))
        self.metrics.open.add(("upstream",), 1)

    def upstream_gone(self) -> None:
        self.metrics.open.add(("upstream",), -1)

    def count_rejected(self, reason: str) -> None:
        self.metrics.rejected.inc((reason,))

    def count_retry(self) -> None:
        self.metrics.retries.inc(())

    def open_upstream(self, upstream: UpstreamSide) -> None:
        self._spawn(self._connect(upstream))

    async def _connect(self, upstream: UpstreamSide) -> None:
        loop = asyncio.get_running_loop()
        target = self.config.upstream
        try:
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: upstream, target.host, target.port, ssl=self.ssl_context,
                    server_hostname=target.host if self.ssl_context else None),
                self.config.connect_timeout)
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            error, detail = connect_error(exc)
            log.warning("upstream connect failed", extra={"error": error, "detail": detail})
            client = upstream.client
            if client.upstream is upstream and not client.closed:
                client.connect_failed(error, detail)
            return

    # --- readiness and timeouts --------------------------------------------------------------

    async def readiness(self) -> tuple[bool, str]:
        if self.draining:
            return False, "draining"
        now = monotonic()
        checked, ready, detail = self._ready_cache
        if now - checked < 1.0:
            return ready, detail
        target = self.config.upstream
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(target.host, target.port), 1.0)
            writer.close()
            ready, detail = True, "ready"
        except (OSError, TimeoutError) as exc:
            ready, detail = False, f"cannot reach upstream {target.host}:{target.port}: {exc}"
        self._ready_cache = (monotonic(), ready, detail)
        return ready, detail

    async def _sweep(self) -> None:
        config = self.config
        shortest = min(config.header_timeout, config.upstream_timeout, config.idle_timeout)
        interval = min(1.0, max(0.02, shortest / 10))
        while True:
            await asyncio.sleep(interval)
            now = monotonic()
            for connection in list(self.connections):
                if not connection.closed:
                    connection.check_timeouts(now)

    def _spawn(self, coroutine: Coroutine[object, object, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _make_tracer(config: AmbassadorConfig) -> OtelTracer | None:
    if not config.otlp_endpoint:
        return None
    from opentelemetry.trace import SpanKind

    from redline.sidecars.ambassador.tracing import OtelTracer

    outbound = config.mode == "outbound"
    return OtelTracer(
        config.service, config.otlp_endpoint, config.trace_sample_ratio,
        kind=SpanKind.CLIENT if outbound else SpanKind.SERVER,
        scheme="https" if outbound and config.upstream.tls else "http",
        server=(config.upstream.host, config.upstream.port) if outbound else None,
    )
