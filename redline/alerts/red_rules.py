"""RED recording rules for the overview dashboard written with `redline dashboards --recorded`:
rate, errors and duration per service, errors and duration per service and route.

Only what that dashboard reads is recorded (tests/dashboards check it): each rule is evaluated
over every service's series every interval, so one without a reader is pure cost. The
expressions are the dashboards' own (redline/queries.py) with a 5m window.
"""

from __future__ import annotations

from redline import queries
from redline.alerts.rules import RecordingRule, recording
from redline.queries import DEFAULT, HTTP_SERVER, Grouping

WINDOW = "5m"


def requests_name(level: str) -> str:
    return f"{level}:http_server_requests:rate{WINDOW}"


def errors_name(level: str) -> str:
    return f"{level}:http_server_errors:rate{WINDOW}"


def error_ratio_name(level: str) -> str:
    return f"{level}:http_server_errors:ratio_rate{WINDOW}"


def buckets_name(level: str) -> str:
    return f"{level}_le:{HTTP_SERVER.bucket}:rate{WINDOW}"


def recording_rules(grouping: Grouping = DEFAULT) -> list[RecordingRule]:
    """By service and by service and route, and by cluster where series have one."""
    service, route = grouping.service, grouping.service_route
    return [
        recording(requests_name("service"),
                  queries.requests(HTTP_SERVER, (), service, WINDOW)),
        # 0 for a service without a failed request (its error ratio is 0%, not missing), from
        # the requests just recorded rather than a second pass over the raw series
        recording(errors_name("service"),
                  f"{queries.errors(HTTP_SERVER, (), service, WINDOW)}\nor\n"
                  f"{requests_name('service')} * 0"),
        recording(error_ratio_name("service"),
                  f"{errors_name('service')}\n/\n{requests_name('service')}"),
        recording(buckets_name("service"),
                  queries.sum_rate(HTTP_SERVER.bucket, (), (*service, "le"), WINDOW)),
        recording(errors_name("service_route"),
                  queries.errors(HTTP_SERVER, (), route, WINDOW)),
        recording(buckets_name("service_route"),
                  queries.sum_rate(HTTP_SERVER.bucket, (), (*route, "le"), WINDOW)),
    ]
