"""What grafanalib 0.7.1 lacks, in one place (so no raw JSON is scattered through the presets).

- Exemplars on a Prometheus target (`exemplar: true`), for trace ids on latency panels.
- A current dashboard `schemaVersion` (grafanalib writes 12; Grafana migrates old schemas on
  load, but a current one keeps exported and generated JSON comparable).
"""

from __future__ import annotations

from typing import Any

import attr
from grafanalib.core import Target

SCHEMA_VERSION = 39  # Grafana 10.4 / 11


class _ExemplarTarget(Target):  # type: ignore[misc]
    def to_json_data(self) -> dict[str, Any]:
        data: dict[str, Any] = super().to_json_data()
        data["exemplar"] = True
        return data


def with_exemplars(target: Target) -> Target:
    return _ExemplarTarget(**{field.name: getattr(target, field.name)
                              for field in attr.fields(Target)})


def current_schema(document: dict[str, Any]) -> dict[str, Any]:
    document["schemaVersion"] = SCHEMA_VERSION
    return document
