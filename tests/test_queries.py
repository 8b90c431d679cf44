"""redline/queries.py: selectors quote their values; one filesystem filter everywhere."""

from __future__ import annotations

import re
from pathlib import Path

from redline import queries
from redline.stat.command import use_queries

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def test_selectors_quote_and_skip_empty_matchers() -> None:
    assert queries.series("up") == "up"
    assert queries.series("up", "", [queries.eq("job", 'a"b\\c')], queries.ne("x", "")) == \
        'up{job="a\\"b\\\\c",x!=""}'
    # RE2 as written; the PromQL string doubles its backslashes.
    assert queries.regex("http_route", queries.route_regex(["/a.b"])) == \
        'http_route=~"/a\\\\.b"'


def test_grouping_labels_are_kept_by_every_red_expression() -> None:
    group = ("cluster", "service_name")
    for expr in (queries.requests(queries.HTTP_SERVER, (), group, "5m"),
                 queries.error_ratio(queries.HTTP_SERVER, (), group, "5m"),
                 queries.latency_quantile(0.9, queries.HTTP_SERVER, (), group, "5m")):
        assert all(clause in ("by (cluster, service_name)", "by (le, cluster, service_name)")
                   for clause in re.findall(r"by \([^)]*\)", expr)), expr


def test_one_filesystem_filter_in_rules_dashboards_and_stat() -> None:
    """Every node_filesystem_* selector selects real filesystems the same way (stat's copy
    had lost the mountpoint matcher). The committed files are what the generators write
    (tests/alerts, tests/dashboards)."""
    texts = [path.read_text() for path in (*(DEPLOY / "prometheus").glob("*.rules.yaml"),
                                           *(DEPLOY / "grafana" / "dashboards").glob("*.json"))]
    texts += list(use_queries("1m").values())
    selectors = [m.group(0).replace('\\"', '"') for text in texts
                 for m in re.finditer(r"node_filesystem_\w+(\{[^}]*\})?", text)]
    assert len(selectors) > 10
    for selector in selectors:
        assert all(f in selector for f in ('fstype!=""', 'mountpoint!=""')), selector


def test_union_is_a_balanced_tree_of_every_term() -> None:
    assert queries.union(["a"]) == "a"
    terms = [f"t{n}" for n in range(9)]
    joined = queries.union(terms)
    assert re.findall(r"t\d", joined) == terms  # each once, in order
    depth = deepest = 0
    for char in joined:
        depth += {"(": 1, ")": -1}.get(char, 0)
        deepest = max(deepest, depth)
    assert deepest == 4  # ceil(log2(9)): a chain is evaluated 8 deep


def test_with_labels_sets_each_constant_label_in_order() -> None:
    assert queries.with_labels("up == 0", {}) == "up == 0"
    assert queries.with_labels("up == 0", {"a": "1", "b": 'x"$y'}) == (
        'label_replace(label_replace(\nup == 0,\n"a", "1", "", ""),\n'
        '"b", "x\\"$$y", "", "")')
