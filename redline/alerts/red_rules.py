"""RED recording rules for the overview dashboard written with `redline dashboards --recorded`:
rate, errors and duration per service, errors and duration per service and route.

Only what that dashboard reads is recorded (tests/dashboards check it): each rule is evaluated
over every service's series every interval, so one without a reader is pure cost. The
expressions are the dashboards' own (redline/queries.py) with a 5m window.
"""

from __future__ import annotations

from redline import queries
from redline.alerts.rules import RecordingRule, recording
from redline.queries import HTTP_SERVER, SERVICE, SERVICE_ROUTE

WINDOW = "5m"
LEVELS = {"service": SERVICE, "service_route": SERVICE_ROUTE}


def requests_name(level: str) -> str:
    return f"{level}:http_server_requests:rate{WINDOW}"


def errors_name(level: str) -> str:
    return f"{level}:http_server_errors:rate{WINDOW}"


def error_ratio_name(level: str) -> str:
    return f"{level}:http_server_errors:ratio_rate{WINDOW}"


def buckets_name(level: str) -> str:
    return f"{level}_le:{HTTP_SERVER.bucket}:rate{WINDOW}"


def recording_rules() -> list[RecordingRule]:
    service = LEVELS["service"]
    return [
        recording(requests_name("service"),
                  queries.requests(HTTP_SERVER, (), service, WINDOW)),
        recording(errors_name("service"), queries.errors(HTTP_SERVER, (), service, WINDOW)),
        recording(error_ratio_name("service"),
                  f"{errors_name('service')}\n/\n{requests_name('service')}"),
        recording(buckets_name("service"),
                  queries.sum_rate(HTTP_SERVER.bucket, (), (*service, "le"), WINDOW)),
        recording(errors_name("service_route"),
                  queries.errors(HTTP_SERVER, (), LEVELS["service_route"], WINDOW)),
        recording(buckets_name("service_route"),
                  queries.sum_rate(HTTP_SERVER.bucket, (), (*LEVELS["service_route"], "le"),
                                   WINDOW)),
    ]
