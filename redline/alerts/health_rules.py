"""Alerts on redline's own sidecars: down, silent, overflowing, misreading."""

from __future__ import annotations

from redline.alerts.red_rules import FAMILIES, requests_name
from redline.alerts.rules import VALUE_0F, VALUE_PERCENT, AlertingRule, alert, template
from redline.alerts.slo_rules import SERVICES
from redline.alerts.spec import Spec
from redline.queries import DEFAULT, Grouping, aggregate, eq, regex, series, union


def alert_rules(spec: Spec, *, job_regex: str, runbook_url: str,
                grouping: Grouping = DEFAULT) -> list[AlertingRule]:
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
    if spec.slos:
        rules.append(alert(
            "RedlineREDMetricsAbsent", metrics_absent(spec, grouping), for_="15m",
            severity="ticket",
            summary=f"No RED metrics for {service}",
            description=f"{service} has an SLO but no request metrics for 15 minutes (or "
                        f"redline-red.rules.yaml, whose records the SLO rules read, is not "
                        f"loaded): its alerts cannot fire.", runbook_url=runbook_url))
    return rules


def metrics_absent(spec: Spec, grouping: Grouping = DEFAULT) -> str:
    """The SLO services (slo:service:info, redline-slo.rules.yaml) without a RED record of
    requests of their protocol: one expression for every SLO, whose size does not grow with
    the services (a rule per service made the group's cost grow with the square of their
    number, each rule looking its metric names up again; one expression spelling every
    service, as a tree of `or`s, 0.17 s per evaluation at 1,000, #21). The record, not the raw
    series: it is what the SLO rules read, so a service whose SLO cannot fire because the RED
    group is not loaded is found too, and a few series per service are read instead of every
    route's and status's. Present in any cluster is present: an SLO is per service."""
    branches = []
    for protocol in dict.fromkeys(slo.protocol for slo in spec.slos):
        expected = aggregate("group", grouping.service,
                             series(SERVICES, eq("protocol", protocol)))
        present = aggregate("group", ("service_name",),
                            requests_name("service", FAMILIES[protocol]))
        branches.append(f"{expected}\nunless on (service_name)\n{present}")
    return union(branches)
