"""SLO spec -> recording rules and multi-window multi-burn-rate alerts (the SRE workbook's).

Recording rules, per SLO and SLI (labels `service_name`, `slo` = availability | latency):
- `slo:sli_requests:rate<W>` and `slo:sli_error:ratio_rate<W>` for the short windows 5m, 30m,
  1h, 2h, 6h, from the raw counters;
- `slo:sli_errors:rate5m`, the numerator the long windows sum;
- `slo:sli_error:ratio_rate<W>` for 1d, 3d and the period as sum_over_time of the 5m numerator
  over sum_over_time of the 5m denominator: a ratio of sums, never an average of ratios, and
  no query over 30 days of raw samples;
- `slo:objective:ratio` and `slo:error_budget:remaining_ratio` for dashboards.

Requests are the histogram's `_count` plus the adapter's untimed requests (access logs without
a request time count for availability); latency uses the histogram only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redline.alerts.spec import SLO, Spec, parse_duration
from redline.exporters.instruments import format_bound
from redline.exporters.red import SERVER_DURATION, SERVER_UNTIMED

Rule = dict[str, Any]
SHORT_WINDOWS = ("5m", "30m", "1h", "2h", "6h")
LONG_WINDOWS = ("1d", "3d")


@dataclass(frozen=True)
class BurnWindow:
    severity: str
    long: str
    short: str
    budget_share: float  # of the period's error budget that this burn spends in `long`

    def factor(self, period_seconds: int) -> float:
        """14.4, 6, 3 and 1 for a 30d period; scaled for others."""
        return round(self.budget_share * period_seconds / parse_duration(self.long), 4)


BURN_WINDOWS = (
    BurnWindow("page", "1h", "5m", 0.02),
    BurnWindow("page", "6h", "30m", 0.05),
    BurnWindow("ticket", "1d", "2h", 0.10),
    BurnWindow("ticket", "3d", "6h", 0.10),
)
ALERT_NAMES = {"availability": "RedlineAvailabilityBurnRate", "latency": "RedlineLatencyBurnRate"}


def _selector(slo: SLO, *extra: str) -> str:
    parts = [f'service_name="{slo.service}"']
    if slo.routes:
        parts.append(f'http_route=~"{route_regex(slo.routes)}"')
    return "{" + ",".join([*parts, *extra]) + "}"


def route_regex(routes: tuple[str, ...]) -> str:
    """Route patterns (`/api/*`, `/users/{id}`) as one RE2 alternation inside a PromQL string."""
    alternatives = []
    for route in routes:
        pieces = []
        for char in route:
            if char == "*":
                pieces.append(".*")
            elif char in r".+?()[]{}|^$\\":
                pieces.append("\\\\" + char)  # a regex escape, doubled for the PromQL string
            else:
                pieces.append(char)
        alternatives.append("".join(pieces))
    return "|".join(alternatives)


def _le_matcher(threshold: float) -> str:
    """`le` as redline writes it (0.25, 1.0) and as OpenTelemetry exporters do (1)."""
    written = format_bound(threshold)
    if threshold.is_integer():
        return f'le=~"{written}|{int(threshold)}"'
    return f'le="{written}"'


def _sum_rate(metric: str, selector: str, window: str) -> str:
    return f"sum(rate({metric}{selector}[{window}]))"


def _either(*terms: str) -> str:
    """A sum of rates where any term may have no series (a service only seen untimed)."""
    return " + ".join(f"({term} or vector(0))" for term in terms)


def sli_expressions(slo: SLO, sli: str, window: str) -> tuple[str, str]:
    """(bad events per second, all events per second) over `window`."""
    count = f"{SERVER_DURATION}_count"
    if sli == "availability":
        errors = _selector(slo, 'error_type!=""')
        total = _selector(slo)
        return (_either(_sum_rate(count, errors, window), _sum_rate(SERVER_UNTIMED, errors,
                                                                     window)),
                _either(_sum_rate(count, total, window), _sum_rate(SERVER_UNTIMED, total,
                                                                    window)))
    assert slo.latency is not None
    everything = _sum_rate(count, _selector(slo), window)
    fast = _sum_rate(f"{SERVER_DURATION}_bucket", _selector(slo, _le_matcher(
        slo.latency.threshold)), window)
    return f"{everything} - {fast}", everything


def recorded_selector(slo: SLO, sli: str) -> str:
    """The labels of one SLO's recorded series."""
    return '{service_name="' + slo.service + '",slo="' + sli + '"}'


def objectives(slo: SLO) -> list[tuple[str, float]]:
    """(sli, objective as a ratio) for the objectives an SLO has."""
    found = []
    # Rounded: 99.9 / 100 is 0.9990000000000001 in binary, and dashboards show the objective.
    if slo.availability is not None:
        found.append(("availability", round(slo.availability / 100, 10)))
    if slo.latency is not None:
        found.append(("latency", round(slo.latency.target / 100, 10)))
    return found


def recording_rules(spec: Spec) -> list[Rule]:
    rules: list[Rule] = []
    for slo in spec.slos:
        for sli, objective in objectives(slo):
            labels = {"service_name": slo.service, "slo": sli}
            own = recorded_selector(slo, sli)
            for window in SHORT_WINDOWS:
                bad, total = sli_expressions(slo, sli, window)
                rules.append({"record": f"slo:sli_requests:rate{window}", "expr": total,
                              "labels": labels})
                rules.append({"record": f"slo:sli_error:ratio_rate{window}",
                              "expr": f"({bad})\n/\n({total})", "labels": labels})
            bad, _ = sli_expressions(slo, sli, "5m")
            rules.append({"record": "slo:sli_errors:rate5m", "expr": bad, "labels": labels})
            for window in (*LONG_WINDOWS, spec.period):
                if window in SHORT_WINDOWS:
                    continue
                rules.append({
                    "record": f"slo:sli_error:ratio_rate{window}",
                    "expr": f"sum_over_time(slo:sli_errors:rate5m{own}[{window}])\n/\n"
                            f"sum_over_time(slo:sli_requests:rate5m{own}[{window}])",
                    "labels": labels})
                rules.append({
                    "record": f"slo:sli_requests:rate{window}",
                    "expr": f"avg_over_time(slo:sli_requests:rate5m{own}[{window}])",
                    "labels": labels})
            rules.append({"record": "slo:objective:ratio", "expr": repr(objective),
                          "labels": labels})
            rules.append({
                "record": "slo:error_budget:remaining_ratio",
                "expr": f"1 - slo:sli_error:ratio_rate{spec.period}{own} / {1 - objective:.6g}",
                "labels": labels})
    return _dedupe(rules)


def _dedupe(rules: list[Rule]) -> list[Rule]:
    """A period equal to a long window (3d) would record the same series twice."""
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    kept = []
    for rule in rules:
        key = (rule["record"], tuple(sorted(rule["labels"].items())))
        if key not in seen:
            seen.add(key)
            kept.append(rule)
    return kept


def alert_rules(spec: Spec, *, min_request_rate: float, runbook_url: str) -> list[Rule]:
    rules: list[Rule] = []
    for slo in spec.slos:
        for sli, objective in objectives(slo):
            budget = 1 - objective
            own = recorded_selector(slo, sli)
            name = ALERT_NAMES[sli]
            what = ("Requests fail" if slo.latency is None or sli == "availability" else
                    f"Requests take longer than {slo.latency.threshold:g}s")
            for window in BURN_WINDOWS:
                factor = window.factor(spec.period_seconds)
                expr = (
                    f"(\n  slo:sli_error:ratio_rate{window.long}{own} / {budget:.6g} > {factor:g}\n"
                    f"  and\n  slo:sli_error:ratio_rate{window.short}{own} / {budget:.6g}"
                    f" > {factor:g}\n)\n"
                    f"and on (service_name, slo)\n"
                    f"slo:sli_requests:rate{window.long}{own} >= {min_request_rate:g}")
                rules.append({
                    "alert": name,
                    "expr": expr,
                    "labels": {"service_name": slo.service, "slo": sli,
                               "severity": window.severity, "long_window": window.long,
                               "short_window": window.short},
                    "annotations": {
                        "summary": f"{{{{ $labels.service_name }}}} is spending its "
                                   f"{objective * 100:g}% {sli} error budget too fast",
                        "description": (
                            f"{what} at {{{{ printf \"%.1f\" $value }}}}x the rate the "
                            f"{objective * 100:g}% objective allows, over the last "
                            f"{window.long} and {window.short}. At {factor:g}x, "
                            f"{window.budget_share * 100:g}% of the {spec.period} error budget "
                            f"is spent in {window.long}; at the current rate the whole budget "
                            f"lasts {{{{ with printf \"%f / %f\" {float(spec.period_seconds)} "
                            f"$value | query }}}}{{{{ . | first | value | humanizeDuration }}}}"
                            f"{{{{ end }}}}."),
                        "runbook_url": f"{runbook_url}#{name.lower()}",
                    },
                })
    return rules
