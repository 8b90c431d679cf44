"""`redline stat`: RED per service or route, or USE per node or container, from Prometheus, as
a table (in the spirit of `linkerd viz stat`).

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
from redline.config import ConfigError
from redline.flags import SubParsers, flag_type
from redline.queries import CONTAINER, HTTP_SERVER, NODE, ONE_PER_CPU, eq, series

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


def red_queries(window: str, matchers: Sequence[str], by: Sequence[str]) -> dict[str, str]:
    requests = queries.requests(HTTP_SERVER, matchers, by, window)
    errors = queries.errors(HTTP_SERVER, matchers, by, window)
    # A group without any error has no error series: `or ... * 0` makes its success 100%.
    result = {"RPS": requests, "SUCCESS": f"1 - ({errors} or {requests} * 0) / {requests}"}
    for q in (50, 95, 99):
        result[f"P{q}"] = queries.latency_quantile(q / 100, HTTP_SERVER, matchers, by, window)
    return result


def use_queries(window: str) -> dict[str, str]:
    on_node = f"on ({', '.join(NODE)})"
    cpus = queries.aggregate("count", NODE, series("node_cpu_seconds_total", ONE_PER_CPU))
    return {
        "CPU": queries.cpu_utilisation((), window, NODE),
        "CPU-PSI": queries.pressure("cpu", (), window),
        "LOAD/CPU": f"node_load1 / {on_node} {cpus}",
        "MEM": queries.memory_utilisation(()),
        "MEM-PSI": queries.pressure("memory", (), window),
        "DISK": queries.aggregate("max", NODE, queries.rate("node_disk_io_time_seconds_total",
                                                            window)),
        "FS": queries.aggregate("max", NODE, queries.filesystem_used(())),
    }


def container_queries(window: str) -> dict[str, str]:
    """USE per container (cAdvisor's names: kubelet's, or redline's cgroups collector)."""
    def per_container(expr: str) -> str:
        return queries.aggregate("sum", CONTAINER, expr)

    return {
        "CPU-USED": per_container(queries.container_cpu_usage((), window)),
        "CPU-LIMIT": per_container(queries.container_cpu_limit(())),
        "THROTTLED": queries.container_cpu_throttled((), window, CONTAINER),
        "MEM-WS": per_container(queries.container_memory_working_set(())),
        "MEM-LIMIT": per_container(queries.container_memory_limit(())),
        "OOM-KILLS": per_container(queries.container_oom_kills((), window)),
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
    prometheus, window = config.prometheus, config.window
    if config.what == "containers":
        use = container_queries(window)
        results = {column: run_query(prometheus, expr) for column, expr in use.items()}
        if not results["CPU-USED"]:
            raise ConfigError(f"Prometheus at {prometheus} has no container CPU usage in the "
                              f"last {window}: is it scraping kubelet's cAdvisor or redline's "
                              f"node exporter with --collectors ...,cgroups?")
        return table(collect(results, CONTAINER), CONTAINER, list(use))
    if config.what == "nodes":
        use = use_queries(window)
        results = {column: run_query(prometheus, expr) for column, expr in use.items()}
        if not results["CPU"]:
            raise ConfigError(f"Prometheus at {prometheus} has no node_cpu_seconds_total: is it "
                              f"scraping redline's node exporter (or node_exporter)?")
        return table(collect(results, NODE), NODE, list(use))
    by = queries.SERVICE_ROUTE if config.by_route else queries.SERVICE
    matchers = [eq("service_name", config.service)] if config.service else []
    red = red_queries(window, matchers, by)
    results = {column: run_query(prometheus, expr) for column, expr in red.items()}
    if not results["RPS"]:
        known = run_query(prometheus, " or ".join(
            f"count({name})" for name in HTTP_SERVER.request_counters))
        what_missing = f"service {config.service!r}" if config.service and known \
            else "RED metrics"
        raise ConfigError(f"Prometheus at {prometheus} has no {what_missing} in the last "
                          f"{window}: is it scraping redline's sidecars?")
    return table(collect(results, by), by, list(red))


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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = StatConfig(prometheus=args.prometheus, what=args.what, service=args.service,
                        by_route=args.by == "route", window=args.window)
    print(stat(config), end="")
    return 0
