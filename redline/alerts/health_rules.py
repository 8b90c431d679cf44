"""Alerts on redline's own sidecars: down, silent, overflowing, misreading."""

from __future__ import annotations

from redline.alerts.slo_rules import Rule
from redline.alerts.spec import Spec
from redline.exporters.red import SERVER_DURATION, SERVER_UNTIMED


def alert_rules(spec: Spec, *, job_regex: str, runbook_url: str) -> list[Rule]:
    def alert(name: str, expr: str, duration: str, summary: str, description: str,
              **labels: str) -> Rule:
        return {"alert": name, "expr": expr, "for": duration,
                "labels": {"severity": "ticket", **labels},
                "annotations": {"summary": summary, "description": description,
                                "runbook_url": f"{runbook_url}#{name.lower()}"}}

    rules = [
        alert("RedlineSidecarDown", f'up{{job=~"{job_regex}"}} == 0', "5m",
              "A redline sidecar cannot be scraped",
              "{{ $labels.job }} at {{ $labels.instance }} has not answered Prometheus for "
              "5 minutes; its service's RED metrics are missing."),
        alert("RedlineRouteOverflow", "increase(redline_route_overflow_total[1h]) > 0", "0m",
              "{{ $labels.service_name }} has more routes than the cap",
              "{{ printf \"%.0f\" $value }} requests of {{ $labels.service_name }} were "
              "recorded as /{other} in the last hour: add route patterns for them or raise "
              "max_routes."),
        alert("RedlineAdapterParseErrors",
              "rate(redline_adapter_parse_errors_total[15m])\n/\n"
              "rate(redline_adapter_lines_total[15m]) > 0.01", "15m",
              "The adapter cannot read the log lines of {{ $labels.source }}",
              "{{ $value | humanizePercentage }} of the lines of {{ $labels.source }} do not "
              "parse: is --format right?"),
    ]
    for slo in spec.slos:
        rules.append(alert(
            "RedlineREDMetricsAbsent",
            f'absent({SERVER_DURATION}_count{{service_name="{slo.service}"}})\n'
            f'and\nabsent({SERVER_UNTIMED}{{service_name="{slo.service}"}})', "15m",
            f"No RED metrics for {slo.service}",
            f"{slo.service} has an SLO but no request metrics for 15 minutes: its alerts "
            f"cannot fire.", service_name=slo.service))
    return rules
