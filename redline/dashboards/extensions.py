"""What grafanalib 0.7.1 lacks, in one place (so no raw JSON is scattered through the presets).

- Exemplars on a Prometheus target (`exemplar: true`), for trace ids on latency panels.
- A current dashboard `schemaVersion` (grafanalib writes 12; Grafana migrates old schemas on
  load, but a current one keeps exported and generated JSON comparable).
- A bar gauge in the current layout: grafanalib writes its unit, min, max and thresholds under
  `options.fieldOptions`, which Grafana 7 moved to `fieldConfig.defaults` and migrates only
  for old schema versions. At schema 39 Grafana ignores them: no unit, a scale of 0 to 100 and
  grafanalib's default thresholds (red from 80) in `fieldConfig`.
"""

from __future__ import annotations

from typing import Any

import attr
from grafanalib.core import BarGauge, Target

SCHEMA_VERSION = 39  # Grafana 10.4 / 11


class _ExemplarTarget(Target):  # type: ignore[misc]
    def to_json_data(self) -> dict[str, Any]:
        data: dict[str, Any] = super().to_json_data()
        data["exemplar"] = True
        return data


def with_exemplars(target: Target) -> Target:
    return _ExemplarTarget(**{field.name: getattr(target, field.name)
                              for field in attr.fields(Target)})


class CurrentBarGauge(BarGauge):  # type: ignore[misc]
    """BarGauge(format=..., thresholds=[{"color": ..., "value": ...}], min=..., max=...)
    written where Grafana reads them; `max=None` scales to the data."""

    def to_json_data(self) -> dict[str, Any]:
        data: dict[str, Any] = super().to_json_data()
        legacy = data["options"].pop("fieldOptions")
        data["options"]["reduceOptions"] = {"calcs": legacy["calcs"], "fields": "",
                                            "values": legacy["values"]}
        data["options"].pop("showThresholdLabels")
        data["options"].pop("showThresholdMarkers")
        defaults = data["fieldConfig"]["defaults"]
        # An unset min or max is left out, not null: Grafana then scales to the data.
        defaults.update({key: value for key, value in (
            ("unit", self.format), ("min", self.min), ("max", self.max),
            ("decimals", self.decimals)) if value is not None})
        defaults["thresholds"] = {"mode": "absolute", "steps": list(self.thresholds)}
        return data


def current_schema(document: dict[str, Any]) -> dict[str, Any]:
    document["schemaVersion"] = SCHEMA_VERSION
    return document
