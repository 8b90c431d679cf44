"""`redline stat`: RED per service or route, or USE per node or container, from Prometheus, as
a table (in the spirit of `linkerd viz stat`).

gRPC calls are rows like HTTP requests: per service, and per method where HTTP has routes (the
method written as its path, `/package.Service/Method`), with a PROTOCOL column (`http`,
`grpc`) once any row is gRPC.

Any server with Prometheus' query API works: Prometheus, or a central VictoriaMetrics, Thanos
Query or Mimir over many clusters, where each row is also per cluster (`--cluster` keeps one).
The queries and the table are pure functions; `query` is the one HTTP call.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redline import queries
from redline.alerts.command import add_cluster_label
from redline.config import ConfigError
from redline.flags import SubParsers, flag_type
from redline.queries import (
    DEFAULT,
    GRPC_SERVER,
    HTTP_SERVER,
    ONE_PER_CPU,
    Grouping,
    RequestMetrics,
    eq,
    series,
)

Row = dict[str, float]
Key = tuple[str, ...]
Query = Callable[[str, str], list[dict[str, Any]]]


@dataclass(frozen=True)
class StatConfig:
    prometheus: str = "http://127.0.0.1:9090"
    what: str = "services"  # or "nodes", "containers"
    service: str | None = None
    by_route: bool = False
    window: str = "1m"
    cluster: str | None = None  # one cluster only, where series have a cluster label
    grouping: Grouping = DEFAULT

    def matchers(self) -> list[str]:
        return [eq(self.grouping.cluster, self.cluster)] if self.cluster is not None else []


PROTOCOL = "protocol"  # a column of the RED rows, not a label of any series
HTTP, GRPC = "http", "grpc"
RED_COLUMNS = ["RPS", "SUCCESS", "P50", "P95", "P99"]


def red_queries(window: str, matchers: Sequence[str], by: Sequence[str],
                metrics: RequestMetrics = HTTP_SERVER) -> dict[str, str]:
    result = {"RPS": queries.requests(metrics, matchers, by, window),
              "SUCCESS": f"1 - ({queries.error_ratio(metrics, matchers, by, window)})"}
    for q in (50, 95, 99):
        result[f"P{q}"] = queries.latency_quantile(q / 100, metrics, matchers, by, window)
    return result


def red_labels(grouping: Grouping, by_route: bool) -> tuple[tuple[str, ...], tuple[str, ...],
                                                             tuple[str, ...]]:
    """(what HTTP rows group by, what gRPC rows group by, the columns of a row's key)."""
    if by_route:
        return (grouping.service_route, grouping.service_method,
                (*grouping.service, PROTOCOL, "http_route"))
    return grouping.service, grouping.service, (*grouping.service, PROTOCOL)


def red_rows(http: dict[Key, Row], grpc: dict[Key, Row], by_route: bool) -> dict[Key, Row]:
    """HTTP and gRPC rows (collected by red_labels' groupings) in one table's keys: the
    protocol after the service, a gRPC method as its path where an HTTP row has its route."""
    service = len(DEFAULT.service)  # the cluster and the service: every grouping's first two
    rows = {(*key[:service], HTTP, *key[service:]): row for key, row in http.items()}
    for key, row in grpc.items():
        method = (f"/{key[service]}/{key[service + 1]}",) if by_route else ()
        rows[(*key[:service], GRPC, *method)] = row
    return rows


def without_http_only(rows: dict[Key, Row], by: tuple[str, ...]
                      ) -> tuple[dict[Key, Row], tuple[str, ...]]:
    """The rows without the PROTOCOL column when every row is HTTP: as before gRPC."""
    index = by.index(PROTOCOL)
    if any(key[index] != HTTP for key in rows):
        return rows, by
    return {key[:index] + key[index + 1:]: row for key, row in rows.items()}, \
        by[:index] + by[index + 1:]


def use_queries(window: str, grouping: Grouping = DEFAULT, matchers: Sequence[str] = ()
                ) -> dict[str, str]:
    node = grouping.node
    cpus = queries.aggregate("count", node, series("node_cpu_seconds_total", ONE_PER_CPU,
                                                   matchers))
    return {
        "CPU": queries.cpu_utilisation(matchers, window, node),
        "CPU-PSI": queries.pressure("cpu", matchers, window),
        "LOAD/CPU": f"{series('node_load1', matchers)} / {queries.on(node)} {cpus}",
        "MEM": queries.memory_utilisation(matchers),
        "MEM-PSI": queries.pressure("memory", matchers, window),
        "DISK": queries.aggregate("max", node, queries.rate(
            series("node_disk_io_time_seconds_total", matchers), window)),
        "FS": queries.aggregate("max", node, queries.filesystem_used(matchers)),
    }


def container_queries(window: str, grouping: Grouping = DEFAULT, matchers: Sequence[str] = ()
                      ) -> dict[str, str]:
    """USE per container (cAdvisor's names: kubelet's, or redline's cgroups collector)."""
    container = grouping.container

    def per_container(expr: str) -> str:
        return queries.aggregate("sum", container, expr)

    return {
        "CPU-USED": per_container(queries.container_cpu_usage(matchers, window)),
        "CPU-LIMIT": per_container(queries.container_cpu_limit(matchers)),
        "THROTTLED": queries.container_cpu_throttled(matchers, window, container),
        "MEM-WS": per_container(queries.container_memory_working_set(matchers)),
        "MEM-LIMIT": per_container(queries.container_memory_limit(matchers)),
        "OOM-KILLS": per_container(queries.container_oom_kills(matchers, window)),
    }


def collect(results: dict[str, list[dict[str, Any]]], by: tuple[str, ...]) -> dict[Key, Row]:
    """Prometheus vector results per column -> rows keyed by the `by` labels."""
    rows: dict[Key, Row] = {}
    for column, vector in results.items():
        for sample in vector:
            key = tuple(sample["metric"].get(label, "") for label in by)
            rows.setdefault(key, {})[column] = float(sample["value"][1])
    return rows


def _bytes(value: float) -> str:
    """Binary units, as a container's limit is usually written (256Mi)."""
    for unit in ("", "Ki", "Mi", "Gi"):
        if abs(value) < 1024:
            return f"{value:.0f}{unit}" if not unit or value >= 100 else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}Ti"


def _cell(column: str, value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    if column in ("SUCCESS", "CPU", "CPU-PSI", "MEM", "MEM-PSI", "DISK", "FS", "THROTTLED"):
        return f"{value * 100:.2f}%"
    if column in ("MEM-WS", "MEM-LIMIT"):
        return _bytes(value)
    if column == "OOM-KILLS":
        return f"{value:.0f}"
    if column.startswith("P"):
        return f"{value * 1000:.0f}ms" if value < 10 else f"{value:.1f}s"
    return f"{value:.2f}" if column != "RPS" else f"{value:.1f}"


def without_empty(label: str, rows: dict[Key, Row], by: tuple[str, ...]
                  ) -> tuple[dict[Key, Row], tuple[str, ...]]:
    """The rows without the `label` column when no row has a value for it: a cluster column
    is noise on one Prometheus, which has no cluster label."""
    index = by.index(label)
    if any(key[index] for key in rows):
        return rows, by

    def drop(key: Key) -> Key:
        return key[:index] + key[index + 1:]

    return {drop(key): row for key, row in rows.items()}, drop(by)


def table(rows: dict[Key, Row], by: tuple[str, ...], columns: list[str]) -> str:
    header = [label.upper().replace("SERVICE_NAME", "SERVICE").replace("HTTP_ROUTE", "ROUTE")
              for label in by] + columns
    body = [[*(part or "-" for part in key), *(_cell(c, row.get(c)) for c in columns)]
            for key, row in sorted(rows.items())]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True))
                     .rstrip() for line in [header, *body]) + "\n"


def query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    url = f"{prometheus.rstrip('/')}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        reason = _prometheus_error(exc)
        if reason is None:  # not Prometheus' JSON: a proxy, a login page, another server
            raise ConfigError(f"--prometheus: {prometheus} answered {exc.code} to a query "
                              f"without Prometheus' error JSON; is it Prometheus?") from exc
        raise ConfigError(f"--prometheus: Prometheus at {prometheus} refused a query "
                          f"({exc.code}): {reason}\nthe query: {expr}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ConfigError(f"--prometheus: cannot reach Prometheus at {prometheus}: "
                          f"{getattr(exc, 'reason', exc)}") from exc
    if body.get("status") != "success":
        raise ConfigError(f"--prometheus: query failed: {body.get('error')}")
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _prometheus_error(exc: urllib.error.HTTPError) -> str | None:
    """The `error` of Prometheus' JSON answer to a bad query (400) or one it could not run
    (422, 503): `{"status": "error", "errorType": "bad_data", "error": "..."}`."""
    try:
        body = json.loads(exc.read())
    except (OSError, ValueError):
        return None
    if not isinstance(body, dict) or body.get("status") != "error" or not body.get("error"):
        return None
    return f"{body.get('errorType', 'error')}: {body['error']}"


def stat(config: StatConfig, run_query: Query = query) -> str:
    prometheus, window, grouping = config.prometheus, config.window, config.grouping
    matchers = config.matchers()
    where = "" if config.cluster is None else f" for {grouping.cluster} {config.cluster!r}"

    def rows(columns: dict[str, str], by: tuple[str, ...], first: str,
             missing: Callable[[], str]) -> str:
        results = {column: run_query(prometheus, expr) for column, expr in columns.items()}
        if not results[first]:
            raise ConfigError(missing())
        shown, labels = without_empty(grouping.cluster, collect(results, by), by)
        return table(shown, labels, list(columns))

    if config.what == "containers":
        return rows(container_queries(window, grouping, matchers), grouping.container,
                    "CPU-USED", lambda: (
                        f"Prometheus at {prometheus} has no container CPU usage in the last "
                        f"{window}{where}: is it scraping kubelet's cAdvisor or redline's node "
                        f"exporter with --collectors ...,cgroups?"))
    if config.what == "nodes":
        return rows(use_queries(window, grouping, matchers), grouping.node, "CPU", lambda: (
            f"Prometheus at {prometheus} has no node_cpu_seconds_total{where}: is it "
            f"scraping redline's node exporter (or node_exporter)?"))
    if config.service:
        matchers.append(eq("service_name", config.service))
    found, labels = red(run_query, prometheus, window, matchers, grouping, config.by_route)
    if not found:
        known = run_query(prometheus, " or ".join(
            f"count({name})" for name in (*HTTP_SERVER.request_counters, GRPC_SERVER.count)))
        what_missing = f"service {config.service!r}" if config.service and known \
            else "RED metrics"
        raise ConfigError(f"Prometheus at {prometheus} has no {what_missing}{where} in the "
                          f"last {window}: is it scraping redline's sidecars?")
    return table(*shown_red(found, labels, grouping), RED_COLUMNS)


def shown_red(rows: dict[Key, Row], labels: tuple[str, ...], grouping: Grouping = DEFAULT
              ) -> tuple[dict[Key, Row], tuple[str, ...]]:
    """RED rows as a table shows them: no CLUSTER column on one Prometheus, no PROTOCOL
    column while every row is HTTP."""
    return without_http_only(*without_empty(grouping.cluster, rows, labels))


def red(run_query: Query, prometheus: str, window: str, matchers: Sequence[str],
        grouping: Grouping, by_route: bool) -> tuple[dict[Key, Row], tuple[str, ...]]:
    """RED rows of HTTP requests and gRPC calls (red_rows) and the labels of their keys; no
    row without requests in `window`."""
    http_by, grpc_by, labels = red_labels(grouping, by_route)

    def collected(metrics: RequestMetrics, by: tuple[str, ...]) -> dict[Key, Row]:
        results = {column: run_query(prometheus, expr)
                   for column, expr in red_queries(window, matchers, by, metrics).items()}
        return collect(results, by) if results["RPS"] else {}

    return red_rows(collected(HTTP_SERVER, http_by), collected(GRPC_SERVER, grpc_by),
                    by_route), labels


# Prometheus' own duration syntax: units from the largest down, each at most once.
_WINDOW = re.compile(r"(?:[0-9]+y)?(?:[0-9]+w)?(?:[0-9]+d)?(?:[0-9]+h)?(?:[0-9]+m)?"
                     r"(?:[0-9]+s)?(?:[0-9]+ms)?")


def window(text: str) -> str:
    """A PromQL duration above zero: `1m`, `30s`, `1h30m`."""
    expected = "expected a PromQL duration such as 30s, 1m or 1h30m"
    if text.isdigit():
        raise ValueError(f"{expected}, got {text!r}: a duration needs a unit "
                         f"({text}s for seconds, {text}m for minutes)")
    if not text or not _WINDOW.fullmatch(text):
        raise ValueError(f"{expected} (units y, w, d, h, m, s, ms, largest first), "
                         f"got {text!r}")
    if not any(digit in "123456789" for digit in text):
        raise ValueError(f"{expected}, got {text!r}: a rate needs a window above zero")
    return text


def add_parser(sub: SubParsers,
               common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "stat", parents=[common],
        help="RED per service or route, or USE per node or container, as a table",
        description="Query Prometheus for requests per second, success rate and latency "
                    "percentiles per service (or per route), or for USE per node or per "
                    "container.")
    parser.add_argument("what", nargs="?", choices=("services", "nodes", "containers"),
                        default="services",
                        help="services: RED per service or route; nodes: USE per node; "
                             "containers: USE per container (default: services)")
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090", metavar="URL",
                        help="Prometheus base URL (default: http://127.0.0.1:9090)")
    parser.add_argument("--service", metavar="NAME",
                        help="one service only (default: every service)")
    parser.add_argument("--by", choices=("service", "route"), default="service",
                        help="one row per service or per route (default: service)")
    parser.add_argument("--window", type=flag_type(window), default="1m", metavar="DURATION",
                        help="rate window, a PromQL duration with its unit: 30s, 5m, 1h30m "
                             "(default: 1m)")
    parser.add_argument("--cluster", metavar="NAME",
                        help="one cluster only, where many Prometheus servers meet "
                             "(VictoriaMetrics, Thanos, Mimir); rows are per cluster anyway "
                             "when series have the label (default: every cluster)")
    add_cluster_label(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = StatConfig(prometheus=args.prometheus, what=args.what, service=args.service,
                        by_route=args.by == "route", window=args.window,
                        cluster=args.cluster, grouping=args.cluster_label)
    print(stat(config), end="")
    return 0
