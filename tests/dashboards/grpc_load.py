"""Real gRPC for the end-to-end tests: a grpcio server with a generic bytes handler (no protobuf
code generation) and a grpcio client calling it with a known mix of statuses, through the
ambassador (`--protocol h2c`), which records `rpc_server_duration_seconds`.

The server answers each call with the status its request names (`b"OK"`, `b"NOT_FOUND"`,
`b"INTERNAL"`, ...), so the test knows what every series must hold. The ambassador observes
gRPC inbound only so far, so the client records its own calls in `rpc_client_duration_seconds`
with prometheus_client, as an app instrumented with OpenTelemetry does (DESIGN.md's names),
on a /metrics port of its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Histogram, start_http_server

from redline.exporters.red import DEFAULT_BUCKETS
from tests.process import free_port

SERVICE = "shop.Catalog"
# The calls the client makes, in turn: (method, the status asked for). NOT_FOUND is an answer,
# not an error; INTERNAL and UNAVAILABLE are the server's fault.
MIX: tuple[tuple[str, str], ...] = (
    ("GetItem", "OK"), ("GetItem", "OK"), ("GetItem", "NOT_FOUND"), ("Reserve", "OK"),
    ("GetItem", "OK"), ("Reserve", "INTERNAL"), ("GetItem", "OK"), ("Reserve", "UNAVAILABLE"),
)
SERVER_FAULTS = {"UNKNOWN", "DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE",
                 "DATA_LOSS"}


LABELS = ["service_name", "rpc_system", "rpc_service", "rpc_method", "rpc_grpc_status_code",
          "error_type"]


@dataclass
class GrpcService:
    port: int          # the grpcio server: put an ambassador in front of it
    metrics_port: int  # the client's own /metrics
    client: Histogram  # rpc_client_duration_seconds, which `call` records


def _labels(service_name: str, method: str, status: grpc.StatusCode) -> list[str]:
    return [service_name, "grpc", SERVICE, method, str(status.value[0]),
            status.name if status.name in SERVER_FAULTS else ""]


def _handler() -> grpc.GenericRpcHandler:
    def answer(method: str) -> Any:
        def call(request: bytes, context: grpc.ServicerContext) -> bytes:
            status = grpc.StatusCode[request.decode("ascii")]
            if status is not grpc.StatusCode.OK:
                context.abort(status, f"asked for {status.name}")
            return b"answer to " + request
        return grpc.unary_unary_rpc_method_handler(call)

    return grpc.method_handlers_generic_handler(SERVICE, {
        method: answer(method) for method in {method for method, _ in MIX}})


@contextmanager
def grpc_service() -> Iterator[GrpcService]:
    """The server on loopback and its client's /metrics, for the `with` block."""
    registry = CollectorRegistry()
    client = Histogram("rpc_client_duration_seconds", "Duration of gRPC client calls.",
                       [*LABELS, "server_address", "server_port"], registry=registry,
                       buckets=DEFAULT_BUCKETS)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((_handler(),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    metrics_port = free_port()
    http_server, thread = start_http_server(metrics_port, addr="127.0.0.1", registry=registry)
    try:
        yield GrpcService(port, metrics_port, client)
    finally:
        http_server.shutdown()
        http_server.server_close()
        thread.join(5)
        server.stop(grace=None)


def call(service: GrpcService, port: int, seconds: float, stop: threading.Event | None = None,
         service_name: str = "shop") -> dict[str, int]:
    """MIX in turn on one channel to 127.0.0.1:`port` (the ambassador in front of `service`)
    for at most `seconds`, each call recorded as `service_name`'s client; the count of each
    status the client saw."""
    seen: dict[str, int] = {}
    deadline = time.monotonic() + seconds
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stubs = {method: channel.unary_unary(f"/{SERVICE}/{method}")
                 for method in {method for method, _ in MIX}}
        turn = 0
        while time.monotonic() < deadline and not (stop and stop.is_set()):
            method, status = MIX[turn % len(MIX)]
            started = time.perf_counter()
            try:
                stubs[method](status.encode("ascii"), timeout=5)
                outcome = grpc.StatusCode.OK
            except grpc.RpcError as exc:
                outcome = exc.code()
            service.client.labels(*_labels(service_name, method, outcome), "127.0.0.1",
                                  str(port)).observe(time.perf_counter() - started)
            seen[outcome.name] = seen.get(outcome.name, 0) + 1
            turn += 1
            time.sleep(0.01)
    return seen
