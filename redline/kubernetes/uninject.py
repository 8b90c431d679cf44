"""Take redline's sidecars out again (pure): the input of `inject_documents`, from its output.

It follows the records injection left (the pod template's `redline.io/injected`, a Service's
`redline.io/original-target-ports`) and edits in place, deleting only what was added, so a
round-trip YAML document keeps its comments, styles and quotes: `inject | uninject` gives back
the input's bytes.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, MutableSequence
from typing import Any

from redline.kubernetes.inject import INJECTED, ORIGINAL_TARGET_PORTS, Doc, pod_template
from redline.kubernetes.manifests import restore


def uninject_documents(docs: list[Doc]) -> list[Doc]:
    """The input of `inject_documents`, from its output."""
    return [doc for doc in uninject_aligned(docs) if doc is not None]


def uninject_aligned(docs: list[Doc]) -> list[Doc | None]:
    """As uninject_documents, one entry per input document: None for those injection added."""
    out: list[Doc | None] = []
    for original in docs:
        doc = copy.deepcopy(original)
        if doc.get("kind") == "PodMonitor" and \
                doc.get("metadata", {}).get("name", "").endswith("-redline"):
            out.append(None)
            continue
        pod = pod_template(doc)
        if pod is not None and INJECTED in (pod.get("metadata", {}).get("annotations") or {}):
            _uninject_pod(pod)
        if doc.get("kind") == "Service":
            _restore_service(doc)
        out.append(doc)
    return out


def _drop(items: MutableSequence[Any], added: Callable[[Any], bool]) -> None:
    """Delete the items injection added, in place (what was added was appended, so the
    indices of the rest and of their comments do not move)."""
    for index in reversed(range(len(items))):
        if added(items[index]):
            del items[index]


def _named(names: list[str]) -> Callable[[Any], bool]:
    return lambda item: item.get("name") in names


def _uninject_pod(pod: Doc) -> None:
    metadata, spec = pod["metadata"], pod["spec"]
    annotations = metadata["annotations"]
    record = json.loads(annotations.pop(INJECTED))
    for key in ("containers", "initContainers", "volumes"):
        if record[key] and key in spec:
            _drop(spec[key], _named(record[key]))
    for mount in record["mounts"]:
        for container in spec.get("containers", []):
            if container.get("name") == mount["container"]:
                mounts = container.get("volumeMounts", [])
                _drop(mounts, _named([mount["volume"]]))
                if "app.volumeMounts" in record["created"] and not mounts:
                    del container["volumeMounts"]
    for key, previous in record["annotations"].items():
        restore(annotations, key, previous)
    for key, owner in (("annotations", metadata), ("initContainers", spec),
                       ("volumes", spec)):
        if key in record["created"] and not owner.get(key):
            owner.pop(key, None)


def _restore_service(service: Doc) -> None:
    annotations = service.get("metadata", {}).get("annotations") or {}
    if ORIGINAL_TARGET_PORTS not in annotations:
        return
    originals = json.loads(annotations.pop(ORIGINAL_TARGET_PORTS))
    for index, target in originals.items():
        restore(service["spec"]["ports"][int(index)], "targetPort", target)
    if not annotations:
        del service["metadata"]["annotations"]
