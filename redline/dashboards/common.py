"""What every redline dashboard shares: the datasource variable, targets, tables, ids, JSON.

One JSON serves both ways of loading a dashboard:

- Every panel, target and query variable reads the `datasource` variable
  (`{"type": "prometheus", "uid": "${datasource}"}`), a variable of type `datasource`.
- `__inputs` declares `DS_PROMETHEUS` and the variable's default (`current`) is
  `${DS_PROMETHEUS}`. Grafana's Import dialog asks for it and writes the uid chosen there into
  that default, so the import's choice is the one used (and can still be switched later).
- File provisioning substitutes nothing: the default names no datasource, so Grafana selects
  the variable's first option, the first Prometheus datasource by name.

Panels never name `${DS_PROMETHEUS}` themselves: after an import they would hold a fixed uid
and ignore the variable, and under provisioning they would name a datasource that does not
exist.

Every query also reads the `cluster` variable, as a regex matcher on the cluster label
(`cluster=~"$cluster"`, `Grouping.chosen`): multi-select, All is `.*`, so on one Prometheus
without the label (no values to choose) All still keeps every series.
"""

from __future__ import annotations

import json
from typing import Any

from grafanalib.core import Dashboard as _Dashboard
from grafanalib.core import (
    DataSourceInput,
    RowPanel,
    Table,
    TableSortByField,
    Target,
    Template,
    Templating,
)

from redline.dashboards.extensions import current_schema, with_exemplars
from redline.queries import Grouping

DATASOURCE_INPUT = "DS_PROMETHEUS"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
ALLOWED_PANEL_TYPES = {"timeseries", "stat", "table", "heatmap", "bargauge", "row"}
# The RED columns of a table of services, routes or methods: title and unit, queries A to D.
RED_COLUMNS = [("Requests/s", "reqps"), ("Errors", "percentunit"), ("p50", "s"), ("p99", "s")]
P99_THRESHOLDS: list[tuple[str, float | None]] = [("green", None), ("orange", 0.5), ("red", 2.5)]


def datasource_variable() -> Template:
    return Template(name="datasource", label="Data source", query="prometheus",
                    type="datasource", default=f"${{{DATASOURCE_INPUT}}}")


def query_variable(name: str, label: str, query: str, *, include_all: bool = False,
                   multi: bool = False) -> Template:
    return Template(name=name, label=label, query=query, dataSource=DATASOURCE,
                    includeAll=include_all, multi=multi, allValue=".*" if include_all else None,
                    refresh=2, sort=1)


CLUSTER = "$cluster"  # the cluster variable's value, a regex (`a|b`, `.*` for All)


def cluster_variable(grouping: Grouping, selector: str) -> Template:
    """The clusters to show: the cluster label's values on `selector` (the dashboard's own
    metric), All by default."""
    variable = query_variable("cluster", "Cluster", f"label_values({selector}, "
                              f"{grouping.cluster})", include_all=True, multi=True)
    # grafanalib writes `default` as a single value; a multi-value variable's All is a list.
    variable._current = {"selected": True, "text": ["All"], "value": ["$__all"]}
    return variable


def target(expr: str, legend: str = "", *, ref: str = "A", instant: bool = False,
           table: bool = False, heatmap: bool = False, exemplar: bool = False) -> Target:
    """`heatmap`: Prometheus histogram buckets, which Grafana sorts by `le` and de-accumulates
    (as time series, each bucket would also count every smaller one)."""
    fmt = "table" if table else "heatmap" if heatmap else "time_series"
    built = Target(expr=expr, legendFormat=legend, refId=ref, instant=instant, format=fmt,
                   datasource=DATASOURCE)
    return with_exemplars(built) if exemplar else built


def table_columns(keys: dict[str, str], values: list[tuple[str, str]]
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A table of instant queries A, B, ... (one per value in `values`, as (title, unit)):
    merged into one row per value of the `keys` labels (label -> column title), columns
    renamed, each value column with its unit. The transformations and the overrides that set
    the units, for Table()."""
    refs = [chr(ord("A") + index) for index in range(len(values))]
    renames = keys | {f"Value #{ref}": name for ref, (name, _) in zip(refs, values,
                                                                      strict=True)}
    transformations = [
        {"id": "merge", "options": {}},
        {"id": "organize", "options": {"excludeByName": {"Time": True},
                                       "renameByName": renames}}]
    overrides = [{"matcher": {"id": "byName", "options": name},
                  "properties": [{"id": "unit", "value": unit}]} for name, unit in values]
    return transformations, overrides


def red_table(title: str, description: str, exprs: list[str], keys: dict[str, str], *,
              links: list[dict[str, Any]] | None = None, sort: bool = False) -> Table:
    """One row per value of the `keys` labels with the RED_COLUMNS from `exprs` (requests,
    error ratio, p50, p99: instant queries A to D); `links`: more field overrides (a link to a
    details dashboard); `sort`: busiest first."""
    transformations, units = table_columns(keys, RED_COLUMNS)
    return Table(
        title=title, description=description,
        targets=[target(expr, ref=chr(ord("A") + index), instant=True, table=True)
                 for index, expr in enumerate(exprs)],
        transformations=transformations, overrides=[*units, *(links or [])],
        sortBy=[TableSortByField(displayName="Requests/s", desc=True)] if sort else [])


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
        inputs=[DataSourceInput(name=DATASOURCE_INPUT, label="Prometheus",
                                pluginId="prometheus", pluginName="Prometheus",
                                description="The Prometheus that scrapes redline")],
        timezone="browser", refresh="30s", editable=True, graphTooltip=1,
    )
    return current_schema(built.to_json_data())


def to_json(document: dict[str, Any]) -> str:
    from grafanalib._gen import DashboardEncoder

    return json.dumps(document, sort_keys=True, indent=2, cls=DashboardEncoder) + "\n"
