"""From stream events to RED observations (h2record.StreamRecorder), with a fresh registry:
what is recorded where, once, and what is not recorded at all."""

from __future__ import annotations

from redline.exporters.exposition import Registry, new_registry
from redline.exporters.red import ClientRecorder, ServerRecorder
from redline.exporters.routes import RoutePattern, RouteTemplater
from redline.exporters.rpc import RpcClientRecorder, RpcServerRecorder
from redline.sidecars.ambassador.h2record import StreamRecorder
from redline.sidecars.ambassador.h2streams import Stream


def recorder() -> tuple[StreamRecorder, Registry]:
    routes = RouteTemplater([RoutePattern("/events", streaming=True)])
    server = ServerRecorder("shop", routes=routes)
    rpc = RpcServerRecorder("shop")
    streams = StreamRecorder(server, rpc, routes)
    return streams, new_registry("test", server.collector(), rpc.collector(),
                                 streams.collector())


def stream(path: bytes, method: bytes = b"GET", content_type: bytes = b"",
           user_agent: bytes | None = None, stream_id: int = 1) -> Stream:
    one = Stream(stream_id, 10.0)
    one.method, one.path, one.content_type, one.user_agent = (method, path, content_type,
                                                              user_agent)
    return one


def http_count(registry: Registry, **labels: str) -> float:
    base = {"service_name": "shop", "http_request_method": "GET", "url_scheme": "http",
            "error_type": "", "http_response_status_code": "200"}
    return registry.get_sample_value("http_server_request_duration_seconds_count",
                                     {**base, **labels}) or 0.0


def active(registry: Registry) -> float:
    return registry.get_sample_value("http_server_active_requests", {
        "service_name": "shop", "http_request_method": "GET", "url_scheme": "http"}) or 0.0


def test_a_streaming_route_is_timed_to_its_response_head_and_recorded_once() -> None:
    streams, registry = recorder()
    events = stream(b"/events")
    streams.request_started(events, 10.0)
    events.status = 200
    streams.response_started(events, 10.5)
    streams.stream_ended(events, 70.0, None)
    assert http_count(registry, http_route="/events") == 1
    assert registry.get_sample_value("http_server_request_duration_seconds_sum", {
        "service_name": "shop", "http_request_method": "GET", "url_scheme": "http",
        "error_type": "", "http_response_status_code": "200", "http_route": "/events"}) == 0.5
    assert active(registry) == 0


def test_ignored_paths_probes_and_health_checks_are_not_recorded() -> None:
    streams, registry = recorder()
    for one in (stream(b"/healthz"), stream(b"/users/1", user_agent=b"kube-probe/1.30"),
                stream(b"/grpc.health.v1.Health/Check", b"POST", b"application/grpc")):
        streams.request_started(one, 10.0)
        one.status, one.grpc_status = 200, b"0"
        streams.stream_ended(one, 11.0, None)
    assert [sample for family in registry.collect()
            if family.name.startswith(("http", "rpc")) for sample in family.samples] == []


def test_an_abandoned_request_leaves_the_active_gauge_and_is_not_recorded() -> None:
    streams, registry = recorder()
    one = stream(b"/users/1")
    streams.request_started(one, 10.0)
    assert active(registry) == 1
    streams.stream_abandoned(one)
    streams.stream_ended(one, 11.0, "connection_reset")  # too late: never recorded
    assert active(registry) == 0
    assert http_count(registry, http_route="/users/{id}", error_type="connection_reset",
                      http_response_status_code="") == 0


def test_a_reset_http_request_keeps_the_status_it_had_and_the_transport_error() -> None:
    streams, registry = recorder()
    one = stream(b"/users/1")
    streams.request_started(one, 10.0)
    one.status = 200
    streams.stream_ended(one, 11.0, "client_closed")
    assert http_count(registry, http_route="/users/{id}", error_type="client_closed") == 1


def test_a_grpc_call_reset_without_status_has_an_empty_status_and_the_transport_error() -> None:
    streams, registry = recorder()
    call = stream(b"/shop.Cart/Add", b"POST", b"application/grpc+proto")
    streams.request_started(call, 10.0)
    call.status = 200  # the response head came, the trailers never did
    streams.stream_ended(call, 11.0, "connection_reset")
    assert registry.get_sample_value("rpc_server_duration_seconds_count", {
        "service_name": "shop", "rpc_system": "grpc", "rpc_service": "shop.Cart",
        "rpc_method": "Add", "rpc_grpc_status_code": "",
        "error_type": "connection_reset"}) == 1


def test_observation_stopped_is_counted_by_the_side_that_broke_it() -> None:
    streams, registry = recorder()
    streams.observation_stopped("server: the first frame is of type 80, not SETTINGS")
    streams.observation_stopped("client: internal error")
    streams.observation_stopped("client: a header block of more than 65536 bytes")
    value = registry.get_sample_value
    assert value("redline_ambassador_http2_unobserved_connections_total",
                 {"reason": "server_framing"}) == 1
    assert value("redline_ambassador_http2_unobserved_connections_total",
                 {"reason": "client_framing"}) == 2


def test_a_client_past_a_bound_is_counted_as_client_limit() -> None:
    streams, registry = recorder()
    streams.observation_stopped("client: 100 of 100 streams reset", "http2_rapid_reset")
    assert registry.get_sample_value("redline_ambassador_http2_unobserved_connections_total",
                                     {"reason": "client_limit"}) == 1


def outbound() -> tuple[StreamRecorder, Registry]:
    client = ClientRecorder("shop")
    rpc = RpcClientRecorder("shop", "inventory", 8443)
    streams = StreamRecorder.outbound(client, rpc, "inventory", 8443)
    return streams, new_registry("test", client.collector(), rpc.collector(),
                                 streams.collector())


def test_outbound_calls_are_client_metrics_of_the_dependency() -> None:
    streams, registry = outbound()
    call = stream(b"/shop.Stock/Get", b"POST", b"application/grpc")
    page = stream(b"/items/7", stream_id=3)
    gone = stream(b"/items/8", stream_id=5)
    for one in (call, page, gone):
        streams.request_started(one, 10.0)
    assert registry.get_sample_value("http_client_active_requests", {
        "service_name": "shop", "server_address": "inventory", "server_port": "8443"}) == 2
    call.status, call.grpc_status = 200, b"14"
    streams.stream_ended(call, 10.5, None)
    page.status = 404
    streams.stream_ended(page, 11.0, None)
    streams.stream_abandoned(gone)
    value = registry.get_sample_value
    assert value("rpc_client_duration_seconds_count", {
        "service_name": "shop", "rpc_system": "grpc", "rpc_service": "shop.Stock",
        "rpc_method": "Get", "rpc_grpc_status_code": "14", "error_type": "UNAVAILABLE",
        "server_address": "inventory", "server_port": "8443"}) == 1
    assert value("http_client_request_duration_seconds_count", {
        "service_name": "shop", "http_request_method": "GET", "http_response_status_code": "404",
        "server_address": "inventory", "server_port": "8443", "error_type": ""}) == 1
    assert value("http_client_active_requests", {
        "service_name": "shop", "server_address": "inventory", "server_port": "8443"}) == 0
