"""The app behind the ambassador in the HTTP/2 abuse suite: a real h2c server (grpcio), in a
process of its own so that its threads do not share the test's GIL. It prints its port, then
serves until its stdin closes.

    python -m tests.abuse.grpc_upstream

`/abuse.Echo/Echo` answers the request's bytes; `/abuse.Echo/Big` answers BIG_RESPONSE_BYTES.
"""

from __future__ import annotations

import asyncio
import sys

import grpc
from grpc import aio

SERVICE = "abuse.Echo"
ECHO = f"/{SERVICE}/Echo"
BIG = f"/{SERVICE}/Big"
BIG_RESPONSE_BYTES = 10 * 1024 * 1024
# No proxy from the environment for the probes' channel, no message size cap for the big one.
OPTIONS = [("grpc.enable_http_proxy", 0), ("grpc.max_send_message_length", -1),
           ("grpc.max_receive_message_length", -1)]


async def _echo(request: bytes, context: aio.ServicerContext) -> bytes:
    return request


async def _big(request: bytes, context: aio.ServicerContext) -> bytes:
    return b"b" * BIG_RESPONSE_BYTES


async def serve() -> None:
    server = aio.server(options=OPTIONS)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {
        "Echo": grpc.unary_unary_rpc_method_handler(_echo),
        "Big": grpc.unary_unary_rpc_method_handler(_big)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await server.stop(0)


if __name__ == "__main__":
    asyncio.run(serve())
