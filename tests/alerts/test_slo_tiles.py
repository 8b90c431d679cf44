"""The SLO windows of 6h and more read tiles (redline/alerts/slo_rules.py): the 5m records'
mean written once per 5 minutes (6h) and once an hour (1d, 3d, the period).

promtool evaluates every group at the test file's evaluation_interval (1m here), not at its
own `interval`. With the tile groups loaded, as in test_slo_rules.py, tiles are written every
minute, which changes no window (a ratio of sums, a mean). To see the tiles as a Prometheus
writes them, these tests leave the tile groups out and give the tiles as input series at their
own step; the rest of the rules run as they are."""

from __future__ import annotations

from pathlib import Path

from redline.alerts.slo_rules import TILES
from tests.alerts.conftest import (
    CHECKOUT,
    availability_series,
    gauge,
    promtool_test,
    without_groups,
)
from tests.alerts.test_slo_rules import WINDOWS, burn_alerts

AVAILABILITY = 'service_name="checkout",slo="availability"'
TILE_5M, TILE_1H = TILES


def tiles(record: str, step: int, value: float, minutes: int, *, after: int = -1,
          before: float = 0.0) -> dict[str, str]:
    """A tile of checkout's availability every `step` minutes from `step` to `minutes` (as a
    tile group of that interval writes them; none in between): `value`, or `before` for the
    tiles written at or before minute `after`."""
    values = []
    for minute in range(minutes + 1):
        if minute == 0 or minute % step:
            values.append("_")
        else:
            values.append(f"{value if minute > after else before:g}")
    return gauge(record, AVAILABILITY, " ".join(values))


def raw(per_minute: float, error_share: float, minutes: int, errors_from: int = 0
        ) -> list[dict[str, str]]:
    """checkout's request counters: `per_minute` requests, `error_share` of them failing from
    minute `errors_from` on."""
    bad = per_minute * error_share
    good = per_minute - bad
    if errors_from:  # two runs of samples; the second starts one minute on
        rest = minutes - errors_from - 1
        ok = (f"0+{per_minute:g}x{errors_from} "
              f"{per_minute * errors_from + good:g}+{good:g}x{rest}")
        failed = f"0+0x{errors_from} {bad:g}+{bad:g}x{rest}"
    else:
        ok, failed = f"0+{good:g}x{minutes}", f"0+{bad:g}x{minutes}"
    name = "http_server_request_duration_seconds_count"
    return [gauge(name, f'{CHECKOUT},http_response_status_code="200",error_type=""', ok),
            gauge(name, f'{CHECKOUT},http_response_status_code="500",error_type="500"',
                  failed)]


def test_a_tile_is_the_mean_of_the_5m_records_over_its_step(rule_dir: Path) -> None:
    """With the tile groups loaded: at a steady 1 request per second, 1 in 60 failing, every
    tile holds those rates; once the errors stop (at 70m), the 5m tiles are clean 5 minutes
    later while the hourly ones still hold the errors of the hour (a copy of the newest 5m
    record would not)."""
    def value(expr: str, at: str, exp: float, labels: str) -> dict[str, object]:
        return {"expr": expr, "eval_time": at, "exp_samples": [{"labels": labels,
                                                                "value": exp}]}

    promtool_test(rule_dir, [
        {"interval": "1m", "input_series": availability_series(60, 1 / 60),
         "promql_expr_test": [
             value(f"{name}{{{AVAILABILITY}}}", "70m", exp, f"{name}{{{AVAILABILITY}}}")
             for tile in TILES for name, exp in ((tile.requests, 1.0),
                                                 (tile.errors, 1 / 60))]},
        {"interval": "1m", "input_series": availability_series(60, 1 / 60, until=70),
         "promql_expr_test": [
             value(f"{TILE_5M.errors}{{{AVAILABILITY}}}", "80m", 0.0,
                   f"{TILE_5M.errors}{{{AVAILABILITY}}}"),
             value(f"{TILE_1H.errors}{{{AVAILABILITY}}} > bool 0", "80m", 1.0,
                   f"{{{AVAILABILITY}}}")]},
    ])


def test_a_burn_rate_alert_fires_from_the_tiles(rule_dir: Path, tmp_path: Path) -> None:
    """The hourly tiles hold 1% failed requests (a burn of 10 against a 0.1% budget), the raw
    series 0.5% (5): the 1d/2h ticket fires at the tiles' burn, read from them alone. The 6h
    window has no 5m tiles here, so neither pair that reads it (6h/30m, 3d/6h) fires; the
    1h/5m page needs 14.4."""
    minutes = 180
    rules = without_groups(rule_dir, {t.group for t in TILES}, tmp_path / "rules")
    promtool_test(rules, [{
        "interval": "1m",
        "input_series": [*raw(60, 0.005, minutes),
                         tiles(TILE_1H.requests, 60, 1.0, minutes),
                         tiles(TILE_1H.errors, 60, 0.01, minutes)],
        "alert_rule_test": [
            {"eval_time": f"{minutes}m", "alertname": "RedlineAvailabilityBurnRate",
             "exp_alerts": burn_alerts("checkout", "availability", 99.9, 10,
                                       "Requests fail", [WINDOWS[2]])},
        ],
    }])


def test_a_long_window_ends_at_its_newest_tile(rule_dir: Path, tmp_path: Path) -> None:
    """Failed requests from minute 130 on: the 30m and 2h windows (the 5m records) see them
    at once; the 6h window only from the 5m tile written at 135m, the 1d window from the
    hourly tile written at 180m. The tiles after 130m stand in for what the tile groups would
    hold (any failed share shows when a window sees it: 2%)."""
    minutes, start = 180, 130
    rules = without_groups(rule_dir, {t.group for t in TILES}, tmp_path / "rules")

    def ratio(window: str, at: int, value: float, *, positive: bool = False
              ) -> dict[str, object]:
        record = f"slo:sli_error:ratio_rate{window}{{{AVAILABILITY}}}"
        if positive:  # `> bool` drops the name
            return {"expr": f"{record} > bool 0", "eval_time": f"{at}m",
                    "exp_samples": [{"labels": f"{{{AVAILABILITY}}}", "value": value}]}
        return {"expr": record, "eval_time": f"{at}m",
                "exp_samples": [{"labels": record, "value": value}]}

    promtool_test(rules, [{
        "interval": "1m",
        "input_series": [*raw(60, 0.02, minutes, errors_from=start),
                         tiles(TILE_5M.requests, 5, 1.0, minutes),
                         tiles(TILE_5M.errors, 5, 0.02, minutes, after=start),
                         tiles(TILE_1H.requests, 60, 1.0, minutes),
                         tiles(TILE_1H.errors, 60, 0.02, minutes, after=start)],
        "promql_expr_test": [
            ratio("30m", 134, 1.0, positive=True),
            ratio("6h", 134, 0.0),  # tiles 5m..130m: none failed
            ratio("6h", 135, 0.02 / 27),  # tiles 5m..135m, the last one failing
            ratio("2h", 179, 1.0, positive=True),
            ratio("1d", 179, 0.0),  # tiles at 60m and 120m
            ratio("1d", 180, 0.02 / 3),  # and 180m
        ],
    }])
