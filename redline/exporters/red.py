"""The RED schema: metric names, labels, buckets and the recorders every producer calls.

Names and labels are the stable OpenTelemetry HTTP semantic conventions as Prometheus sees them
(`http.server.request.duration` -> `http_server_request_duration_seconds`), so dashboards and
alerts work the same for redline's sidecars, OpenTelemetry SDKs and Beyla.

The ambassador and the adapter call a recorder once per finished request; dashboards and alerts
import the names from here. Nothing else in redline spells a RED metric name.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Final, cast

from redline.exporters.instruments import (
    Counter,
    Gauge,
    Histogram,
    HistogramChild,
    InstrumentCollector,
    LabelValues,
)
from redline.exporters.last_series import LastCell, LastChild

if TYPE_CHECKING:
    from redline.exporters.routes import RouteTemplater

# --- names ---------------------------------------------------------------------------------

SERVER_DURATION = "http_server_request_duration_seconds"
SERVER_ACTIVE = "http_server_active_requests"
SERVER_REQUEST_SIZE = "http_server_request_body_size_bytes"
SERVER_RESPONSE_SIZE = "http_server_response_body_size_bytes"
CLIENT_DURATION = "http_client_request_duration_seconds"
CLIENT_ACTIVE = "http_client_active_requests"
ROUTE_OVERFLOW = "redline_route_overflow_total"
# Requests known only from a log line without a request time: rate and errors, no duration.
# Rules and dashboards add this to the histogram's _count (see docs/metrics.md).
SERVER_UNTIMED = "redline_untimed_requests_total"
# gRPC calls, named as Beyla and OpenTelemetry's RPC conventions name them (DESIGN.md).
RPC_SERVER_DURATION = "rpc_server_duration_seconds"
RPC_CLIENT_DURATION = "rpc_client_duration_seconds"

SERVICE = "service_name"
METHOD = "http_request_method"
STATUS = "http_response_status_code"
ROUTE = "http_route"
SCHEME = "url_scheme"
ERROR_TYPE = "error_type"
SERVER_ADDRESS = "server_address"
SERVER_PORT = "server_port"

SERVER_LABELS = (SERVICE, METHOD, STATUS, ROUTE, SCHEME, ERROR_TYPE)
SERVER_ACTIVE_LABELS = (SERVICE, METHOD, SCHEME)
CLIENT_LABELS = (SERVICE, METHOD, STATUS, SERVER_ADDRESS, SERVER_PORT, ERROR_TYPE)
CLIENT_ACTIVE_LABELS = (SERVICE, SERVER_ADDRESS, SERVER_PORT)

# OpenTelemetry's advice for http.*.request.duration, in seconds.
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)
# Body sizes: powers of four from 128 B to 32 MiB; OpenTelemetry gives no advice here.
SIZE_BUCKETS: tuple[float, ...] = tuple(float(128 * 4**i) for i in range(10))

# Cache keys of label children: raw values, turned into label strings once per child.
_ServerKey = tuple[str, int | None, str, str, str]  # method, status, route, scheme, error_type
_ClientKey = tuple[str, int | None, str, int, str]  # method, status, address, port, error_type

# --- label derivation ----------------------------------------------------------------------

KNOWN_METHODS = ("CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE")
OTHER_METHOD: Final = "_OTHER"
# Keyed by both str and bytes so the proxy can pass what its parser gives without decoding.
# Final here and below: compiled, C statics, not lookups in the module's dict per request.
_METHODS: Final[dict[str | bytes, str]] = {m: m for m in KNOWN_METHODS}
_METHODS.update({m.encode(): m for m in KNOWN_METHODS})

# error_type of a failure without a usable response (docs/metrics.md says when each occurs).
TIMEOUT = "timeout"
CONNECTION_REFUSED = "connection_refused"
CONNECTION_RESET = "connection_reset"
CLIENT_CLOSED = "client_closed"
BAD_REQUEST = "bad_request"
TLS_ERROR = "tls_error"  # TLS with the upstream failed: handshake, certificate, protocol
CONNECT_ERROR = "connect_error"  # connecting failed otherwise: DNS, no route, ...
INVALID_RESPONSE = "invalid_response"  # the upstream's response could not be framed
TRANSPORT_ERRORS: Final = frozenset({TIMEOUT, CONNECTION_REFUSED, CONNECTION_RESET, CLIENT_CLOSED,
                              BAD_REQUEST, TLS_ERROR, CONNECT_ERROR, INVALID_RESPONSE})
# Anything else a producer passes: the label's values stay a known, small set.
OTHER_ERROR: Final = "_OTHER"


def normalize_method(method: str | bytes) -> str:
    """A standard method as itself (case-sensitive, as HTTP is); anything else as `_OTHER`."""
    return _METHODS.get(method, OTHER_METHOD)


# RFC 9110 15: a status code is a number from 100 to 599. Anything else an app answers is one
# value (its key here, labelled `_OTHER`), so an app answering random numbers cannot make a
# series per number.
OTHER_STATUS: Final = 0


class LastMethod:
    """normalize_method, remembered for the last method object: a connection whose request head
    repeats gives the same one (its parse is reused), as request_finished does after
    request_started."""

    __slots__ = ("_method", "_raw")

    def __init__(self) -> None:
        self._raw: str | bytes = b""  # as a producer gave it, and normalized
        self._method = OTHER_METHOD

    def normalized(self, method: str | bytes) -> str:
        if method is not self._raw:
            self._raw = method
            self._method = _METHODS.get(method, OTHER_METHOD)
        return self._method


def fold_status(status: int | None) -> int | None:
    return status if status is None or 100 <= status <= 599 else OTHER_STATUS


def error_type(status: int | None, error: str | None) -> str:
    """The `error_type` label: a transport failure wins, then a 5xx status; "" (absent) on success.

    A 4xx is the client's mistake, not a server error, so it carries no error_type. A status
    outside 100-599 is no valid answer at all: `_OTHER`.
    """
    if error:
        return error if error in TRANSPORT_ERRORS else OTHER_ERROR
    if status is not None:
        if not 100 <= status <= 599:
            return OTHER_ERROR
        if status >= 500:
            return str(status)
    return ""


def _status_label(status: int | None) -> str:
    if status is None:
        return ""
    return OTHER_ERROR if status == OTHER_STATUS else str(status)


# --- recorders -----------------------------------------------------------------------------


class ServerRecorder:
    """Records `http.server.*` RED metrics for one service (the inbound side).

    Call `request_started` when a request head arrives and `request_finished` when its response
    ended (or failed); producers without an in-flight notion (log adapters) call `record`.
    """

    def __init__(
        self,
        service_name: str,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        *,
        record_sizes: bool = False,
        routes: RouteTemplater | None = None,
    ) -> None:
        if not service_name:
            raise ValueError("service_name: expected a non-empty name")
        self.service_name = service_name
        self._routes = routes
        self.duration = Histogram(
            SERVER_DURATION.removesuffix("_seconds"),
            "Duration of HTTP server requests, until the last byte of the response.",
            SERVER_LABELS,
            buckets,
            self._server_labels,
            unit="seconds",
        )
        self.active = Gauge(
            SERVER_ACTIVE,
            "Number of HTTP server requests in flight.",
            SERVER_ACTIVE_LABELS,
            self._active_labels,
        )
        self.untimed = Counter(
            SERVER_UNTIMED.removesuffix("_total"),
            "HTTP server requests seen without a duration (access logs without a request time).",
            SERVER_LABELS, self._server_labels,
        )
        self.request_size: Histogram | None = None
        self.response_size: Histogram | None = None
        if record_sizes:
            self.request_size = Histogram(
                SERVER_REQUEST_SIZE.removesuffix("_bytes"),
                "Size of HTTP server request bodies.",
                SERVER_LABELS, SIZE_BUCKETS, self._server_labels, unit="bytes",
            )
            self.response_size = Histogram(
                SERVER_RESPONSE_SIZE.removesuffix("_bytes"),
                "Size of HTTP server response bodies.",
                SERVER_LABELS, SIZE_BUCKETS, self._server_labels, unit="bytes",
            )

        # The series the last request used (last_series.py).
        self._method = LastMethod()
        self._last_cell = LastCell(self.active)
        self._last_child = LastChild(self.duration)

    def _active_labels(self, key: Hashable) -> LabelValues:
        method, scheme = cast(tuple[str, str], key)
        return (self.service_name, method, scheme)

    def _server_labels(self, key: Hashable) -> LabelValues:
        method, status, route, scheme, error = cast(_ServerKey, key)
        return (self.service_name, method, _status_label(status), route, scheme, error)

    def request_started(self, method: str | bytes, scheme: str = "http") -> None:
        self._last_cell.cell(self._method.normalized(method), scheme, 0).value += 1

    def request_abandoned(self, method: str | bytes, scheme: str = "http") -> None:
        """A started request whose outcome will never be known (HTTP/2 observation stopped
        on its connection): no longer in flight, and not recorded."""
        self._last_cell.cell(normalize_method(method), scheme, 0).value -= 1

    def series(self, method: str | bytes, route: str, status: int | None, *,
               scheme: str = "http", error: str | None = None) -> HistogramChild:
        """The duration series of one label combination, for producers that cache it
        (the log adapter observes millions of lines into a few hundred series)."""
        return self.duration.child(
            self._key(_METHODS.get(method, OTHER_METHOD), route, status, scheme, error))

    def count_untimed(self, method: str | bytes, route: str, status: int | None, *,
                      scheme: str = "http", error: str | None = None) -> None:
        self.untimed.inc(self._key(_METHODS.get(method, OTHER_METHOD), route, status, scheme,
                                   error))

    def request_finished(
        self,
        method: str | bytes,
        route: str,
        status: int | None,
        duration: float,
        *,
        scheme: str = "http",
        error: str | None = None,
        request_bytes: int | None = None,
        response_bytes: int | None = None,
        trace_id: str | None = None,
    ) -> None:
        normalized = self._method.normalized(method)
        self._last_cell.cell(normalized, scheme, 0).value -= 1
        self._record(normalized, route, status, duration, scheme, error,
                     request_bytes, response_bytes, trace_id)

    def record(
        self,
        method: str | bytes,
        route: str,
        status: int | None,
        duration: float,
        *,
        scheme: str = "http",
        error: str | None = None,
        request_bytes: int | None = None,
        response_bytes: int | None = None,
        trace_id: str | None = None,
    ) -> None:
        """Record a finished request that was never reported as started (log adapters)."""
        self._record(_METHODS.get(method, OTHER_METHOD), route, status, duration, scheme, error,
                     request_bytes, response_bytes, trace_id)

    def _record(
        self,
        method: str,
        route: str,
        status: int | None,
        duration: float,
        scheme: str,
        error: str | None,
        request_bytes: int | None,
        response_bytes: int | None,
        trace_id: str | None,
    ) -> None:
        if error is None and status is not None and 100 <= status < 500:
            # Most requests: what fold_status and error_type give then, without two calls.
            child = self._last_child.child(method, status, route, scheme, 0)
        else:
            child = self.duration.child(self._key(method, route, status, scheme, error))
        if trace_id is None:
            child.observe(duration)
        else:
            child.observe_with_exemplar(duration, {"trace_id": trace_id})
        if self.request_size is None or self.response_size is None:
            return
        key = self._key(method, route, status, scheme, error)  # --record-sizes
        if request_bytes is not None:
            self.request_size.child(key).observe(request_bytes)
        if response_bytes is not None:
            self.response_size.child(key).observe(response_bytes)

    @staticmethod
    def _key(method: str, route: str, status: int | None, scheme: str,
             error: str | None) -> _ServerKey:
        return (method, fold_status(status), route, scheme, error_type(status, error))

    def collector(self) -> _ServerCollector:
        instruments: list[Histogram | Gauge | Counter] = [self.duration, self.active,
                                                          self.untimed]
        if self.request_size is not None and self.response_size is not None:
            instruments += [self.request_size, self.response_size]
        return _ServerCollector(instruments, self.service_name, self._routes)


class _ServerCollector(InstrumentCollector):
    """The server instruments plus the templater's overflow count, read at scrape time."""

    def __init__(
        self,
        instruments: Sequence[Histogram | Gauge | Counter],
        service_name: str,
        routes: RouteTemplater | None,
    ) -> None:
        self._overflow = Counter(
            ROUTE_OVERFLOW.removesuffix("_total"),
            "Requests recorded as /{other} because the distinct-route cap was reached.",
            (SERVICE,))
        super().__init__([*instruments, self._overflow] if routes is not None else instruments)
        self._service_name = service_name
        self._routes = routes

    def refresh(self) -> None:
        if self._routes is not None:
            self._overflow.cell((self._service_name,)).value = float(self._routes.overflow_total)


class ClientRecorder:
    """Records `http.client.*` RED metrics for one service's calls to its dependencies."""

    def __init__(self, service_name: str, buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        if not service_name:
            raise ValueError("service_name: expected a non-empty name")
        self.service_name = service_name
        self.duration = Histogram(
            CLIENT_DURATION.removesuffix("_seconds"),
            "Duration of HTTP client requests, until the last byte of the response.",
            CLIENT_LABELS,
            buckets,
            self._client_labels,
            unit="seconds",
        )
        self.active = Gauge(
            CLIENT_ACTIVE,
            "Number of HTTP client requests in flight.",
            CLIENT_ACTIVE_LABELS,
            self._active_labels,
        )
        # The series the last request used (last_series.py), as ServerRecorder's.
        self._method = LastMethod()
        self._last_cell = LastCell(self.active, by_port=True)
        self._last_child = LastChild(self.duration, by_port=True)

    def _active_labels(self, key: Hashable) -> LabelValues:
        address, port = cast(tuple[str, int], key)
        return (self.service_name, address, str(port))

    def _client_labels(self, key: Hashable) -> LabelValues:
        method, status, address, port, error = cast(_ClientKey, key)
        return (self.service_name, method, _status_label(status), address, str(port), error)

    def request_started(self, server_address: str, server_port: int) -> None:
        self._last_cell.cell(server_address, "", server_port).value += 1

    def request_finished(
        self,
        method: str | bytes,
        server_address: str,
        server_port: int,
        status: int | None,
        duration: float,
        *,
        error: str | None = None,
        trace_id: str | None = None,
    ) -> None:
        self._last_cell.cell(server_address, "", server_port).value -= 1
        normalized = self._method.normalized(method)
        if error is None and status is not None and 100 <= status < 500:
            # Most requests: what fold_status and error_type give then, without two calls.
            child = self._last_child.child(normalized, status, server_address, "", server_port)
        else:
            child = self.duration.child((normalized, fold_status(status), server_address,
                                         server_port, error_type(status, error)))
        if trace_id is None:
            child.observe(duration)
        else:
            child.observe_with_exemplar(duration, {"trace_id": trace_id})

    def collector(self) -> InstrumentCollector:
        return InstrumentCollector([self.duration, self.active])
