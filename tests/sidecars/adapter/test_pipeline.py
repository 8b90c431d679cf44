"""The per-block pipeline from the user's side (`redline adapter --once` on a real file): what
a block observes at once equals what line-by-line observation gave."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_durations_that_are_not_numbers_count_as_untimed(tmp_path: Path) -> None:
    # A custom regex whose duration group takes any word: "abc" and "-" are requests without
    # a time, the numbers are observed, all in one block.
    log = tmp_path / "app.log"
    log.write_text("GET /a 200 0.5\nGET /a 200 abc\nGET /a 200 1.5\nGET /a 200 -\n"
                   "GET /a 200 0.004\nnot a request line\n")
    result = subprocess.run(
        [sys.executable, "-m", "redline.cli", "adapter", "--service", "shop", "--access-log",
         str(log), "--format",
         r"regex:^(?P<method>\S+) (?P<path>\S+) (?P<status>\d{3}) (?P<duration>\S+)$",
         "--once"], capture_output=True, text=True, timeout=60, check=True)
    values = samples(result.stdout)

    def get(name: str, **extra: str) -> float:
        return sum(v for (n, labels), v in values.items()
                   if n == name and all(dict(labels).get(k) == e for k, e in extra.items()))

    assert get("http_server_request_duration_seconds_count", http_route="/a") == 3
    assert get("http_server_request_duration_seconds_sum", http_route="/a") == 0.5 + 1.5 + 0.004
    assert get("http_server_request_duration_seconds_bucket", http_route="/a", le="0.005") == 1
    assert get("http_server_request_duration_seconds_bucket", http_route="/a", le="0.5") == 2
    assert get("redline_untimed_requests_total", http_route="/a") == 2
    assert get("redline_adapter_lines_total") == 6
    assert get("redline_adapter_parse_errors_total") == 1
