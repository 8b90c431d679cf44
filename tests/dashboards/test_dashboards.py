"""The dashboards as Grafana will read them: structure, PromQL that parses, committed JSON."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from redline.dashboards.command import dashboards
from redline.dashboards.common import ALLOWED_PANEL_TYPES, DATASOURCE, to_json
from redline.dashboards.extensions import SCHEMA_VERSION
from tests.conftest import promtool_path

REPO = Path(__file__).resolve().parents[2]
# Exactly what Grafana reads: the JSON the encoder writes; the recorded overview as well.
BUILT = {name: json.loads(to_json(build())) for name, build in dashboards().items()}
BUILT["recorded/redline-red-overview.json"] = json.loads(to_json(
    dashboards(recorded=True)["redline-red-overview.json"]()))
VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def targets(dashboard: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(panel, t) for panel in dashboard["panels"] for t in panel.get("targets", [])]


def substitute(expr: str, values: dict[str, str]) -> str:
    """Dashboard variables as Grafana fills them in (label_replace's ${1} stays); the cluster
    is All (`.*`) unless `values` chooses."""
    expr = expr.replace("$__rate_interval", values.get("__rate_interval", "5m"))
    return re.sub(r"\$(service|route|instance|cluster)\b",
                  lambda m: values.get(m.group(1), ".*") if m.group(1) == "cluster"
                  else values[m.group(1)], expr)


@pytest.mark.parametrize("name", sorted(BUILT))
def test_structure(name: str) -> None:
    dashboard = BUILT[name]
    panels = dashboard["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    assert dashboard["schemaVersion"] == SCHEMA_VERSION
    assert dashboard["uid"] and dashboard["__inputs"][0]["pluginId"] == "prometheus"
    for panel in panels:
        assert panel["type"] in ALLOWED_PANEL_TYPES, panel["type"]
        if panel["type"] != "row":
            assert panel["datasource"] == DATASOURCE, panel["title"]
        refs = [t["refId"] for t in panel.get("targets", [])]
        assert len(refs) == len(set(refs)), panel["title"]
    for _, t in targets(dashboard):
        assert t["datasource"] == DATASOURCE
    # no overlap, and every row of panels fills the 24 columns
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, (panel["title"], x, y)
                cells.add((x, y))
    for y in {y for _, y in cells}:
        assert sum(1 for x, yy in cells if yy == y) == 24, f"row at y={y} is not full"
    # every template variable is used by a query or another variable
    used = {m.group(1) or m.group(2) for _, t in targets(dashboard)
            for m in VARIABLE.finditer(t["expr"])}
    used |= {m.group(1) or m.group(2) for v in dashboard["templating"]["list"]
             for m in VARIABLE.finditer(str(v.get("query", "")))}
    if any(panel.get("datasource") == DATASOURCE for panel in panels):
        used.add("datasource")
    for variable in dashboard["templating"]["list"]:
        assert variable["name"] in used, variable["name"]


def test_every_query_parses_with_promtool(tmp_path: Path) -> None:
    rules: list[dict[str, str]] = []
    values = {"service": "x", "route": ".*", "instance": "x"}
    for dashboard in BUILT.values():
        for _, t in targets(dashboard):
            rules.append({"record": f"dashboard:query:{len(rules)}",
                          "expr": substitute(t["expr"], values)})
        for variable in dashboard["templating"]["list"]:
            match = re.fullmatch(r"label_values\((.+), \w+\)", str(variable.get("query")))
            if match:  # the selector a variable's values come from parses too
                rules.append({"record": f"dashboard:variable:{len(rules)}",
                              "expr": substitute(match.group(1), values)})
    path = tmp_path / "dashboards.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run([promtool_path(), "check", "rules", str(path)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(rules) > 30


def test_committed_dashboards_are_current(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "redline.cli", "dashboards", "--out",
                             str(tmp_path)], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    for generated in [*(tmp_path / "dashboards").iterdir(),
                      tmp_path / "provisioning" / "dashboards" / "redline.yaml"]:
        committed = REPO / "deploy" / "grafana" / generated.relative_to(tmp_path)
        assert committed.read_text() == generated.read_text(), \
            f"{committed} is stale; regenerate with `redline dashboards`"


def test_the_recorded_overview_reads_every_red_recording_rule() -> None:
    """redline-red.rules.yaml exists for `redline dashboards --recorded`: each series it records
    is read by that overview or by a rule that is, and the overview reads nothing else."""
    from redline.alerts.red_rules import recording_rules

    recorded = json.loads(to_json(dashboards(recorded=True)["redline-red-overview.json"]()))
    exprs = [t["expr"] for _, t in targets(recorded)]
    rules = recording_rules()
    read = {rule["record"] for rule in rules if any(rule["record"] in e for e in exprs)}
    read |= {rule["record"] for rule in rules
             for reader in rules if reader["record"] in read and rule["record"] in reader["expr"]}
    assert read == {rule["record"] for rule in rules}
    assert not [e for e in exprs if "_count" in e or "[" in e], "raw series in the recorded one"
    raw = BUILT["redline-red-overview.json"]
    # gRPC services too, from their records (service:rpc_server_*, service_method:rpc_server_*)
    assert [p["title"] for p in recorded["panels"]] == [p["title"] for p in raw["panels"]]
    assert "rpc_server_duration_seconds_count" not in json.dumps(recorded)
    assert "service:rpc_server_requests:rate5m" in json.dumps(recorded)


def test_the_recorded_overview_is_a_flag_away(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "redline.cli", "dashboards", "--recorded",
                             "--out", str(tmp_path)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    overview = (tmp_path / "dashboards" / "redline-red-overview.json").read_text()
    assert "service:http_server_requests:rate5m" in overview
    assert overview != (REPO / "deploy/grafana/dashboards/redline-red-overview.json").read_text()
