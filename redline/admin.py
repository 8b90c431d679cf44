"""The admin endpoint every sidecar serves on its own port: /metrics, /healthz, /readyz.

A small asyncio HTTP/1.1 server with keep-alive (Prometheus reuses its connections). It is not
on the traffic path, so clarity wins over speed here; the metrics format follows the scraper's
Accept header (OpenMetrics carries exemplars).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry

from redline.exporters.exposition import render
from redline.sidecars.ambassador.http1 import ProtocolError, header_values, parse_request_head

log = logging.getLogger("redline.admin")
Readiness = Callable[[], Awaitable[tuple[bool, str]]]
READ_TIMEOUT = 30.0
# A render that held the event loop longer than this moves every later one to a thread: the
# loop also carries the sidecar's traffic (the ambassador's proxied requests), and a registry
# of 10,050 series took 2.5 s to render, stalling every connection meanwhile.
INLINE_RENDER_S = 0.01
# While a render runs in a thread it shares the GIL with the loop, which waits up to the
# interpreter's switch interval (5 ms) for it at every wake-up: a proxied request has several.
# Shorter while rendering: the loop gets the GIL back within this.
RENDER_SWITCH_INTERVAL_S = 0.0005


class AdminServer:
    def __init__(self, registry: CollectorRegistry, readiness: Readiness, *,
                 render_in_thread: bool = False) -> None:
        self.registry = registry
        self.readiness = readiness
        self.render_in_thread = render_in_thread  # from the first scrape on
        self.alive = True
        self._server: asyncio.Server | None = None
        self._idle: set[asyncio.StreamWriter] = set()  # connections waiting for a request
        # Renders in threads under way, by Accept header: scrapes arriving meanwhile (an HA
        # pair of Prometheus servers) share one instead of rendering again beside it.
        self._renders: dict[str, asyncio.Future[tuple[bytes, str]]] = {}
        self._switch_interval = sys.getswitchinterval()
        self._closing = False

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._serve, host, port, reuse_address=True)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening and end every idle connection; one serving a request ends after its
        answer. Prometheus keeps its scrape connection open between scrapes: closing it here
        lets its handler end normally, instead of being cancelled when the loop stops (asyncio
        then logs the cancelled task as an error)."""
        self._closing = True
        if self._server is not None:
            self._server.close()
            for writer in list(self._idle):
                writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while not self._closing:
                self._idle.add(writer)
                try:
                    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
                        ConnectionError):
                    return
                finally:
                    self._idle.discard(writer)
                try:
                    head = parse_request_head(raw)
                except ProtocolError as exc:
                    await self._send(writer, 400, b"text/plain", f"{exc}\n".encode(), close=True)
                    return
                if head.content_length or head.chunked:
                    await self._send(writer, 400, b"text/plain", b"no request bodies here\n",
                                     close=True)
                    return
                lowered = raw.lower()
                accept = header_values(lowered, raw, b"accept:")
                status, content_type, body = await self._respond(
                    head.method, head.target.split(b"?", 1)[0],
                    accept[0].decode("latin-1") if accept else "")
                await self._send(writer, status, content_type,
                                 b"" if head.method == b"HEAD" else body,
                                 close=head.close or self._closing, length=len(body))
                if head.close:
                    return
        except asyncio.CancelledError:
            return  # the loop is stopping: nothing to report for a scrape connection
        except Exception:  # one bad scrape must never take the sidecar down
            log.exception("admin request failed")
        finally:
            writer.close()

    async def _respond(self, method: bytes, path: bytes, accept: str
                       ) -> tuple[int, bytes, bytes]:
        if method not in (b"GET", b"HEAD"):
            return 405, b"text/plain", b"only GET and HEAD\n"
        if path == b"/metrics":
            # In a thread where collectors fetch from the app (adapter --scrape, --json-url),
            # or once a render proved slow (a large registry): those must not stall the event
            # loop. Small registries render inline: no thread hop, and no per-thread malloc
            # arena in the sidecar's memory. (Instruments lock their children for scrapes
            # from any thread.)
            if self.render_in_thread:
                body, content_type = await self._render_in_thread(accept)
            else:
                started = time.perf_counter()
                body, content_type = render(self.registry, accept)
                if time.perf_counter() - started > INLINE_RENDER_S:
                    self.render_in_thread = True
                    log.info("rendering /metrics in a thread from now on",
                             extra={"render_seconds": round(time.perf_counter() - started, 3)})
            return 200, content_type.encode(), body
        if path == b"/healthz":
            return (200, b"text/plain", b"ok\n") if self.alive else (
                503, b"text/plain", b"shutting down\n")
        if path == b"/readyz":
            ready, detail = await self.readiness()
            return (200 if ready else 503), b"text/plain", f"{detail}\n".encode()
        return 404, b"text/plain", b"not found; try /metrics, /healthz or /readyz\n"

    async def _render_in_thread(self, accept: str) -> tuple[bytes, str]:
        shared = self._renders.get(accept)
        if shared is None:
            shared = self._renders[accept] = asyncio.ensure_future(self._render(accept))
        # A scraper that gives up must not cancel the render the others wait for.
        return await asyncio.shield(shared)

    async def _render(self, accept: str) -> tuple[bytes, str]:
        if not self._renders.keys() - {accept}:  # the first render under way
            sys.setswitchinterval(RENDER_SWITCH_INTERVAL_S)
        try:
            return await asyncio.to_thread(render, self.registry, accept)
        finally:
            del self._renders[accept]
            if not self._renders:
                sys.setswitchinterval(self._switch_interval)

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, status: int, content_type: bytes, body: bytes,
                    *, close: bool, length: int | None = None) -> None:
        reason = {200: b"OK", 400: b"Bad Request", 404: b"Not Found",
                  405: b"Method Not Allowed", 503: b"Service Unavailable"}[status]
        writer.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n%s\r\n"
            % (status, reason, content_type, len(body) if length is None else length,
               b"connection: close\r\n" if close else b"")
            + body
        )
        await writer.drain()
