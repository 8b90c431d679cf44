"""What every redline dashboard shares: the datasource variable, targets, ids, JSON output.

Every panel and target queries `${datasource}`, a datasource variable, and the dashboard
declares an `__inputs` entry for it, so the same JSON works through Grafana's Import UI (which
asks for the datasource) and through file provisioning (where the variable picks the default
Prometheus datasource).
"""

from __future__ import annotations

import json
from typing import Any

from grafanalib.core import Dashboard as _Dashboard
from grafanalib.core import DataSourceInput, RowPanel, Target, Template, Templating

from redline.dashboards.extensions import current_schema, with_exemplars

DATASOURCE = "${datasource}"
ALLOWED_PANEL_TYPES = {"timeseries", "stat", "table", "heatmap", "bargauge", "row"}


def datasource_variable() -> Template:
    return Template(name="datasource", label="Data source", query="prometheus",
                    type="datasource", default="Prometheus")


def query_variable(name: str, label: str, query: str, *, include_all: bool = False,
                   multi: bool = False) -> Template:
    return Template(name=name, label=label, query=query, dataSource=DATASOURCE,
                    includeAll=include_all, multi=multi, allValue=".*" if include_all else None,
                    refresh=2, sort=1)


def target(expr: str, legend: str = "", *, ref: str = "A", instant: bool = False,
           table: bool = False, exemplar: bool = False) -> Target:
    built = Target(expr=expr, legendFormat=legend, refId=ref, instant=instant,
                   format="table" if table else "time_series", datasource=DATASOURCE)
    return with_exemplars(built) if exemplar else built


def dashboard(*, title: str, uid: str, tags: list[str], panels: list[Any],
              variables: list[Template], links: list[Any], description: str) -> dict[str, Any]:
    """The dashboard as Grafana JSON: ids assigned in order, current schema, sorted keys."""
    for number, panel in enumerate(panels, 1):
        panel.id = number
        if getattr(panel, "dataSource", None) is None and not isinstance(panel, RowPanel):
            panel.dataSource = DATASOURCE
    built = _Dashboard(
        title=title, uid=uid, tags=tags, panels=panels, links=links, description=description,
        templating=Templating(list=[datasource_variable(), *variables]),
        inputs=[DataSourceInput(name="DS_PROMETHEUS", label="Prometheus",
                                pluginId="prometheus", pluginName="Prometheus",
                                description="The Prometheus that scrapes redline")],
        timezone="browser", refresh="30s", editable=True, graphTooltip=1,
    )
    return current_schema(built.to_json_data())


def to_json(document: dict[str, Any]) -> str:
    from grafanalib._gen import DashboardEncoder

    return json.dumps(document, sort_keys=True, indent=2, cls=DashboardEncoder) + "\n"
