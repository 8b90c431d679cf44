"""The Prometheus text format, rendered faster than prometheus_client, byte for byte the same.

prometheus_client's `generate_latest` checks and escapes every metric and label name on every
sample; a node_exporter-sized scrape spends most of its time there. redline's names are valid
legacy names, so this renderer checks each name once, sorts each label set's names once, and
escapes a label value only when it holds a quote, a backslash or a newline. Anything it does
not handle the same way (non-legacy names, timestamps, OpenMetrics-only samples, info and
stateset types) is left to `generate_latest`, so the output never differs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # prometheus_client's package is imported only where its encoder renders
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import Collector

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_TYPES = {"counter": "counter", "gauge": "gauge", "histogram": "histogram",
          "summary": "summary", "unknown": "untyped", "untyped": "untyped"}


class FallbackError(Exception):
    """Something only generate_latest renders the way it does."""


def escape_value(value: str) -> str:
    """A label value as both formats write it (backslash, newline and quote escaped)."""
    if '"' in value or "\\" in value or "\n" in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


class LabelOrder:
    """Sorted label names per label-name tuple, checked once."""

    def __init__(self) -> None:
        self._orders: dict[tuple[str, ...], tuple[str, ...]] = {}

    def __call__(self, names: tuple[str, ...]) -> tuple[str, ...]:
        order = self._orders.get(names)
        if order is None:
            if not all(_LABEL_NAME.fullmatch(n) for n in names):
                raise FallbackError
            order = self._orders[names] = tuple(sorted(names))
        return order


def number(value: float) -> str:
    """A sample value as prometheus_client's `floatToGoString` writes it (Go's formatting, as
    Prometheus writes numbers), byte for byte (tests/exporters/test_textformat.py): Python's
    repr, but Go's exponent for a positive number of more than six integer digits."""
    if -math.inf < value < math.inf:  # false for NaN and the infinities
        text = repr(float(value))
        dot = text.find(".")
        if value > 0 and dot > 6:  # repr has no exponent below 1e16: `1234567.5`
            mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1:]}".rstrip("0.")
            return f"{mantissa}e+{dot - 1:02d}"
        return text
    return "NaN" if math.isnan(value) else "+Inf" if value > 0 else "-Inf"


def _render(metrics: Iterable[Metric], order: LabelOrder, valid: set[str]) -> str:
    out: list[str] = []
    append = out.append
    for metric in metrics:
        mtype = _TYPES.get(metric.type)
        if mtype is None:
            raise FallbackError
        if metric.name not in valid:
            if not _METRIC_NAME.fullmatch(metric.name):
                raise FallbackError
            valid.add(metric.name)
        mname = metric.name + "_total" if metric.type == "counter" else metric.name
        documentation = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
        append(f"# HELP {mname} {documentation}\n# TYPE {mname} {mtype}\n")
        special = (metric.name + "_created", metric.name + "_gsum", metric.name + "_gcount")
        for sample in metric.samples:
            name = sample.name
            if sample.timestamp is not None or name in special:
                raise FallbackError
            if name not in valid:
                if not _METRIC_NAME.fullmatch(name):
                    raise FallbackError
                valid.add(name)
            labels = sample.labels
            if labels:
                keys = order(tuple(labels))
                pairs = ",".join([f'{k}="{escape_value(labels[k])}"' for k in keys])
                append(f"{name}{{{pairs}}} {number(sample.value)}\n")
            else:
                append(f"{name} {number(sample.value)}\n")
    return "".join(out)


class TextRenderer:
    """Renders a registry in the Prometheus text format; keeps its label-order cache."""

    def __init__(self) -> None:
        self._order = LabelOrder()
        self._valid: set[str] = set()  # names already checked; bounded by the names exported

    def __call__(self, registry: Collector) -> bytes:
        try:
            return _render(registry.collect(), self._order, self._valid).encode("utf-8")
        except FallbackError:
            from prometheus_client.exposition import generate_latest

            return generate_latest(registry)

    def family(self, metric: Metric) -> str:
        """One family's text; raises FallbackError where generate_latest must render."""
        return _render((metric,), self._order, self._valid)
