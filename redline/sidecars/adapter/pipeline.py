"""Log lines to RED observations, sans IO: blocks of complete lines in, metrics recorded.

The same recorder and route templater as the ambassador's, so a service measured from its
access log and one measured by the ambassador produce the same series.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from redline.exporters.instruments import HistogramChild
from redline.exporters.red import BAD_REQUEST, OTHER_METHOD, ServerRecorder
from redline.exporters.routes import MISS, OTHER, RouteTemplater
from redline.sidecars.adapter.formats import FLOATS, LogFormat, RegexFormat

# One label combination: its duration series, how to count a request without a time, and
# the durations of the current block (observed together when the block is done).
_Series = tuple[HistogramChild, Callable[[], None], list[str]]


class LogPipeline:
    def __init__(self, log_format: LogFormat, recorder: ServerRecorder,
                 routes: RouteTemplater) -> None:
        self.format = log_format
        self.recorder = recorder
        self.routes = routes
        self.lines = 0
        self.parse_errors = 0
        # (method, template, status) -> how to record it: a few hundred entries at most,
        # bounded by the route cap. Paths go through the templater's own bounded cache.
        self._series: dict[tuple[str, str, str], _Series] = {}

    def feed(self, text: str) -> None:
        """Record every request in `text`, a block of complete lines each ending in a newline."""
        if isinstance(self.format, RegexFormat):
            self._feed_rows(text, self.format)
            return
        events, errors = self.format.parse_block(text)
        self._count(len(events) + errors, errors)
        for method, path, status, seconds, malformed in events:
            series = self._series_of(method, path, str(status), malformed)
            if series is not None:
                if seconds is None:
                    series[1]()
                else:
                    series[0].observe(seconds)

    def _feed_rows(self, text: str, fmt: RegexFormat) -> None:
        # The adapter's hot loop: per line a templater lookup, a series lookup, an observation.
        # Probes are looked for per line only in blocks that have one at all; only then are
        # the rows' agents read.
        probes = self.routes.ignore_user_agents
        if probes and not any(agent in text for agent in probes):
            probes = ()
        rows, errors = fmt.rows(text, agents=bool(probes))
        self._count(len(rows) + errors, errors)
        route_of = self.routes.route
        cached_route = self.routes.cached  # a dict lookup instead of a call on cache hits
        known = self._series
        miss, other = MISS, OTHER  # locals: compiled, a module's global is a dict lookup per use
        m, p, s, d, b, a, scale = (fmt.method_at, fmt.path_at, fmt.status_at, fmt.duration_at,
                                   fmt.bad_at, fmt.agent_at, fmt.scale)
        # Template the block's new paths in one pass first (most paths with ids are new): the
        # loop below then finds every route in the cache. Probes are left out, as below.
        if probes:
            self.routes.prefill([row[p] for row in rows
                                 if row[p] and not row[a].startswith(probes)])
        else:
            self.routes.prefill([row[p] for row in rows if row[p]])
        for row in rows:
            path = row[p]
            if probes and row[a].startswith(probes):
                continue  # kubelet probes hit the app directly; ignored as the ambassador does
            if path:
                route = cached_route(path, miss)
                if route is miss or route is other:  # OTHER: the templater counts overflows
                    route = route_of(path)
                if route is None:
                    continue  # health checks, /metrics: ignored as the ambassador does
                series = known.get((row[m], route.template, row[s]))
                if series is None:
                    series = self._series_of(row[m], path, row[s], False)
            else:
                series = self._series_of(row[m], path, row[s], bool(row[b]))
            if series is None:
                continue
            raw = row[d]
            if raw and raw != "-":
                series[2].append(raw)
            else:
                series[1]()
        self._observe_pending(scale)

    def _observe_pending(self, scale: float) -> None:
        floats = FLOATS  # where _logscan is built: list(map(float, ...)) in C
        for child, count_untimed, pending in self._series.values():
            if not pending:
                continue
            try:
                values = floats(pending) if floats is not None else list(map(float, pending))
            except ValueError:  # a custom regex captured something that is not a number
                values = []
                for raw in pending:
                    try:
                        values.append(float(raw))
                    except ValueError:
                        count_untimed()
            child.observe_many(values if scale == 1.0 else [v * scale for v in values])
            pending.clear()

    def _series_of(self, method: str, path: str, status: str, malformed: bool
                   ) -> _Series | None:
        error = None
        if malformed:
            template, error = "", BAD_REQUEST  # the server could not read the request line
            key = (OTHER_METHOD, template, status)
        else:
            route = self.routes.route(path)
            if route is None:
                return None
            template = route.template
            key = (method, template, status)
        series = self._series.get(key)
        if series is None:
            code = int(status)
            recorder = self.recorder
            child = recorder.series(key[0], template, code, error=error)
            series = self._series[key] = (
                child,
                functools.partial(recorder.count_untimed, key[0], template, code, error=error),
                [])
        return series

    def _count(self, lines: int, errors: int) -> None:
        self.lines += lines
        self.parse_errors += errors

    def count_error(self, lines: int = 1) -> None:
        """Lines the tailer had to drop (too long) count as parse errors."""
        self._count(lines, lines)
