"""`redline webhook`: a mutating admission webhook that injects pods, with the CLI's code.

AdmissionReview v1 in, a JSONPatch out. It injects a Pod when the pod or its namespace is
annotated or labelled `redline.io/inject: enabled` (the namespace selector of the webhook
configuration sends only those), never twice, and fails open: anything it cannot handle is
allowed unchanged with a warning, so pod creation never waits on redline.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

from flask import Flask, Response, request

from redline.kubernetes.inject import INJECTED, InjectError, Options, inject_documents

log = logging.getLogger("redline.webhook")
ENABLED = "redline.io/inject"


def review(body: Any, options: Options) -> dict[str, Any]:
    """The AdmissionReview response for a request body (pure)."""
    uid = ""
    try:
        uid = body["request"]["uid"]
        pod = body["request"]["object"]
        if body["request"].get("kind", {}).get("kind", pod.get("kind")) != "Pod":
            return _allow(uid, warning="redline injects Pods only")
        annotations = pod.get("metadata", {}).get("annotations") or {}
        if INJECTED in annotations:
            return _allow(uid)  # never twice
        if annotations.get(ENABLED, "enabled") == "disabled":
            return _allow(uid)
        pod = {**pod, "kind": "Pod", "apiVersion": pod.get("apiVersion", "v1")}
        pod.setdefault("metadata", {}).setdefault(
            "name", pod["metadata"].get("generateName", "pod"))
        injected = inject_documents([pod], options)[0]
        patch = patch_for(body["request"]["object"], injected)
    except InjectError as exc:
        return _allow(uid, warning=f"redline did not inject: {exc}")
    except Exception as exc:  # fail open: a broken review never blocks a pod
        log.warning("cannot handle admission review", extra={"error": repr(exc)})
        return _allow(uid, warning=f"redline did not inject: {type(exc).__name__}")
    response = _allow(uid)
    response["response"]["patchType"] = "JSONPatch"
    response["response"]["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
    return response


def patch_for(original: dict[str, Any], injected: dict[str, Any]) -> list[dict[str, Any]]:
    """Whole subtrees replaced: the spec, and the annotations (added when there were none)."""
    annotations = injected["metadata"]["annotations"]
    op = "replace" if "annotations" in original.get("metadata", {}) else "add"
    return [{"op": "replace", "path": "/spec", "value": injected["spec"]},
            {"op": op, "path": "/metadata/annotations", "value": annotations}]


def _allow(uid: str, warning: str | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"uid": uid, "allowed": True}
    if warning:
        response["warnings"] = [warning]
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
