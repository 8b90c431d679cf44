"""Alerts on redline's own sidecars under promtool."""

from __future__ import annotations

from pathlib import Path

from redline.alerts import health_rules, slo_rules
from redline.alerts.render import prometheus_file
from redline.alerts.rules import group
from redline.alerts.spec import build_spec
from redline.config import Node
from tests.alerts.conftest import availability_series, gauge, promtool_test


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
                                     f"minutes (or redline-red.rules.yaml, whose records the SLO "
                                     "rules read, is not loaded): its alerts cannot fire.",
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
                                     "minutes (or redline-red.rules.yaml, whose records the SLO "
                                     "rules read, is not loaded): its alerts cannot fire.",
                      "runbook_url": "docs/alerts.md#redlineredmetricsabsent"}}]},
         ]},
    ])


def test_metrics_absent_names_each_missing_service_of_many(tmp_path: Path) -> None:
    """The expected services are the SLO services' slo:service:info series, whatever their
    number and protocol: each service without a RED record of its protocol is found, once,
    and a service present in one cluster only is present."""
    services = [f"svc-{n}" for n in range(5)]
    spec = build_spec(Node("many", "", {"slos": [
        {"service": s, "availability": 99.9, "protocol": "grpc" if s == "svc-4" else "http"}
        for s in services]}))
    rules = health_rules.alert_rules(spec, job_regex=".*-redline", runbook_url="docs")
    (tmp_path / "redline-health.rules.yaml").write_text(prometheus_file([
        group("redline-slo-services", slo_rules.service_rules(spec)),
        group("redline-health", rules)]))
    present = ("svc-1", "svc-3")
    promtool_test(tmp_path, [{
        "interval": "1m",
        "input_series": [
            *(gauge("service:http_server_requests:rate5m",
                    f'service_name="{s}",cluster="{cluster}"', "1x30")
              for s, cluster in zip(present, ("a", "b"), strict=True)),
            # svc-4 is gRPC: its HTTP requests are not its RED metrics
            gauge("service:http_server_requests:rate5m", 'service_name="svc-4"', "1x30")],
        "alert_rule_test": [{"eval_time": "20m", "alertname": "RedlineREDMetricsAbsent",
                             "exp_alerts": [{"exp_labels": {"severity": "ticket",
                                                            "service_name": s},
                                             "exp_annotations": absent_annotations(s)}
                                            for s in services if s not in present]}]}])


def absent_annotations(service: str) -> dict[str, str]:
    return {"summary": f"No RED metrics for {service}",
            "description": f"{service} has an SLO but no request metrics for 15 minutes (or "
                           "redline-red.rules.yaml, whose records the SLO rules read, is not "
                           "loaded): its alerts cannot fire.",
            "runbook_url": "docs#redlineredmetricsabsent"}
