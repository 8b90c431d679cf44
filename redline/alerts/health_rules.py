"""Alerts on redline's own sidecars: down, silent, overflowing, misreading."""

from __future__ import annotations

from redline.alerts.rules import VALUE_0F, VALUE_PERCENT, AlertingRule, alert, template
from redline.alerts.slo_rules import METRICS
from redline.alerts.spec import Spec
from redline.queries import eq, regex, series


def alert_rules(spec: Spec, *, job_regex: str, runbook_url: str) -> list[AlertingRule]:
    service = template("$labels.service_name")
    source = template("$labels.source")
    rules = [
        alert("RedlineSidecarDown", f"{series('up', regex('job', job_regex))} == 0",
              for_="5m", severity="ticket", summary="A redline sidecar cannot be scraped",
              description=f"{template('$labels.job')} at {template('$labels.instance')} has "
                          f"not answered Prometheus for 5 minutes; its service's RED metrics "
                          f"are missing.", runbook_url=runbook_url),
        alert("RedlineRouteOverflow", "increase(redline_route_overflow_total[1h]) > 0",
              for_="0m", severity="ticket", summary=f"{service} has more routes than the cap",
              description=f"{template(VALUE_0F)} requests of {service} were recorded as "
                          f"/{{other}} in the last hour: add route patterns for them or raise "
                          f"max_routes.", runbook_url=runbook_url),
        alert("RedlineAdapterParseErrors",
              "rate(redline_adapter_parse_errors_total[15m])\n/\n"
              "rate(redline_adapter_lines_total[15m]) > 0.01", for_="15m", severity="ticket",
              summary=f"The adapter cannot read the log lines of {source}",
              description=f"{template(VALUE_PERCENT)} of the lines of {source} do not parse: "
                          f"is --format right?", runbook_url=runbook_url),
    ]
    for slo in spec.slos:
        own = eq("service_name", slo.service)
        rules.append(alert(
            "RedlineREDMetricsAbsent",
            "\nand\n".join(f"absent({series(name, own)})"
                           for name in METRICS[slo.protocol].request_counters), for_="15m",
            severity="ticket", summary=f"No RED metrics for {slo.service}",
            description=f"{slo.service} has an SLO but no request metrics for 15 minutes: its "
                        f"alerts cannot fire.", runbook_url=runbook_url,
            service_name=slo.service))
    return rules
