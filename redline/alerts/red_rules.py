"""RED recording rules for the dashboards: rate, errors and duration per service and route.

Requests come from two metrics (the histogram's _count and the adapter's untimed counter).
`label_replace` gives each a `source` label before they are joined with `or`, so `or` never
drops a series that happens to have the same labels in both, and the sum works when either
metric is missing.
"""

from __future__ import annotations

from redline.alerts.slo_rules import Rule
from redline.exporters.red import SERVER_DURATION, SERVER_UNTIMED

_LEVELS = {"service": "service_name", "service_route": "service_name, http_route"}


def _requests(by: str, matcher: str = "") -> str:
    return (f"sum by ({by}) (\n"
            f'  label_replace(rate({SERVER_DURATION}_count{matcher}[5m]), '
            f'"source", "histogram", "", "")\n'
            f"  or\n"
            f'  label_replace(rate({SERVER_UNTIMED}{matcher}[5m]), '
            f'"source", "untimed", "", "")\n'
            f")")


def recording_rules() -> list[Rule]:
    rules: list[Rule] = []
    for level, by in _LEVELS.items():
        rules += [
            {"record": f"{level}:http_server_requests:rate5m", "expr": _requests(by)},
            {"record": f"{level}:http_server_errors:rate5m",
             "expr": _requests(by, '{error_type!=""}')},
            {"record": f"{level}:http_server_errors:ratio_rate5m",
             "expr": f"{level}:http_server_errors:rate5m\n/\n"
                     f"{level}:http_server_requests:rate5m"},
            {"record": f"{level}_le:{SERVER_DURATION}_bucket:rate5m",
             "expr": f"sum by ({by}, le) (rate({SERVER_DURATION}_bucket[5m]))"},
        ]
    return rules
