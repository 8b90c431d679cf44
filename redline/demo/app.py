"""The demo app: a Flask app whose routes behave as redline/demo/behaviour.py says, writing an
nginx-style access log for the adapter. The checkout calls the payment dependency at
`dependency_url` (through the outbound ambassador in the demo), so the client-side RED metrics
have something to record. With `inventory` (a gRPC client: method name -> the status name the
call ended with), the item route and the checkout first call the inventory's GetStock and
Reserve: NOT_FOUND is a 404, any other failure a 502.
"""

from __future__ import annotations

import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import IO

from flask import Flask, Response, g, request

from redline.demo.behaviour import Route, access_log_line, fails, latency, routes_for

DEPENDENCY_TIMEOUT_S = 2.0


class AccessLog:
    """Appends one line per request; a lock keeps lines whole across Flask's threads."""

    def __init__(self, stream: IO[str] | None) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def write(self, line: str) -> None:
        if self._stream is None:
            return
        with self._lock:
            self._stream.write(line)
            self._stream.flush()  # the adapter tails this file: no line may wait in a buffer


def _call_dependency(url: str) -> int:
    """Status of the dependency's answer; 502 when it cannot be reached (as a proxy would)."""
    req = urllib.request.Request(url, data=b'{"amount": 42}', method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=DEPENDENCY_TIMEOUT_S) as answer:
            answer.read()
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return 502


def create_app(role: str = "app", *, access_log: IO[str] | None = None,
               dependency_url: str | None = None, seed: int | None = None,
               inventory: Callable[[str], str] | None = None) -> Flask:
    app = Flask(f"redline-demo-{role}")
    rng = random.Random(seed)
    rng_lock = threading.Lock()
    log = AccessLog(access_log)

    def handler(route: Route) -> Response:
        with rng_lock:
            delay, failed = latency(route, rng), fails(route, rng)
        time.sleep(delay)
        if failed:
            return Response('{"error": "internal"}\n', 500, mimetype="application/json")
        if route.inventory_method and inventory is not None:
            answer = inventory(route.inventory_method)
            if answer == "NOT_FOUND":
                return Response('{"error": "no such item"}\n', 404, mimetype="application/json")
            if answer != "OK":
                return Response(f'{{"error": "inventory: {answer}"}}\n', 502,
                                mimetype="application/json")
        if route.calls_dependency and dependency_url:
            status = _call_dependency(dependency_url.rstrip("/") + "/charge")
            if status >= 500:
                return Response('{"error": "payment unavailable"}\n', 502,
                                mimetype="application/json")
        return Response('{"ok": true}\n', 200, mimetype="application/json")

    for route in routes_for(role):
        rule = route.template.replace("{id}", "<int:item_id>")
        app.add_url_rule(rule, endpoint=route.template, methods=[route.method],
                         view_func=lambda route=route, **_ids: handler(route))

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok\n", 200, mimetype="text/plain")

    @app.before_request
    def start_clock() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def log_request(response: Response) -> Response:
        seconds = time.perf_counter() - g.get("started", time.perf_counter())
        target = request.full_path.rstrip("?") if request.query_string else request.path
        log.write(access_log_line(request.remote_addr or "-", request.method, target,
                                  response.status_code, response.calculate_content_length() or 0,
                                  seconds, request.user_agent.string or "-"))
        return response

    return app
