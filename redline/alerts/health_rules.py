"""Alerts on redline's own sidecars: down, silent, overflowing, misreading."""

from __future__ import annotations

from redline.alerts.red_rules import FAMILIES, requests_name
from redline.alerts.rules import VALUE_0F, VALUE_PERCENT, AlertingRule, alert, template
from redline.alerts.slo_rules import any_of
from redline.alerts.spec import Spec
from redline.queries import one_of, regex, series


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
    if spec.slos:
        rules.append(alert(
            "RedlineREDMetricsAbsent", metrics_absent(spec), for_="15m", severity="ticket",
            summary=f"No RED metrics for {service}",
            description=f"{service} has an SLO but no request metrics for 15 minutes (or "
                        f"redline-red.rules.yaml, whose records the SLO rules read, is not "
                        f"loaded): its alerts cannot fire.", runbook_url=runbook_url))
    return rules


def metrics_absent(spec: Spec) -> str:
    """The SLO services without a RED record of requests of their protocol: one expression
    for every SLO (a rule per service made the group's cost grow with the square of the number
    of services: each rule looked its metric names up again). The record, not the raw series:
    it is what the SLO rules read, so a service whose SLO cannot fire because the RED group is
    not loaded is found too, and a few series per service are read instead of every route's
    and status's."""
    by_protocol: dict[str, list[str]] = {}
    for slo in spec.slos:
        by_protocol.setdefault(slo.protocol, []).append(slo.service)
    branches = []
    for protocol, services in by_protocol.items():
        # `$` would start a group reference in label_replace's replacement; `$$` is a `$`.
        expected = balanced_or([
            f'label_replace(vector(1), "service_name", "{name.replace("$", "$$")}", "", "")'
            for name in services])
        present = series(requests_name("service", FAMILIES[protocol]),
                         one_of("service_name", services))
        branches.append(f"(\n  {expected}\n)\nunless on (service_name)\n"
                        f"group by (service_name) ({present})")
    return any_of(branches)


def balanced_or(terms: list[str]) -> str:
    """`a or b or c ...` as a balanced tree of `or`s, the same set of series. A chain is
    evaluated as ((a or b) or c) ..., each `or` copying and hashing everything on its left: at
    1,000 SLO services RedlineREDMetricsAbsent took 1.93 s per evaluation in Prometheus 2.42
    as a chain, 0.17 s as a tree (bench_rules.py --before, #21). Still more than linear: the
    engine's cost per node grows with the number of nodes, whatever their shape (a tree of
    1,000 terms alone 103 ms, of 2,000 453 ms)."""
    if len(terms) == 1:
        return terms[0]
    middle = len(terms) // 2
    halves = (terms[:middle], terms[middle:])
    return "\n  or\n  ".join(balanced_or(half) if len(half) == 1 else f"({balanced_or(half)})"
                               for half in halves)
