"""One mapping language for statsd, scraped Prometheus metrics and JSON stats, sans IO.

In the style of statsd_exporter: each rule matches a source name (a statsd metric name, a
Prometheus family name, or a dotted JSON path) by glob or regex, and either drops it or maps it:

```yaml
mappings:
  - match: "shop.http.*.*.*"          # glob: * is one dot-separated part; captured as $1, $2...
    name: request                     # a RED request: timers -> durations, counters -> count
    labels: {method: "$1", route: "/$2", status: "$3"}
  - match: 'legacy_(\\w+)_latency'     # regex: groups $1 or ${name}
    match_type: regex
    name: request
    labels: {method: "${verb}", route: "${path}", status: "${code}"}   # source labels/tags
  - match: "db.pool.state"
    name: shop_db_pool_up             # any other name: a plain gauge or counter
    type: gauge
    value_map: {ok: 1, degraded: 0.5, down: 0}
  - match: "*"
    action: drop
```
First matching rule wins; names matched by no rule are ignored (and counted). `${name}` reads
a named group first, then the source's own labels (Prometheus labels, DogStatsD tags).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

from redline.config import ConfigError, Node, load_yaml

REQUEST = "request"
REQUEST_LABELS = ("method", "route", "status")
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_REFERENCE = re.compile(r"\$(?:(\d+)|\{([A-Za-z_][A-Za-z0-9_.]*)\})")


def glob_to_regex(glob: str) -> str:
    """statsd_exporter's glob: `*` matches within one dot-separated part, captured."""
    return "".join("([^.]*)" if part == "*" else re.escape(part)
                   for part in re.split(r"(\*)", glob))


# eq=False: a rule is itself, hashed by identity (plain.py counts series per rule); two rules
# with the same fields are still two rules of the file.
@dataclass(frozen=True, eq=False)
class Rule:
    matcher: re.Pattern[str]
    drop: bool
    name: str
    kind: str  # "request", "counter" or "gauge"
    labels: dict[str, str] = field(default_factory=dict)
    value_map: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Mapped:
    rule: Rule
    labels: dict[str, str]

    def value(self, raw: object) -> float | None:
        """A number from a source value: numbers as they are, strings through value_map."""
        if isinstance(raw, bool):
            return float(raw)
        if isinstance(raw, int | float):
            return float(raw)
        if isinstance(raw, str):
            if raw in self.rule.value_map:
                return self.rule.value_map[raw]
            try:
                return float(raw)
            except ValueError:
                return None
        return None


class Mapping:
    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules

    def match(self, name: str, source_labels: dict[str, str] | None = None) -> Mapped | None:
        """The first rule matching `name`, with its labels filled in; None when dropped or
        matched by no rule."""
        for rule in self.rules:
            found = rule.matcher.fullmatch(name)
            if found is None:
                continue
            if rule.drop:
                return None
            fill = functools.partial(_fill, found, source_labels or {})
            labels = {label: _REFERENCE.sub(fill, template)
                      for label, template in rule.labels.items()}
            return Mapped(rule, labels)
        return None


def _fill(found: re.Match[str], source_labels: dict[str, str], reference: re.Match[str]) -> str:
    """The text for `$N` or `${name}`: a group, else one of the source's labels, else ""."""
    index, key = reference.group(1), reference.group(2)
    if index is not None:
        position = int(index)
        return (found.group(position) or "") if position <= (found.re.groups or 0) else ""
    named = found.groupdict()
    if key in named:
        return named[key] or ""
    return source_labels.get(key, "")


def load_mapping(path: str | Path) -> Mapping:
    """Load and validate a mapping file; errors name the file and the key path."""
    document = Node(str(path), "", load_yaml(path)).mapping({"mappings"})
    items = document.child("mappings").items()
    if not items:
        raise document.child("mappings").error("a non-empty list of rules")
    return Mapping([_rule(item) for item in items])


def _rule(item: Node) -> Rule:
    item.mapping({"match", "match_type", "action", "name", "type", "labels", "value_map"})
    pattern = item.child("match").string()
    match_type = item.child("match_type").string("glob")
    if match_type not in ("glob", "regex"):
        raise item.child("match_type").error("glob or regex")
    try:
        matcher = re.compile(glob_to_regex(pattern) if match_type == "glob" else pattern)
    except re.error as exc:
        raise ConfigError(f"{item.source}: {item.path}.match: not a valid regular expression: "
                          f"{exc}") from exc
    action = item.child("action").string("map")
    if action not in ("map", "drop"):
        raise item.child("action").error("map or drop")
    if action == "drop":
        return Rule(matcher, True, "", "gauge")
    name = item.child("name").string()
    if name != REQUEST and not _METRIC_NAME.fullmatch(name):
        raise item.child("name").error(f"'{REQUEST}' or a Prometheus metric name")
    kind = REQUEST if name == REQUEST else item.child("type").string("gauge")
    if kind not in (REQUEST, "counter", "gauge"):
        raise item.child("type").error("counter or gauge")
    labels_node = item.child("labels").mapping(optional=True)
    labels: dict[str, str] = {}
    for label, template in labels_node.value.items():
        node = Node(labels_node.source, f"{labels_node.path}.{label}", template)
        if kind == REQUEST and label not in REQUEST_LABELS:
            raise ConfigError(f"{node.source}: {node.path}: a request has the labels "
                              f"{', '.join(REQUEST_LABELS)}, not {label!r}")
        if not isinstance(label, str) or not _LABEL_NAME.fullmatch(label):
            raise ConfigError(f"{node.source}: {node.path}: {label!r} is not a label name")
        if not isinstance(node.value, str | int):
            raise node.error("a string such as \"$1\" or \"${name}\"")
        labels[label] = str(node.value)
    values_node = item.child("value_map").mapping(optional=True)
    value_map: dict[str, float] = {}
    for key, number in values_node.value.items():
        node = Node(values_node.source, f"{values_node.path}.{key}", number)
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise node.error("a number")
        value_map[str(key)] = float(node.value)
    return Rule(matcher, False, name, kind, labels, value_map)
