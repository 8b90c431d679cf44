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


def promtool_test(rule_dir: Path, tests: list[dict[str, Any]]) -> None:
    document = {"rule_files": sorted(str(p) for p in rule_dir.glob("*.rules.yaml")),
                "evaluation_interval": "1m", "tests": tests}
    path = rule_dir / "test.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False, width=1_000_000))
    result = subprocess.run([promtool_path(), "test", "rules", str(path)],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def gauge(name: str, labels: str, values: str) -> dict[str, str]:
    return {"series": f"{name}{{{labels}}}", "values": values}


def availability_series(per_minute: float, error_share: float, *, until: int = MINUTES
                        ) -> list[dict[str, str]]:
    """`per_minute` requests a minute, `error_share` of them 500s, for `until` minutes."""
    good, bad = per_minute * (1 - error_share), per_minute * error_share
    after = MINUTES - until
    return [
        {"series": f'http_server_request_duration_seconds_count{{{CHECKOUT},'
                   f'http_response_status_code="200",error_type=""}}',
         "values": f"0+{good:g}x{until} {good * until:g}+{per_minute:g}x{after}"},
        {"series": f'http_server_request_duration_seconds_count{{{CHECKOUT},'
                   f'http_response_status_code="500",error_type="500"}}',
         "values": f"0+{bad:g}x{until} {bad * until:g}+0x{after}"},
    ]
