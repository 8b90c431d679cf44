"""The admin endpoint every sidecar serves on its own port: /metrics, /healthz, /readyz.

A small asyncio HTTP/1.1 server with keep-alive (Prometheus reuses its connections). It is not
on the traffic path, but it shares the event loop with it: /metrics renders a piece at a time,
yielding to the loop between pieces, so a large registry never stalls proxied requests. The
metrics format follows the scraper's Accept header (OpenMetrics carries exemplars).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from redline.exporters.exposition import collectors_of, render, render_by_encoder
from redline.exporters.negotiate import negotiate
from redline.exporters.sliced import pieces
from redline.exporters.textformat import FallbackError
from redline.sidecars.ambassador.http1 import ProtocolError, header_values, parse_request_head

if TYPE_CHECKING:  # the ambassador imports prometheus_client's package only to fall back on it
    from prometheus_client.registry import Collector

log = logging.getLogger("redline.admin")
Readiness = Callable[[], Awaitable[tuple[bool, str]]]
Body = list[bytes]  # a response body in pieces, written without joining them first
Renderer = Callable[["Collector", str], tuple[bytes, str]]
READ_TIMEOUT = 30.0
# /metrics renders on the event loop, which also carries the sidecar's traffic (the
# ambassador's proxied requests): a render yields to the loop after this much work, so a
# connection waits at most about this long per wake-up. A registry of 10,050 series took 2.5 s
# to render in one go, stalling every connection meanwhile (in a thread too: the GIL).
RENDER_SLICE_S = 0.0005
# A body is written this much at a time, yielding to the loop between (what the socket does
# not take waits in the transport until it drains): a 30 MB body written in one turn of the
# loop held it for tens of milliseconds.
WRITE_BATCH_BYTES = 64 * 1024
# A body whose render took REUSE_AFTER_S or more answers the scrapes that follow it for
# REUSE_FACTOR times its render time: scrapers looping back to back cost one render per
# window, so /metrics keeps the loop rendering a third of the time at most (it was all of it).
# Only slow renders are reused (10,000 series: about a second): a small registry's scrape
# stays fresh, as a scrape right after a change expects. Not with collectors that fetch from
# the app: each scrape is a fetch there.
REUSE_AFTER_S = 0.1
REUSE_FACTOR = 2.0
# While a render runs in a thread it shares the GIL with the loop, which waits up to the
# interpreter's switch interval (5 ms) for it at every wake-up: a proxied request has several.
# Shorter while rendering: the loop gets the GIL back within this.
RENDER_SWITCH_INTERVAL_S = 0.0005


class AdminServer:
    def __init__(self, registry: Collector, readiness: Readiness, *,
                 render_in_thread: bool = False) -> None:
        self.registry = registry
        self.readiness = readiness
        # Collectors that fetch from the app (adapter --scrape, --json-url) must render in
        # a thread: they block on the network, which no slicing interrupts.
        self.render_in_thread = render_in_thread
        self.alive = True
        self._server: asyncio.Server | None = None
        self._idle: set[asyncio.StreamWriter] = set()  # connections waiting for a request
        # Renders under way, by Accept header: scrapes arriving meanwhile (an HA pair of
        # Prometheus servers) share one instead of rendering again beside it.
        self._renders: dict[str, asyncio.Future[tuple[Body, str]]] = {}
        # Bodies rendered lately, by Accept header: until when they answer, what they are.
        self._recent: dict[str, tuple[float, Body, str]] = {}
        self._switch_interval = sys.getswitchinterval()
        self._threads = 0  # renders in threads under way
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
                    await self._send(writer, 400, b"text/plain", [f"{exc}\n".encode()],
                                     close=True)
                    return
                if head.content_length or head.chunked:
                    await self._send(writer, 400, b"text/plain", [b"no request bodies here\n"],
                                     close=True)
                    return
                lowered = raw.lower()
                accept = header_values(lowered, raw, b"accept:")
                status, content_type, body = await self._respond(
                    head.method, head.target.split(b"?", 1)[0],
                    accept[0].decode("latin-1") if accept else "")
                await self._send(writer, status, content_type,
                                 [] if head.method == b"HEAD" else body,
                                 close=head.close or self._closing,
                                 length=sum(map(len, body)))
                if head.close:
                    return
        except asyncio.CancelledError:
            return  # the loop is stopping: nothing to report for a scrape connection
        except Exception:  # one bad scrape must never take the sidecar down
            log.exception("admin request failed")
        finally:
            writer.close()

    async def _respond(self, method: bytes, path: bytes, accept: str
                       ) -> tuple[int, bytes, Body]:
        if method not in (b"GET", b"HEAD"):
            return 405, b"text/plain", [b"only GET and HEAD\n"]
        if path == b"/metrics":
            # Renders are shared and reused by the format negotiated, not by the raw header:
            # scrapers asking alike in different words (q-values, spacing) must not each cost a
            # render and a body held in memory. The content type chosen selects that format
            # again when given as the Accept header.
            accept = negotiate(accept).content_type
            recent = self._recent.get(accept)
            if recent is not None and time.monotonic() < recent[0]:
                return 200, recent[2].encode(), recent[1]
            shared = self._renders.get(accept)
            if shared is None:
                shared = self._renders[accept] = asyncio.ensure_future(self._render(accept))
            # A scraper that gives up must not cancel the render the others wait for.
            body, content_type = await asyncio.shield(shared)
            return 200, content_type.encode(), body
        if path == b"/healthz":
            return (200, b"text/plain", [b"ok\n"]) if self.alive else (
                503, b"text/plain", [b"shutting down\n"])
        if path == b"/readyz":
            ready, detail = await self.readiness()
            return (200 if ready else 503), b"text/plain", [f"{detail}\n".encode()]
        return 404, b"text/plain", [b"not found; try /metrics, /healthz or /readyz\n"]

    async def _render(self, accept: str) -> tuple[Body, str]:
        started = time.monotonic()
        try:
            if not self.render_in_thread:
                try:
                    rendered = await self._render_on_loop(accept)
                except FallbackError:  # names or samples only prometheus_client writes alike
                    rendered = await self._render_in_thread(render_by_encoder, accept)
            else:
                rendered = await self._render_in_thread(render, accept)
        finally:
            del self._renders[accept]
        now = time.monotonic()
        if now - started < REUSE_AFTER_S or self.render_in_thread:
            return rendered
        window = REUSE_FACTOR * (now - started)
        self._recent[accept] = (now + window, *rendered)
        # Not held past its window: a large body is megabytes of the sidecar's memory.
        asyncio.get_running_loop().call_later(window, self._forget, accept, now + window)
        return rendered

    def _forget(self, accept: str, until: float) -> None:
        recent = self._recent.get(accept)
        if recent is not None and recent[0] == until:  # not replaced by a later render
            del self._recent[accept]

    async def _render_on_loop(self, accept: str) -> tuple[Body, str]:
        """Render a piece at a time, yielding to the loop after RENDER_SLICE_S of work."""
        parts, content_type = pieces(collectors_of(self.registry), accept)
        body: Body = []
        clock = time.perf_counter
        deadline = clock() + RENDER_SLICE_S
        for piece in parts:
            body.append(piece)
            if clock() >= deadline:
                await asyncio.sleep(0)
                deadline = clock() + RENDER_SLICE_S
        return body, content_type

    async def _render_in_thread(self, renderer: Renderer, accept: str) -> tuple[Body, str]:
        self._threads += 1
        if self._threads == 1:
            sys.setswitchinterval(RENDER_SWITCH_INTERVAL_S)
        try:
            body, content_type = await asyncio.to_thread(renderer, self.registry, accept)
            return [body], content_type
        finally:
            self._threads -= 1
            if not self._threads:
                sys.setswitchinterval(self._switch_interval)

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, status: int, content_type: bytes, body: Body,
                    *, close: bool, length: int | None = None) -> None:
        reason = {200: b"OK", 400: b"Bad Request", 404: b"Not Found",
                  405: b"Method Not Allowed", 503: b"Service Unavailable"}[status]
        size = sum(map(len, body)) if length is None else length
        writer.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n%s\r\n"
            % (status, reason, content_type, size, b"connection: close\r\n" if close else b"")
        )
        batch: Body = []
        batched = 0
        for piece in body:
            batch.append(piece)
            batched += len(piece)
            if batched >= WRITE_BATCH_BYTES:
                writer.writelines(batch)  # uvloop writes a list without joining it
                await writer.drain()
                # drain() returns at once while the socket takes the bytes: without this a
                # 30 MB body went out in one turn of the loop, stalling it for tens of ms.
                await asyncio.sleep(0)
                batch, batched = [], 0
        writer.writelines(batch)
        await writer.drain()
