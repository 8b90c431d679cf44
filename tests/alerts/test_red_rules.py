"""RED recording rules under promtool."""

from __future__ import annotations

from pathlib import Path

from tests.alerts.conftest import promtool_test


def test_red_recording_rules_add_timed_and_untimed_requests(rule_dir: Path) -> None:
    web = 'service_name="web",http_route="/a",http_request_method="GET",url_scheme="http"'
    api = 'service_name="api",http_route="/b",http_request_method="GET",url_scheme="http"'
    ok = 'http_response_status_code="200",error_type=""'
    failed = 'http_response_status_code="503",error_type="503"'
    promtool_test(rule_dir, [{
        "interval": "1m",
        "input_series": [
            # web: 60/min timed + 60/min untimed with the very same labels, 6/min untimed 503s
            {"series": f"http_server_request_duration_seconds_count{{{web},{ok}}}",
             "values": "0+60x20"},
            {"series": f"redline_untimed_requests_total{{{web},{ok}}}", "values": "0+60x20"},
            {"series": f"redline_untimed_requests_total{{{web},{failed}}}",
             "values": "0+6x20"},
            # api: only timed, 30/min, and its buckets
            {"series": f"http_server_request_duration_seconds_count{{{api},{ok}}}",
             "values": "0+30x20"},
            {"series": f'http_server_request_duration_seconds_bucket{{{api},{ok},le="0.1"}}',
             "values": "0+15x20"},
        ],
        "promql_expr_test": [
            {"expr": "service:http_server_requests:rate5m", "eval_time": "10m",
             "exp_samples": [
                 {"labels": 'service:http_server_requests:rate5m{service_name="api"}',
                  "value": 0.5},
                 {"labels": 'service:http_server_requests:rate5m{service_name="web"}',
                  "value": 2.1}]},
            {"expr": "service_route:http_server_errors:rate5m", "eval_time": "10m",
             "exp_samples": [
                 {"labels": 'service_route:http_server_errors:rate5m{http_route="/a",'
                            'service_name="web"}', "value": 0.1}]},
            {"expr": "service_le:http_server_request_duration_seconds_bucket:rate5m",
             "eval_time": "10m",
             "exp_samples": [
                 {"labels": 'service_le:http_server_request_duration_seconds_bucket:rate5m'
                            '{le="0.1",service_name="api"}', "value": 0.25}]},
        ],
    }])
