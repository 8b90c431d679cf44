"""What a firing alert's labels cost per evaluation in Prometheus' rule manager (#21).

Prometheus 2.42 expands every label and annotation of every firing alert as a Go template at
every evaluation, constant text included. `promtool test rules` evaluates with the same rules
manager: N series fire one alert for STEPS evaluations, in three variants of one SLO alert,

- `none`: `severity` only, no annotations (the baseline);
- `labels`: its constant labels in `labels:` and its three annotations (redline before #21);
- `in-expr`: the same labels set by the expression (label_replace) and only `severity` in
  `labels:`, the same annotations (redline now, render.labels_in_expr),

and each variant's extra seconds over the baseline, divided by the alerts evaluated, is what
its templates cost per firing alert per evaluation (median of 3 runs).

    .venv/bin/python benchmarks/bench_rules_templates.py [--alerts 2000] [--steps 30]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from redline.alerts.render import labels_in_expr  # noqa: E402
from redline.alerts.rules import AlertingRule  # noqa: E402

# An SLO alert's labels and annotations as redline writes them (deploy/prometheus).
LABELS = {"severity": "page", "slo": "availability", "objective": "99.9", "long_window": "1h",
          "short_window": "5m"}
ANNOTATIONS = {
    "summary": "{{ $labels.service_name }} is spending its 99.9% availability error budget "
               "too fast",
    "description": 'Requests fail at {{ printf "%.1f" $value }}x the rate the 99.9% objective '
                   "allows, over the last 1h and 5m.",
    "runbook_url": "docs/alerts.md#redlineavailabilityburnrate"}


def variants() -> dict[str, AlertingRule]:
    labelled: AlertingRule = {"alert": "Burn", "expr": "burn > 1", "for": "0m",
                              "labels": dict(LABELS), "annotations": dict(ANNOTATIONS)}
    return {"none": {**labelled, "labels": {"severity": "page"}, "annotations": {}},
            "labels": labelled, "in-expr": labels_in_expr(labelled)}


def test_file(rule_file: str, alerts: int, steps: int) -> dict[str, Any]:
    series = [{"series": f'burn{{service_name="svc-{n}"}}', "values": f"2x{steps}"}
              for n in range(alerts)]
    # An alert that never fires is checked: promtool evaluates every step up to eval_time.
    return {"rule_files": [rule_file], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": [
                {"eval_time": f"{steps}m", "alertname": "Unused", "exp_alerts": []}]}]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=2000, help="alerts firing at once")
    parser.add_argument("--steps", type=int, default=30, help="evaluations, one a minute")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    promtool = shutil.which("promtool")
    if promtool is None:
        print("promtool is not installed (Debian: prometheus)", file=sys.stderr)
        return 1
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-templates-") as tmp:
        work = Path(tmp)
        for name, rule in variants().items():
            (work / f"{name}.rules.yaml").write_text(
                yaml.safe_dump({"groups": [{"name": "g", "rules": [rule]}]}))
            (work / f"{name}.test.yaml").write_text(yaml.safe_dump(
                test_file(f"{name}.rules.yaml", args.alerts, args.steps)))
        for _ in range(args.rounds):
            for name in variants():
                started = time.perf_counter()
                subprocess.run([promtool, "test", "rules", f"{name}.test.yaml"], cwd=work,
                               check=True, capture_output=True)
                times.setdefault(name, []).append(time.perf_counter() - started)
    median = {name: statistics.median(seconds) for name, seconds in times.items()}
    evaluated = args.alerts * (args.steps + 1)
    for name, seconds in median.items():
        extra = (seconds - median["none"]) / evaluated * 1000
        print(f"{name}: {seconds:.2f} s; templates beyond `none`: {extra:.3f} ms per firing "
              f"alert per evaluation")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
