"""The Grafana rendering carries the same PromQL; the Alertmanager example routes by severity."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def generate(tmp_path: Path, fmt: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "redline.cli", "alerts", "--slo",
         str(REPO / "deploy" / "prometheus" / "slo.yaml"), "--format", fmt, "--out",
         str(tmp_path)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


def test_grafana_rules_are_the_prometheus_alerts(tmp_path: Path) -> None:
    generate(tmp_path / "grafana", "grafana")
    generate(tmp_path / "prometheus", "prometheus")
    provisioning = yaml.safe_load(
        (tmp_path / "grafana" / "redline-alerts.grafana.yaml").read_text())
    assert provisioning["apiVersion"] == 1
    prometheus_alerts = [rule for path in sorted((tmp_path / "prometheus").glob("*.yaml"))
                         for group in yaml.safe_load(path.read_text())["groups"]
                         for rule in group["rules"] if "alert" in rule]
    grafana_rules = [rule for group in provisioning["groups"] for rule in group["rules"]]
    assert len(grafana_rules) == len(prometheus_alerts)
    assert len({rule["uid"] for rule in grafana_rules}) == len(grafana_rules)
    # The constant labels are in the expression (render.labels_in_expr): it tells rules apart.
    by_identity = {(r["alert"], r["expr"]): r for r in prometheus_alerts}
    assert len(by_identity) == len(prometheus_alerts)
    for group in provisioning["groups"]:
        assert set(group) == {"orgId", "name", "folder", "interval", "rules"}
        for rule in group["rules"]:
            query = rule["data"][0]
            twin = by_identity[(rule["title"], query["model"]["expr"])]  # the same PromQL
            assert rule["labels"] == twin["labels"]
            assert query["datasourceUid"] == "prometheus"
            assert rule["condition"] == "C"
            assert [step["refId"] for step in rule["data"]] == ["A", "B", "C"]
            assert rule["for"] == twin.get("for", "0s")
            assert rule["annotations"] == twin["annotations"]
            assert rule["noDataState"] == "OK" and rule["execErrState"] == "Error"


def test_committed_grafana_provisioning_is_current(tmp_path: Path) -> None:
    generate(tmp_path, "grafana")
    committed = REPO / "deploy" / "grafana" / "alerting" / "redline-alerts.grafana.yaml"
    assert committed.read_text() == (tmp_path / "redline-alerts.grafana.yaml").read_text(), \
        "deploy/grafana/alerting is stale; regenerate with `redline alerts --format grafana`"


def test_alertmanager_example_is_valid_and_routes_by_severity() -> None:
    config_path = REPO / "deploy" / "prometheus" / "alertmanager.yml"
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.fail("amtool is not installed; `make test` installs prometheus-alertmanager")
    check = subprocess.run([amtool, "check-config", str(config_path)], capture_output=True,
                           text=True, timeout=60, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    for labels, receiver in ((["severity=page", "alertname=RedlineAvailabilityBurnRate"],
                              "pager"),
                             (["severity=ticket", "alertname=RedlineLatencyBurnRate"],
                              "tickets"),
                             (["severity=critical"], "pager"),
                             (["severity=warning"], "tickets")):
        routed = subprocess.run([amtool, "config", "routes", "test",
                                 f"--config.file={config_path}", *labels],
                                capture_output=True, text=True, timeout=60, check=False)
        assert routed.stdout.strip() == receiver, (labels, routed.stdout, routed.stderr)
