"""The TCP schema: names, labels and values as Prometheus reads them, and promtool's lint."""

from __future__ import annotations

from redline.exporters.exposition import new_registry, render
from redline.exporters.instruments import OTHER, SeriesCap
from redline.exporters.tcp import PROTOCOLS, TcpRecorder
from tests.conftest import promtool_check_metrics


def test_connections_bytes_and_durations() -> None:
    recorder = TcpRecorder("cache")
    registry = new_registry("test", recorder.collector())
    first = recorder.opened("opaque")
    second = recorder.opened("tls")
    first.received(100)
    first.sent(2_000)
    second.received(517)
    assert registry.get_sample_value(
        "tcp_server_active_connections", {"service_name": "cache",
                                          "network_protocol_name": "opaque"}) == 1
    assert registry.get_sample_value(
        "tcp_server_received_bytes_total", {"service_name": "cache",
                                            "network_protocol_name": "opaque"}) == 100
    recorder.closed("opaque", 0.2)
    recorder.closed("tls", 30.0, "connection_reset")
    labels = {"service_name": "cache", "network_protocol_name": "opaque", "error_type": ""}
    assert registry.get_sample_value("tcp_server_connections_total", labels) == 1
    assert registry.get_sample_value("tcp_server_connection_duration_seconds_bucket",
                                     {**labels, "le": "0.5"}) == 1
    assert registry.get_sample_value("tcp_server_connection_duration_seconds_bucket",
                                     {**labels, "le": "0.05"}) == 0
    reset = {"service_name": "cache", "network_protocol_name": "tls",
             "error_type": "connection_reset"}
    assert registry.get_sample_value("tcp_server_connections_total", reset) == 1
    assert registry.get_sample_value("tcp_server_connection_duration_seconds_sum", reset) == 30
    assert registry.get_sample_value(
        "tcp_server_sent_bytes_total", {"service_name": "cache",
                                        "network_protocol_name": "opaque"}) == 2_000
    for protocol in PROTOCOLS:
        assert registry.get_sample_value(
            "tcp_server_active_connections",
            {"service_name": "cache", "network_protocol_name": protocol}) == 0


def test_exposition_passes_promtool() -> None:
    recorder = TcpRecorder("cache")
    recorder.opened("http").received(10)
    recorder.closed("http", 1.5, "timeout")
    body, _ = render(new_registry("test", recorder.collector()))
    promtool_check_metrics(body)


def test_connection_families_fold_past_the_series_cap() -> None:
    """How connections end is a label the client partly chooses (resets, timeouts): past the
    cap a family's new label sets fold, keeping the service and whether it failed."""
    recorder = TcpRecorder("cache")
    recorder.collector().cap_series(SeriesCap(2))
    for error in ("", "connection_reset", "timeout", "tls_error"):
        recorder.closed("opaque", 0.1, error)
    registry = new_registry("test", recorder.collector())
    connections = {tuple(sorted(s.labels.items())): s.value
                   for family in registry.collect() for s in family.samples
                   if s.name == "tcp_server_connections_total"}
    folded = (("error_type", OTHER), ("network_protocol_name", OTHER), ("service_name", "cache"))
    assert connections[folded] == 2 and len(connections) == 3
    assert sum(connections.values()) == 4  # every connection still counted
    body, _ = render(registry)
    promtool_check_metrics(body)
