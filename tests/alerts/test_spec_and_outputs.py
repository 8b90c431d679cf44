"""The SLO spec's validation, the committed rule files, the Operator object."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from redline.alerts.slo_rules import BURN_WINDOWS
from redline.alerts.spec import load_spec
from redline.config import ConfigError
from redline.queries import route_regex
from tests.conftest import promtool_path

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "prometheus"


def redline(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "redline.cli", *args], capture_output=True,
                          text=True, timeout=60, check=False, cwd=REPO)


def spec_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "slo.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("slos:\n  - service: a\n    availability: 100\n",
         r"slos\[0\]\.availability: expected a percentage above 1 and below 100, such as "
         r"99\.9, got 100"),
        # OpenSLO's ratios would be 0.999 % and 0.99 %: alerts that never fire. Refused.
        ("slos:\n  - service: a\n    availability: 0.999\n",
         r"^slo\.yaml: slos\[0\]\.availability: expected a percentage such as 99\.9, got "
         r"0\.999, which reads as 0\.999 %; if you meant the ratio 0\.999, write 99\.9$"),
        ("slos:\n  - service: a\n    latency: {threshold: 0.25, target: 0.95}\n",
         r"slos\[0\]\.latency\.target: expected a percentage such as 99\.9, got 0\.95, "
         r"which reads as 0\.95 %; if you meant the ratio 0\.95, write 95$"),
        ("slos:\n  - service: a\n    availability: 1\n",
         r"slos\[0\]\.availability: expected a percentage above 1 and below 100"),
        ("slos:\n  - service: a\n    availability: '99.9'\n",
         r"slos\[0\]\.availability: expected a percentage such as 99\.9, got '99\.9'"),
        ("slos:\n  - service: a\n    availability: 0\n", r"slos\[0\]\.availability"),
        ("slos:\n  - service: a\n    availability: 99.9\n  - service: b\n    latency:\n"
         "      threshold: 0.3\n      target: 99\n",
         r"slos\[1\]\.latency\.threshold: 0\.3 is not a bucket boundary; boundaries are "
         r"0\.005, .*0\.25, 0\.5"),
        ("slos:\n  - service: a\n    latency: {threshold: 0.25, target: 100.5}\n",
         r"slos\[0\]\.latency\.target: expected a percentage"),
        ("slos:\n  - service: a\n", r"slos\[0\]: expected an availability or a latency"),
        ("slos:\n  - service: a\n    availability: 99\n  - service: a\n    availability: 98\n",
         r"slos\[1\]\.service: 'a' has an SLO already"),
        ("period: 1d\nslos:\n  - service: a\n    availability: 99\n",
         r"period: expected at least 3d"),
        ("period: monthly\nslos:\n  - service: a\n    availability: 99\n",
         r"period: expected a duration such as 30d"),
        ("slos:\n  - service: a\n    availability: 99\n    routes: [api]\n",
         r"slos\[0\]\.routes\[0\]: expected a route pattern starting with '/'"),
        ('slos:\n  - service: a\n    availability: 99\n    routes: ["/a /b"]\n',
         r"slos\[0\]\.routes\[0\]: expected a route pattern starting with '/', without "
         r"spaces"),
        ('slos:\n  - service: a\n    protocol: grpc\n    availability: 99\n'
         '    methods: ["shop.Cart/A dd"]\n',
         r"slos\[0\]\.methods\[0\]: expected a method pattern"),
        ("slos:\n  - service: a\n    availabilty: 99\n", r"slos\[0\]: unknown key 'availabilty'"),
        ("slos: []\n", r"slos: expected a non-empty list"),
    ],
)
def test_bad_specs_name_the_path(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_spec(spec_file(tmp_path, text))
    assert re.search(message, str(raised.value).removeprefix(f"{tmp_path}/")), raised.value


def test_a_ratio_objective_stops_the_command(tmp_path: Path) -> None:
    path = spec_file(tmp_path, "slos:\n  - service: a\n    availability: 0.999\n")
    result = redline("alerts", "--slo", str(path))
    assert result.returncode == 2 and not result.stdout
    assert "slos[0].availability: expected a percentage such as 99.9" in result.stderr
    assert "write 99.9" in result.stderr


def test_custom_buckets_admit_other_thresholds(tmp_path: Path) -> None:
    path = spec_file(tmp_path, "slos:\n  - service: a\n    latency: {threshold: 0.3, "
                               "target: 99}\n")
    assert load_spec(path, buckets=(0.1, 0.3, 1.0)).slos[0].latency.threshold == 0.3  # type: ignore[union-attr]
    result = redline("alerts", "--slo", str(path))
    assert result.returncode == 2 and "0.3 is not a bucket boundary" in result.stderr
    assert redline("alerts", "--slo", str(path), "--buckets", "0.1,0.3,1").returncode == 0


def test_burn_factors_scale_with_the_period() -> None:
    thirty, twenty_eight = 30 * 86400, 28 * 86400
    assert [w.factor(thirty) for w in BURN_WINDOWS] == [14.4, 6.0, 3.0, 1.0]
    assert [w.factor(twenty_eight) for w in BURN_WINDOWS] == [13.44, 5.6, 2.8, 0.9333]


def test_route_patterns_become_re2_alternatives() -> None:
    assert route_regex(("/api/*", "/users/{id}")) == "/api/.*|/users/\\{id\\}"


def test_rule_files_pass_promtool_lint(rule_dir: Path) -> None:
    result = subprocess.run(
        [promtool_path(), "check", "rules", "--lint=all", *map(str, rule_dir.glob("*.rules.yaml"))],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_states_its_pending_time() -> None:
    """`for` is written on every alert, 0m included, never left to Prometheus' default."""
    alerts = [rule for path in DEPLOY.glob("*.rules.yaml")
              for group in yaml.safe_load(path.read_text())["groups"]
              for rule in group["rules"] if "alert" in rule]
    assert alerts and [r["alert"] for r in alerts if "for" not in r] == []


def test_committed_rules_are_what_the_generator_writes(tmp_path: Path) -> None:
    result = redline("alerts", "--slo", str(DEPLOY / "slo.yaml"), "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    for generated in tmp_path.glob("*.rules.yaml"):
        committed = DEPLOY / generated.name
        assert committed.exists(), f"{committed} is missing; run `redline alerts --slo " \
                                   f"deploy/prometheus/slo.yaml --out deploy/prometheus`"
        assert committed.read_text() == generated.read_text(), \
            f"{committed} is stale; regenerate it with `redline alerts`"


def test_operator_object(tmp_path: Path) -> None:
    result = redline("alerts", "--slo", str(DEPLOY / "slo.yaml"), "--format", "operator",
                     "--namespace", "monitoring", "--rule-label", "release=kps")
    assert result.returncode == 0, result.stderr
    document = yaml.safe_load(result.stdout)
    assert document["apiVersion"] == "monitoring.coreos.com/v1"
    assert document["kind"] == "PrometheusRule"
    assert document["metadata"] == {"name": "redline", "labels": {"release": "kps"},
                                    "namespace": "monitoring"}
    names = [group["name"] for group in document["spec"]["groups"]]
    assert names == ["redline-slo-recording", "redline-slo-tiles-5m", "redline-slo-tiles-1h",
                     "redline-slo-budget", "redline-slo-alerts",
                     "redline-red-recording",
                     "redline-use-recording", "redline-use-alerts",
                     "redline-use-containers-recording", "redline-use-containers-alerts",
                     "redline-health"]
    # The same rules as the rule files
    files = [yaml.safe_load((DEPLOY / f"redline-{stem}.rules.yaml").read_text())["groups"]
             for stem in ("slo", "red", "use", "health")]
    assert document["spec"]["groups"] == [group for groups in files for group in groups]


def test_budget_interval_sets_the_budget_groups_own() -> None:
    """--budget-interval evaluates the period's records less often, and only them (the tile
    groups have their tiles' step)."""
    result = redline("alerts", "--slo", str(DEPLOY / "slo.yaml"), "--budget-interval", "5m")
    assert result.returncode == 0, result.stderr
    groups = [group for document in yaml.safe_load_all(result.stdout)
              for group in document["groups"]]
    assert {g["name"]: g.get("interval") for g in groups if "interval" in g} == {
        "redline-slo-tiles-5m": "5m", "redline-slo-tiles-1h": "1h", "redline-slo-budget": "5m"}
    bad = redline("alerts", "--slo", str(DEPLOY / "slo.yaml"), "--budget-interval", "5x")
    assert bad.returncode == 2
    assert "argument --budget-interval: expected a duration such as 30d, 4w or 12h, got " \
           "'5x'" in bad.stderr


def test_tile_interval_sets_the_tile_groups_own() -> None:
    """--tile-interval (demos, tests) evaluates both tile groups more often; past the
    shortest tile's step it would leave gaps between tiles, so it is refused."""
    result = redline("alerts", "--slo", str(DEPLOY / "slo.yaml"), "--tile-interval", "30s")
    assert result.returncode == 0, result.stderr
    groups = [group for document in yaml.safe_load_all(result.stdout)
              for group in document["groups"]]
    assert {g["name"]: g.get("interval") for g in groups if "interval" in g} == {
        "redline-slo-tiles-5m": "30s", "redline-slo-tiles-1h": "30s"}
    bad = redline("alerts", "--slo", str(DEPLOY / "slo.yaml"), "--tile-interval", "10m")
    assert bad.returncode == 2
    assert "argument --tile-interval: expected at most 5m (the shortest tile's step), got " \
           "'10m'" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_without_a_spec_only_use_and_health(tmp_path: Path) -> None:
    result = redline("alerts", "--out", str(tmp_path))
    assert result.returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["redline-health.rules.yaml",
                                                          "redline-red.rules.yaml",
                                                          "redline-use.rules.yaml"]


def test_every_runbook_url_has_its_runbook() -> None:
    import re

    doc = (REPO / "docs" / "alerts.md").read_text()
    anchors = set(re.findall(r"^### (\w+)$", doc, re.MULTILINE)) | \
        set(re.findall(r'<a id="(\w+)"></a>', doc))
    used = {anchor for path in DEPLOY.glob("*.rules.yaml")
            for anchor in re.findall(r"runbook_url: docs/alerts.md#(\w+)", path.read_text())}
    assert used and used <= anchors, sorted(used - anchors)


def test_no_two_alerts_of_a_file_have_the_same_name_and_labels() -> None:
    """`promtool check rules --lint=all` (the README's tour runs it) refuses them as duplicates:
    the constant labels moved into the expressions must leave one that tells them apart."""
    for path in DEPLOY.glob("*.rules.yaml"):
        keys = [(rule["alert"], tuple(sorted(rule["labels"].items())))
                for group in yaml.safe_load(path.read_text())["groups"]
                for rule in group["rules"] if "alert" in rule]
        assert len(keys) == len(set(keys)), f"{path.name}: duplicate alerts {sorted(keys)}"
