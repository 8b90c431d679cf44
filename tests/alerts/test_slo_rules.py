"""SLO burn-rate rules under promtool. Each case sends 1 request per second (rates exact in
binary) with a chosen share of errors or slow requests, so the burn rate is known by hand:
share / error budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.alerts.conftest import (
    MINUTES,
    SEARCH,
    availability_series,
    counted,
    promtool_test,
)

# (severity, long, short, factor, share of a 30d budget, how long the whole budget lasts)
WINDOWS = [("page", "1h", "5m", 14.4, 2, "2d 2h"), ("page", "6h", "30m", 6, 5, "5d"),
           ("ticket", "1d", "2h", 3, 10, "10d"), ("ticket", "3d", "6h", 1, 10, "30d")]


def burn_alerts(service: str, sli: str, objective: float, burn: float, what: str,
                windows: list[tuple[str, str, str, float, int, str]],
                threshold: float | None = None
                ) -> list[dict[str, Any]]:
    name = {"availability": "RedlineAvailabilityBurnRate",
            "latency": "RedlineLatencyBurnRate"}[sli]
    # The objective's own labels: SLOs that share an objective share its alert rules.
    shared = {"objective": f"{objective:g}"} | (
        {} if threshold is None else {"threshold": f"{threshold:g}"})
    return [{
        "exp_labels": {"service_name": service, "slo": sli, "severity": severity,
                       "long_window": long, "short_window": short, **shared},
        "exp_annotations": {
            "summary": f"{service} is spending its {objective:g}% {sli} error budget too fast",
            "description": f"{what} at {burn:.1f}x the rate the {objective:g}% objective "
                           f"allows, over the last {long} and {short}. At {factor:g}x, "
                           f"{share:g}% of the 30d error budget is spent in {long} and the "
                           f"whole budget in {lasts} (sooner at the current rate).",
            "runbook_url": f"docs/alerts.md#{name.lower()}"},
    } for severity, long, short, factor, share, lasts in windows]



def test_availability_burn_rates(rule_dir: Path) -> None:
    what = "Requests fail"
    recorded = 'service_name="checkout",slo="availability"'
    promtool_test(rule_dir, [
        {  # recording rules, by hand: 60 requests a minute, 1 of them a 500; over 5m
           # (4 intervals sampled, extrapolated by 5/4, exact in binary): 1 req/s, 1/60 errors
            "interval": "1m", "input_series": availability_series(60, 1 / 60),
            "promql_expr_test": [
                {"expr": f"slo:sli_requests:rate5m{{{recorded}}}", "eval_time": "30m",
                 "exp_samples": [{"labels": f"slo:sli_requests:rate5m{{{recorded}}}",
                                  "value": 1.0}]},
                {"expr": f"slo:sli_error:ratio_rate5m{{{recorded}}}", "eval_time": "30m",
                 "exp_samples": [{"labels": f"slo:sli_error:ratio_rate5m{{{recorded}}}",
                                  "value": 1 / 60}]},
                {"expr": f"slo:sli_errors:rate5m{{{recorded}}}", "eval_time": "30m",
                 "exp_samples": [{"labels": f"slo:sli_errors:rate5m{{{recorded}}}",
                                  "value": 1 / 60}]},
                {"expr": f"slo:sli_error:ratio_rate1h{{{recorded}}}", "eval_time": "70m",
                 "exp_samples": [{"labels": f"slo:sli_error:ratio_rate1h{{{recorded}}}",
                                  "value": 1 / 60}]},
                {"expr": f"slo:sli_requests:rate1h{{{recorded}}}", "eval_time": "70m",
                 "exp_samples": [{"labels": f"slo:sli_requests:rate1h{{{recorded}}}",
                                  "value": 1.0}]},
                # An objective per SLO and SLI with traffic; search has none here.
                {"expr": "slo:objective:ratio", "eval_time": "1m",
                 "exp_samples": [{"labels": f"slo:objective:ratio{{{recorded}}}",
                                  "value": 0.999},
                                 {"labels": 'slo:objective:ratio{service_name="checkout",'
                                            'slo="latency"}', "value": 0.99}]},
                # 1 - (1/60) / 0.001 of the budget left, read every 5 minutes
                {"expr": f"slo:error_budget:remaining_ratio{{{recorded}}}", "eval_time": "30m",
                 "exp_samples": [{"labels": f"slo:error_budget:remaining_ratio{{{recorded}}}",
                                  "value": 1 - (1 / 60) / 0.001}]},
            ],
        },
        {  # 2% errors against a 0.1% budget: burn 20, every window pair fires
            "interval": "1m", "input_series": availability_series(60, 0.02),
            "alert_rule_test": [
                {"eval_time": "70m", "alertname": "RedlineAvailabilityBurnRate",
                 "exp_alerts": burn_alerts("checkout", "availability", 99.9, 20, what,
                                           WINDOWS)},
            ],
        },
        {  # 1.4% errors: burn 14, just below the 1h/5m page (14.4); the others fire
            "interval": "1m", "input_series": availability_series(60, 0.014),
            "alert_rule_test": [
                {"eval_time": "70m", "alertname": "RedlineAvailabilityBurnRate",
                 "exp_alerts": burn_alerts("checkout", "availability", 99.9, 14, what,
                                           WINDOWS[1:])},
            ],
        },
        {  # all requests fail, but one request every two minutes: no page for a handful
            "interval": "1m", "input_series": availability_series(0.5, 1.0),
            "alert_rule_test": [
                {"eval_time": "70m", "alertname": "RedlineAvailabilityBurnRate",
                 "exp_alerts": []},
            ],
        },
        {  # errors stop at 70m: every alert resolves once its short window is clean (the
           # last, 3d/6h, at 70m + 6h); at 9h nothing fires
            "interval": "1m", "input_series": availability_series(60, 0.02, until=70),
            "alert_rule_test": [
                {"eval_time": "9h", "alertname": "RedlineAvailabilityBurnRate",
                 "exp_alerts": []},
            ],
        },
    ])


def test_latency_burn_rates(rule_dir: Path) -> None:
    what = "Requests take longer than 1s"

    def series(slow_share: float) -> list[dict[str, str]]:
        fast = 60 * (1 - slow_share)
        return [
            *counted("http_server_request_duration_seconds", SEARCH, f"0+60x{MINUTES}"),
            {"series": f'http_server_request_duration_seconds_bucket{{{SEARCH},le="1.0"}}',
             "values": f"0+{fast:g}x{MINUTES}"},
        ]

    promtool_test(rule_dir, [
        {  # 80% slow against a 5% budget: burn 16
            "interval": "1m", "input_series": series(0.8),
            "alert_rule_test": [
                {"eval_time": "70m", "alertname": "RedlineLatencyBurnRate",
                 "exp_alerts": burn_alerts("search", "latency", 95, 16, what, WINDOWS, 1)},
            ],
        },
        {  # 70% slow: burn 14, below the 1h/5m page
            "interval": "1m", "input_series": series(0.7),
            "alert_rule_test": [
                {"eval_time": "70m", "alertname": "RedlineLatencyBurnRate",
                 "exp_alerts": burn_alerts("search", "latency", 95, 14, what, WINDOWS[1:], 1)},
            ],
        },
    ])
