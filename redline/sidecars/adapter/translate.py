"""Mapped source values to metrics, sans IO: statsd lines, scraped families, JSON documents.

Requests (`name: request`) go to the RED schema through the same recorder and route templater
as the ambassador and the log adapter; other names become plain counters and gauges.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric

from redline.exporters import red
from redline.exporters.routes import RouteTemplater
from redline.sidecars.adapter.limits import MIN_SAMPLE_RATE
from redline.sidecars.adapter.mapping import REQUEST, Mapped, Mapping
from redline.sidecars.adapter.plain import PlainSeries

# --- statsd --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatsdSample:
    name: str
    value: float
    kind: str  # c, g, ms, h, d, s
    rate: float
    tags: dict[str, str]
    relative: bool  # a gauge given as +N / -N


_STATSD_TYPES = {"c", "g", "ms", "h", "d", "s"}


def parse_statsd(line: str) -> list[StatsdSample] | None:
    """One statsd / DogStatsD line (`name:v[:v...]|type[|@rate][|#tag:v,...]`); None if bad."""
    name, sep, rest = line.partition(":")
    if not sep or not name or not rest:
        return None
    fields = rest.split("|")
    if len(fields) < 2 or fields[1] not in _STATSD_TYPES:
        return None
    kind, rate, tags = fields[1], 1.0, {}
    for extra in fields[2:]:
        if extra.startswith("@"):
            try:
                rate = float(extra[1:])
            except ValueError:
                return None
            if not 0 < rate <= 1:
                return None
        elif extra.startswith("#"):
            for tag in extra[1:].split(","):
                key, _, tag_value = tag.partition(":")
                if key:
                    tags[key] = tag_value
        elif extra.startswith("c:") or extra.startswith("T"):
            continue  # DogStatsD container id and timestamp: not used
        else:
            return None
    samples = []
    for raw in fields[0].split(":"):
        try:
            value = float(raw)  # nan, inf and 1e999 parse: the translator refuses them
        except ValueError:
            return None
        samples.append(StatsdSample(name, value, kind, rate, tags,
                                    kind == "g" and raw[:1] in "+-"))
    return samples


class StatsdTranslator:
    """statsd lines to RED requests (timers: durations; counters: untimed counts) or plain
    metrics. Bad lines, names matched by no rule and values that would break a series are
    counted, never raised."""

    def __init__(self, mapping: Mapping, recorder: red.ServerRecorder,
                 routes: RouteTemplater, plain: PlainSeries | None = None) -> None:
        self.mapping = mapping
        self.recorder = recorder
        self.routes = routes
        self.plain = plain or PlainSeries()
        self.lines = 0
        self.parse_errors = 0
        self.unmapped = 0
        self.rejected_values = 0
        self.clamped_rates = 0

    def feed(self, packet: bytes) -> None:
        for raw in packet.split(b"\n"):
            if not raw.strip():
                continue
            self.lines += 1
            samples = parse_statsd(raw.decode("utf-8", "replace").strip())
            if samples is None:
                self.parse_errors += 1
                continue
            for sample in samples:
                self._apply(sample)

    def _apply(self, sample: StatsdSample) -> None:
        value, rate = sample.value, sample.rate
        # A counter never goes down and a duration is never negative; NaN and infinities
        # would stay in a series' sum for ever. Gauges may be negative, not infinite.
        if not math.isfinite(value) or (value < 0 and sample.kind != "g"):
            self.rejected_values += 1
            return
        if rate < MIN_SAMPLE_RATE:
            self.clamped_rates += 1
            rate = MIN_SAMPLE_RATE
        if sample.kind == "c":
            value /= rate  # a sampled count stands for value / rate: 1e308|c|@0.5 is +Inf
            if not math.isfinite(value):
                self.rejected_values += 1
                return
        mapped = self.mapping.match(sample.name, sample.tags)
        if mapped is None:
            self.unmapped += 1
            return
        if mapped.rule.kind != REQUEST:
            if mapped.rule.kind == "counter" and sample.kind == "c":
                self.plain.record(mapped, value, add=True)
            elif mapped.rule.kind == "gauge" and sample.kind == "g":
                self.plain.record(mapped, value, add=sample.relative)
            else:
                self.unmapped += 1
            return
        request = request_labels(mapped, sample.tags, self.routes)
        if request is None:
            self.parse_errors += 1
            return
        method, route, status = request
        if sample.kind in ("ms", "h", "d"):
            seconds = value / 1000 if sample.kind == "ms" else value
            weight = max(1, round(1 / rate))  # a sampled timer stands for 1/rate requests
            if not math.isfinite(seconds * weight):
                self.rejected_values += 1
                return
            self.recorder.series(method, route, status).observe_weighted(seconds, weight)
        elif sample.kind == "c":
            self.recorder.untimed.inc(_key(method, route, status), value)
        else:
            self.unmapped += 1


def _key(method: str, route: str, status: int) -> tuple[str, int, str, str, str]:
    return (red.normalize_method(method), status, route, "http", red.error_type(status, None))


def request_labels(mapped: Mapped, source_labels: dict[str, str], routes: RouteTemplater
                   ) -> tuple[str, str, int] | None:
    """method, templated route and status of a mapped request; None when the status is bad.

    Unmapped request labels fall back to the source's labels of the usual names.
    """
    labels = mapped.labels

    def pick(name: str, *fallbacks: str) -> str:
        if name in labels:
            return labels[name]
        return next((source_labels[f] for f in fallbacks if source_labels.get(f)), "")

    method = pick("method", "method", "http_request_method", "verb")
    path = pick("route", "route", "http_route", "path", "handler", "endpoint")
    status_text = pick("status", "status", "http_response_status_code", "code",
                       "status_code")
    try:
        status = int(status_text)
    except ValueError:
        return None
    if not 100 <= status <= 599:
        return None
    if not path:
        route = ""
    else:
        found = routes.route(path if path.startswith("/") else "/" + path)
        if found is None:
            return None
        route = found.template
    return method or red.OTHER_METHOD, route, status


# --- scraped Prometheus metrics -----------------------------------------------------------


def translate_families(families: list[Metric], mapping: Mapping, service: str,
                       routes: RouteTemplater, plain: PlainSeries) -> tuple[list[Metric], int]:
    """An app's own families renamed to the RED schema (and plain metrics, gathered in
    `plain`, fresh for each fetch); returns the new families and how many source families no
    rule mapped."""
    buckets: dict[tuple[str, ...], dict[float, float]] = {}
    sums: dict[tuple[str, ...], float] = {}
    untimed: dict[tuple[str, ...], float] = {}
    unmapped = 0
    for family in families:
        mapped_any = False
        for sample in family.samples:
            mapped = mapping.match(family.name, sample.labels)
            if mapped is None:
                continue
            mapped_any = True
            if mapped.rule.kind != REQUEST:
                if not sample.name.endswith(("_created", "_bucket")):
                    plain.record(mapped, sample.value, add=True)
                continue
            request = request_labels(mapped, sample.labels, routes)
            if request is None:
                continue
            method, route, status = request
            labels = _server_labels(service, method, route, status)
            if family.type == "histogram" and sample.name.endswith("_bucket"):
                bound = float(sample.labels["le"])
                series = buckets.setdefault(labels, {})
                series[bound] = series.get(bound, 0.0) + sample.value
            elif family.type == "histogram" and sample.name.endswith("_sum"):
                sums[labels] = sums.get(labels, 0.0) + sample.value
            elif family.type in ("counter", "unknown") and not sample.name.endswith("_created"):
                untimed[labels] = untimed.get(labels, 0.0) + sample.value
        if not mapped_any:
            unmapped += 1
    out: list[Metric] = []
    if buckets:
        histogram = HistogramMetricFamily(
            "http_server_request_duration", "Duration of HTTP server requests, as the app "
            "measured them (re-exported by redline adapter).", labels=red.SERVER_LABELS,
            unit="seconds")
        for labels, series in sorted(buckets.items()):
            bounds = sorted(series)
            histogram.add_metric(labels, [("+Inf" if math.isinf(b) else repr(b), series[b])
                                          for b in bounds], sums.get(labels, 0.0))
        out.append(histogram)
    if untimed:
        out.append(_untimed_family(untimed))
    out.extend(plain.collect())
    return out, unmapped


def _untimed_family(untimed: dict[tuple[str, ...], float]) -> Metric:
    counter = CounterMetricFamily(
        red.SERVER_UNTIMED, "HTTP server requests seen without a duration.",
        labels=red.SERVER_LABELS)
    for labels, value in sorted(untimed.items()):
        counter.add_metric(labels, value)
    return counter


def _server_labels(service: str, method: str, route: str, status: int) -> tuple[str, ...]:
    return (service, red.normalize_method(method), str(status), route, "http",
            red.error_type(status, None))


# --- JSON stats ---------------------------------------------------------------------------


def flatten(document: object, prefix: str = "") -> Iterator[tuple[str, object]]:
    """Dotted paths to the leaves of a JSON document (`db.pool.active`, `workers.0.state`)."""
    if isinstance(document, dict):
        for key, value in document.items():
            yield from flatten(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from flatten(value, f"{prefix}.{index}" if prefix else str(index))
    else:
        yield prefix, document


def translate_json(document: object, mapping: Mapping, service: str, routes: RouteTemplater,
                   plain: PlainSeries) -> tuple[list[Metric], int]:
    """A JSON stats document to metrics (plain ones gathered in `plain`, fresh for each
    fetch); returns them and how many leaves had a value that is not a number and not in the
    rule's value_map."""
    untimed: dict[tuple[str, ...], float] = {}
    bad = 0
    for path, raw in flatten(document):
        mapped = mapping.match(path)
        if mapped is None:
            continue
        value = mapped.value(raw)
        if value is None:
            bad += 1
            continue
        if mapped.rule.kind == REQUEST:
            request = request_labels(mapped, {}, routes)
            if request is None:
                bad += 1
                continue
            labels = _server_labels(service, *request)
            untimed[labels] = untimed.get(labels, 0.0) + value
        else:
            plain.record(mapped, value, add=True)
    out: list[Metric] = []
    if untimed:
        out.append(_untimed_family(untimed))
    out.extend(plain.collect())
    return out, bad
