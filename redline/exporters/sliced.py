"""A registry's exposition as a sequence of small pieces, so a renderer can pause between them.

The admin port shares the ambassador's event loop with proxied traffic. Rendered in one go, a
registry of 10,000 histogram series took 2.4 s of CPU (1.1 s of it building prometheus_client's
sample objects), a stall of every proxied request; in a thread it still held the GIL for most
of that. Here redline's own instruments are written straight from their series, a few dozen
series per piece (a fraction of a millisecond each), without sample objects; other collectors'
families are written one family per piece. The caller (redline/admin.py) yields to the loop
between pieces. The bytes are prometheus_client's, in both formats: FallbackError is raised,
before or between pieces, for anything only its encoders write the same way, and the caller
then uses them (`exposition.render_by_encoder`).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from redline.exporters import openmetrics
from redline.exporters.instruments import Counter, Gauge, Histogram, InstrumentCollector
from redline.exporters.negotiate import negotiate
from redline.exporters.textformat import FallbackError, TextRenderer, escape_value, number

if TYPE_CHECKING:  # prometheus_client's package is imported only where its encoder renders
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import Collector

# Series per piece: ~16 lines each for a histogram, so a piece is ~0.2 ms of work here.
SERIES_PER_PIECE = 8
_TEXT_TYPES = {"counter": "counter", "gauge": "gauge", "histogram": "histogram"}


class _Format:
    """What differs between the text format and OpenMetrics for redline's instruments."""

    def __init__(self, openmetrics_format: bool) -> None:
        self.openmetrics = openmetrics_format
        self._text = TextRenderer()
        self._om = openmetrics.OpenMetricsWriter()

    def header(self, name: str, documentation: str, mtype: str, unit: str) -> str:
        if self.openmetrics:
            return openmetrics.header(name, documentation, mtype, unit)
        shown = name + "_total" if mtype == "counter" else name
        documentation = documentation.replace("\\", r"\\").replace("\n", r"\n")
        return f"# HELP {shown} {documentation}\n# TYPE {shown} {_TEXT_TYPES[mtype]}\n"

    def family(self, metric: Metric) -> str:
        return self._om.family(metric) if self.openmetrics else self._text.family(metric)

    def check(self, *names: str) -> None:
        for name in names:
            self._om.check(name)  # the stricter of the two formats' checks


def _label_pairs(labelnames: tuple[str, ...]) -> Callable[[tuple[str, ...]], list[str]]:
    """`name="value"` strings of a label set, in the sorted order both formats use."""
    order = sorted(range(len(labelnames)), key=labelnames.__getitem__)
    return lambda labels: [f'{labelnames[i]}="{escape_value(labels[i])}"' for i in order]


def _histogram(instrument: Histogram, form: _Format) -> Iterator[str]:
    unit = instrument.unit
    name = instrument.name
    if unit and not name.endswith("_" + unit):
        name += "_" + unit  # as prometheus_client's Metric names it
    labelnames = instrument.labelnames
    if "le" in labelnames:
        raise FallbackError(name)
    form.check(name, *labelnames)
    yield form.header(name, instrument.documentation, "histogram", unit)
    pairs_of = _label_pairs(labelnames)
    at = bisect_left(sorted(labelnames), "le")  # where `le` sorts among the label names
    les = [f'le="{openmetrics_bound(b)}"' for b in (*instrument.bounds, math.inf)]
    bucket, count, total = name + "_bucket{", name + "_count", name + "_sum"
    exemplars_shown = form.openmetrics
    series = instrument.series()
    for start in range(0, len(series), SERIES_PER_PIECE):
        out: list[str] = []
        append = out.append
        for labels, child in series[start:start + SERIES_PER_PIECE]:
            counts = list(child.counts)
            if not any(counts):
                continue  # as Histogram.collect: created, never observed
            sum_value = child.total
            exemplars = child.exemplars if exemplars_shown else None
            pairs = pairs_of(labels)
            before = "".join([p + "," for p in pairs[:at]])
            after = "".join(["," + p for p in pairs[at:]])
            cumulative = 0
            for index, bucket_count in enumerate(counts):
                cumulative += bucket_count
                line = f"{bucket}{before}{les[index]}{after}}} {number(cumulative)}"
                exemplar = exemplars[index] if exemplars is not None else None
                if exemplar is not None:
                    line += openmetrics.exemplar_text(exemplar)
                append(line + "\n")
            braced = "{" + ",".join(pairs) + "}" if pairs else ""
            append(f"{count}{braced} {number(cumulative)}\n{total}{braced} {number(sum_value)}\n")
        yield "".join(out)


def openmetrics_bound(bound: float) -> str:
    """A bucket bound as prometheus_client labels it (`0.005`, `1.0`, `+Inf`)."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def _scalar(instrument: Counter | Gauge, form: _Format) -> Iterator[str]:
    counter = isinstance(instrument, Counter)
    name = instrument.name.removesuffix("_total") if counter else instrument.name
    sample = name + "_total" if counter else name
    form.check(name, sample, *instrument.labelnames)
    yield form.header(name, instrument.documentation, "counter" if counter else "gauge", "")
    pairs_of = _label_pairs(instrument.labelnames)
    series = instrument.series()
    for start in range(0, len(series), SERIES_PER_PIECE * 8):  # one line per series
        out = []
        for labels, value in series[start:start + SERIES_PER_PIECE * 8]:
            pairs = pairs_of(labels)
            braced = "{" + ",".join(pairs) + "}" if pairs else ""
            out.append(f"{sample}{braced} {number(value)}\n")
        yield "".join(out)


def _collector(collector: Collector, form: _Format) -> Iterator[str]:
    # An InstrumentCollector whose `collect` is its own (values read at scrape time are set
    # by `refresh`) is written from its instruments; any other collector through `collect`.
    if (isinstance(collector, InstrumentCollector)
            and type(collector).collect is InstrumentCollector.collect):
        collector.refresh()
        for instrument in collector.instruments:
            if isinstance(instrument, Histogram):
                yield from _histogram(instrument, form)
            else:
                yield from _scalar(instrument, form)
        return
    metrics: Iterable[Metric] = collector.collect()
    for metric in metrics:
        yield form.family(metric)


def pieces(collectors: Sequence[Collector], accept: str | None
           ) -> tuple[Iterator[bytes], str]:
    """The exposition of `collectors` (a registry's, in order) for a scraper's Accept header,
    in pieces, and its content type. Raises FallbackError now, or from the iterator, where
    prometheus_client's encoder must render."""
    chosen = negotiate(accept)
    if chosen.escaping not in openmetrics.ESCAPINGS:
        raise FallbackError(chosen.escaping)
    return _pieces(collectors, _Format(chosen.openmetrics)), chosen.content_type


def _pieces(collectors: Sequence[Collector], form: _Format) -> Iterator[bytes]:
    for collector in collectors:
        for piece in _collector(collector, form):
            yield piece.encode("utf-8")
    if form.openmetrics:
        yield openmetrics.EOF.encode()
