"""`redline inject` and `redline uninject` (manifests in, from files or stdin; manifests out) and
`redline webhook` (the same injection as a mutating admission webhook)."""

from __future__ import annotations

import argparse
import logging
import ssl
import sys
from pathlib import Path
from typing import Any

from redline.config import ConfigError
from redline.flags import SubParsers, flag_type, host_port, positive_seconds
from redline.kubernetes.inject import (
    Doc,
    InjectError,
    Options,
    inject_documents,
    iter_documents,
    uninject_aligned,
)
from redline.kubernetes.tls_reload import ReloadingContext

log = logging.getLogger("redline.webhook")


def add_parser(sub: SubParsers,
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
    _add_webhook(sub, common)


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


def _add_webhook(sub: SubParsers,
               common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "webhook", parents=[common], help="mutating admission webhook that injects pods (TLS)",
        description="Serve a Kubernetes mutating admission webhook at /mutate over TLS; pods "
                    "of namespaces labelled redline.io/inject=enabled get redline's sidecars.")
    parser.add_argument("--tls-cert", required=True, metavar="FILE", help="certificate (PEM)")
    parser.add_argument("--tls-key", required=True, metavar="FILE", help="private key (PEM)")
    parser.add_argument("--listen", type=flag_type(host_port), default=("0.0.0.0", 8443),
                        metavar="H:P", help="where to listen (default 0.0.0.0:8443)")
    parser.add_argument("--tls-reload", type=flag_type(positive_seconds), default=60.0,
                        metavar="S", help="check the certificate files for a renewal every S "
                                          "seconds and serve the new one (default 60)")
    parser.add_argument("--image", default=Options.image, help="the sidecars' image")
    parser.add_argument("--classic", action="store_true",
                        help="inject a regular container (clusters before 1.29)")
    parser.set_defaults(func=run_webhook)


def run_webhook(args: argparse.Namespace) -> int:
    from redline.kubernetes.webhook import create_app  # flask loads only for the webhook

    try:
        tls = ReloadingContext(args.tls_cert, args.tls_key, args.tls_reload)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"--tls-cert/--tls-key: cannot load {args.tls_cert}: {exc}") from exc
    tls.start()
    app = create_app(Options(image=args.image, classic=args.classic))
    host, port = args.listen
    log.info("webhook listening", extra={"listen": f"{host}:{port}"})
    app.run(host=host, port=port, ssl_context=tls.context, threaded=True)
    return 0
