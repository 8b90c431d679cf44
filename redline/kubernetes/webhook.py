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

from redline.kubernetes.inject import INJECTED, Options, inject_documents

log = logging.getLogger("redline.webhook")


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


def create_app(options: Options) -> Flask:
    app = Flask("redline-webhook")

    @app.post("/mutate")
    def mutate() -> Response:
        body = request.get_json(silent=True, force=True)
        return Response(json.dumps(review(body, options)), mimetype="application/json")

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok\n", mimetype="text/plain")

    return app
