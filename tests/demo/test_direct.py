# ruff: noqa: E501  (expositions are written out whole, one sample per line)
"""RED and USE computed from two /metrics snapshots, as Prometheus would from its samples."""

from __future__ import annotations

import pytest

from redline.demo import direct

BEFORE = """\
# TYPE http_server_request_duration_seconds histogram
http_server_request_duration_seconds_bucket{service_name="shop",http_route="/a",http_response_status_code="200",error_type="",le="0.1"} 10
http_server_request_duration_seconds_bucket{service_name="shop",http_route="/a",http_response_status_code="200",error_type="",le="1.0"} 10
http_server_request_duration_seconds_bucket{service_name="shop",http_route="/a",http_response_status_code="200",error_type="",le="+Inf"} 10
http_server_request_duration_seconds_count{service_name="shop",http_route="/a",http_response_status_code="200",error_type=""} 10
http_server_request_duration_seconds_sum{service_name="shop",http_route="/a",http_response_status_code="200",error_type=""} 0.5
# TYPE node_cpu_seconds counter
node_cpu_seconds_total{cpu="0",mode="idle"} 100
node_cpu_seconds_total{cpu="0",mode="user"} 50
node_cpu_seconds_total{cpu="1",mode="idle"} 100
node_cpu_seconds_total{cpu="1",mode="user"} 50
# TYPE node_load1 gauge
node_load1 1.0
# TYPE node_memory_MemTotal_bytes gauge
node_memory_MemTotal_bytes 1000
# TYPE node_memory_MemAvailable_bytes gauge
node_memory_MemAvailable_bytes 250
# TYPE node_filesystem_size_bytes gauge
node_filesystem_size_bytes{device="/dev/a",fstype="ext4",mountpoint="/"} 100
node_filesystem_size_bytes{device="/dev/b",fstype="ext4",mountpoint="/data"} 100
# TYPE node_filesystem_avail_bytes gauge
node_filesystem_avail_bytes{device="/dev/a",fstype="ext4",mountpoint="/"} 90
node_filesystem_avail_bytes{device="/dev/b",fstype="ext4",mountpoint="/data"} 20
# TYPE node_disk_io_time_seconds counter
node_disk_io_time_seconds_total{device="vda"} 10
"""

# 10 s later: /a got 100 more requests (60 under 0.1 s, 40 between 0.1 and 1 s), 10 of them
# failed (500); the CPUs were busy 25 % of the time; the disk was busy half of it.
AFTER = """\
# TYPE http_server_request_duration_seconds histogram
http_server_request_duration_seconds_bucket{service_name="shop",http_route="/a",http_response_status_code="200",error_type="",le="0.1"} 70
http_server_request_duration_seconds_bucket{service_name="shop",http_route="/a",http_response_status_code="200",error_type="",le="1.0"} 100
http_server_request_duration_seconds_bucket{service_name="shop",http_route="/a",http_response_status_code="200",error_type="",le="+Inf"} 100
http_server_request_duration_seconds_count{service_name="shop",http_route="/a",http_response_status_code="200",error_type=""} 100
http_server_request_duration_seconds_bucket{service_name="shop",http_route="/a",http_response_status_code="500",error_type="500",le="0.1"} 0
http_server_request_duration_seconds_bucket{service_name="shop",http_route="/a",http_response_status_code="500",error_type="500",le="1.0"} 10
http_server_request_duration_seconds_bucket{service_name="shop",http_route="/a",http_response_status_code="500",error_type="500",le="+Inf"} 10
http_server_request_duration_seconds_count{service_name="shop",http_route="/a",http_response_status_code="500",error_type="500"} 10
# TYPE node_cpu_seconds counter
node_cpu_seconds_total{cpu="0",mode="idle"} 107.5
node_cpu_seconds_total{cpu="0",mode="user"} 52.5
node_cpu_seconds_total{cpu="1",mode="idle"} 107.5
node_cpu_seconds_total{cpu="1",mode="user"} 52.5
# TYPE node_load1 gauge
node_load1 1.0
# TYPE node_memory_MemTotal_bytes gauge
node_memory_MemTotal_bytes 1000
# TYPE node_memory_MemAvailable_bytes gauge
node_memory_MemAvailable_bytes 250
# TYPE node_filesystem_size_bytes gauge
node_filesystem_size_bytes{device="/dev/a",fstype="ext4",mountpoint="/"} 100
node_filesystem_size_bytes{device="/dev/b",fstype="ext4",mountpoint="/data"} 100
# TYPE node_filesystem_avail_bytes gauge
node_filesystem_avail_bytes{device="/dev/a",fstype="ext4",mountpoint="/"} 90
node_filesystem_avail_bytes{device="/dev/b",fstype="ext4",mountpoint="/data"} 20
# TYPE node_disk_io_time_seconds counter
node_disk_io_time_seconds_total{device="vda"} 15
"""


def test_red_rows_are_rates_error_ratios_and_quantiles_of_the_increase() -> None:
    before = direct.parse(0.0, {"a:1": BEFORE})
    after = direct.parse(10.0, {"a:1": AFTER})
    # keyed as `redline stat --by route` keys rows: (cluster, service, protocol, route)
    row = direct.red_rows(before, after)[("", "shop", "http", "/a")]
    assert row["RPS"] == pytest.approx(10.0)          # 100 requests in 10 s
    assert row["SUCCESS"] == pytest.approx(0.9)       # 10 of 100 failed
    # 60 of 100 under 0.1 s: the 50th is 50/60 into the first bucket, the 99th 39/40 into
    # the second (linear interpolation, as histogram_quantile)
    assert row["P50"] == pytest.approx(0.1 * 50 / 60)
    assert row["P99"] == pytest.approx(0.1 + 0.9 * 39 / 40)


def test_use_rows_from_the_node_exporter() -> None:
    row = direct.use_rows(direct.parse(0.0, {"n:9100": BEFORE}),
                          direct.parse(10.0, {"n:9100": AFTER}))[("n:9100",)]
    assert row["CPU"] == pytest.approx(0.25)
    assert row["LOAD/CPU"] == pytest.approx(0.5)
    assert row["MEM"] == pytest.approx(0.75)
    assert row["DISK"] == pytest.approx(0.5)
    assert row["FS"] == pytest.approx(0.8)  # the fullest filesystem


def test_quantile_edges_match_histogram_quantile() -> None:
    assert direct.quantile(0.5, {}) is None
    assert direct.quantile(0.5, {1.0: 0, float("inf"): 0}) is None
    assert direct.quantile(0.99, {0.5: 1, float("inf"): 10}) == 0.5  # beyond the last bound
    assert direct.quantile(0.5, {1.0: 10, float("inf"): 10}) == pytest.approx(0.5)


def test_no_traffic_means_no_row_and_a_restart_is_not_negative() -> None:
    same = direct.parse(0.0, {"a:1": BEFORE})
    assert direct.red_rows(same, direct.parse(5.0, {"a:1": BEFORE})) == {}
    assert direct.red_rows(direct.parse(0.0, {"a:1": AFTER}),
                           direct.parse(5.0, {"a:1": BEFORE})) == {}


def _calls(get_ok: int, not_found: int, internal: int) -> str:
    """A gRPC exposition: GetStock's OK and NOT_FOUND calls and Reserve's INTERNAL ones, all
    under 5 ms."""
    lines = ["# TYPE rpc_server_duration_seconds histogram"]
    for method, code, error, count in (("GetStock", "0", "", get_ok),
                                       ("GetStock", "5", "", not_found),
                                       ("Reserve", "13", "INTERNAL", internal)):
        labels = (f'service_name="inventory",rpc_system="grpc",rpc_service="demo.Inventory",'
                  f'rpc_method="{method}",rpc_grpc_status_code="{code}",error_type="{error}"')
        lines += [f'rpc_server_duration_seconds_bucket{{{labels},le="0.005"}} {count}',
                  f'rpc_server_duration_seconds_bucket{{{labels},le="+Inf"}} {count}',
                  f"rpc_server_duration_seconds_count{{{labels}}} {count}"]
    return "\n".join(lines) + "\n"


def test_grpc_methods_are_rows_beside_http_routes() -> None:
    """NOT_FOUND is an answer (success); INTERNAL is the server's fault."""
    before = direct.parse(0.0, {"a:1": BEFORE, "g:1": _calls(10, 0, 0)})
    after = direct.parse(10.0, {"a:1": AFTER, "g:1": _calls(90, 20, 5)})
    rows = direct.red_rows(before, after)
    assert set(rows) == {("", "shop", "http", "/a"),
                         ("", "inventory", "grpc", "/demo.Inventory/GetStock"),
                         ("", "inventory", "grpc", "/demo.Inventory/Reserve")}
    get_stock = rows[("", "inventory", "grpc", "/demo.Inventory/GetStock")]
    assert get_stock["RPS"] == pytest.approx(10.0)  # 80 OK and 20 NOT_FOUND in 10 s
    assert get_stock["SUCCESS"] == 1.0
    assert rows[("", "inventory", "grpc", "/demo.Inventory/Reserve")]["SUCCESS"] == 0.0
    assert get_stock["P99"] == pytest.approx(0.005 * 0.99)
