"""SLO spec and options -> rule groups per file -> the files' text, for each output format."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from redline.alerts import container_rules, health_rules, red_rules, slo_rules, use_rules
from redline.alerts.render import operator_object, prometheus_file
from redline.alerts.rules import Group, group
from redline.alerts.spec import Spec
from redline.queries import CLUSTER_LABEL, Grouping


@dataclass(frozen=True)
class RuleOptions:
    """What the rules depend on besides the SLO spec."""

    min_request_rate: float = 0.02  # burn-rate alerts stay silent below this, per second
    runbook_url: str = "docs/alerts.md"  # base of runbook_url; #alertname is appended
    sidecar_job_regex: str = ".*redline.*"  # Prometheus job names of redline's sidecars
    # The label that tells clusters apart in a central ruler; kept through every aggregation.
    cluster_label: str = CLUSTER_LABEL
    # How often the SLO period's records are evaluated (None: as every other group).
    budget_interval: str | None = None
    # How often the tile groups are evaluated (None: once per tile, their step; shorter for
    # demos and tests that run for minutes: tiles then overlap, windows stay ratios).
    tile_interval: str | None = None


@dataclass(frozen=True)
class Output:
    """Where the groups go: `prometheus` rule files, one `operator` PrometheusRule, or
    `grafana`-managed alert rules."""

    format: str = "prometheus"
    name: str = "redline"  # operator: the PrometheusRule's name
    namespace: str | None = None
    labels: Mapping[str, str] = field(default_factory=lambda: {"role": "alert-rules"})
    grafana_datasource_uid: str = "prometheus"
    grafana_folder: str = "redline"


def build_groups(spec: Spec | None, options: RuleOptions) -> dict[str, list[Group]]:
    """File stem -> rule groups."""
    files: dict[str, list[Group]] = {}
    grouping = Grouping(options.cluster_label)
    if spec is not None:
        files["redline-slo"] = [
            group("redline-slo-recording", slo_rules.recording_rules(spec, grouping)),
            # Each tile group's interval is its tiles' step: a tile is the mean over it.
            *(group(tile.group, tile.rules(), interval=options.tile_interval or tile.step)
              for tile in slo_rules.TILES),
            group("redline-slo-budget", slo_rules.budget_rules(spec),
                  interval=options.budget_interval),
            group("redline-slo-alerts", slo_rules.alert_rules(
                spec, min_request_rate=options.min_request_rate,
                runbook_url=options.runbook_url, grouping=grouping)),
        ]
    files["redline-red"] = [group("redline-red-recording", red_rules.recording_rules(grouping))]
    files["redline-use"] = [group("redline-use-recording", use_rules.recording_rules(grouping)),
                            group("redline-use-alerts", use_rules.alert_rules(
                                options.runbook_url, grouping)),
                            group("redline-use-containers-recording", container_rules.RECORDING),
                            group("redline-use-containers-alerts", container_rules.alert_rules(
                                options.runbook_url))]
    files["redline-health"] = [group("redline-health", health_rules.alert_rules(
        spec or Spec("30d", 30 * 86400, ()), job_regex=options.sidecar_job_regex,
        runbook_url=options.runbook_url, grouping=grouping))]
    return files


def render(files: dict[str, list[Group]], output: Output) -> dict[str, str]:
    """File name -> text."""
    every = [g for groups in files.values() for g in groups]
    if output.format == "grafana":
        # grafanalib loads only for this format: it is heavy, and the others do not need it.
        from redline.alerts.grafana import provisioning_file

        return {"redline-alerts.grafana.yaml": provisioning_file(
            every, datasource_uid=output.grafana_datasource_uid, folder=output.grafana_folder)}
    if output.format == "operator":
        return {f"{output.name}.prometheusrule.yaml": operator_object(
            every, output.name, output.namespace, dict(output.labels))}
    if output.format == "prometheus":
        return {f"{stem}.rules.yaml": prometheus_file(groups) for stem, groups in files.items()}
    raise ValueError(f"format: expected prometheus, operator or grafana, got {output.format!r}")
