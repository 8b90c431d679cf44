"""The ambassador's own metrics under abuse, as real processes on 127.0.0.1 (#17): scrape loops
on a large registry must not stall proxied traffic, and an app answering many distinct label
sets must not grow a metric family past --max-series. While each runs, the ambassador keeps
its memory (RSS under 64 MB) and answers /healthz and a proxied request on another connection
within 100 ms (tests/abuse/watch.py)."""

from __future__ import annotations

import http.client

from tests.abuse.test_ambassador import _get, run_attack, upstream_port, watching
from tests.sidecars.ambassador.conftest import AmbassadorProcess

__all__ = ["upstream_port"]  # the fixture, shared with the other ambassador attacks

DURATION = "http_server_request_duration_seconds"
OTHER = "_OTHER"


def series(ambassador: AmbassadorProcess) -> set[tuple[tuple[str, str], ...]]:
    """The label sets of the duration histogram's series (bucket bound aside)."""
    return {tuple(sorted(labels.items())) for name, labels, _ in ambassador.samples()
            if name == DURATION + "_count"}


def test_two_scrape_loops_on_a_full_registry_do_not_stall_traffic(upstream_port: int) -> None:
    """Two loops scraping as OpenMetrics (Prometheus with exemplar storage, the slower format)
    a registry holding the default cap's 2,000 duration series: one scrape stalled a proxied
    request 1.7 s, two loops raised proxied p50 from 1.2 ms to 30 ms."""
    ambassador = AmbassadorProcess("--upstream", f"127.0.0.1:{upstream_port}",
                                   "--protocol", "http1", "--drain-delay", "0")
    connection = http.client.HTTPConnection("127.0.0.1", ambassador.port, timeout=5)
    try:
        _get(connection)  # the watcher's series takes its place first
        filled = run_attack("label-sets", str(ambassador.port), timeout=60)
        assert filled["answered"] == 2000
        assert len(series(ambassador)) == 2001  # the cap, full: /probe, 1,999 sets, 1 folded
        metrics = f"http://127.0.0.1:{ambassador.admin_port}/metrics"
        with watching(ambassador):
            result = run_attack("scrapes", metrics, "--loops", "2", "--seconds", "4",
                                "--openmetrics", timeout=60)
        assert isinstance(result["scrapes"], int) and result["scrapes"] >= 2
        assert isinstance(result["largest_body"], int) and result["largest_body"] > 4_000_000
    finally:
        connection.close()
        assert ambassador.stop() == 0


def test_many_label_sets_fold_past_the_series_cap(upstream_port: int) -> None:
    """An app answering 400 status codes to 5 methods makes 2,000 label sets on one route; with
    --max-series 500 the family keeps 500 and folds the rest into its _OTHER label sets (one
    for successes, one for failures), each fold counted, no request lost."""
    ambassador = AmbassadorProcess("--upstream", f"127.0.0.1:{upstream_port}",
                                   "--protocol", "http1", "--drain-delay", "0",
                                   "--max-series", "500")
    connection = http.client.HTTPConnection("127.0.0.1", ambassador.port, timeout=5)
    try:
        assert ambassador.value("redline_ambassador_limits_total", limit="max_series") == 0
        _get(connection)  # the watcher's series takes its place first
        with watching(ambassador):
            result = run_attack("label-sets", str(ambassador.port), timeout=60)
        assert result["answered"] == 2000
        kept = series(ambassador)
        folded = {labels for labels in kept if dict(labels)["http_route"] == OTHER}
        assert len(kept) == 502 and len(folded) == 2
        assert {dict(labels)["error_type"] for labels in folded} == {"", OTHER}
        assert all(dict(labels)["service_name"] == "shop" for labels in folded)
        probes = ambassador.requests_recorded(http_route="/probe")
        assert ambassador.requests_recorded() == 2000 + probes  # none lost
        assert ambassador.value("redline_ambassador_limits_total",
                                limit="max_series") == 2000 - 499
        assert ambassador.requests_recorded(http_route=OTHER) == 2000 - 499
    finally:
        connection.close()
        assert ambassador.stop() == 0
