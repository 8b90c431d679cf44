"""`redline webhook`: a mutating admission webhook that injects pods, with the CLI's code.

AdmissionReview v1 in, a JSONPatch out. It injects a Pod when the pod or its namespace is
labelled `redline.io/inject: enabled` (the webhook configuration's selectors send only those),
never twice, not when the pod says `redline.io/inject: disabled`, and fails open: anything it
cannot handle is allowed unchanged with a warning, so pod creation never waits on redline.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from redline.exporters.exposition import new_registry, render
from redline.exporters.instruments import Counter, InstrumentCollector
from redline.kubernetes.inject import INJECTED, Options, inject_documents

log = logging.getLogger("redline.webhook")

# What a review ended as, for redline_webhook_reviews_total.
INJECTED_POD = "injected"
UNCHANGED = "unchanged"
FAILED_OPEN = "failed_open"


class WebhookMetrics:
    """The webhook's own counters, served on its /metrics (the same TLS port)."""

    def __init__(self) -> None:
        self.reviews = Counter(
            "redline_webhook_reviews", "Admission reviews answered, by what came of them.",
            ("result",))
        self.rejections = Counter(
            "redline_webhook_rejected",
            "Requests refused before a review, by reason (too_large: a body over "
            "--max-request-bytes; no_length: a body without Content-Length; handshake: a TLS "
            "handshake that failed or timed out).",
            ("reason",))
        for result in (INJECTED_POD, UNCHANGED, FAILED_OPEN):
            self.reviews.cell((result,))
        for reason in ("too_large", "no_length", "handshake"):
            self.rejections.cell((reason,))
        self.registry = new_registry("webhook",
                                     InstrumentCollector([self.reviews, self.rejections]))

    def rejected(self, reason: str) -> None:
        self.rejections.inc((reason,))


def outcome(answer: dict[str, Any]) -> str:
    """What a review's answer did to the pod (for the counter)."""
    response = answer["response"]
    if "patch" in response:
        return INJECTED_POD
    if any(w.startswith("redline did not inject") for w in response.get("warnings", ())):
        return FAILED_OPEN
    return UNCHANGED


def review(body: Any, options: Options) -> dict[str, Any]:
    """The AdmissionReview response for a request body (pure). Its warnings are inject's
    report: which ports were fronted, which skipped and why, or why the pod is unchanged."""
    uid = ""
    try:
        uid = body["request"]["uid"]
        pod = body["request"]["object"]
        if body["request"].get("kind", {}).get("kind", pod.get("kind")) != "Pod":
            return _allow(uid, ["redline injects Pods only"])
        if INJECTED in (pod.get("metadata", {}).get("annotations") or {}):
            return _allow(uid)  # never twice
        pod = {**pod, "kind": "Pod", "apiVersion": pod.get("apiVersion", "v1")}
        pod["metadata"] = {**pod.get("metadata", {})}
        pod["metadata"].setdefault("name", pod["metadata"].get("generateName", "pod"))
        injection = inject_documents([pod], options)
        [injected] = injection.documents
        warnings = [f"redline: {line}" for line in injection.report]
        if injected == pod:
            return _allow(uid, warnings)
        patch = patch_for(body["request"]["object"], injected)
    except Exception as exc:  # fail open: a broken review never blocks a pod
        log.warning("cannot handle admission review", extra={"error": repr(exc)})
        return _allow(uid, [f"redline did not inject: {type(exc).__name__}"])
    response = _allow(uid, warnings)
    response["response"]["patchType"] = "JSONPatch"
    response["response"]["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
    return response


def patch_for(original: dict[str, Any], injected: dict[str, Any]) -> list[dict[str, Any]]:
    """Whole subtrees replaced: the spec, and the annotations (added when there were none)."""
    annotations = injected["metadata"]["annotations"]
    op = "replace" if "annotations" in original.get("metadata", {}) else "add"
    return [{"op": "replace", "path": "/spec", "value": injected["spec"]},
            {"op": op, "path": "/metadata/annotations", "value": annotations}]


def _allow(uid: str, warnings: list[str] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"uid": uid, "allowed": True}
    if warnings:
        response["warnings"] = warnings
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": response}


def create_app(options: Options, metrics: WebhookMetrics | None = None,
               max_request_bytes: int | None = None) -> Flask:
    app = Flask("redline-webhook")
    app.config["MAX_CONTENT_LENGTH"] = max_request_bytes
    counters = metrics or WebhookMetrics()

    @app.post("/mutate")
    def mutate() -> Response:
        if request.content_length is None:
            # The API server always sends a Content-Length. Without one the WSGI stream reads
            # as empty and the body's bytes would be taken for the next request: refused.
            counters.rejected("no_length")
            return Response("a Content-Length is required\n", status=411, mimetype="text/plain",
                            headers={"Connection": "close"})
        raw = request.get_data()  # over MAX_CONTENT_LENGTH: RequestEntityTooLarge, below
        try:
            body = json.loads(raw)
        except ValueError:
            body = None  # review() fails open on it
        answer = review(body, options)
        counters.reviews.inc((outcome(answer),))
        return Response(json.dumps(answer), mimetype="application/json")

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_error: RequestEntityTooLarge) -> Response:
        counters.rejected("too_large")
        log.warning("request body over the limit", extra={
            "content_length": request.content_length, "limit": max_request_bytes})
        # The rest of the body is not read: the connection cannot carry another request.
        return Response("request body too large\n", status=413, mimetype="text/plain",
                        headers={"Connection": "close"})

    @app.get("/metrics")
    def metrics_page() -> Response:
        body, content_type = render(counters.registry, request.headers.get("Accept"))
        return Response(body, content_type=content_type)

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok\n", mimetype="text/plain")

    return app
