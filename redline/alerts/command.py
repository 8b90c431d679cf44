"""`redline alerts`: SLO spec (optional) -> rule files for Prometheus or the Operator."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from redline.config import ConfigError
from redline.exporters.instruments import validate_buckets
from redline.exporters.red import DEFAULT_BUCKETS
from redline.flags import SubParsers, flag_type

if TYPE_CHECKING:  # the rule builders load only when the command runs (grafanalib is heavy)
    from redline.alerts.render import Group
    from redline.alerts.spec import Spec


def _rate(text: str) -> float:
    value = float(text)
    if value < 0:
        raise ValueError(f"expected requests per second >= 0, got {text!r}")
    return value


def add_parser(sub: SubParsers,
               common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "alerts", parents=[common],
        help="Prometheus rules: SLO burn-rate alerts, USE alerts, sidecar health",
        description="Generate recording and alerting rules: multi-window multi-burn-rate "
                    "alerts from an SLO spec, USE alerts for nodes and health alerts for "
                    "redline's sidecars. Without --out the rules go to standard output.",
    )
    add = parser.add_argument
    add("--slo", metavar="FILE", help="SLO spec (YAML); without it, USE and health rules only")
    add("--out", metavar="DIR", help="write the rule files into DIR")
    add("--format", choices=("prometheus", "operator", "grafana"), default="prometheus",
        help="rule files for Prometheus, a PrometheusRule object for the Prometheus Operator, "
             "or Grafana-managed alert rules as a provisioning file (default prometheus)")
    add("--buckets", type=flag_type(lambda t: tuple(float(x) for x in t.split(",") if x)),
        default=DEFAULT_BUCKETS, metavar="LIST",
        help="histogram buckets the latency thresholds must be among (default: the RED ones)")
    add("--min-request-rate", type=flag_type(_rate), default=0.02, metavar="R",
        help="burn-rate alerts stay silent below this many requests per second over their "
             "long window (default 0.02, 72 an hour)")
    add("--runbook-url", default="docs/alerts.md", metavar="URL",
        help="base of the runbook_url annotations; #alertname is appended "
             "(default docs/alerts.md)")
    add("--sidecar-job-regex", default=".*redline.*", metavar="RE",
        help="Prometheus job names of redline's sidecars (default .*redline.*)")
    add("--grafana-datasource-uid", default="prometheus", metavar="UID",
        help="grafana: the uid of the Prometheus datasource the rules query "
             "(default prometheus)")
    add("--grafana-folder", default="redline", metavar="NAME",
        help="grafana: the folder the rules go to (default redline)")
    add("--name", default="redline", help="operator: the PrometheusRule's name")
    add("--namespace", help="operator: the PrometheusRule's namespace")
    add("--rule-label", action="append", default=[], metavar="K=V",
        help="operator: a label the Prometheus ruleSelector matches; repeatable "
             "(default role=alert-rules)")
    parser.set_defaults(func=run)


def build_groups(spec: Spec | None, args: argparse.Namespace) -> dict[str, list[Group]]:
    """File stem -> rule groups."""
    from redline.alerts import health_rules, red_rules, slo_rules, use_rules
    from redline.alerts.render import group
    from redline.alerts.spec import Spec

    files: dict[str, list[Group]] = {}
    empty = Spec("30d", 30 * 86400, ())
    if spec is not None:
        files["redline-slo"] = [
            group("redline-slo-recording", slo_rules.recording_rules(spec)),
            group("redline-slo-alerts", slo_rules.alert_rules(
                spec, min_request_rate=args.min_request_rate, runbook_url=args.runbook_url)),
        ]
    files["redline-red"] = [group("redline-red-recording", red_rules.recording_rules())]
    files["redline-use"] = [group("redline-use-recording", use_rules.RECORDING),
                            group("redline-use-alerts", use_rules.alert_rules(args.runbook_url))]
    files["redline-health"] = [group("redline-health", health_rules.alert_rules(
        spec or empty, job_regex=args.sidecar_job_regex, runbook_url=args.runbook_url))]
    return files


def run(args: argparse.Namespace) -> int:
    from redline.alerts.grafana import provisioning_file
    from redline.alerts.render import operator_object, prometheus_file
    from redline.alerts.spec import load_spec

    try:
        buckets = validate_buckets(args.buckets)
    except ValueError as exc:
        raise ConfigError(f"--buckets: {exc}") from exc
    spec = load_spec(args.slo, buckets) if args.slo else None
    files = build_groups(spec, args)
    if args.format == "grafana":
        outputs = {"redline-alerts.grafana.yaml": provisioning_file(
            [g for groups in files.values() for g in groups],
            datasource_uid=args.grafana_datasource_uid, folder=args.grafana_folder)}
    elif args.format == "operator":
        labels = dict(item.split("=", 1) for item in args.rule_label if "=" in item) or \
            {"role": "alert-rules"}
        outputs = {f"{args.name}.prometheusrule.yaml": operator_object(
            [g for groups in files.values() for g in groups], args.name, args.namespace,
            labels)}
    else:
        outputs = {f"{stem}.rules.yaml": prometheus_file(groups)
                   for stem, groups in files.items()}
    if args.out is None:
        sys.stdout.write("---\n".join(outputs.values()))
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in outputs.items():
        (out / name).write_text(text)
    return 0
