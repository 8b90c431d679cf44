"""Prometheus rules as typed dicts, and the one builder every alert goes through.

The dicts are what the renderers write (their key order is the file's), so a TypedDict rather
than a class: `yaml.dump` and grafanalib read them as they are.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict, TypeGuard


class RecordingRule(TypedDict):
    record: str
    expr: str
    labels: NotRequired[dict[str, str]]


# `for` is a Python keyword, hence the functional form.
AlertingRule = TypedDict("AlertingRule", {
    "alert": str,
    "expr": str,
    "for": str,
    "labels": dict[str, str],
    "annotations": dict[str, str],
})

Rule = RecordingRule | AlertingRule


class Group(TypedDict):
    name: str
    interval: NotRequired[str]  # the global evaluation interval when absent
    rules: list[Rule]


def group(name: str, rules: list[RecordingRule] | list[AlertingRule] | list[Rule],
          interval: str | None = None) -> Group:
    made: Group = {"name": name, "rules": list(rules)}
    if interval is not None:
        made = {"name": name, "interval": interval, "rules": list(rules)}
    return made


def alert(name: str, expr: str, *, for_: str, severity: str, summary: str, description: str,
          runbook_url: str, **labels: str) -> AlertingRule:
    """An alert with its `for` always written, `0m` included: each alert's pending time is a
    choice (de-flapping against delay) that a reader should see made, not infer from an
    absent key; Prometheus and Grafana read `0m` as "fire at the first evaluation".

    `runbook_url` is the base; `#<alert name in lower case>` is appended (docs/alerts.md has
    one section per alert)."""
    return {"alert": name, "expr": expr, "for": for_,
            "labels": {"severity": severity, **labels},
            "annotations": {"summary": summary, "description": description,
                            "runbook_url": f"{runbook_url}#{name.lower()}"}}


def is_alert(rule: Rule) -> TypeGuard[AlertingRule]:
    return "alert" in rule


def template(text: str) -> str:
    """A Go template action for an annotation: `template("$value")` is `{{ $value }}`."""
    return "{{ " + text + " }}"


# The values annotations print most.
VALUE_1F = 'printf "%.1f" $value'
VALUE_0F = 'printf "%.0f" $value'
VALUE_2F = 'printf "%.2f" $value'
VALUE_PERCENT = "$value | humanizePercentage"


def recording(record: str, expr: str, labels: dict[str, str] | None = None) -> RecordingRule:
    rule: RecordingRule = {"record": record, "expr": expr}
    if labels is not None:
        rule["labels"] = labels
    return rule
