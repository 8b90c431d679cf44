"""Shared by the rule tests: the generated rule files, promtool test runs, input series."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from redline.alerts.generate import RuleOptions, build_groups
from redline.alerts.render import prometheus_file
from redline.alerts.spec import load_spec
from tests.conftest import promtool_path

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "deploy" / "prometheus" / "slo.yaml"
MINUTES = 600  # input series length
CHECKOUT = 'service_name="checkout",http_route="/api/items",http_request_method="GET",' \
           'url_scheme="http"'
SEARCH = 'service_name="search",http_route="/search",http_request_method="GET",' \
         'url_scheme="http",http_response_status_code="200",error_type=""'



@pytest.fixture(scope="session")
def rule_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every rule file for deploy/prometheus/slo.yaml with the default options."""
    directory = tmp_path_factory.mktemp("rules")
    for stem, groups in build_groups(load_spec(SPEC), RuleOptions()).items():
        (directory / f"{stem}.rules.yaml").write_text(prometheus_file(groups))
    return directory


def eval_order(files: list[Path]) -> list[str]:
    """Every group of `files`, the RED recording group first: the SLO rules read its records.
    promtool evaluates groups in no set order unless told; Prometheus runs them side by side,
    so there the SLO group reads records up to one interval old (docs/alerts.md)."""
    names = [g["name"] for path in files for g in yaml.safe_load(path.read_text())["groups"]]
    return sorted(names, key=lambda name: name != "redline-red-recording")


def promtool_test(rule_dir: Path, tests: list[dict[str, Any]]) -> None:
    files = sorted(rule_dir.glob("*.rules.yaml"))
    document = {"rule_files": [str(p) for p in files], "evaluation_interval": "1m",
                "group_eval_order": eval_order(files), "tests": tests}
    path = rule_dir / "test.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False, width=1_000_000))
    result = subprocess.run([promtool_path(), "test", "rules", str(path)],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def without_groups(rule_dir: Path, names: set[str], out: Path) -> Path:
    """`rule_dir`'s rule files without the groups `names`, in `out`: promtool evaluates every
    group at the test file's evaluation_interval, whatever the group's own `interval`, so a
    test that needs the tiles as a Prometheus writes them (once per 5 minutes, once an hour)
    gives them as input series and leaves their groups out (they would write the same
    series every minute)."""
    out.mkdir(parents=True, exist_ok=True)
    for path in rule_dir.glob("*.rules.yaml"):
        document = yaml.safe_load(path.read_text())
        document["groups"] = [g for g in document["groups"] if g["name"] not in names]
        (out / path.name).write_text(yaml.safe_dump(document, sort_keys=False))
    return out


def gauge(name: str, labels: str, values: str) -> dict[str, str]:
    return {"series": f"{name}{{{labels}}}", "values": values}


def counted(histogram: str, labels: str, values: str) -> list[dict[str, str]]:
    """A histogram's `_count` and its `+Inf` bucket, which every histogram has with the same
    value: availability reads the count (through the RED records), latency the bucket."""
    return [gauge(f"{histogram}_count", labels, values),
            gauge(f"{histogram}_bucket", f'{labels},le="+Inf"', values)]


def availability_series(per_minute: float, error_share: float, *, until: int = MINUTES
                        ) -> list[dict[str, str]]:
    """`per_minute` requests a minute, `error_share` of them 500s, for `until` minutes."""
    good, bad = per_minute * (1 - error_share), per_minute * error_share
    after = MINUTES - until
    return [
        *counted("http_server_request_duration_seconds",
                 f'{CHECKOUT},http_response_status_code="200",error_type=""',
                 f"0+{good:g}x{until} {good * until:g}+{per_minute:g}x{after}"),
        *counted("http_server_request_duration_seconds",
                 f'{CHECKOUT},http_response_status_code="500",error_type="500"',
                 f"0+{bad:g}x{until} {bad * until:g}+0x{after}"),
    ]
