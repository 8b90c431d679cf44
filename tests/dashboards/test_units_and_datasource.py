"""What a Grafana user sees of every generated dashboard: a unit on every value, no thresholds
left from grafanalib's defaults, and the datasource the Import dialog chose (#15 item 7)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from redline.dashboards.common import to_json
from tests.dashboards.test_dashboards import BUILT

REPO = Path(__file__).resolve().parents[2]
COMMITTED = {path.name: json.loads(path.read_text())
             for path in sorted((REPO / "deploy/grafana/dashboards").glob("*.json"))}
EVERY = {**{f"built/{name}": d for name, d in BUILT.items()},
         **{f"committed/{name}": d for name, d in COMMITTED.items()}}
VALUE_PANELS = {"timeseries", "stat", "bargauge", "gauge", "heatmap"}
REFERENCE = {"type": "prometheus", "uid": "${datasource}"}
INPUT = "${DS_PROMETHEUS}"


def walk(node: Any) -> Iterator[Any]:
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) \
        else ()
    for child in children:
        yield from walk(child)


def unit_overrides(panel: dict[str, Any]) -> dict[str, str]:
    """Column name -> unit, from the panel's overrides."""
    units = {}
    for override in panel["fieldConfig"].get("overrides", []):
        for prop in override["properties"]:
            if prop["id"] == "unit" and prop["value"]:
                units[override["matcher"]["options"]] = prop["value"]
    return units


def value_columns(panel: dict[str, Any]) -> list[str]:
    """A table's value columns as Grafana names them: `Value #<refId>`, then renamed."""
    renames: dict[str, str] = {}
    for transformation in panel.get("transformations", []):
        if transformation["id"] == "organize":
            renames |= transformation["options"].get("renameByName", {})
    columns = [f"Value #{t['refId']}" for t in panel["targets"]]
    return [renames.get(column, column) for column in columns]


def missing_units(dashboard: dict[str, Any]) -> list[str]:
    missing = []
    for panel in dashboard["panels"]:
        if not panel.get("targets"):
            continue
        if panel["type"] == "table":
            units = unit_overrides(panel)
            missing += [f"{panel['title']}: {column}" for column in value_columns(panel)
                        if column not in units]
        elif panel["type"] in VALUE_PANELS:
            if not panel["fieldConfig"]["defaults"].get("unit"):
                missing.append(panel["title"])
            if panel["type"] == "heatmap" and not panel["options"].get("yAxis", {}).get("unit"):
                missing.append(f"{panel['title']}: y axis")
    return missing


def leftover_thresholds(dashboard: dict[str, Any]) -> list[str]:
    """Threshold steps at 80: grafanalib's default (green, then red from 80), meaningless for
    a ratio, a latency or a rate; also steps left under the pre-Grafana-7 `fieldOptions`."""
    found = []
    for panel in dashboard["panels"]:
        for node in walk(panel):
            if isinstance(node, dict) and isinstance(node.get("steps"), list):
                found += [f"{panel['title']}: {step}" for step in node["steps"]
                          if step.get("value") in (80, "80")]
            if isinstance(node, dict) and "fieldOptions" in node:
                found.append(f"{panel['title']}: options.fieldOptions")
    return found


def wrong_datasources(dashboard: dict[str, Any]) -> list[str]:
    wrong = []
    for panel in dashboard["panels"]:
        if panel["type"] != "row" and panel["datasource"] != REFERENCE:
            wrong.append(f"panel {panel['title']}: {panel['datasource']}")
        wrong += [f"target {panel['title']}/{t['refId']}: {t.get('datasource')}"
                  for t in panel.get("targets", []) if t.get("datasource") != REFERENCE]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "datasource":
            if variable["query"] != "prometheus" or variable["current"].get("value") != INPUT:
                wrong.append(f"variable {variable['name']}: {variable['current']}")
        elif variable.get("datasource") != REFERENCE:
            wrong.append(f"variable {variable['name']}: {variable.get('datasource')}")
    return wrong


@pytest.mark.parametrize("name", sorted(EVERY))
def test_every_value_has_a_unit(name: str) -> None:
    assert missing_units(EVERY[name]) == []


@pytest.mark.parametrize("name", sorted(EVERY))
def test_no_threshold_is_left_from_the_defaults(name: str) -> None:
    assert leftover_thresholds(EVERY[name]) == []


@pytest.mark.parametrize("name", sorted(EVERY))
def test_every_panel_and_variable_reads_the_datasource_variable(name: str) -> None:
    dashboard = EVERY[name]
    assert wrong_datasources(dashboard) == []
    assert [v["name"] for v in dashboard["templating"]["list"]
            if v["type"] == "datasource"] == ["datasource"]
    assert [(i["name"], i["type"], i["pluginId"]) for i in dashboard["__inputs"]] == [
        ("DS_PROMETHEUS", "datasource", "prometheus")]
    # Only the variable's default names the input; a panel naming it would hold a fixed uid
    # after an import and a datasource that does not exist under file provisioning.
    text = json.dumps(dashboard)
    assert text.count(INPUT) == 2, "the variable's current text and value only"


def imported(dashboard: dict[str, Any], uid: str) -> dict[str, Any]:
    """What Grafana's import stores: each `${<input>}` in any string replaced by the value
    chosen in the dialog (pkg/services/dashboardimport: DashTemplateEvaluator), others kept."""
    def evaluate(node: Any) -> Any:
        if isinstance(node, str):
            return re.sub(r"\$\{.+?\}", lambda m: uid if m.group(0) == INPUT else m.group(0),
                          node)
        if isinstance(node, dict):
            return {k: v if k == "__inputs" else evaluate(v) for k, v in node.items()}
        if isinstance(node, list):
            return [evaluate(item) for item in node]
        return node
    result: dict[str, Any] = evaluate(dashboard)
    return result


@pytest.mark.parametrize("name", sorted(COMMITTED))
def test_the_import_dialogs_choice_is_the_datasource_every_query_uses(name: str) -> None:
    dashboard = imported(COMMITTED[name], "chosen-in-the-dialog")
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["current"]["value"] == "chosen-in-the-dialog"

    def resolve(reference: dict[str, str]) -> str:
        match = re.fullmatch(r"\$\{(\w+)\}", reference["uid"])
        return variables[match.group(1)]["current"]["value"] if match else reference["uid"]

    used = {resolve(t["datasource"]) for p in dashboard["panels"] for t in p.get("targets", [])}
    used |= {resolve(p["datasource"]) for p in dashboard["panels"] if p["type"] != "row"}
    used |= {resolve(v["datasource"]) for v in variables.values() if v["type"] == "query"}
    assert used == {"chosen-in-the-dialog"}


def test_the_checks_catch_what_grafanalib_writes_by_default() -> None:
    """The three checks fail on grafanalib's defaults, so passing means something."""
    from grafanalib.core import BarGauge, Table, Target

    bare = json.loads(to_json({
        "panels": [BarGauge(title="g", targets=[Target(expr="up", refId="A")]),
                   Table(title="t", targets=[Target(expr="up", refId="A")])],
        "templating": {"list": []}}))
    assert missing_units(bare) == ["g", "t: Value #A"]
    assert leftover_thresholds(bare)
    assert len(wrong_datasources(bare)) == 4
