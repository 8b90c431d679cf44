"""benchmarks/bench_rules.py's synthetic data is what it claims, in both stores: the import into
VictoriaMetrics and the backfill for Prometheus hold every series, at the request rates the
generator chose. (The benchmark itself is too slow for `make test`.)"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import promtool_path
from tests.scale.central import VictoriaMetrics

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_rules.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_rules", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_import_holds_every_series_at_its_rate(bench: ModuleType, tmp_path: Path) -> None:
    services = 2
    expected = dict(bench.series(services))
    assert len(expected) == services * bench.ROUTES * len(bench.STATUSES) * (1 + len(bench.LE))
    vm = VictoriaMetrics(tmp_path)
    try:
        end = time.time()
        bench.import_vm(vm, services, end, with_history=False)
        count = 'http_server_request_duration_seconds_count{service_name="svc-1"}'
        found = vm.query(f"rate({count}[5m])", time=end)
        assert len(found) == bench.ROUTES * len(bench.STATUSES)
        for sample in found:
            labels = sample["metric"]
            selector = count[:-1] + "".join(
                f',{k}="{labels[k]}"' for k in ("http_route", "http_request_method",
                                                "url_scheme", "http_response_status_code",
                                                "error_type") if k in labels) + "}"
            # error_type="" is not stored: the generator's empty label is written out
            selector = selector if "error_type" in labels else selector[:-1] + ',error_type=""}'
            assert float(sample["value"][1]) == pytest.approx(expected[selector])
        assert len(vm.query('count by (le) (http_server_request_duration_seconds_bucket)',
                            time=end)) == len(bench.LE)
    finally:
        vm.stop()


def test_the_backfill_makes_a_block_promtool_reads(bench: ModuleType, tmp_path: Path) -> None:
    bench.backfill(1, time.time(), tmp_path / "data", tmp_path)
    result = subprocess.run([promtool_path(), "tsdb", "list", str(tmp_path / "data")],
                            capture_output=True, text=True, timeout=60, check=True)
    # one block, or two where the samples cross a 2-hour boundary: every series in each, every
    # sample once (columns: ULID, min and max time, duration, samples, chunks, series, size)
    blocks = [line.split() for line in result.stdout.splitlines()[1:]]
    series = bench.ROUTES * len(bench.STATUSES) * (1 + len(bench.LE))
    assert {int(block[6]) for block in blocks} == {series}
    assert sum(int(block[4]) for block in blocks) == series * bench.SAMPLES


def test_the_history_holds_tiles_as_the_tile_groups_write_them(bench: ModuleType) -> None:
    """Each tile of the 3-day history is the mean of the 30 s records' samples of the step
    that ends at it, one every step, as the tile groups of the rules write them."""
    from redline.alerts.slo_rules import REQUESTS, TILES
    from redline.alerts.spec import parse_duration

    data = sys.modules["bench_rules_data"]
    by_series: dict[str, dict[int, float]] = {}
    for lines in data.history(1, 1_800_000_000.0, milliseconds=False):
        for line in lines:
            name, value, stamp = line.rsplit(" ", 2)
            by_series.setdefault(name, {})[int(stamp)] = float(value)
    labels = '{service_name="svc-0",slo="availability"}'
    base = by_series[REQUESTS + labels]
    assert len(base) == 3 * 86400 // data.HISTORY_STEP
    for tile in TILES:
        step = parse_duration(tile.step)
        written = by_series[tile.requests + labels]
        assert len(written) == 3 * 86400 // step - 1  # the first step has no whole tile
        assert {t % step for t in written} == {0}
        for t, value in written.items():
            samples = [base[u] for u in range(t - step + data.HISTORY_STEP, t + 1,
                                              data.HISTORY_STEP)]
            assert value == pytest.approx(sum(samples) / len(samples), rel=1e-5)
