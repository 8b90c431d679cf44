"""Every query the scaling objects carry, run against a real Prometheus scraping real
ambassadors and an adapter under load (the dashboards' end-to-end stack): one sample per
service, the value the replay feeds the HPA algorithm; and the replay as a user runs it."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from redline.alerts.spec import load_spec
from redline.autoscale.objects import Options, render, scaled
from redline.autoscale.replay import ReplayConfig, replay
from tests.dashboards.test_end_to_end import stack  # noqa: F401  (the shared fixture)

SPEC = """\
slos:
  - service: shop
    availability: 99
    scaling:
      workload: {name: shop}
      max_replicas: 50
      target: {requests_per_second_per_pod: 5, active_requests_per_pod: 0.5,
               latency_p95_seconds: 0.25}
  - service: web
    availability: 99
    scaling:
      workload: {name: web}
      max_replicas: 50
      target: {requests_per_second_per_pod: 5, latency_p99_seconds: 0.1}
"""


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("autoscale") / "slo.yaml"
    path.write_text(SPEC)
    return path


def pinned(at: float) -> Any:
    """Prometheus' instant query at a fixed time: the replay's and KEDA's reads compared at
    the same moment, not a second apart (rates move as their window slides)."""

    def run(prometheus: str, expr: str) -> list[dict[str, Any]]:
        url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode(
            {"query": expr, "time": f"{at:.3f}"})
        with urllib.request.urlopen(url, timeout=30) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    return run


def generated_queries(spec_path: Path) -> list[tuple[str, str, str]]:
    """(service, target key, query) of every KEDA trigger and prometheus-adapter rule."""
    found = []
    keda = render(load_spec(spec_path), Options(format="keda"))
    for doc in yaml.safe_load_all(keda["redline-autoscaling.keda.yaml"]):
        for trigger in doc["spec"]["triggers"]:
            found.append((doc["metadata"]["name"], trigger["name"].replace("-", "_"),
                          trigger["metadata"]["query"]))
    hpa = render(load_spec(spec_path), Options(format="hpa"))
    for rule in yaml.safe_load(hpa["prometheus-adapter-rules.yaml"])["externalRules"]:
        service = rule["seriesQuery"].split('service_name="')[1].split('"')[0]
        key = next(k for _, k, q in found if q == rule["metricsQuery"])  # the same text
        found.append((service, key, rule["metricsQuery"]))
    return found


def test_every_query_returns_one_sample_per_service_the_value_the_replay_uses(
        stack: dict[str, Any], spec_path: Path) -> None:  # noqa: F811
    prometheus = f"http://127.0.0.1:{stack['prometheus'].port}"
    # On the replay's 1 s grid, and in the past: a scrape stamped just before `now` may still
    # be on its way into the TSDB, and arrive between the replay's read and KEDA's.
    at = float(math.floor(time.time())) - 5
    run = pinned(at)
    config = ReplayConfig(prometheus=prometheus, since="30s", step=1)
    replayed = {service: replay(service, scaling, config, run)
                for service, scaling in scaled(load_spec(spec_path))}
    queries = generated_queries(spec_path)
    assert len(queries) == 2 * 5
    for service, key, expr in queries:
        result = run(prometheus, expr)
        assert [sample["metric"] for sample in result] == [{"service_name": service}], expr
        value = float(result[0]["value"][1])
        assert replayed[service].times[-1] == at
        # The same expression at the same time, as a range query and as KEDA's instant one:
        # equal but for the last bits of a float sum.
        same = pytest.approx(value, rel=1e-12)
        assert replayed[service].values[key][-1] == same, (service, key)
        assert replayed[service].decisions[-1].values[
            [t.key for t in replayed[service].scaling.targets].index(key)] == same
        if key == "requests_per_second_per_pod":
            assert value > 0, service
    # What the HPA decided from them: the rate's proposal from the total it read
    shop = replayed["shop"].decisions[-1]
    total = shop.values[0]
    assert total is not None
    assert shop.proposals[0] in (shop.current, math.ceil(total / 5))
    # A service Prometheus never saw has no sample: KEDA errors (ignoreNullValues "false")
    # and falls back instead of reading 0 and scaling to the minimum
    nobody = queries[0][2].replace('service_name="shop"', 'service_name="nobody"')
    assert run(prometheus, nobody) == []


def test_the_replay_as_a_user_runs_it(stack: dict[str, Any], spec_path: Path,  # noqa: F811
                                      tmp_path: Path) -> None:
    prometheus = f"http://127.0.0.1:{stack['prometheus'].port}"
    result = subprocess.run(
        [sys.executable, "-m", "redline.cli", "autoscale", "--slo", str(spec_path),
         "--simulate", "--prometheus", prometheus, "--since", "1m", "--step", "5",
         "--service", "shop"], capture_output=True, text=True, timeout=60, check=False,
        cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == ("shop: Deployment shop, 1..50 replicas, requests_per_second_per_pod 5, "
                        "active_requests_per_pod 0.5, latency_p95_seconds 0.25")
    assert lines[2].split() == ["TIME", "(UTC)", "RPS/POD", "INFLIGHT/POD", "P95", "PODS",
                                "WANT", "REPLICAS", "NOTE"]
    assert any(line.startswith("50 |") for line in lines)  # the chart's top: max_replicas
    missing = subprocess.run(
        [sys.executable, "-m", "redline.cli", "autoscale", "--slo", str(spec_path),
         "--simulate", "--prometheus", "http://127.0.0.1:9"], capture_output=True, text=True,
        timeout=60, check=False, cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.startswith("redline: --prometheus: cannot reach Prometheus")
