"""The ambassador process: it owns the listener and every connection it accepted, the
observer, the upstream connector, the self metrics, the timeout sweeper, the admin port and the
drain. Connections reach it only through `handler.ConnectionOwner`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from time import monotonic
from typing import TYPE_CHECKING

from redline.admin import AdminServer
from redline.exporters.exposition import new_registry
from redline.exporters.instruments import Counter, Gauge, InstrumentCollector
from redline.exporters.red import ClientRecorder, ServerRecorder
from redline.sidecars.ambassador.config import AmbassadorConfig
from redline.sidecars.ambassador.connector import Connector
from redline.sidecars.ambassador.handler import ConnectFailed, Connection
from redline.sidecars.ambassador.listener import HTTP1, Listener
from redline.sidecars.ambassador.observe import InboundObserver, Observer, OutboundObserver, Tracer
from redline.signals import until_stopped

if TYPE_CHECKING:
    from redline.sidecars.ambassador.tracing import OtelTracer

log = logging.getLogger("redline.ambassador")


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
        self.limits = config.limits
        self.tracer = _make_tracer(config)
        tracer: Tracer | None = self.tracer
        self.connections: set[Connection] = set()
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
        self.connector = Connector(config.upstream, config.connect_timeout, config.upstream_ca)
        # HTTP/1 is the only protocol handler so far (listener.py).
        self.listener = Listener(config.listen, HTTP1, self)
        self.admin = AdminServer(self.registry, self.readiness)
        self.listen_port = 0
        self.admin_port = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._ready_cache: tuple[float, bool, str] = (0.0, False, "")

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        host = self.config.listen[0]
        self.listen_port = await self.listener.start()
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
        self.listener.close()
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

    def connection_opened(self, connection: Connection) -> None:
        self.connections.add(connection)
        self.metrics.opened.inc(("client",))
        self.metrics.open.add(("client",), 1)

    def connection_closed(self, connection: Connection) -> None:
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

    def open_upstream(self, protocol: asyncio.Protocol, failed: ConnectFailed) -> None:
        self._spawn(self.connector.connect(protocol, failed))

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
        limits = self.limits
        shortest = min(limits.header_timeout, limits.upstream_timeout, limits.idle_timeout)
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
