"""`redline stat`: RED per service or route, or USE per node, from Prometheus, as a table (in
the spirit of `linkerd viz stat`).

The queries and the table are pure functions; `query` is the one HTTP call.
"""

from __future__ import annotations

import argparse
import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from redline.config import ConfigError
from redline.exporters.red import SERVER_DURATION, SERVER_UNTIMED
from redline.flags import SubParsers

COUNT = f"{SERVER_DURATION}_count"
BUCKET = f"{SERVER_DURATION}_bucket"
Row = dict[str, float]
Key = tuple[str, ...]


def red_queries(window: str, selector: str, by: tuple[str, ...]) -> dict[str, str]:
    labels = ", ".join(by)
    requests = (f"sum by ({labels}) (\n  label_replace(rate({COUNT}{{{selector}}}[{window}]), "
                f'"source", "histogram", "", "")\n  or\n  label_replace(rate({SERVER_UNTIMED}'
                f'{{{selector}}}[{window}]), "source", "untimed", "", ""))')
    errors_selector = f'{selector},error_type!=""' if selector else 'error_type!=""'
    errors = requests.replace(f"{{{selector}}}", f"{{{errors_selector}}}")
    queries = {"RPS": requests, "SUCCESS": f"1 - ({errors} or {requests} * 0) / {requests}"}
    for q in (50, 95, 99):
        queries[f"P{q}"] = (f"histogram_quantile({q / 100}, sum by (le, {labels}) "
                            f"(rate({BUCKET}{{{selector}}}[{window}])))")
    return queries


def use_queries(window: str) -> dict[str, str]:
    return {
        "CPU": f'1 - avg by (instance) (sum without (mode) (rate(node_cpu_seconds_total'
               f'{{mode=~"idle|iowait|steal"}}[{window}])))',
        "CPU-PSI": f"rate(node_pressure_cpu_waiting_seconds_total[{window}])",
        "LOAD/CPU": 'node_load1 / on (instance) count by (instance) '
                    '(node_cpu_seconds_total{mode="idle"})',
        "MEM": "1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes",
        "MEM-PSI": f"rate(node_pressure_memory_waiting_seconds_total[{window}])",
        "DISK": f"max by (instance) (rate(node_disk_io_time_seconds_total[{window}]))",
        "FS": 'max by (instance) (1 - node_filesystem_avail_bytes{fstype!=""} / '
              'node_filesystem_size_bytes{fstype!=""})',
    }


def collect(results: dict[str, list[dict[str, Any]]], by: tuple[str, ...]) -> dict[Key, Row]:
    """Prometheus vector results per column -> rows keyed by the `by` labels."""
    rows: dict[Key, Row] = {}
    for column, vector in results.items():
        for sample in vector:
            key = tuple(sample["metric"].get(label, "") for label in by)
            rows.setdefault(key, {})[column] = float(sample["value"][1])
    return rows


def _cell(column: str, value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    if column in ("SUCCESS", "CPU", "CPU-PSI", "MEM", "MEM-PSI", "DISK", "FS"):
        return f"{value * 100:.2f}%"
    if column.startswith("P"):
        return f"{value * 1000:.0f}ms" if value < 10 else f"{value:.1f}s"
    return f"{value:.2f}" if column != "RPS" else f"{value:.1f}"


def table(rows: dict[Key, Row], by: tuple[str, ...], columns: list[str]) -> str:
    header = [label.upper().replace("SERVICE_NAME", "SERVICE").replace("HTTP_ROUTE", "ROUTE")
              for label in by] + columns
    body = [[*key, *(_cell(c, row.get(c)) for c in columns)]
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
        raise ConfigError(f"--prometheus: {prometheus} answered {exc.code} to a query; "
                          f"is it Prometheus?") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ConfigError(f"--prometheus: cannot reach Prometheus at {prometheus}: "
                          f"{getattr(exc, 'reason', exc)}") from exc
    if body.get("status") != "success":
        raise ConfigError(f"--prometheus: query failed: {body.get('error')}")
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def stat(prometheus: str, what: str, service: str | None, by_route: bool, window: str,
         run_query: Callable[[str, str], list[dict[str, Any]]] = query) -> str:
    if what == "nodes":
        queries = use_queries(window)
        results = {column: run_query(prometheus, expr) for column, expr in queries.items()}
        if not results["CPU"]:
            raise ConfigError(f"Prometheus at {prometheus} has no node_cpu_seconds_total: is it "
                              f"scraping redline's node exporter (or node_exporter)?")
        return table(collect(results, ("instance",)), ("instance",), list(queries))
    by = ("service_name", "http_route") if by_route else ("service_name",)
    selector = f'service_name="{service}"' if service else ""
    queries = red_queries(window, selector, by)
    results = {column: run_query(prometheus, expr) for column, expr in queries.items()}
    if not results["RPS"]:
        known = run_query(prometheus, f"count({COUNT}) or count({SERVER_UNTIMED})")
        what_missing = f"service {service!r}" if service and known else "RED metrics"
        raise ConfigError(f"Prometheus at {prometheus} has no {what_missing} in the last "
                          f"{window}: is it scraping redline's sidecars?")
    return table(collect(results, by), by, list(queries))


def add_parser(sub: SubParsers,
               common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "stat", parents=[common], help="RED per service or route, or USE per node, as a table",
        description="Query Prometheus for requests per second, success rate and latency "
                    "percentiles per service (or per route), or for USE per node.")
    parser.add_argument("what", nargs="?", choices=("services", "nodes"), default="services",
                        help="services (default) or nodes")
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090", metavar="URL",
                        help="Prometheus base URL (default http://127.0.0.1:9090)")
    parser.add_argument("--service", metavar="NAME", help="one service only")
    parser.add_argument("--by", choices=("service", "route"), default="service",
                        help="one row per service (default) or per route")
    parser.add_argument("--window", default="1m", metavar="DURATION",
                        help="rate window (default 1m)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(stat(args.prometheus, args.what, args.service, args.by == "route", args.window),
          end="")
    return 0
