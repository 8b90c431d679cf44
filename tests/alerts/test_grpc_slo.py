"""A gRPC service's SLO under promtool (#18): availability from the server-fault statuses of
`rpc_server_duration_seconds` (error_type set), latency from its buckets; a client-fault status
(NOT_FOUND) spends no budget, and HTTP requests of a service with the same name do not count."""

from __future__ import annotations

from pathlib import Path

import pytest

from redline.alerts.generate import RuleOptions, build_groups
from redline.alerts.render import prometheus_file
from redline.alerts.spec import build_spec
from redline.config import ConfigError, Node
from tests.alerts.conftest import MINUTES, counted, gauge, promtool_test
from tests.alerts.test_slo_rules import WINDOWS, burn_alerts

SPEC = {"slos": [
    {"service": "payments", "protocol": "grpc", "availability": 99.9,
     "latency": {"threshold": 0.1, "target": 99}},
    {"service": "checkout", "availability": 99.9},  # HTTP, the same objective: shared rules
]}
CALL = ('service_name="payments",rpc_system="grpc",rpc_service="shop.Payments",'
        'rpc_method="Charge"')


@pytest.fixture(scope="module")
def rule_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("grpc-rules")
    for stem, groups in build_groups(build_spec(Node("slo.yaml", "", SPEC)),
                                     RuleOptions()).items():
        (directory / f"{stem}.rules.yaml").write_text(prometheus_file(groups))
    return directory


def calls(per_minute: dict[tuple[str, str], float], fast_share: float = 1.0
          ) -> list[dict[str, str]]:
    """Counters of `per_minute` calls for each (grpc status code, error_type), and the 0.1 s
    bucket holding `fast_share` of them."""
    every = sum(per_minute.values())
    return [
        *(series for (code, error), rate in per_minute.items()
          for series in counted("rpc_server_duration_seconds",
                                f'{CALL},rpc_grpc_status_code="{code}",error_type="{error}"',
                                f"0+{rate:g}x{MINUTES}")),
        gauge("rpc_server_duration_seconds_bucket",
              f'{CALL},rpc_grpc_status_code="0",error_type="",le="0.1"',
              f"0+{every * fast_share:g}x{MINUTES}"),
    ]


OK, NOT_FOUND, INTERNAL = ("0", ""), ("5", ""), ("13", "INTERNAL")


def test_server_faults_burn_a_grpc_services_budget(rule_dir: Path) -> None:
    """1/32 INTERNAL (exact in binary) against a 0.1% budget: burn 31.25, every window pair
    fires."""
    promtool_test(rule_dir, [{
        "interval": "1m", "input_series": calls({OK: 62, INTERNAL: 2}),
        "promql_expr_test": [{  # 1/32 but for rate's extrapolation, not exact in binary
            "expr": 'round(32 * slo:sli_error:ratio_rate5m{service_name="payments",'
                    'slo="availability"})',
            "eval_time": "30m",
            "exp_samples": [{"labels": '{service_name="payments",slo="availability"}',
                             "value": 1}]}],
        "alert_rule_test": [{
            "eval_time": "70m", "alertname": "RedlineAvailabilityBurnRate",
            "exp_alerts": burn_alerts("payments", "availability", 99.9, 31.25, "Requests fail",
                                      WINDOWS)}],
    }])


def test_client_faults_spend_no_budget(rule_dir: Path) -> None:
    """Half the calls answer NOT_FOUND (error_type empty, like a 404): the error ratio is 0 and
    nothing fires; an HTTP service named payments failing every request counts for nothing
    here, since the SLO reads the gRPC metrics."""
    http_failures = gauge("http_server_request_duration_seconds_count",
                          'service_name="payments",http_route="/pay",http_request_method="POST",'
                          'url_scheme="http",http_response_status_code="500",error_type="500"',
                          f"0+60x{MINUTES}")
    promtool_test(rule_dir, [{
        "interval": "1m", "input_series": [*calls({OK: 30, NOT_FOUND: 30}), http_failures],
        "promql_expr_test": [{
            "expr": 'slo:sli_error:ratio_rate1h{service_name="payments",slo="availability"}',
            "eval_time": "70m",
            "exp_samples": [{"labels": 'slo:sli_error:ratio_rate1h{service_name="payments",'
                                       'slo="availability"}', "value": 0}]}],
        "alert_rule_test": [{"eval_time": "70m", "alertname": "RedlineAvailabilityBurnRate",
                             "exp_alerts": []}],
    }])


def test_slow_calls_burn_the_latency_budget(rule_dir: Path) -> None:
    """20% of the calls slower than 0.1 s against a 1% budget: burn 20."""
    promtool_test(rule_dir, [{
        "interval": "1m", "input_series": calls({OK: 60}, fast_share=0.8),
        "alert_rule_test": [{
            "eval_time": "70m", "alertname": "RedlineLatencyBurnRate",
            "exp_alerts": burn_alerts("payments", "latency", 99, 20,
                                      "Requests take longer than 0.1s", WINDOWS, 0.1)}],
    }])


def test_a_grpc_slo_without_calls_is_reported_absent(rule_dir: Path) -> None:
    """The health alert looks for the gRPC metrics of a gRPC SLO: HTTP series do not hide
    that its calls are missing."""
    http = gauge("http_server_request_duration_seconds_count",
                 'service_name="payments",http_route="/pay",http_request_method="POST",'
                 'url_scheme="http",http_response_status_code="200",error_type=""', "0+60x40")
    promtool_test(rule_dir, [{
        "interval": "1m", "input_series": [http],
        "alert_rule_test": [{
            "eval_time": "20m", "alertname": "RedlineREDMetricsAbsent",
            "exp_alerts": [{
                "exp_labels": {"severity": "ticket", "service_name": service},
                "exp_annotations": {
                    "summary": f"No RED metrics for {service}",
                    "description": f"{service} has an SLO but no request metrics for 15 "
                                   f"minutes (or redline-red.rules.yaml, whose records the SLO "
                                     "rules read, is not loaded): its alerts cannot fire.",
                    "runbook_url": "docs/alerts.md#redlineredmetricsabsent"}}
                for service in ("payments", "checkout")]}],
    }])


def test_a_method_filter_counts_its_methods_once(tmp_path: Path) -> None:
    """As a route filter for HTTP: an SLO on `shop.Payments/Charge` (twice, by name and by a
    pattern) counts Charge's calls once (1/32 failed) and none of Refund's (all failed)."""
    spec = {"slos": [{"service": "payments", "protocol": "grpc", "availability": 99.9,
                      "methods": ["shop.Payments/Charge", "shop.Payments/Ch*"]}]}
    for stem, groups in build_groups(build_spec(Node("slo.yaml", "", spec)),
                                     RuleOptions()).items():
        (tmp_path / f"{stem}.rules.yaml").write_text(prometheus_file(groups))
    refund = CALL.replace('rpc_method="Charge"', 'rpc_method="Refund"')
    failed_refunds = gauge("rpc_server_duration_seconds_count",
                           f'{refund},rpc_grpc_status_code="13",error_type="INTERNAL"',
                           f"0+60x{MINUTES}")
    labels = '{service_name="payments",slo="availability"}'
    promtool_test(tmp_path, [{
        "interval": "1m", "input_series": [*calls({OK: 62, INTERNAL: 2}), failed_refunds],
        "promql_expr_test": [
            {"expr": f"round(32 * slo:sli_error:ratio_rate5m{labels})", "eval_time": "30m",
             "exp_samples": [{"labels": labels, "value": 1}]},
            {"expr": f"round(60 * slo:sli_requests:rate5m{labels})", "eval_time": "30m",
             "exp_samples": [{"labels": labels, "value": 64}]}],
    }])


@pytest.mark.parametrize(("slo", "message"), [
    ({"service": "a", "protocol": "thrift", "availability": 99},
     r"slo\.yaml: slos\[0\]\.protocol: expected http or grpc, got 'thrift'"),
    ({"service": "a", "protocol": "grpc", "availability": 99, "routes": ["/a"]},
     r"slo\.yaml: slos\[0\]\.routes: expected no routes for a gRPC SLO \(filter it with "
     r"methods\), got \['/a'\]"),
    ({"service": "a", "availability": 99, "methods": ["shop.Cart/*"]},
     r"slos\[0\]\.methods: expected no methods for an HTTP SLO \(filter it with routes\)"),
    ({"service": "a", "protocol": "grpc", "availability": 99, "methods": ["/shop.Cart/Add"]},
     r"slos\[0\]\.methods\[0\]: expected a method pattern such as shop\.Cart/Add"),
])
def test_bad_protocols_are_refused_by_name(slo: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_spec(Node("slo.yaml", "", {"slos": [slo]}))
