"""`redline inject` and `redline uninject`: manifests in (files or stdin), manifests out."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from redline.config import ConfigError
from redline.sidecars.inject import (
    Doc,
    InjectError,
    Options,
    inject_documents,
    iter_documents,
    uninject_aligned,
)


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                common: argparse.ArgumentParser) -> None:
    inject = sub.add_parser(
        "inject", parents=[common],
        help="add redline's sidecars to Kubernetes manifests (prints them)",
        description="Add the ambassador (and optionally the adapter) to every workload in the "
                    "manifests, point Services at it, add scrape annotations. Injecting twice "
                    "changes nothing; `redline uninject` takes it out again. Use: "
                    "redline inject -f deploy.yaml | kubectl apply -f -")
    _files(inject)
    add = inject.add_argument
    add("--image", default=Options.image, help=f"redline image (default {Options.image})")
    add("--classic", action="store_true",
        help="the ambassador as a regular container, for clusters before Kubernetes 1.29 "
             "(default: a native sidecar)")
    add("--podmonitor", action="store_true",
        help="also write a PodMonitor per workload (Prometheus Operator)")
    add("--adapter", metavar="access-log=PATH", action="append", default=[],
        help="add the adapter reading the app's access log at PATH (an emptyDir is shared at "
             "its directory)")
    add("--adapter-format", default="nginx", help="the adapter's --format (default nginx)")
    add("--proxy-port", type=int, default=Options.proxy_port,
        help=f"the ambassador's port in the pod (default {Options.proxy_port})")
    add("--admin-port", type=int, default=Options.admin_port,
        help=f"the ambassador's admin port (default {Options.admin_port})")
    inject.set_defaults(func=run_inject)
    uninject = sub.add_parser(
        "uninject", parents=[common], help="take redline's sidecars out of manifests",
        description="Restore manifests that `redline inject` changed, exactly.")
    _files(uninject)
    uninject.set_defaults(func=run_uninject)


def _files(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--filename", action="append", metavar="FILE",
                        help="manifest file (YAML, multi-document, JSON, kind: List); '-' or "
                             "none: standard input; repeatable")


def _load(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """(source, parsed document) for every document of every input, in order."""
    import yaml

    loaded: list[tuple[str, Any]] = []
    for name in args.filename or ["-"]:
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{name}: cannot read: {exc.strerror}") from exc
        try:
            documents = [d for d in yaml.safe_load_all(text) if d is not None]
        except yaml.YAMLError as exc:
            raise ConfigError(f"{name}: not valid YAML or JSON: {exc}") from exc
        for document in documents:
            if not isinstance(document, dict):
                raise ConfigError(f"{name}: expected Kubernetes objects, got {document!r:.60}")
            loaded.append((name, document))
    return loaded


def _transform(args: argparse.Namespace, apply: Any) -> int:
    from redline.alerts.render import dump

    loaded = _load(args)
    flat: list[Doc] = [item for _, document in loaded for item in iter_documents(document)]
    try:
        result = apply(flat)
    except InjectError as exc:
        raise ConfigError(str(exc)) from exc
    # Put Lists back together, in their places; extra documents (PodMonitors) at the end.
    # (uninject gives None where a document it had added goes away.)
    position = 0
    output: list[Doc] = []
    for _, document in loaded:
        if document.get("kind") == "List":
            count = len(document.get("items") or [])
            items = [d for d in result[position:position + count] if d is not None]
            output.append({**document, "items": items})
            position += count
        else:
            if result[position] is not None:
                output.append(result[position])
            position += 1
    output += [d for d in result[position:] if d is not None]
    sys.stdout.write("---\n".join(dump(document) for document in output))
    return 0


def _options(args: argparse.Namespace) -> Options:
    access_log = None
    for item in args.adapter:
        key, sep, value = item.partition("=")
        if key != "access-log" or not sep or not value.startswith("/"):
            raise ConfigError(f"--adapter: expected access-log=/absolute/path, got {item!r}")
        access_log = value
    return Options(image=args.image, classic=args.classic, podmonitor=args.podmonitor,
                   access_log=access_log, log_format=args.adapter_format,
                   proxy_port=args.proxy_port, admin_port=args.admin_port)


def run_inject(args: argparse.Namespace) -> int:
    options = _options(args)
    return _transform(args, lambda docs: inject_documents(docs, options))


def run_uninject(args: argparse.Namespace) -> int:
    return _transform(args, uninject_aligned)
