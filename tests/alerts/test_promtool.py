"""The generated rules under the real promtool: lint, and unit tests for every alert.

Each burn-rate case sends 1 request per second (rates exact in binary) with a chosen share of
errors or slow requests, so the burn rate is known by hand: share / error budget.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from redline.alerts.command import build_groups
from redline.alerts.render import prometheus_file
from redline.alerts.spec import load_spec
from tests.conftest import promtool_path

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "deploy" / "prometheus" / "slo.yaml"
MINUTES = 600  # input series length
CHECKOUT = 'service_name="checkout",http_route="/api/items",http_request_method="GET",' \
           'url_scheme="http"'
SEARCH = 'service_name="search",http_route="/search",http_request_method="GET",' \
         'url_scheme="http",http_response_status_code="200",error_type=""'


def args(**overrides: Any) -> argparse.Namespace:
    defaults = {"min_request_rate": 0.02, "runbook_url": "docs/alerts.md",
                "sidecar_job_regex": ".*redline.*"}
    return argparse.Namespace(**{**defaults, **overrides})


@pytest.fixture(scope="module")
def rule_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("rules")
    for stem, groups in build_groups(load_spec(SPEC), args()).items():
        (directory / f"{stem}.rules.yaml").write_text(prometheus_file(groups))
    return directory


def promtool_test(rule_dir: Path, tests: list[dict[str, Any]]) -> None:
    document = {"rule_files": sorted(str(p) for p in rule_dir.glob("*.rules.yaml")),
                "evaluation_interval": "1m", "tests": tests}
    path = rule_dir / "test.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False, width=1_000_000))
    result = subprocess.run([promtool_path(), "test", "rules", str(path)],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def humanize_duration(seconds: float) -> str:
    """Prometheus' humanizeDuration for durations of a second or more."""
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h {minutes}m {secs}s"
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    return f"{minutes}m {secs}s"


WINDOWS = [("page", "1h", "5m", 14.4, 2), ("page", "6h", "30m", 6, 5),
           ("ticket", "1d", "2h", 3, 10), ("ticket", "3d", "6h", 1, 10)]


def burn_alerts(service: str, sli: str, objective: float, burn: float, what: str,
                windows: list[tuple[str, str, str, float, int]]) -> list[dict[str, Any]]:
    name = {"availability": "RedlineAvailabilityBurnRate",
            "latency": "RedlineLatencyBurnRate"}[sli]
    lasts = humanize_duration(30 * 86400 / burn)
    return [{
        "exp_labels": {"service_name": service, "slo": sli, "severity": severity,
                       "long_window": long, "short_window": short},
        "exp_annotations": {
            "summary": f"{service} is spending its {objective:g}% {sli} error budget too fast",
            "description": f"{what} at {burn:.1f}x the rate the {objective:g}% objective "
                           f"allows, over the last {long} and {short}. At {factor:g}x, "
                           f"{share:g}% of the 30d error budget is spent in {long}; at the "
                           f"current rate the whole budget lasts {lasts}.",
            "runbook_url": f"docs/alerts.md#{name.lower()}"},
    } for severity, long, short, factor, share in windows]


def availability_series(per_minute: float, error_share: float, *, until: int = MINUTES
                        ) -> list[dict[str, str]]:
    """`per_minute` requests a minute, `error_share` of them 500s, for `until` minutes."""
    good, bad = per_minute * (1 - error_share), per_minute * error_share
    after = MINUTES - until
    return [
        {"series": f'http_server_request_duration_seconds_count{{{CHECKOUT},'
                   f'http_response_status_code="200",error_type=""}}',
         "values": f"0+{good:g}x{until} {good * until:g}+{per_minute:g}x{after}"},
        {"series": f'http_server_request_duration_seconds_count{{{CHECKOUT},'
                   f'http_response_status_code="500",error_type="500"}}',
         "values": f"0+{bad:g}x{until} {bad * until:g}+0x{after}"},
    ]


def test_rule_files_pass_promtool_lint(rule_dir: Path) -> None:
    result = subprocess.run(
        [promtool_path(), "check", "rules", "--lint=all", *map(str, rule_dir.glob("*.yaml"))],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


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
                {"expr": f"slo:objective:ratio{{{recorded}}}", "eval_time": "1m",
                 "exp_samples": [{"labels": f"slo:objective:ratio{{{recorded}}}",
                                  "value": 0.999}]},
                {"expr": 'slo:objective:ratio{service_name="search",slo="latency"}',
                 "eval_time": "1m",
                 "exp_samples": [{"labels": 'slo:objective:ratio{service_name="search",'
                                            'slo="latency"}', "value": 0.95}]},
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
            {"series": f'http_server_request_duration_seconds_count{{{SEARCH}}}',
             "values": f"0+60x{MINUTES}"},
            {"series": f'http_server_request_duration_seconds_bucket{{{SEARCH},le="1.0"}}',
             "values": f"0+{fast:g}x{MINUTES}"},
        ]

    promtool_test(rule_dir, [
        {  # 80% slow against a 5% budget: burn 16
            "interval": "1m", "input_series": series(0.8),
            "alert_rule_test": [
                {"eval_time": "70m", "alertname": "RedlineLatencyBurnRate",
                 "exp_alerts": burn_alerts("search", "latency", 95, 16, what, WINDOWS)},
            ],
        },
        {  # 70% slow: burn 14, below the 1h/5m page
            "interval": "1m", "input_series": series(0.7),
            "alert_rule_test": [
                {"eval_time": "70m", "alertname": "RedlineLatencyBurnRate",
                 "exp_alerts": burn_alerts("search", "latency", 95, 14, what, WINDOWS[1:])},
            ],
        },
    ])


NODE = 'instance="node-1:9100",job="node"'
FS_LABELS = f'{NODE},device="/dev/vda",fstype="ext4",mountpoint="/"'


def gauge(name: str, labels: str, values: str) -> dict[str, str]:
    return {"series": f"{name}{{{labels}}}", "values": values}


def node_alert(severity: str, summary: str, description: str, name: str, **labels: str
               ) -> dict[str, Any]:
    return {"exp_labels": {"severity": severity, **labels},
            "exp_annotations": {"summary": summary, "description": description,
                                "runbook_url": f"docs/alerts.md#{name.lower()}"}}


def filesystem(avail_percent: float, files_free_percent: float = 50,
               falling_per_minute: float = 0) -> list[dict[str, str]]:
    size = 1_000_000
    avail = size * avail_percent / 100
    n = 500  # minutes of samples
    return [
        gauge("node_filesystem_size_bytes", FS_LABELS, f"{size}x{n}"),
        gauge("node_filesystem_avail_bytes", FS_LABELS,
              f"{avail:g}-{falling_per_minute:g}x{n}" if falling_per_minute
              else f"{avail:g}x{n}"),
        gauge("node_filesystem_files", FS_LABELS, f"1000x{n}"),
        gauge("node_filesystem_files_free", FS_LABELS, f"{files_free_percent * 10:g}x{n}"),
        gauge("node_filesystem_readonly", FS_LABELS, f"0x{n}"),
    ]


def test_filesystem_alerts(rule_dir: Path) -> None:
    where = "/ on node-1:9100"
    fs = {"instance": "node-1:9100", "job": "node", "device": "/dev/vda", "fstype": "ext4",
          "mountpoint": "/"}
    promtool_test(rule_dir, [
        {"interval": "1m", "input_series": filesystem(4),
         "alert_rule_test": [
             {"eval_time": "40m", "alertname": "RedlineNodeFilesystemAlmostOutOfSpace",
              "exp_alerts": [node_alert("warning", f"{where} has less than 5% space left",
                                        f"{where} has 4.0% space left.",
                                        "RedlineNodeFilesystemAlmostOutOfSpace", **fs)]},
             {"eval_time": "20m", "alertname": "RedlineNodeFilesystemAlmostOutOfSpace",
              "exp_alerts": []},  # not for 30m yet
         ]},
        {"interval": "1m", "input_series": filesystem(2.5),
         "alert_rule_test": [
             {"eval_time": "40m", "alertname": "RedlineNodeFilesystemAlmostOutOfSpace",
              "exp_alerts": [
                  node_alert("warning", f"{where} has less than 5% space left",
                             f"{where} has 2.5% space left.",
                             "RedlineNodeFilesystemAlmostOutOfSpace", **fs),
                  node_alert("critical", f"{where} has less than 3% space left",
                             f"{where} has 2.5% space left.",
                             "RedlineNodeFilesystemAlmostOutOfSpace", **fs)]},
         ]},
        {"interval": "1m", "input_series": filesystem(5.5, files_free_percent=4),
         "alert_rule_test": [
             {"eval_time": "40m", "alertname": "RedlineNodeFilesystemAlmostOutOfSpace",
              "exp_alerts": []},  # just above 5%
             {"eval_time": "70m", "alertname": "RedlineNodeFilesystemAlmostOutOfFiles",
              "exp_alerts": [node_alert("warning", f"{where} has less than 5% inodes left",
                                        f"{where} has 4.0% inodes left.",
                                        "RedlineNodeFilesystemAlmostOutOfFiles", **fs)]},
         ]},
        {  # 14% left and losing 100 bytes a minute: empty in 1400 minutes (< 24h)
            "interval": "1m", "input_series": filesystem(14, falling_per_minute=100),
            "alert_rule_test": [
                {"eval_time": "7h", "alertname": "RedlineNodeFilesystemSpaceFillingUp",
                 "exp_alerts": [node_alert(
                     "warning", f"{where} will be full within 24 hours",
                     f"{where} has 9.8% space left and is filling up.",
                     "RedlineNodeFilesystemSpaceFillingUp", **fs)]},
            ]},
        {  # the same space, not falling: no prediction, no alert
            "interval": "1m", "input_series": filesystem(14),
            "alert_rule_test": [
                {"eval_time": "7h", "alertname": "RedlineNodeFilesystemSpaceFillingUp",
                 "exp_alerts": []},
            ]},
    ])


def test_node_resource_alerts(rule_dir: Path) -> None:
    on = "node-1:9100"
    base = {"instance": on, "job": "node"}
    promtool_test(rule_dir, [
        {"interval": "1m", "input_series": [
            gauge("node_nf_conntrack_entries", NODE, "800x30"),
            gauge("node_nf_conntrack_entries_limit", NODE, "1000x30"),
            gauge("node_filefd_allocated", NODE, "95x30"),
            gauge("node_filefd_maximum", NODE, "100x30"),
            gauge("node_vmstat_oom_kill", NODE, "0 0 0 1x27"),
            gauge("node_processes_threads", NODE, "90x30"),
            gauge("node_processes_max_threads", NODE, "100x30"),
            gauge("node_processes_pids", NODE, "10x30"),
            gauge("node_processes_max_processes", NODE, "100x30"),
         ],
         "alert_rule_test": [
             {"eval_time": "1m", "alertname": "RedlineNodeConntrackAlmostFull",
              "exp_alerts": [node_alert(
                  "warning", f"Connection tracking on {on} is almost full",
                  f"{on} uses 80% of its conntrack table; new connections are dropped when it "
                  f"is full.", "RedlineNodeConntrackAlmostFull", **base)]},
             {"eval_time": "20m", "alertname": "RedlineNodeFileDescriptorLimit",
              "exp_alerts": [
                  node_alert("warning", f"{on} is running out of file descriptors",
                             f"{on} has allocated 95.0% of its file descriptors.",
                             "RedlineNodeFileDescriptorLimit", **base),
                  node_alert("critical", f"{on} is almost out of file descriptors",
                             f"{on} has allocated 95.0% of its file descriptors.",
                             "RedlineNodeFileDescriptorLimit", **base)]},
             {"eval_time": "5m", "alertname": "RedlineNodeOOMKill",
              "exp_alerts": [node_alert(
                  "warning", f"The kernel on {on} killed a process for memory",
                  f"{on} had 1 OOM kills in the last 5 minutes.", "RedlineNodeOOMKill",
                  **base)]},
             {"eval_time": "20m", "alertname": "RedlineNodeTaskCapacity",
              "exp_alerts": [node_alert(
                  "warning", f"{on} is running out of threads or PIDs",
                  f"{on} uses 90% of its thread or PID limit.", "RedlineNodeTaskCapacity",
                  **base)]},
         ]},
        {"interval": "1m", "input_series": [  # just below every threshold
            gauge("node_nf_conntrack_entries", NODE, "750x30"),
            gauge("node_nf_conntrack_entries_limit", NODE, "1000x30"),
            gauge("node_filefd_allocated", NODE, "70x30"),
            gauge("node_filefd_maximum", NODE, "100x30"),
            gauge("node_vmstat_oom_kill", NODE, "3x30"),
            gauge("node_processes_threads", NODE, "80x30"),
            gauge("node_processes_max_threads", NODE, "100x30"),
         ],
         "alert_rule_test": [
             {"eval_time": "20m", "alertname": name, "exp_alerts": []}
             for name in ("RedlineNodeConntrackAlmostFull", "RedlineNodeFileDescriptorLimit",
                          "RedlineNodeOOMKill", "RedlineNodeTaskCapacity")
         ]},
    ])


def test_saturation_and_error_alerts(rule_dir: Path) -> None:
    on = "node-1:9100"
    base = {"instance": on, "job": "node"}
    disk = f'{NODE},device="sda"'
    eth = f'{NODE},device="eth0"'
    promtool_test(rule_dir, [
        {"interval": "1m", "input_series": [
            # PSI: 24s waited per minute = 40% of the time
            gauge("node_pressure_cpu_waiting_seconds_total", NODE, "0+24x40"),
            gauge("node_pressure_memory_waiting_seconds_total", NODE, "0+12x40"),
            gauge("node_vmstat_pgmajfault", NODE, "0+36000x40"),  # 600 per second
            gauge("node_disk_io_time_weighted_seconds_total", disk, "0+720x40"),  # queue 12
            gauge("node_disk_io_errors_total", disk, "0 0 2x38"),
            gauge("node_network_receive_packets_total", eth, "0+6000x80"),
            gauge("node_network_receive_errs_total", eth, "0+120x80"),  # 2% of packets
            gauge("node_network_transmit_packets_total", eth, "0+6000x80"),
            gauge("node_network_transmit_drop_total", eth, "0+30x80"),  # 0.5%: below 1%
         ],
         "alert_rule_test": [
             {"eval_time": "25m", "alertname": "RedlineNodeCPUSaturation",
              "exp_alerts": [node_alert(
                  "warning", f"Tasks on {on} wait for CPU",
                  f"Some task on {on} was waiting for a CPU 40% of the time over the last 5 "
                  f"minutes (PSI).", "RedlineNodeCPUSaturation", signal="psi", **base)]},
             {"eval_time": "25m", "alertname": "RedlineNodeMemoryPressure",
              "exp_alerts": [node_alert(
                  "warning", f"Tasks on {on} stall on memory",
                  f"Some task on {on} was stalled on memory 20% of the time over the last 5 "
                  f"minutes (PSI).", "RedlineNodeMemoryPressure", **base)]},
             {"eval_time": "25m", "alertname": "RedlineNodeMemoryMajorPagesFaults",
              "exp_alerts": [node_alert("warning", f"{on} is paging heavily",
                                        f"{on} has 600 major page faults per second.",
                                        "RedlineNodeMemoryMajorPagesFaults", **base)]},
             {"eval_time": "40m", "alertname": "RedlineNodeDiskSaturation",
              "exp_alerts": [node_alert(
                  "warning", f"sda on {on} has a long I/O queue",
                  f"sda on {on} had 12.0 I/Os queued on average over the last 5 minutes.",
                  "RedlineNodeDiskSaturation", device="sda", **base)]},
             {"eval_time": "10m", "alertname": "RedlineNodeDiskErrors",
              "exp_alerts": [node_alert(
                  "warning", f"sda on {on} reports I/O errors",
                  f"sda on {on} had 2 I/O errors in the last hour.", "RedlineNodeDiskErrors",
                  device="sda", **base)]},
             {"eval_time": "70m", "alertname": "RedlineNodeNetworkReceiveErrors",
              "exp_alerts": [node_alert(
                  "warning", f"eth0 on {on} receives with errors",
                  f"eth0 on {on} has 0.02 receive errors per packet over the last 2 "
                  f"minutes.", "RedlineNodeNetworkReceiveErrors", device="eth0", **base)]},
             {"eval_time": "70m", "alertname": "RedlineNodeNetworkTransmitDrops",
              "exp_alerts": []},
         ]},
        {"interval": "1m", "input_series": [  # no PSI: the load per CPU decides
            gauge("node_load1", NODE, "5x40"),
            gauge("node_cpu_seconds_total", f'{NODE},cpu="0",mode="idle"', "0+30x40"),
            gauge("node_cpu_seconds_total", f'{NODE},cpu="1",mode="idle"', "0+30x40"),
         ],
         "alert_rule_test": [
             {"eval_time": "25m", "alertname": "RedlineNodeCPUSaturation",
              "exp_alerts": [node_alert(
                  "warning", f"Tasks on {on} wait for CPU",
                  f"The 1-minute load on {on} is 2.5 per CPU (the kernel has no PSI).",
                  "RedlineNodeCPUSaturation", signal="load", **base)]},
         ]},
    ])


def test_health_alerts(rule_dir: Path) -> None:
    promtool_test(rule_dir, [
        {"interval": "1m", "input_series": [
            gauge("up", 'job="checkout-redline",instance="10.0.0.7:9901"', "1 1 0x20"),
            gauge("up", 'job="node",instance="node-1:9100"', "0x20"),  # not redline's
            gauge("redline_route_overflow_total", 'service_name="checkout"', "0 0 5 9x20"),
            gauge("redline_adapter_lines_total", 'source="/logs/access.log"', "0+1000x30"),
            gauge("redline_adapter_parse_errors_total", 'source="/logs/access.log"',
                  "0+50x30"),
         ],
         "alert_rule_test": [
             {"eval_time": "10m", "alertname": "RedlineSidecarDown",
              "exp_alerts": [{
                  "exp_labels": {"severity": "ticket", "job": "checkout-redline",
                                 "instance": "10.0.0.7:9901"},
                  "exp_annotations": {
                      "summary": "A redline sidecar cannot be scraped",
                      "description": "checkout-redline at 10.0.0.7:9901 has not answered "
                                     "Prometheus for 5 minutes; its service's RED metrics are "
                                     "missing.",
                      "runbook_url": "docs/alerts.md#redlinesidecardown"}}]},
             {"eval_time": "20m", "alertname": "RedlineRouteOverflow",
              "exp_alerts": [{
                  "exp_labels": {"severity": "ticket", "service_name": "checkout"},
                  "exp_annotations": {
                      "summary": "checkout has more routes than the cap",
                      "description": "9 requests of checkout were recorded as /{other} in "
                                     "the last hour: add route patterns for them or raise "
                                     "max_routes.",
                      "runbook_url": "docs/alerts.md#redlinerouteoverflow"}}]},
             {"eval_time": "25m", "alertname": "RedlineAdapterParseErrors",
              "exp_alerts": [{
                  "exp_labels": {"severity": "ticket", "source": "/logs/access.log"},
                  "exp_annotations": {
                      "summary": "The adapter cannot read the log lines of /logs/access.log",
                      "description": "5% of the lines of /logs/access.log do not parse: is "
                                     "--format right?",
                      "runbook_url": "docs/alerts.md#redlineadapterparseerrors"}}]},
             {"eval_time": "20m", "alertname": "RedlineREDMetricsAbsent",
              "exp_alerts": [{
                  "exp_labels": {"severity": "ticket", "service_name": service},
                  "exp_annotations": {
                      "summary": f"No RED metrics for {service}",
                      "description": f"{service} has an SLO but no request metrics for 15 "
                                     f"minutes: its alerts cannot fire.",
                      "runbook_url": "docs/alerts.md#redlineredmetricsabsent"}}
                  for service in ("checkout", "search")]},
         ]},
        {"interval": "1m", "input_series": availability_series(60, 0),
         "alert_rule_test": [
             {"eval_time": "20m", "alertname": "RedlineREDMetricsAbsent",
              "exp_alerts": [{
                  "exp_labels": {"severity": "ticket", "service_name": "search"},
                  "exp_annotations": {
                      "summary": "No RED metrics for search",
                      "description": "search has an SLO but no request metrics for 15 "
                                     "minutes: its alerts cannot fire.",
                      "runbook_url": "docs/alerts.md#redlineredmetricsabsent"}}]},
         ]},
    ])


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


def test_use_alerts_stay_silent_just_below_and_resolve(rule_dir: Path) -> None:
    disk = f'{NODE},device="sda"'
    eth = f'{NODE},device="eth0"'
    quiet = ("RedlineNodeCPUSaturation", "RedlineNodeMemoryPressure",
             "RedlineNodeMemoryMajorPagesFaults", "RedlineNodeDiskSaturation",
             "RedlineNodeDiskErrors", "RedlineNodeNetworkReceiveErrors",
             "RedlineNodeNetworkTransmitErrors", "RedlineNodeNetworkReceiveDrops",
             "RedlineNodeNetworkTransmitDrops")
    promtool_test(rule_dir, [
        {"interval": "1m", "input_series": [
            gauge("node_pressure_cpu_waiting_seconds_total", NODE, "0+17.4x80"),  # 29%
            gauge("node_pressure_memory_waiting_seconds_total", NODE, "0+5.4x80"),  # 9%
            gauge("node_vmstat_pgmajfault", NODE, "0+28800x80"),  # 480/s
            gauge("node_disk_io_time_weighted_seconds_total", disk, "0+540x80"),  # queue 9
            gauge("node_disk_io_errors_total", disk, "3x80"),  # old errors, none new
            gauge("node_network_receive_packets_total", eth, "0+6000x80"),
            gauge("node_network_receive_errs_total", eth, "0+54x80"),  # 0.9%
            gauge("node_network_receive_drop_total", eth, "0+54x80"),
            gauge("node_network_transmit_packets_total", eth, "0+6000x80"),
            gauge("node_network_transmit_errs_total", eth, "0+54x80"),
            gauge("node_network_transmit_drop_total", eth, "0+54x80"),
         ],
         "alert_rule_test": [{"eval_time": "75m", "alertname": name, "exp_alerts": []}
                             for name in quiet]},
        {  # one OOM kill at 3m: the alert fires, and is gone 5 minutes later
            "interval": "1m", "input_series": [
                gauge("node_vmstat_oom_kill", NODE, "0 0 0 1x30")],
            "alert_rule_test": [
                {"eval_time": "15m", "alertname": "RedlineNodeOOMKill", "exp_alerts": []}]},
        {  # a filesystem at 4% for 40 minutes, then freed to 50%: the alert resolves
            "interval": "1m", "input_series": [
                gauge("node_filesystem_size_bytes", FS_LABELS, "1000x80"),
                gauge("node_filesystem_avail_bytes", FS_LABELS, "40x40 500x40"),
                gauge("node_filesystem_readonly", FS_LABELS, "0x80"),
            ],
            "alert_rule_test": [
                {"eval_time": "50m", "alertname": "RedlineNodeFilesystemAlmostOutOfSpace",
                 "exp_alerts": []}]},
    ])
