"""Two clusters' series in one ruler (a central VictoriaMetrics, Thanos or Mimir): every rule keeps
them apart. Each case here mixed or collided on the rules before the cluster label was kept
through aggregations and `on (...)` joins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from redline.alerts.generate import RuleOptions, build_groups
from redline.alerts.render import prometheus_file
from redline.alerts.spec import load_spec
from tests.alerts.conftest import CHECKOUT, SPEC, gauge, promtool_test
from tests.alerts.test_slo_rules import WINDOWS, burn_alerts


@pytest.fixture(scope="module", params=["cluster", "region"])
def labelled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[Path, str]:
    """The rule files with the default cluster label, and with `--cluster-label region`."""
    label: str = request.param
    directory = tmp_path_factory.mktemp(f"rules-{label}")
    for stem, groups in build_groups(load_spec(SPEC), RuleOptions(cluster_label=label)).items():
        (directory / f"{stem}.rules.yaml").write_text(prometheus_file(groups))
    return directory, label


def checkout(label: str, cluster: str, per_minute: float, error_share: float,
             minutes: int = 600) -> list[dict[str, str]]:
    good, bad = per_minute * (1 - error_share), per_minute * error_share
    where = f'{label}="{cluster}",{CHECKOUT}'
    return [gauge("http_server_request_duration_seconds_count",
                  f'{where},http_response_status_code="200",error_type=""',
                  f"0+{good:g}x{minutes}"),
            gauge("http_server_request_duration_seconds_count",
                  f'{where},http_response_status_code="500",error_type="500"',
                  f"0+{bad:g}x{minutes}")]


def burning(label: str, cluster: str, burn: float) -> list[dict[str, Any]]:
    """checkout's four availability alerts at `burn`, in `cluster`."""
    alerts = burn_alerts("checkout", "availability", 99.9, burn, "Requests fail", WINDOWS)
    return [{**a, "exp_labels": {label: cluster, **a["exp_labels"]}} for a in alerts]


def test_a_burning_cluster_pages_alone_with_its_label(labelled: tuple[Path, str]) -> None:
    """a fails 1/32 of its requests (burn 31.25 on a 99.9% SLO; exact in binary), b none, at
    the same traffic. Summed over both clusters (the old rules) it was half: one alert short,
    and none with a cluster label."""
    rule_dir, label = labelled
    ratio = "slo:sli_error:ratio_rate5m"
    promtool_test(rule_dir, [{
        "interval": "1m",
        "input_series": [*checkout(label, "a", 64, 1 / 32), *checkout(label, "b", 64, 0)],
        "promql_expr_test": [{  # ~1/32 and 0 (rate's extrapolation is not exact in binary)
            "expr": f'{ratio}{{slo="availability"}} > bool 0.031', "eval_time": "30m",
            "exp_samples": [{"labels": f'{{{label}="{c}",service_name="checkout",'
                                       f'slo="availability"}}', "value": v}
                            for c, v in (("a", 1), ("b", 0))]}],
        "alert_rule_test": [{"eval_time": "70m", "alertname": "RedlineAvailabilityBurnRate",
                             "exp_alerts": burning(label, "a", 31.25)}],
    }])


def test_one_clusters_traffic_does_not_open_anothers_alert(labelled: tuple[Path, str]) -> None:
    """a fails every request but has one every two minutes (below --min-request-rate), b is
    healthy and busy: nothing fires. Joined `on (service_name, slo)` only, b's traffic let a's
    burn through."""
    rule_dir, label = labelled
    promtool_test(rule_dir, [{
        "interval": "1m",
        "input_series": [*checkout(label, "a", 0.5, 1.0), *checkout(label, "b", 60, 0)],
        "alert_rule_test": [{"eval_time": "70m", "alertname": "RedlineAvailabilityBurnRate",
                             "exp_alerts": []}],
    }])


def test_the_same_node_name_in_two_clusters(labelled: tuple[Path, str]) -> None:
    """node-1 exists in both: a with PSI and no pressure, b without PSI and a load of 2.5 per
    CPU. The load ratio is each cluster's own (joined on the instance alone the two node-1s
    collided), and only b's load alerts (a's PSI used to silence it)."""
    rule_dir, label = labelled
    node = 'instance="node-1:9100",job="node"'

    def on(cluster: str) -> str:
        return f'{label}="{cluster}",{node}'

    cpus = [gauge("node_cpu_seconds_total", f'{on(c)},cpu="{n}",mode="idle"', "0+30x40")
            for c in ("a", "b") for n in (0, 1)]
    ratio = "instance:use_load1_per_cpu:ratio"
    promtool_test(rule_dir, [{
        "interval": "1m",
        "input_series": [*cpus, gauge("node_load1", on("a"), "1x40"),
                         gauge("node_pressure_cpu_waiting_seconds_total", on("a"), "0+1x40"),
                         gauge("node_load1", on("b"), "5x40")],
        "promql_expr_test": [{
            "expr": ratio, "eval_time": "10m",
            "exp_samples": [{"labels": f"{ratio}{{{on(c)}}}", "value": v}
                            for c, v in (("a", 0.5), ("b", 2.5))]}],
        "alert_rule_test": [{
            "eval_time": "25m", "alertname": "RedlineNodeCPUSaturation",
            "exp_alerts": [{
                "exp_labels": {label: "b", "instance": "node-1:9100", "job": "node",
                               "severity": "warning", "signal": "load"},
                "exp_annotations": {
                    "summary": "Tasks on node-1:9100 wait for CPU",
                    "description": "The 1-minute load on node-1:9100 is 2.5 per CPU (the "
                                   "kernel has no PSI).",
                    "runbook_url": "docs/alerts.md#redlinenodecpusaturation"}}]}],
    }])


def test_red_recording_rules_keep_each_clusters_services(labelled: tuple[Path, str]) -> None:
    rule_dir, label = labelled
    web = ('service_name="web",http_route="/a",http_request_method="GET",url_scheme="http",'
           'http_response_status_code="200",error_type=""')
    failed = web.replace('"200",error_type=""', '"503",error_type="503"')
    series = [gauge("http_server_request_duration_seconds_count", f'{label}="a",{web}',
                    "0+60x20"),
              gauge("http_server_request_duration_seconds_count", f'{label}="b",{web}',
                    "0+30x20"),
              gauge("http_server_request_duration_seconds_count", f'{label}="b",{failed}',
                    "0+30x20")]
    requests, ratio = ("service:http_server_requests:rate5m",
                       "service:http_server_errors:ratio_rate5m")
    promtool_test(rule_dir, [{
        "interval": "1m", "input_series": series,
        "promql_expr_test": [
            {"expr": requests, "eval_time": "10m",
             "exp_samples": [{"labels": f'{requests}{{{label}="{c}",service_name="web"}}',
                              "value": 1.0} for c in ("a", "b")]},
            {"expr": ratio, "eval_time": "10m",
             "exp_samples": [{"labels": f'{ratio}{{{label}="{c}",service_name="web"}}',
                              "value": v} for c, v in (("a", 0.0), ("b", 0.5))]},
        ],
    }])
