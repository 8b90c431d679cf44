"""SLO spec -> recording rules and multi-window multi-burn-rate alerts (the SRE workbook's).

Recording rules, per SLO and SLI (labels `service_name`, `slo` = availability | latency, and
the cluster label where series have one: each cluster's SLI is its own, and so are its alerts):
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

from redline import queries
from redline.alerts.rules import VALUE_1F, AlertingRule, RecordingRule, alert, recording, template
from redline.alerts.spec import SLO, Spec, parse_duration
from redline.queries import DEFAULT, HTTP_SERVER, Grouping, eq, regex

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


def slo_matchers(slo: SLO) -> list[str]:
    """The requests an SLO counts: its service, and its routes when it names some."""
    return [eq("service_name", slo.service),
            regex("http_route", queries.route_regex(slo.routes)) if slo.routes else ""]


def sli_expressions(slo: SLO, sli: str, window: str, grouping: Grouping = DEFAULT
                    ) -> tuple[str, str]:
    """(bad events per second, all events per second) over `window`, per cluster."""
    matchers, by = slo_matchers(slo), grouping.service
    if sli == "availability":
        return (queries.errors_or_zero(HTTP_SERVER, matchers, by, window),
                queries.requests(HTTP_SERVER, matchers, by, window))
    assert slo.latency is not None
    # Latency has no untimed requests: only the histogram knows a duration.
    everything = queries.sum_rate(HTTP_SERVER.count, matchers, by, window)
    fast = queries.sum_rate(HTTP_SERVER.bucket,
                            [*matchers, queries.le_matcher(slo.latency.threshold)], by, window)
    return f"{everything} - {fast}", everything


def recorded_selector(slo: SLO, sli: str, metric: str) -> str:
    """One SLO's recorded series of `metric`."""
    return queries.series(metric, eq("service_name", slo.service), eq("slo", sli))


def objectives(slo: SLO) -> list[tuple[str, float]]:
    """(sli, objective as a ratio) for the objectives an SLO has."""
    found = []
    # Rounded: 99.9 / 100 is 0.9990000000000001 in binary, and dashboards show the objective.
    if slo.availability is not None:
        found.append(("availability", round(slo.availability / 100, 10)))
    if slo.latency is not None:
        found.append(("latency", round(slo.latency.target / 100, 10)))
    return found


def recording_rules(spec: Spec, grouping: Grouping = DEFAULT) -> list[RecordingRule]:
    rules: list[RecordingRule] = []
    for slo in spec.slos:
        for sli, objective in objectives(slo):
            labels = {"service_name": slo.service, "slo": sli}

            def own(metric: str, slo: SLO = slo, sli: str = sli) -> str:
                return recorded_selector(slo, sli, metric)

            for window in SHORT_WINDOWS:
                bad, total = sli_expressions(slo, sli, window, grouping)
                rules.append(recording(f"slo:sli_requests:rate{window}", total, labels))
                rules.append(recording(f"slo:sli_error:ratio_rate{window}",
                                       f"({bad})\n/\n({total})", labels))
            bad, _ = sli_expressions(slo, sli, "5m", grouping)
            rules.append(recording("slo:sli_errors:rate5m", bad, labels))
            for window in (*LONG_WINDOWS, spec.period):
                if window in SHORT_WINDOWS:
                    continue
                rules.append(recording(
                    f"slo:sli_error:ratio_rate{window}",
                    f"sum_over_time({own('slo:sli_errors:rate5m')}[{window}])\n/\n"
                    f"sum_over_time({own('slo:sli_requests:rate5m')}[{window}])", labels))
                rules.append(recording(
                    f"slo:sli_requests:rate{window}",
                    f"avg_over_time({own('slo:sli_requests:rate5m')}[{window}])", labels))
            rules.append(recording("slo:objective:ratio", repr(objective), labels))
            rules.append(recording(
                "slo:error_budget:remaining_ratio",
                f"1 - {own(f'slo:sli_error:ratio_rate{spec.period}')} / {1 - objective:.6g}",
                labels))
    return _dedupe(rules)


def _dedupe(rules: list[RecordingRule]) -> list[RecordingRule]:
    """A period equal to a long window (3d) would record the same series twice."""
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    kept = []
    for rule in rules:
        key = (rule["record"], tuple(sorted(rule.get("labels", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(rule)
    return kept


def alert_rules(spec: Spec, *, min_request_rate: float, runbook_url: str,
                grouping: Grouping = DEFAULT) -> list[AlertingRule]:
    rules: list[AlertingRule] = []
    # The cluster label too: joined on the service alone, another cluster's traffic would let
    # this cluster's burn through the minimum request rate.
    joined = queries.on((*grouping.service, "slo"))
    for slo in spec.slos:
        for sli, objective in objectives(slo):
            budget = 1 - objective
            name = ALERT_NAMES[sli]
            what = ("Requests fail" if slo.latency is None or sli == "availability" else
                    f"Requests take longer than {slo.latency.threshold:g}s")
            lasts = (template(f'with printf "%f / %f" {float(spec.period_seconds)} $value | '
                              f'query') + template(". | first | value | humanizeDuration")
                     + template("end"))
            for window in BURN_WINDOWS:
                factor = window.factor(spec.period_seconds)
                long, short = (recorded_selector(slo, sli, f"slo:sli_error:ratio_rate{w}")
                               for w in (window.long, window.short))
                traffic = recorded_selector(slo, sli, f"slo:sli_requests:rate{window.long}")
                expr = (f"(\n  {long} / {budget:.6g} > {factor:g}\n"
                        f"  and\n  {short} / {budget:.6g} > {factor:g}\n)\n"
                        f"and {joined}\n"
                        f"{traffic} >= {min_request_rate:g}")
                # No pending time: the short window already confirms the burn (SRE workbook).
                rules.append(alert(
                    name, expr, for_="0m", severity=window.severity,
                    summary=f"{template('$labels.service_name')} is spending its "
                            f"{objective * 100:g}% {sli} error budget too fast",
                    description=(
                        f"{what} at {template(VALUE_1F)}x the rate the "
                        f"{objective * 100:g}% objective allows, over the last "
                        f"{window.long} and {window.short}. At {factor:g}x, "
                        f"{window.budget_share * 100:g}% of the {spec.period} error budget "
                        f"is spent in {window.long}; at the current rate the whole budget "
                        f"lasts {lasts}."),
                    runbook_url=runbook_url, service_name=slo.service, slo=sli,
                    long_window=window.long, short_window=window.short))
    return rules
