"""`redline alerts`: SLO spec (optional) -> rule files for Prometheus or the Operator."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from redline.exporters.red import DEFAULT_BUCKETS
from redline.flags import SubParsers, buckets, flag_type
from redline.queries import CLUSTER_LABEL, Grouping

if TYPE_CHECKING:  # the rule builders load only when the command runs
    from redline.alerts.generate import Output, RuleOptions


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0:
        raise ValueError(f"expected requests per second >= 0, got {text!r}")
    return value


def _interval(text: str) -> str:
    from redline.alerts.spec import parse_duration

    parse_duration(text)  # refuses what Prometheus would not read as a group interval
    return text


def _tile_interval(text: str) -> str:
    from redline.alerts.slo_rules import TILES
    from redline.alerts.spec import parse_duration

    shortest = min(TILES, key=lambda tile: parse_duration(tile.step))
    if parse_duration(text) > parse_duration(shortest.step):
        # A tile is the mean over its step: written less often, tiles would leave gaps.
        raise ValueError(f"expected at most {shortest.step} (the shortest tile's step), "
                         f"got {text!r}")
    return text


def _label(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise ValueError(f"expected a label as NAME=VALUE, got {text!r}")
    return name, value


def add_cluster_label(parser: argparse.ArgumentParser) -> None:
    """`--cluster-label`, the same for every command that writes or runs queries."""
    parser.add_argument(
        "--cluster-label", type=flag_type(Grouping), default=CLUSTER_LABEL, metavar="LABEL",
        help="the label that tells clusters apart where many Prometheus servers meet (their "
             "external_labels in VictoriaMetrics, Thanos or Mimir); every aggregation and "
             f"join keeps it, and it is harmless where series lack it (default: {CLUSTER_LABEL})")


def add_parser(sub: SubParsers,
               common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "alerts", parents=[common],
        help="Prometheus rules: SLO burn-rate alerts, USE alerts, sidecar health",
        description="Generate recording and alerting rules: multi-window multi-burn-rate "
                    "alerts from an SLO spec, USE alerts for nodes and health alerts for "
                    "redline's sidecars. Without --out the rules go to standard output; "
                    "with it, each file written is named on stderr.",
    )
    add = parser.add_argument
    add("--slo", metavar="FILE",
        help="SLO spec (YAML; objectives in percent, docs/alerts.md); without it, USE and "
             "health rules only (default: none)")
    add("--out", metavar="DIR",
        help="write the rule files into DIR, naming each file on stderr "
             "(default: standard output)")
    add("--format", choices=("prometheus", "operator", "grafana"), default="prometheus",
        help="rule files for Prometheus, a PrometheusRule object for the Prometheus Operator, "
             "or Grafana-managed alert rules as a provisioning file (default: prometheus)")
    add("--buckets", type=flag_type(buckets), default=DEFAULT_BUCKETS, metavar="LIST",
        help="histogram buckets in seconds, comma-separated, that the latency thresholds must "
             "be among (default: the RED schema's, "
             f"{', '.join(f'{b:g}' for b in DEFAULT_BUCKETS)})")
    add("--min-request-rate", type=flag_type(_rate), default=0.02, metavar="RPS",
        help="burn-rate alerts stay silent below this many requests per second over their "
             "long window (default: 0.02, 72 an hour)")
    add("--budget-interval", type=flag_type(_interval), metavar="DURATION",
        help="how often the SLO period's records (the error ratio over the whole period and "
             "the budget left) are evaluated; they read the period's hourly tiles, and with "
             "many SLOs 5m spares the ruler that too (default: the evaluation interval of "
             "the others)")
    add("--tile-interval", type=flag_type(_tile_interval), metavar="DURATION",
        help="evaluate the tile groups this often instead of once per tile (5m, 1h): tiles "
             "then overlap, the long windows stay ratios of sums but cost what they did "
             "without tiles; for demos and tests whose Prometheus runs for minutes, where "
             "hourly tiles would not exist yet (default: each tile's step)")
    add("--runbook-url", default="docs/alerts.md", metavar="URL",
        help="base of the runbook_url annotations; #alertname is appended "
             "(default: docs/alerts.md)")
    add("--sidecar-job-regex", default=".*redline.*", metavar="RE",
        help="Prometheus job names of redline's sidecars (default: .*redline.*)")
    add_cluster_label(parser)
    add("--grafana-datasource-uid", default="prometheus", metavar="UID",
        help="grafana: the uid of the Prometheus datasource the rules query "
             "(default: prometheus)")
    add("--grafana-folder", default="redline", metavar="NAME",
        help="grafana: the folder the rules go to (default: redline)")
    add("--name", default="redline", metavar="NAME",
        help="operator: the PrometheusRule's name; also its file name with --out "
             "(default: redline)")
    add("--namespace", metavar="NAMESPACE",
        help="operator: the PrometheusRule's namespace (default: none, the namespace it is "
             "applied to)")
    add("--rule-label", action="append", type=flag_type(_label), default=[], metavar="K=V",
        help="operator: a label the Prometheus ruleSelector matches; repeatable "
             "(default: role=alert-rules)")
    parser.set_defaults(func=run)


@dataclass(frozen=True)
class AlertsConfig:
    slo: Path | None
    out: Path | None  # None: standard output
    buckets: tuple[float, ...]
    options: RuleOptions
    output: Output


def config(args: argparse.Namespace) -> AlertsConfig:
    from redline.alerts.generate import Output, RuleOptions

    return AlertsConfig(
        slo=Path(args.slo) if args.slo else None,
        out=Path(args.out) if args.out else None,
        buckets=tuple(args.buckets),
        options=RuleOptions(min_request_rate=args.min_request_rate,
                            runbook_url=args.runbook_url,
                            sidecar_job_regex=args.sidecar_job_regex,
                            cluster_label=args.cluster_label.cluster,
                            budget_interval=args.budget_interval,
                            tile_interval=args.tile_interval),
        output=Output(format=args.format, name=args.name, namespace=args.namespace,
                      labels=dict(args.rule_label) or {"role": "alert-rules"},
                      grafana_datasource_uid=args.grafana_datasource_uid,
                      grafana_folder=args.grafana_folder))


def run(args: argparse.Namespace) -> int:
    return write(config(args))


def write(cfg: AlertsConfig) -> int:
    from redline.alerts.generate import build_groups, render
    from redline.alerts.output import write_files
    from redline.alerts.spec import load_spec

    spec = load_spec(cfg.slo, cfg.buckets) if cfg.slo else None
    outputs = render(build_groups(spec, cfg.options), cfg.output)
    if cfg.out is None:
        sys.stdout.write("---\n".join(outputs.values()))
        return 0
    write_files(cfg.out, {Path(name): text for name, text in outputs.items()})
    return 0
