"""The demo's gRPC dependency: an inventory server whose methods behave as
behaviour.INVENTORY_METHODS says, and the client the demo app calls it with.

grpcio with generic handlers: requests and answers are bytes, so no protobuf code generation.
grpcio is a test dependency of redline, not a run-time one: `available()` says whether it is
installed, and the demo runs without its gRPC dependency when it is not.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from concurrent import futures
from typing import Any

from redline.config import ConfigError
from redline.demo.behaviour import INVENTORY_METHODS, INVENTORY_SERVICE, latency, outcome
from redline.signals import wait_for_stop

CALL_TIMEOUT_S = 2.0
MISSING = "grpcio is not installed (pip install grpcio)"


def available() -> bool:
    """grpcio imports (its native module too, not only a package of that name on the path)."""
    try:
        import grpc  # noqa: F401
    except ImportError:
        return False
    return True


def _grpc() -> Any:
    try:
        import grpc
    except ImportError:
        raise ConfigError(f"the demo's gRPC inventory needs grpcio, but {MISSING}") from None
    return grpc


def serve(host: str, port: int, stop: threading.Event, seed: int | None = None,
          listening: Callable[[], None] = lambda: None) -> None:
    """Serve the inventory on host:port until `stop` is set (`listening` is called once it
    listens); open calls then get a second to finish."""
    grpc = _grpc()
    rng = random.Random(seed)
    rng_lock = threading.Lock()

    def handler(method: Any) -> Any:
        def call(request: bytes, context: Any) -> bytes:
            with rng_lock:
                delay, status = latency(method, rng), outcome(method, rng)
            time.sleep(delay)
            if status != "OK":
                context.abort(grpc.StatusCode[status], f"{method.name}: {status.lower()}")
            return b"ok:" + request
        return grpc.unary_unary_rpc_method_handler(call)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        INVENTORY_SERVICE, {m.name: handler(m) for m in INVENTORY_METHODS}),))
    if server.add_insecure_port(f"{host}:{port}") == 0:
        raise ConfigError(f"--listen: cannot listen on {host}:{port}")
    server.start()
    listening()
    wait_for_stop(stop)  # not stop.wait(): SIGTERM may reach one of grpcio's threads
    server.stop(grace=1.0).wait()


class InventoryClient:
    """One channel to the inventory, shared by the app's threads (grpcio channels are)."""

    def __init__(self, target: str) -> None:
        self._grpc = _grpc()
        self._channel = self._grpc.insecure_channel(target)
        self._methods = {m.name: self._channel.unary_unary(f"/{INVENTORY_SERVICE}/{m.name}")
                         for m in INVENTORY_METHODS}

    def call(self, method: str, request: bytes = b"item") -> str:
        """The status name the call ended with: OK, NOT_FOUND, UNAVAILABLE (also when the
        inventory cannot be reached), DEADLINE_EXCEEDED after CALL_TIMEOUT_S, ..."""
        try:
            self._methods[method](request, timeout=CALL_TIMEOUT_S)
        except self._grpc.RpcError as exc:
            return str(exc.code().name)
        return "OK"

    def close(self) -> None:
        self._channel.close()
