"""SLO spec -> recording rules and multi-window multi-burn-rate alerts (the SRE workbook's).

The rules are shared by the SLOs, so that their number grows with the kinds of SLO (request
metric, route filter, latency threshold, objective), not with the number of services (but for
one constant series per SLO), no expression grows with the services, and no rule here reads a
raw series: the RED group (redline/alerts/red_rules.py) reads them once per
evaluation, over 5 minutes, for the dashboards and the SLOs alike. Every record has the labels
`service_name`, `slo` (availability | latency) and the cluster label where series have one.

- **The SLO services**, one rule each: `slo:service:info`, 1 with the service's protocol,
  filter and objectives as labels. The rules below select the services by joining on it, so
  that no expression lists them (`service_rules`).
- **Base records**, from the RED group's per-service records (per-route ones for an SLO with
  a route filter), one rule per SLI for all the services that read the same requests
  (`and on (service_name) slo:service:info{...}`): `slo:sli_requests:rate5m` and
  `slo:sli_errors:rate5m` (bad events per second: requests with an `error_type`, or slower
  than the latency threshold).
- **Tiles**, in groups of their own that are evaluated once per tile (`interval: 5m`,
  `interval: 1h`): `slo:sli_requests:tile<T>` and `slo:sli_errors:tile<T>`, the mean of the
  base records over the tile's own time T. Consecutive tiles cover consecutive stretches of
  time, each base sample in one tile, so a window sums 72 tiles (6h of 5m tiles) instead of
  720 samples of the base records, and still divides a sum by a sum.
- **Windows**, one rule each for every SLO: `slo:sli_error:ratio_rate<W>` (5m, 30m, 1h, 2h,
  6h, 1d, 3d) as sum_over_time of the numerator over sum_over_time of the denominator (a
  ratio of sums, never an average of ratios), and `slo:sli_requests:rate<W>` for the alerts'
  long windows. Up to 2h they read the base records; 6h reads the 5m tiles, 1d, 3d and the
  period the hourly ones (`window_source`): such a window ends at its newest tile, up to one
  tile (5m, 1h) before now. They need history: docs/alerts.md#after-the-first-deploy says how
  long, and how to backfill.
- **Objectives**, one rule per SLI and objective: `slo:objective:ratio`; and, in a group of
  their own (they read the whole period: `--budget-interval` evaluates them less often), the
  period's error ratio and `slo:error_budget:remaining_ratio`.
- **Alerts**, one per window pair and objective: the objective is a constant of each rule.

Requests are the histogram's `_count` plus the adapter's untimed requests (access logs without
a request time count for availability); latency uses the histogram only. gRPC SLOs read
`rpc_server_duration_seconds`, where `error_type` is set for server-fault statuses only."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from redline import queries
from redline.alerts import red_rules
from redline.alerts.rules import VALUE_1F, AlertingRule, RecordingRule, alert, recording, template
from redline.alerts.spec import SLO, Spec, parse_duration
from redline.queries import DEFAULT, Grouping, eq

REQUESTS, ERRORS = "slo:sli_requests:rate5m", "slo:sli_errors:rate5m"
SERVICES = "slo:service:info"
DERIVED_WINDOWS = ("30m", "1h", "2h", "6h", "1d", "3d")


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


def objectives(slo: SLO) -> list[tuple[str, float]]:
    """(sli, objective as a ratio) for the objectives an SLO has."""
    found = []
    # Rounded: 99.9 / 100 is 0.9990000000000001 in binary, and dashboards show the objective.
    if slo.availability is not None:
        found.append(("availability", round(slo.availability / 100, 10)))
    if slo.latency is not None:
        found.append(("latency", round(slo.latency.target / 100, 10)))
    return found


# --- the SLO services: one series each, that the other rules join on ------------------------

def service_labels(slo: SLO) -> dict[str, str]:
    """What the rules select an SLO's service by: its protocol and filter (its `Source`) and
    its objectives (its `Objective`s), as the alerts write them."""
    labels = {"service_name": slo.service, "protocol": slo.protocol}
    if slo.routes:
        labels["routes"] = " ".join(slo.routes)
    if slo.methods:
        labels["methods"] = " ".join(slo.methods)
    for sli, ratio in objectives(slo):
        labels[f"{sli}_objective"] = f"{ratio * 100:g}"
    if slo.latency is not None:
        labels["latency_threshold"] = f"{slo.latency.threshold:g}"
    return labels


def service_rules(spec: Spec) -> list[RecordingRule]:
    """`slo:service:info{service_name="checkout", protocol="http", ...} 1`, one tiny rule per
    SLO: the other rules select the SLO services by joining on these series (`and on
    (service_name)`), so that no expression lists the services. Listed, they grew with the
    services and cost more than linearly: at 1,000 services a rule was 8-83 KB of PromQL
    (VictoriaMetrics refuses more than 16 KB by default) and RedlineREDMetricsAbsent's tree of
    1,000 `or`s took 0.17 s per evaluation (#21). The series have no cluster label of their
    own (a ruler may add one): every join on them is on `service_name` alone, an SLO being
    per service in every cluster."""
    return [recording(SERVICES, "vector(1)", service_labels(slo)) for slo in spec.slos]


def of_services(expr: str, members: str) -> str:
    """`expr`'s series of the SLO services that `members` (slo:service:info) selects."""
    return f"{expr}\nand on (service_name)\n{members}"


# --- base records: from the RED group's records, never the raw series -----------------------

@dataclass(frozen=True)
class Source:
    """Requests that SLOs count alike: a request family and, for an SLO with one, a route
    or method filter (each such SLO is a source of its own)."""

    protocol: str
    routes: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()  # gRPC's routes: `Service/Method` patterns

    @property
    def family(self) -> red_rules.Family:
        return red_rules.FAMILIES[self.protocol]

    @property
    def level(self) -> str:
        """The RED records read: per service, or per route or method where the SLO filters
        them."""
        return self.family.detail if self.routes or self.methods else "service"

    def members(self, *objective: str) -> str:
        """The slo:service:info series of this source's services (with `objective`)."""
        own = [eq("protocol", self.protocol)]
        # `=""` matches the series without the label: the services without a filter.
        own.append(eq("methods", " ".join(self.methods)) if self.protocol == "grpc"
                   else eq("routes", " ".join(self.routes)))
        return queries.series(SERVICES, own, *objective)

    def selectors(self, record: str, *extra: str) -> str:
        """`record` of the filter's routes or methods, `or`-ed: a method pattern matches two
        labels at once, so several are one selector each (a series that two patterns match
        is one series for `or`)."""
        own = list(extra)
        if self.routes:
            own.insert(0, queries.regex("http_route", queries.route_regex(self.routes)))
        if not self.methods:
            return queries.series(record, own)
        return "(" + " or ".join(queries.series(record, own, *(
            queries.regex(label, queries.route_regex((part,)))
            for label, part in zip(("rpc_service", "rpc_method"), method.split("/"),
                                   strict=True))) for method in self.methods) + ")"


def _source(slo: SLO) -> Source:
    return Source(slo.protocol, slo.routes, slo.methods)


def base_rules(spec: Spec, grouping: Grouping = DEFAULT) -> list[RecordingRule]:
    """One rule per record and SLI: each source's services (joined on slo:service:info) in one
    branch, the branches joined with `or` (their services differ). One rule, not one per
    branch, so that no two rules record the same series name and labels (`promtool check
    rules --lint` refuses that).

    Every branch reads the RED group's 5m records (redline/alerts/red_rules.py), which read
    the raw series once per evaluation for the dashboards and the SLOs alike: a few series
    per service here (per route for an SLO with a route filter), never every status, route
    and bucket of every service again. Latency's total is the +Inf bucket, which counts every
    timed request (the histogram's _count); untimed requests have no duration."""
    by = grouping.service
    availability: dict[Source, str] = {}
    latency: dict[tuple[Source, float], str] = {}
    for slo in spec.slos:
        source = _source(slo)
        if slo.availability is not None:
            availability[source] = source.members(queries.ne("availability_objective", ""))
        if slo.latency is not None:
            threshold = slo.latency.threshold
            latency[source, threshold] = source.members(eq("latency_threshold", f"{threshold:g}"))

    def summed(source: Source, record: str, members: str, *extra: str) -> str:
        return queries.aggregate("sum", by, "\n" + of_services(
            source.selectors(record, *extra), members) + "\n")

    requests, failed = [], []
    for source, members in availability.items():
        family = source.family
        requests.append(summed(source, red_rules.requests_name(source.level, family), members))
        failed.append(summed(source, red_rules.errors_name(source.level, family), members))
    # 0 for a service without a failed request: route records have no zeros of their own.
    # Only the labels of the requests just recorded are taken: in vmalert, where the record is
    # one evaluation old, so is the set of services, never a value.
    errors = [f"{queries.union(failed)}\nor ignoring (slo)\n"
              f"{queries.series(REQUESTS, eq('slo', 'availability'))} * 0"] if failed else []
    slow, timed = [], []
    for (source, threshold), members in latency.items():
        buckets = red_rules.buckets_name(source.level, source.family)
        everything = summed(source, buckets, members, eq("le", "+Inf"))
        fast = summed(source, buckets, members, queries.le_matcher(threshold))
        timed.append(everything)
        slow.append(f"{everything}\n-\n{fast}")
    rules = []
    for sli, totals, bad in (("availability", requests, errors), ("latency", timed, slow)):
        if totals:
            rules.append(recording(REQUESTS, queries.union(totals), {"slo": sli}))
            rules.append(recording(ERRORS, queries.union(bad), {"slo": sli}))
    return rules


# --- tiles: the base records once per 5 minutes and once per hour ---------------------------

@dataclass(frozen=True)
class Tile:
    """The base records' mean over `step`, written once per `step` by a group of that
    interval, for the windows of `shortest` and longer (that `step` divides).

    A mean over exactly the group's interval takes each base sample into one tile: tiles of
    one group cover consecutive stretches of time without overlap, so a window's sum over
    tiles divided by another such sum is the ratio of sums over the base records, as of the
    newest tile. A mean, not a copy of the newest sample: a copy would count one sample twice,
    or none, whenever the base group's evaluation was late; and a mean is the same whatever
    the number of samples in it (promtool evaluates every group every minute)."""

    step: str
    shortest: str

    @property
    def requests(self) -> str:
        return f"slo:sli_requests:tile{self.step}"

    @property
    def errors(self) -> str:
        return f"slo:sli_errors:tile{self.step}"

    @property
    def group(self) -> str:
        return f"redline-slo-tiles-{self.step}"

    def serves(self, window: str) -> bool:
        seconds, step = parse_duration(window), parse_duration(self.step)
        return seconds >= parse_duration(self.shortest) and seconds % step == 0

    def rules(self) -> list[RecordingRule]:
        return [recording(tile, f"avg_over_time({base}[{self.step}])")
                for tile, base in ((self.requests, REQUESTS), (self.errors, ERRORS))]


# 6h from 5m tiles (72 a window, not 720 base samples at a 30 s interval); 1d, 3d and the
# period from hourly ones (24, 72, 720 for 30d). The windows up to 2h, which confirm that a
# burn still goes on, keep reading the base records: they end at the last evaluation.
TILES = (Tile("5m", shortest="6h"), Tile("1h", shortest="1d"))


def window_source(window: str) -> tuple[str, str]:
    """(requests, errors) that `window` sums: the coarsest tiles that serve it, or the base
    records."""
    for tile in reversed(TILES):
        if tile.serves(window):
            return tile.requests, tile.errors
    return REQUESTS, ERRORS


# --- windows: from the base records and the tiles, for every SLO at once -------------------

def error_ratio(window: str) -> str:
    """Bad events over all events in `window`: sums of the 5m rates (or of their tiles) over
    the window, so each rate weighs by its traffic."""
    if window == "5m":
        return f"{ERRORS}\n/\n{REQUESTS}"
    requests, errors = window_source(window)
    return f"sum_over_time({errors}[{window}])\n/\nsum_over_time({requests}[{window}])"


def window_rules() -> list[RecordingRule]:
    long_windows = {w.long for w in BURN_WINDOWS}
    rules = [recording("slo:sli_error:ratio_rate5m", error_ratio("5m"))]
    for window in DERIVED_WINDOWS:
        rules.append(recording(f"slo:sli_error:ratio_rate{window}", error_ratio(window)))
        if window in long_windows:  # the alerts' minimum traffic
            requests, _ = window_source(window)
            rules.append(recording(f"slo:sli_requests:rate{window}",
                                   f"avg_over_time({requests}[{window}])"))
    return rules


# --- objectives: SLOs that share an objective share its rules ------------------------------

@dataclass(frozen=True)
class Objective:
    """The SLOs of one SLI with the same objective (and, for latency, the same threshold):
    one rule per record or alert serves them all."""

    sli: str
    ratio: float
    threshold: float | None
    alone: bool  # the only objective of its SLI: its rules need not select the services

    def recorded(self, record: str) -> str:
        """`record` of this objective's SLOs: of every SLO of the SLI where it is alone,
        otherwise of the services that slo:service:info gives this objective."""
        selected = queries.series(record, eq("slo", self.sli))
        return selected if self.alone else f"({selected} and on (service_name) {self.members})"

    @property
    def members(self) -> str:
        """The slo:service:info series of this objective's services (service_labels)."""
        matchers = [eq(f"{self.sli}_objective", self.labels["objective"])]
        if self.threshold is not None:
            matchers.append(eq("latency_threshold", self.labels["threshold"]))
        return queries.series(SERVICES, matchers)

    @property
    def labels(self) -> dict[str, str]:
        """What tells this objective's alerts from another's of the same SLI: the objective
        (in percent, as the spec writes it) and the latency threshold (seconds)."""
        labels = {"objective": f"{self.ratio * 100:g}"}
        if self.threshold is not None:
            labels["threshold"] = f"{self.threshold:g}"
        return labels

    @property
    def budget(self) -> str:
        return f"{1 - self.ratio:.6g}"


def shared_objectives(spec: Spec) -> list[Objective]:
    found: dict[tuple[str, float, float | None], None] = {}
    for slo in spec.slos:
        for sli, ratio in objectives(slo):
            threshold = slo.latency.threshold if sli == "latency" and slo.latency else None
            found[sli, ratio, threshold] = None
    per_sli: dict[str, int] = defaultdict(int)
    for sli, _, _ in found:
        per_sli[sli] += 1
    return [Objective(sli, ratio, threshold, per_sli[sli] == 1)
            for sli, ratio, threshold in found]


def objective_rules(spec: Spec) -> list[RecordingRule]:
    """The objective, for each SLO that has traffic (per cluster, as its SLI)."""
    return [recording("slo:objective:ratio", queries.union([
        f"{o.recorded(REQUESTS)} * 0 + {o.ratio!r}" for o in shared_objectives(spec)]))]


def budget_rules(spec: Spec) -> list[RecordingRule]:
    """The period's error ratio and the budget left, for dashboards."""
    rules = []
    if spec.period != "5m" and spec.period not in DERIVED_WINDOWS:
        rules.append(recording(f"slo:sli_error:ratio_rate{spec.period}",
                               error_ratio(spec.period)))
    rules.append(recording("slo:error_budget:remaining_ratio", queries.union([
        f"1 - {o.recorded(f'slo:sli_error:ratio_rate{spec.period}')} / {o.budget}"
        for o in shared_objectives(spec)])))
    return rules


def recording_rules(spec: Spec, grouping: Grouping = DEFAULT) -> list[RecordingRule]:
    """The SLO services first: in Prometheus a rule reads what the rules before it in its
    group wrote in the same evaluation."""
    return [*service_rules(spec), *base_rules(spec, grouping), *window_rules(),
            *objective_rules(spec)]


def spelled_duration(seconds: float) -> str:
    """`2d 2h`, `11h 40m`: how long a budget lasts at an alert's factor, fixed when the rules
    are written. The duration at the current rate would need a `query` in the template (they
    have no arithmetic), run for every firing alert at every evaluation: 2.3 s of a 30 s
    interval with 5,171 alerts firing (benchmarks/RESULTS.md, #21)."""
    minutes = round(seconds / 60)
    parts = zip((minutes // 1440, minutes // 60 % 24, minutes % 60), "dhm", strict=True)
    return " ".join(f"{n}{unit}" for n, unit in parts if n) or "0m"


def alert_rules(spec: Spec, *, min_request_rate: float, runbook_url: str,
                grouping: Grouping = DEFAULT) -> list[AlertingRule]:
    rules: list[AlertingRule] = []
    # The cluster label too: joined on the service alone, another cluster's traffic would let
    # this cluster's burn through the minimum request rate.
    joined = queries.on((*grouping.service, "slo"))
    for o in shared_objectives(spec):
        what = ("Requests fail" if o.threshold is None else
                f"Requests take longer than {o.threshold:g}s")
        for window in BURN_WINDOWS:
            factor = window.factor(spec.period_seconds)
            long, short = (o.recorded(f"slo:sli_error:ratio_rate{w}")
                           for w in (window.long, window.short))
            traffic = o.recorded(f"slo:sli_requests:rate{window.long}")
            expr = (f"(\n  {long} / {o.budget} > {factor:g}\n"
                    f"  and\n  {short} / {o.budget} > {factor:g}\n)\n"
                    f"and {joined}\n"
                    f"{traffic} >= {min_request_rate:g}")
            # No pending time: the short window already confirms the burn (SRE workbook).
            rules.append(alert(
                ALERT_NAMES[o.sli], expr, for_="0m", severity=window.severity,
                summary=f"{template('$labels.service_name')} is spending its "
                        f"{o.ratio * 100:g}% {o.sli} error budget too fast",
                description=(
                    f"{what} at {template(VALUE_1F)}x the rate the "
                    f"{o.ratio * 100:g}% objective allows, over the last "
                    f"{window.long} and {window.short}. At {factor:g}x, "
                    f"{window.budget_share * 100:g}% of the {spec.period} error budget "
                    f"is spent in {window.long} and the whole budget in "
                    f"{spelled_duration(spec.period_seconds / factor)} (sooner at the "
                    f"current rate)."),
                runbook_url=runbook_url, slo=o.sli, **o.labels,
                long_window=window.long, short_window=window.short))
    return rules
