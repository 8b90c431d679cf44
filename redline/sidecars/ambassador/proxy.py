"""The ambassador process: it owns its ports (port.py: a listener and an upstream each) and
every connection they accepted, the observer, the RED and TCP metrics, the self metrics, the
timeout sweeper, the admin port and the drain. Connections reach it only through their port,
a `handler.ConnectionOwner`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from time import monotonic
from typing import TYPE_CHECKING

from redline.admin import AdminServer
from redline.exporters.exposition import new_registry
from redline.exporters.instruments import Counter, Gauge, InstrumentCollector, SeriesCap
from redline.exporters.red import ClientRecorder, ServerRecorder
from redline.exporters.rpc import RpcClientRecorder, RpcServerRecorder
from redline.exporters.tcp import TcpRecorder
from redline.sidecars.ambassador.config import AmbassadorConfig, Upstream
from redline.sidecars.ambassador.connector import Connector
from redline.sidecars.ambassador.h2record import StreamRecorder
from redline.sidecars.ambassador.handler import Connection
from redline.sidecars.ambassador.observe import InboundObserver, Observer, OutboundObserver, Tracer
from redline.sidecars.ambassador.port import Port
from redline.signals import stop_event

if TYPE_CHECKING:
    from redline.sidecars.ambassador.tracing import OtelTracer

log = logging.getLogger("redline.ambassador")

# TLS server names (SNI) are labels of a self metric: a client chooses them, so they are
# capped; names past the cap are counted as OTHER_SERVER_NAME (as routes past theirs).
MAX_SERVER_NAMES = 100
OTHER_SERVER_NAME = "{other}"
# The `limit` label values of redline_ambassador_limits_total, shown from 0.
LIMITS_COUNTED = ("pipeline_full", "client_stalled", "max_connections", "small_chunks",
                  "held_head_bytes", "tunnel_idle", "http2_streams_per_read",
                  "http2_rapid_reset")


class _SelfMetrics:
    def __init__(self) -> None:
        self.opened = Counter("redline_ambassador_connections_opened",
                              "Connections opened, by side (client or upstream).", ("side",))
        self.open = Gauge("redline_ambassador_connections_open",
                          "Connections open now, by side (client or upstream).", ("side",))
        self.rejected = Counter(
            "redline_ambassador_rejected",
            "Requests or responses the ambassador could not forward, by reason.", ("reason",))
        self.limits = Counter(
            "redline_ambassador_limits",
            "Times a connection reached a limit and was held back or closed, by limit "
            "(docs/ambassador.md, Limits).", ("limit",))
        self.retries = Counter(
            "redline_ambassador_upstream_retries",
            "Requests sent again on a new upstream connection because a keep-alive one closed "
            "before answering them.", ())
        self.ready = Gauge("redline_ambassador_draining",
                           "1 while the ambassador drains after SIGTERM.", ())
        self.server_names = Counter(
            "redline_ambassador_tls_connections",
            f"TLS connections passed through, by the server name (SNI) their client asked "
            f"for (empty: none); past {MAX_SERVER_NAMES} names, new ones count as "
            f"{OTHER_SERVER_NAME}.", ("server_name",))
        for side in ("client", "upstream"):
            self.opened.cell((side,))
            self.open.cell((side,))
        self.ready.set((), 0)
        self.retries.cell(())
        for limit in LIMITS_COUNTED:
            self.limits.cell((limit,))
        self._names_seen: set[str] = set()

    def collector(self) -> InstrumentCollector:
        return InstrumentCollector([self.opened, self.open, self.rejected, self.limits,
                                    self.retries, self.ready, self.server_names])

    def server_name_seen(self, server_name: str) -> None:
        if server_name not in self._names_seen:
            if len(self._names_seen) >= MAX_SERVER_NAMES:
                server_name = OTHER_SERVER_NAME
            else:
                self._names_seen.add(server_name)
        self.server_names.inc((server_name,))


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
        self.tcp = TcpRecorder(config.service)
        self.observer: Observer
        collectors: list[InstrumentCollector]
        if config.mode == "outbound":
            client = ClientRecorder(config.service, config.buckets)
            host, port = config.upstream.host, config.upstream.port
            rpc_client = RpcClientRecorder(config.service, host, port, config.buckets,
                                           max_methods=config.routes.max_routes)
            calls = StreamRecorder.outbound(client, rpc_client, host, port, self.tracer)
            self.observer = OutboundObserver(
                client, host, port, tracer,
                host_header=None if config.keep_host else config.authority(), http2=calls)
            collectors = [client.collector(), rpc_client.collector(), calls.collector()]
        else:
            server = ServerRecorder(config.service, config.buckets,
                                    record_sizes=config.record_sizes, routes=config.routes)
            # gRPC methods are capped as routes are, by the routes file's cap.
            rpc = RpcServerRecorder(config.service, config.buckets,
                                    max_methods=config.routes.max_routes)
            http2 = StreamRecorder(server, rpc, config.routes, self.tracer)
            self.observer = InboundObserver(server, config.routes, tracer, http2)
            collectors = [server.collector(), rpc.collector(), http2.collector()]
        # One cap on the series of each family of the traffic's metrics; folds are counted
        # (`max_series` shown from 0 by the cap).
        series_cap = SeriesCap(config.limits.max_series, self.metrics.limits, ("max_series",))
        for collector in (*collectors, self.tcp.collector()):
            collector.cap_series(series_cap)
        self.registry = new_registry("ambassador", *collectors, self.tcp.collector(),
                                     self.metrics.collector())
        self.ports = [
            Port(port, self, Connector(port.upstream, config.connect_timeout, config.upstream_ca),
                 self._spawn)
            for port in config.ports]
        self.admin = AdminServer(self.registry, self.readiness)
        self.listen_ports: list[int] = []
        self.admin_port = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._ready_cache: tuple[float, bool, str] = (0.0, False, "")

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def listen_port(self) -> int:
        """The first port's (the only one of most ambassadors)."""
        return self.listen_ports[0] if self.listen_ports else 0

    async def start(self) -> None:
        self.listen_ports = [await port.start() for port in self.ports]
        if self.config.admin is not None:
            self.admin_port = await self.admin.start(*self.config.admin)
        self._spawn(self._sweep())
        ports = [{"listen": f"{port.config.listen[0]}:{number}",
                  "upstream": _address(port.config.upstream),
                  "protocol": port.config.protocol}
                 for port, number in zip(self.ports, self.listen_ports, strict=True)]
        log.info("ambassador listening", extra={
            "listen": ports[0]["listen"], "upstream": ports[0]["upstream"],
            "protocol": ports[0]["protocol"], "ports": ports, "admin": self.admin_port,
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
        for port in self.ports:
            port.shutting_down = True
            port.close()
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
        # Signals are handled before "listening" is logged: a SIGTERM right after it drains.
        stop = stop_event()
        await self.start()
        await stop.wait()
        await self.drain()
        return 0

    # --- called by connections ---------------------------------------------------------------

    def admits_connection(self) -> bool:
        if len(self.connections) < self.limits.max_connections:
            return True
        self.metrics.limits.inc(("max_connections",))
        return False

    def connection_opened(self, connection: Connection) -> None:
        self.connections.add(connection)
        self.metrics.opened.inc(("client",))
        self.metrics.open.add(("client",), 1)

    def connection_replaced(self, old: Connection, new: Connection) -> None:
        self.connections.discard(old)
        self.connections.add(new)

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

    def count_limit(self, limit: str) -> None:
        self.metrics.limits.inc((limit,))

    def count_retry(self) -> None:
        self.metrics.retries.inc(())

    def server_name_seen(self, server_name: str) -> None:
        self.metrics.server_name_seen(server_name)

    # --- readiness and timeouts --------------------------------------------------------------

    async def readiness(self) -> tuple[bool, str]:
        if self.draining:
            return False, "draining"
        now = monotonic()
        checked, ready, detail = self._ready_cache
        if now - checked < 1.0:
            return ready, detail
        upstreams = list(dict.fromkeys(port.config.upstream for port in self.ports))
        failures = [failure for failure in await asyncio.gather(*map(_unreachable, upstreams))
                    if failure]
        # Ready when any upstream answers: the app has started. Requiring every one would
        # keep the whole pod out of its Services for one port the app does not listen on
        # (declared but unused ports exist), which the pod without the ambassador is not.
        ready = len(failures) < len(upstreams)
        detail = "; ".join(["ready" if ready else "not ready", *failures])
        self._ready_cache = (monotonic(), ready, detail)
        return ready, detail

    async def _sweep(self) -> None:
        """Timeouts, and the bytes counted by open connections into the TCP metrics: so a
        long-lived connection's bytes show within a second."""
        interval = min(1.0, max(0.02, min(self.limits.timeouts()) / 10))
        while True:
            await asyncio.sleep(interval)
            now = monotonic()
            for connection in list(self.connections):
                if not connection.closed:
                    connection.check_timeouts(now)
            self.tcp.flush()

    def _spawn(self, coroutine: Coroutine[object, object, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _address(upstream: Upstream) -> str:
    host = f"[{upstream.host}]" if ":" in upstream.host else upstream.host
    return f"{'https://' if upstream.tls else ''}{host}:{upstream.port}"


async def _unreachable(upstream: Upstream) -> str:
    """Why `upstream` does not accept a TCP connection now; "" when it does."""
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(upstream.host, upstream.port), 1.0)
        writer.close()
        return ""
    except (OSError, TimeoutError) as exc:
        return f"cannot reach upstream {_address(upstream)}: {exc}"


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
