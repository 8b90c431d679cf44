"""A process that runs exchanges and log blocks through redline's hot modules and answers with
every byte forwarded and every metric sample: one JSON case per stdin line, one JSON result
per stdout line. Run twice, with and without REDLINE_PURE=1, it lets a test compare the
compiled build with the pure one on the same inputs (test_same_as_pure.py).

Bytes travel as latin-1 strings (every byte one character). The clock is a counter, so
durations are the same in both processes: what differs can only be the modules.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Iterable, Iterator

from redline import compiled


class Clock:
    """Monotonic time that advances 1 ms per reading, the same in every run."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


# Before the modules that bind `from time import monotonic` are imported.
time.monotonic = Clock()
compiled.force_pure()

from prometheus_client.registry import Collector  # noqa: E402

from redline.exporters.red import ServerRecorder  # noqa: E402
from redline.exporters.routes import RouteTemplater  # noqa: E402
from redline.sidecars.adapter.formats import nginx_format  # noqa: E402
from redline.sidecars.adapter.pipeline import LogPipeline  # noqa: E402
from redline.sidecars.ambassador.config import (  # noqa: E402
    AmbassadorConfig,
    PortConfig,
    Upstream,
)
from redline.sidecars.ambassador.http1_client import ClientSide  # noqa: E402
from redline.sidecars.ambassador.http1_upstream import UpstreamSide  # noqa: E402
from redline.sidecars.ambassador.proxy import Ambassador  # noqa: E402

# Samples that describe the process, not the inputs.
_PROCESS_SAMPLES = ("process_", "python_", "redline_build_info")


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def writelines(self, chunks: Iterable[bytes | bytearray | memoryview]) -> None:
        for chunk in chunks:
            self.write(chunk)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


def samples(collectors: Iterable[Collector]) -> list[list[object]]:
    found: list[list[object]] = []
    for collector in collectors:
        for metric in collector.collect():
            for sample in metric.samples:
                if not sample.name.startswith(_PROCESS_SAMPLES):
                    found.append([sample.name, sorted(sample.labels.items()), sample.value])
    return sorted(found, key=repr)


def run_exchanges(exchanges: list[list[list[str]]]) -> dict[str, object]:
    """Each exchange: the client's chunks, then the upstream's, fed in that order."""
    # Body sizes recorded too (--record-sizes), so that their counting is compared as well.
    proxy = Ambassador(AmbassadorConfig(
        ports=(PortConfig(("127.0.0.1", 0), Upstream("127.0.0.1", 1), "http1"),), admin=None,
        record_sizes=True))
    port = proxy.ports[0]
    client_transport, upstream_transport = RecordingTransport(), RecordingTransport()
    client = ClientSide(port)
    client.connection_made(client_transport)
    upstream = UpstreamSide(client, client.pending, port)  # as if the proxy had connected it
    upstream.connection_made(upstream_transport)
    client.upstream = upstream
    error = ""
    try:
        for client_chunks, upstream_chunks in exchanges:
            for chunk in client_chunks:
                client.data_received(chunk.encode("latin-1"))
            for chunk in upstream_chunks:
                upstream.data_received(chunk.encode("latin-1"))
    except Exception as exc:  # the same exception in both builds is the same behaviour
        error = f"{type(exc).__name__}: {exc}"
    return {"to_upstream": upstream_transport.written.decode("latin-1"),
            "to_client": client_transport.written.decode("latin-1"),
            "error": error, "samples": samples([proxy.registry])}


def run_log(blocks: list[str]) -> dict[str, object]:
    routes = RouteTemplater()
    recorder = ServerRecorder("svc", routes=routes)
    pipeline = LogPipeline(nginx_format(), recorder, routes)
    for block in blocks:
        pipeline.feed(block)
    return {"lines": pipeline.lines, "parse_errors": pipeline.parse_errors,
            "samples": samples([recorder.collector()])}


def answers(lines: Iterable[str]) -> Iterator[dict[str, object]]:
    yield {"compiled": list(compiled.compiled_modules())}
    for line in lines:
        case = json.loads(line)
        if "exchanges" in case:
            yield run_exchanges(case["exchanges"])
        else:
            yield run_log(case["log_blocks"])


def main() -> None:
    logging.disable(logging.CRITICAL)  # bad input is logged; the answers carry what matters
    for answer in answers(sys.stdin):
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
