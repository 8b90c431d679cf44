"""The RPC schema: gRPC calls' RED metrics, named as Beyla and OpenTelemetry's RPC semantic
conventions name them (`rpc.server.duration` -> `rpc_server_duration_seconds`,
`rpc.client.duration` -> `rpc_client_duration_seconds`, the latter with the dependency's
`server_address` and `server_port`), so dashboards and alerts serve either source. Built like
red.py's HTTP recorders, on the same instruments.

A call's status is the one its client sees (`grpc_status`): `grpc-status` from the trailers or
a Trailers-Only response, else gRPC's mapping of the HTTP status. Server-fault statuses are
errors, with their name as `error_type`; client-fault ones (NOT_FOUND, INVALID_ARGUMENT, ...)
are not, as a 4xx is not. A call that ended without a status (reset, connection lost) has the
transport `error_type` and an empty status.

`rpc_service` and `rpc_method` come from the path `/package.Service/Method`. Clients choose
paths, so the distinct (service, method) pairs are capped per service as routes are: past the
cap, new pairs are recorded as `{other}` and counted in redline_rpc_method_overflow_total.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from typing import cast

from redline.exporters.instruments import Counter, Histogram, InstrumentCollector, LabelValues
from redline.exporters.red import (
    DEFAULT_BUCKETS,
    ERROR_TYPE,
    OTHER_ERROR,
    RPC_CLIENT_DURATION,
    RPC_SERVER_DURATION,
    SERVER_ADDRESS,
    SERVER_PORT,
    SERVICE,
    TRANSPORT_ERRORS,
)
from redline.exporters.routes import DEFAULT_MAX_ROUTES

RPC_SYSTEM = "rpc_system"
RPC_SERVICE = "rpc_service"
RPC_METHOD = "rpc_method"
GRPC_STATUS = "rpc_grpc_status_code"
RPC_LABELS = (SERVICE, RPC_SYSTEM, RPC_SERVICE, RPC_METHOD, GRPC_STATUS, ERROR_TYPE)
RPC_CLIENT_LABELS = (*RPC_LABELS, SERVER_ADDRESS, SERVER_PORT)
METHOD_OVERFLOW = "redline_rpc_method_overflow_total"
OTHER = "{other}"  # rpc_service and rpc_method past the cap, or of a path that names none

# gRPC status codes by number (grpc/doc/statuscodes.md).
STATUS_NAMES = (
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
    "UNAUTHENTICATED",
)
UNKNOWN = 2
DEADLINE_EXCEEDED = 4
INTERNAL = 13
UNAVAILABLE = 14
# The statuses that are the server's fault (DESIGN.md): errors, labelled with their name.
SERVER_FAULTS = frozenset({2, 4, 12, 13, 14, 15})
# How gRPC clients read a response without grpc-status (grpc/doc/http-grpc-status-mapping.md).
_HTTP_TO_GRPC = {400: INTERNAL, 401: 16, 403: 7, 404: 12, 429: UNAVAILABLE, 502: UNAVAILABLE,
                 503: UNAVAILABLE, 504: UNAVAILABLE}

_PATH = re.compile(rb"/([\x21-\x2e\x30-\x7e]+)/([\x21-\x2e\x30-\x7e]+)")  # printable, no other '/'

_Key = tuple[str, str, int | None, str]  # rpc service, rpc method, status, error_type


def grpc_status(http_status: int | None, grpc_status_value: bytes | None) -> int | None:
    """The status a gRPC client sees: `grpc-status` when the server sent one (a number
    outside 0-16 reads as UNKNOWN), else the HTTP status's mapping; None without a response."""
    if grpc_status_value is not None:
        value = grpc_status_value.strip()
        code = int(value) if value.isdigit() and len(value) <= 2 else UNKNOWN
        return code if code < len(STATUS_NAMES) else UNKNOWN
    if http_status is None:
        return None
    if http_status == 200:
        return UNKNOWN  # a response that ended without its status: the call's outcome is lost
    return _HTTP_TO_GRPC.get(http_status, UNKNOWN)


_TIMEOUT_UNITS = {b"H": 3600.0, b"M": 60.0, b"S": 1.0, b"m": 1e-3, b"u": 1e-6, b"n": 1e-9}


def grpc_timeout(value: bytes | None) -> float | None:
    """A `grpc-timeout` header in seconds (up to 8 digits and a unit); None if absent or bad."""
    if not value or not 2 <= len(value) <= 9:
        return None
    digits, unit = value[:-1], value[-1:]
    scale = _TIMEOUT_UNITS.get(unit)
    return int(digits) * scale if scale is not None and digits.isdigit() else None


def past_deadline(timeout: bytes | None, duration: float) -> bool:
    """Whether a call lasted its client's deadline (`timeout`: its grpc-timeout header), give
    or take: the client's clock started before ours (its request was in flight, perhaps queued
    on a busy machine), so a tenth of the deadline, at least 100 ms, is allowed for it."""
    seconds = grpc_timeout(timeout)
    return seconds is not None and duration >= seconds - max(seconds / 10, 0.1)


def grpc_error_type(status: int | None, error: str | None) -> str:
    """The `error_type` label: a transport failure wins, then a server-fault status's name;
    "" (absent) for OK and client-fault statuses."""
    if error:
        return error if error in TRANSPORT_ERRORS else OTHER_ERROR
    if status is not None and status in SERVER_FAULTS:
        return STATUS_NAMES[status]
    return ""


def split_path(path: bytes) -> tuple[str, str] | None:
    """`/package.Service/Method` -> ("package.Service", "Method"); None for any other path."""
    match = _PATH.fullmatch(path)
    if match is None:
        return None
    return match.group(1).decode("ascii"), match.group(2).decode("ascii")


class _RpcRecorder:
    """One observation per finished call, in one histogram; what the server and client sides
    share (the method cap, the status labels)."""

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...], service_name: str,
                 buckets: Sequence[float], max_methods: int) -> None:
        if not service_name:
            raise ValueError("service_name: expected a non-empty name")
        if max_methods < 1:
            raise ValueError(f"max_methods: expected at least 1, got {max_methods}")
        self.service_name = service_name
        self.max_methods = max_methods
        self.duration = Histogram(name.removesuffix("_seconds"), help_text, labels, buckets,
                                  self._labels, unit="seconds")
        self._methods: dict[bytes, tuple[str, str]] = {}
        self.overflow_total = 0

    def _labels(self, key: Hashable) -> LabelValues:
        service, method, status, error = cast(_Key, key)
        return (self.service_name, "grpc", service, method,
                "" if status is None else str(status), error)

    def method(self, path: bytes) -> tuple[str, str]:
        """The (rpc_service, rpc_method) a path is recorded as, within the cap."""
        known = self._methods.get(path)
        if known is not None:
            return known
        named = split_path(path)
        if named is None:
            return OTHER, OTHER
        if len(self._methods) >= self.max_methods:
            self.overflow_total += 1
            return OTHER, OTHER
        self._methods[path] = named
        return named

    def call_finished(self, service: str, method: str, status: int | None, duration: float, *,
                      error: str | None = None, trace_id: str | None = None) -> None:
        """A call ended: `service` and `method` as `method()` gave them when it started,
        `status` as grpc_status() reads it, `error` a transport error_type."""
        child = self.duration.child((service, method, status, grpc_error_type(status, error)))
        if trace_id is None:
            child.observe(duration)
        else:
            child.observe_with_exemplar(duration, {"trace_id": trace_id})

    def collector(self) -> _RpcCollector:
        return _RpcCollector(self)


class RpcServerRecorder(_RpcRecorder):
    """Records `rpc.server.*` metrics for one service (the calls it serves)."""

    def __init__(self, service_name: str, buckets: Sequence[float] = DEFAULT_BUCKETS, *,
                 max_methods: int = DEFAULT_MAX_ROUTES) -> None:
        super().__init__(RPC_SERVER_DURATION,
                         "Duration of gRPC server calls, until the end of the response stream.",
                         RPC_LABELS, service_name, buckets, max_methods)


class RpcClientRecorder(_RpcRecorder):
    """Records `rpc.client.*` metrics for one service's calls to one dependency (outbound),
    labelled with the dependency's address and port as `http_client_*` series are."""

    def __init__(self, service_name: str, server_address: str, server_port: int,
                 buckets: Sequence[float] = DEFAULT_BUCKETS, *,
                 max_methods: int = DEFAULT_MAX_ROUTES) -> None:
        if not server_address:
            raise ValueError("server_address: expected the dependency's host name or address")
        if not 0 < server_port < 65536:
            raise ValueError(f"server_port: expected 1 to 65535, got {server_port}")
        self.server = (server_address, str(server_port))
        super().__init__(RPC_CLIENT_DURATION,
                         "Duration of gRPC client calls, until the end of the response stream.",
                         RPC_CLIENT_LABELS, service_name, buckets, max_methods)

    def _labels(self, key: Hashable) -> LabelValues:
        return (*super()._labels(key), *self.server)


class _RpcCollector(InstrumentCollector):
    """The duration histogram plus the method cap's overflow count, read at scrape time."""

    def __init__(self, recorder: _RpcRecorder) -> None:
        self._overflow = Counter(
            METHOD_OVERFLOW.removesuffix("_total"),
            "gRPC calls recorded as {other} because the distinct-method cap was reached.",
            (SERVICE,))
        super().__init__([recorder.duration, self._overflow])
        self._recorder = recorder

    def refresh(self) -> None:
        recorder = self._recorder
        self._overflow.cell((recorder.service_name,)).value = float(recorder.overflow_total)
