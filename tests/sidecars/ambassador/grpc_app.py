"""A real gRPC app for the HTTP/2 tests: grpcio, no generated code (messages are raw bytes).

Service `test.Echo`:
- `Unary`: answers its request; a request `status:NAME[:detail]` fails with that status.
- `ServerStream`: a request `N:SIZE` is answered by N messages of SIZE bytes.
- `ClientStream`: answers the requests joined.
- `Bidi`: answers each request as it comes.
- `Sleep`: a request `MS` answers after MS milliseconds.
The health checking service (grpc.health.v1) answers SERVING.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2_grpc

SERVICE = "test.Echo"
MAX_MESSAGE = 32 * 1024 * 1024
OPTIONS = [("grpc.max_receive_message_length", MAX_MESSAGE),
           ("grpc.max_send_message_length", MAX_MESSAGE),
           ("grpc.enable_http_proxy", 0)]


def _identity(data: bytes) -> bytes:
    return data


def _unary(request: bytes, context: grpc.ServicerContext) -> bytes:
    if request.startswith(b"status:"):
        _, name, *detail = request.decode().split(":", 2)
        context.abort(grpc.StatusCode[name], detail[0] if detail else name)
    return request


def _server_stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
    count, size = (int(part) for part in request.split(b":"))
    for index in range(count):
        yield bytes([index % 256]) * size


def _client_stream(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
    return b"".join(requests)


def _bidi(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
    yield from requests


def _sleep(request: bytes, context: grpc.ServicerContext) -> bytes:
    time.sleep(int(request) / 1000)
    return request


def _handler(kind: str, behaviour: object) -> grpc.RpcMethodHandler:
    make = getattr(grpc, f"{kind}_rpc_method_handler")
    handler: grpc.RpcMethodHandler = make(behaviour, request_deserializer=_identity,
                                          response_serializer=_identity)
    return handler


class GrpcApp:
    """The app on a port of its own, in this process (grpcio serves from its threads)."""

    def __init__(self, credentials: grpc.ServerCredentials | None = None) -> None:
        """`credentials`: serve TLS (ALPN h2, as grpcio does) instead of h2c."""
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=128), options=OPTIONS,
                                  maximum_concurrent_rpcs=None)
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {
            "Unary": _handler("unary_unary", _unary),
            "ServerStream": _handler("unary_stream", _server_stream),
            "ClientStream": _handler("stream_unary", _client_stream),
            "Bidi": _handler("stream_stream", _bidi),
            "Sleep": _handler("unary_unary", _sleep),
        }),))
        health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), self.server)
        self.port = (self.server.add_insecure_port("127.0.0.1:0") if credentials is None
                     else self.server.add_secure_port("127.0.0.1:0", credentials))

    def __enter__(self) -> GrpcApp:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop(grace=None)


class Client:
    """A channel (one HTTP/2 connection) to a port, with a callable per method."""

    def __init__(self, port: int, credentials: grpc.ChannelCredentials | None = None,
                 host: str = "127.0.0.1") -> None:
        """`credentials`: a TLS channel (to `host`, the name the certificate carries)."""
        target = f"{host}:{port}"
        self.channel = (grpc.insecure_channel(target, options=OPTIONS) if credentials is None
                        else grpc.secure_channel(target, credentials, options=OPTIONS))
        channel, path = self.channel, f"/{SERVICE}/"
        codec = {"request_serializer": _identity, "response_deserializer": _identity}
        self.unary = channel.unary_unary(path + "Unary", **codec)
        self.sleep = channel.unary_unary(path + "Sleep", **codec)
        self.server_stream = channel.unary_stream(path + "ServerStream", **codec)
        self.client_stream = channel.stream_unary(path + "ClientStream", **codec)
        self.bidi = channel.stream_stream(path + "Bidi", **codec)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
