"""Every dashboard query reads the cluster variable, through the label `--cluster-label` names, and
the variable is harmless on one Prometheus (All is `.*`, which keeps series without the label).
The end-to-end tests run the queries: here, their text."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from redline.dashboards.command import dashboards
from redline.dashboards.common import to_json
from redline.queries import Grouping
from tests.dashboards.test_dashboards import BUILT, targets

STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
# What is left of PromQL once strings, selectors' braces, ranges and label lists are out:
# functions (followed by "("), keywords, numbers; any other name is a bare metric name.
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
            "group_left", "group_right"}


def selectors(expr: str) -> tuple[list[str], list[str]]:
    """(the matchers of each `{...}` selector, metric names written without any)."""
    hidden = STRING.sub(lambda m: m.group(0).replace("{", "\0").replace("}", "\1"), expr)
    blocks = [block.replace("\0", "{").replace("\1", "}")
              for block in re.findall(r"\{([^{}]*)\}", hidden)]
    bare = STRING.sub('""', expr)
    bare = re.sub(r"(?:[a-zA-Z_:][a-zA-Z0-9_:]*)?\{[^{}]*\}|\[[^\]]*\]", " ", bare)
    bare = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    names = [m.group(1) for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?",
                                             bare)
             if m.group(2) is None and m.group(1) not in KEYWORDS]
    return blocks, names


def unfiltered(dashboard: dict[str, Any], label: str) -> list[str]:
    """Panel queries and variable selectors with a selector that does not choose clusters."""
    chosen = f'{label}=~"$cluster"'
    found = []
    exprs = [(f"{panel['title']} ({t['refId']})", t["expr"]) for panel, t in targets(dashboard)]
    exprs += [(f"variable {v['name']}", match.group(1))
              for v in dashboard["templating"]["list"] if v["name"] != "cluster"
              for match in [re.fullmatch(r"label_values\((.+), \w+\)", str(v.get("query")))]
              if match]
    for where, expr in exprs:
        blocks, bare = selectors(expr)
        found += [f"{where}: {{{block}}}" for block in blocks if chosen not in block]
        found += [f"{where}: {name} (no matchers)" for name in bare]
    return found


@pytest.mark.parametrize("name", sorted(BUILT))
def test_every_selector_chooses_the_cluster(name: str) -> None:
    assert unfiltered(BUILT[name], "cluster") == []


def test_the_check_finds_what_it_looks_for() -> None:
    """A bare name and a selector without the matcher are found; a function is not a name."""
    expr = ('sum by (cluster, le) (rate(a{cluster=~"$cluster"}[5m])) / b{x="}{"} '
            'and on (instance) histogram_quantile(0.5, c)')
    dashboard = {"panels": [{"title": "t", "targets": [{"refId": "A", "expr": expr}]}],
                 "templating": {"list": []}}
    assert unfiltered(dashboard, "cluster") == ['t (A): {x="}{"}', "t (A): c (no matchers)"]


@pytest.mark.parametrize("name", sorted(BUILT))
def test_the_cluster_variable_is_harmless_without_the_label(name: str) -> None:
    variables = {v["name"]: v for v in BUILT[name]["templating"]["list"]}
    cluster = variables["cluster"]
    assert list(variables)[:2] == ["datasource", "cluster"]  # before the ones it filters
    assert cluster["multi"] and cluster["includeAll"] and cluster["allValue"] == ".*"
    assert cluster["current"] == {"selected": True, "text": ["All"], "value": ["$__all"]}
    assert re.fullmatch(r"label_values\(.+, cluster\)", cluster["query"])


def test_another_cluster_label_is_used_everywhere(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "redline.cli", "dashboards", "--out",
                             str(tmp_path), "--cluster-label", "region"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    for path in sorted((tmp_path / "dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        assert unfiltered(dashboard, "region") == [], path.name
        text = path.read_text()
        assert "cluster=~" not in text and "{{cluster}}" not in text, path.name
        assert re.search(r"by \(region, ", text), path.name
    built = json.loads(to_json(dashboards(grouping=Grouping("region"))[
        "redline-red-service.json"]()))
    assert built["templating"]["list"][1]["query"].endswith(", region)")


@pytest.mark.parametrize(("label", "reason"), [
    ("service_name", "'service_name' is a label redline groups by already"),
    ("1cluster", "expected a Prometheus label name"),
    ("__name__", "expected a Prometheus label name"),
])
def test_a_cluster_label_that_cannot_work_is_refused(label: str, reason: str) -> None:
    for command in ("dashboards", "alerts", "stat"):
        result = subprocess.run([sys.executable, "-m", "redline.cli", command,
                                 "--cluster-label", label], capture_output=True, text=True,
                                timeout=60, check=False)
        assert result.returncode == 2, command
        assert f"argument --cluster-label: {reason}" in result.stderr, result.stderr
