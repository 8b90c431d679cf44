"""bench_rules.py's results as Markdown tables: where each size's time goes, rule by rule.

    .venv/bin/python benchmarks/bench_rules_table.py small.json big.json [--label after]

Per rule, the samples it read per service (its expression as an instant query with Prometheus'
query statistics: the work, whatever the machine's load) and its evaluation seconds at each
size; per group, its evaluation against the sum of its rules run alone as queries (what the
group costs beyond reading: writing its records, the alerts' state and templates, other
groups beside it); and the TSDB each size ran on. Work per service that stays constant while
seconds grow faster than the services means that the time grows, not the work.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

SKIPPED = ("redline-use-",)  # no node or container series in the synthetic data


def rule_table(results: list[dict[str, Any]], label: str) -> list[str]:
    """One row per rule; consecutive rules of one name (slo:service:info, one per SLO) are one
    row, their samples and seconds summed."""
    sizes = [r["services"] for r in results]
    rows: dict[tuple[str, int, str], dict[int, tuple[int, float | None]]] = {}
    repeated: dict[tuple[str, int, str], int] = {}
    for r in results:
        times = r.get("prometheus_rule_times", {}).get(label, {})
        for group, rules in r.get("prometheus_rule_work", {}).get(label, {}).items():
            if group.startswith(SKIPPED):
                continue
            evaluated = times.get(group, [])
            row, first, count = 0, "", 0
            for index, (name, read, _) in enumerate(rules):
                seconds = evaluated[index][1] if index < len(evaluated) else None
                if name != first:
                    row, first, count = row + 1, name, 0
                count += 1
                key = (group, row, name)
                repeated[key] = max(repeated.get(key, 0), count)
                known = rows.setdefault(key, {}).get(r["services"])
                if known is not None and count > 1:
                    seconds = None if known[1] is None or seconds is None else known[1] + seconds
                rows[key][r["services"]] = (read + (known[0] if known and count > 1 else 0),
                                            seconds)
    lines = ["| group | rule | " + " | ".join(f"samples / service, {n}" for n in sizes)
             + " | " + " | ".join(f"s, {n}" for n in sizes) + " |",
             "|---|---|" + "---:|" * (2 * len(sizes))]
    for (group, row, name), by_size in rows.items():
        shown = name if repeated[group, row, name] == 1 else \
            f"{name} (up to {repeated[group, row, name]} rules)"
        work = [f"{by_size[n][0] / n:.0f}" if n in by_size else "" for n in sizes]
        seconds = [f"{by_size[n][1]:.4f}" if n in by_size and by_size[n][1] is not None
                   else "" for n in sizes]
        lines.append(f"| {group} | {shown} | " + " | ".join(work + seconds) + " |")
    return lines


def group_table(results: list[dict[str, Any]], label: str) -> list[str]:
    lines = ["| services | group | evaluation s | its rules as queries, s | firing alerts |",
             "|---:|---|---:|---:|---:|"]
    for r in results:
        groups = r.get("prometheus_rules", {}).get(label, {})
        for group, rules in r.get("prometheus_rule_work", {}).get(label, {}).items():
            if group.startswith(SKIPPED):
                continue
            alone = sum(seconds for _, _, seconds in rules)
            firing = r.get("prometheus_firing_alerts", {}).get(label, "") \
                if group == "redline-slo-alerts" else ""
            evaluated = f"{groups[group]:.4f}" if group in groups else "not evaluated"
            lines.append(f"| {r['services']} | {group} | {evaluated} | {alone:.4f} | {firing} |")
    return lines


def tsdb_table(results: list[dict[str, Any]], label: str) -> list[str]:
    names = sorted({k for r in results for k in r.get("prometheus_tsdb", {}).get(label, {})})
    lines = ["| services | " + " | ".join(names) + " |", "|---:|" + "---:|" * len(names)]
    for r in results:
        state = r.get("prometheus_tsdb", {}).get(label, {})
        lines.append(f"| {r['services']} | " + " | ".join(f"{state.get(k, 0):.4g}"
                                                          for k in names) + " |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, nargs="+", help="bench_rules.py --json files")
    parser.add_argument("--label", default="after", help="the rule set (before | after)")
    args = parser.parse_args()
    results = sorted((r for path in args.results for r in json.loads(path.read_text())),
                     key=lambda r: int(r["services"]))
    for table in (rule_table, group_table, tsdb_table):
        print("\n".join(table(results, args.label)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
