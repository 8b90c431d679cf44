"""`redline inject` and `redline uninject` (manifests in, from files or stdin; manifests out) and
`redline webhook` (the same injection as a mutating admission webhook).

The functions set as `func` turn flags into typed values (inject's Options, the webhook's
ServerSettings); nothing below them sees argparse.
"""

from __future__ import annotations

import argparse
import copy
import posixpath
import ssl
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from redline.config import ConfigError
from redline.flags import (
    SubParsers,
    flag_type,
    host_port,
    port_number,
    positive_integer,
    positive_seconds,
)
from redline.kubernetes.inject import Doc, Options, inject_documents, iter_documents
from redline.kubernetes.manifests import Piece, dump, parse, render
from redline.kubernetes.settings import ServerSettings
from redline.kubernetes.uninject import uninject_aligned

Transform = Callable[[list[Doc]], Sequence[Doc | None]]


def add_parser(sub: SubParsers, common: argparse.ArgumentParser) -> None:
    inject = sub.add_parser(
        "inject", parents=[common],
        help="add redline's sidecars to Kubernetes manifests (prints them)",
        description="Add the ambassador (and optionally the adapter) to every workload in the "
                    "manifests, point Services at it, add scrape annotations. Injecting twice "
                    "changes nothing; `redline uninject` takes it out again. Use: "
                    "redline inject -f deploy.yaml | kubectl apply -f -")
    _files(inject)
    add = inject.add_argument
    add("--image", default=Options.image, metavar="IMAGE",
        help=f"redline image (default {Options.image})")
    add("--classic", action="store_true",
        help="the ambassador as a regular container, for clusters before Kubernetes 1.29 "
             "(default: a native sidecar)")
    add("--podmonitor", action="store_true",
        help="also write a PodMonitor per workload (Prometheus Operator)")
    add("--adapter", metavar="access-log=PATH", action="append", default=[],
        type=flag_type(access_log),
        help="add the adapter reading the app's access log at PATH (an emptyDir is shared at "
             "its directory); repeatable: one adapter follows every log")
    add("--adapter-format", default=Options.log_format, metavar="FORMAT",
        help=f"the adapter's --format: nginx, apache, json or regex:RE "
             f"(default {Options.log_format})")
    add("--proxy-port", type=flag_type(port_number), default=Options.proxy_port, metavar="N",
        help=f"the ambassador's port in the pod (default {Options.proxy_port})")
    add("--admin-port", type=flag_type(port_number), default=Options.admin_port, metavar="N",
        help=f"the ambassador's admin port (default {Options.admin_port})")
    inject.set_defaults(func=run_inject)
    uninject = sub.add_parser(
        "uninject", parents=[common], help="take redline's sidecars out of manifests",
        description="Restore manifests that `redline inject` changed, exactly.")
    _files(uninject)
    uninject.set_defaults(func=run_uninject)
    _add_webhook(sub, common)


def _files(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--filename", action="append", default=[], metavar="FILE",
                        help="manifest file (YAML, multi-document, JSON, kind: List); '-' or "
                             "none: standard input; repeatable")


def access_log(text: str) -> str:
    """`access-log=/dir/file` for --adapter: the file the adapter follows; an emptyDir is
    mounted at its directory, so that must be a plain path (the file name may be a glob)."""
    key, sep, path = text.partition("=")
    if key != "access-log" or not sep or not path.startswith("/"):
        raise ValueError(f"expected access-log=/absolute/path, got {text!r}")
    if path.endswith("/") or posixpath.basename(path) in (".", ".."):
        raise ValueError(f"{path!r} names a directory; expected the log file in it")
    path = posixpath.normpath(path)
    if any(char in posixpath.dirname(path) for char in "*?["):
        raise ValueError(f"{path!r}: the directory cannot hold a glob (an emptyDir is mounted "
                         f"there); only the file name can")
    return path


def run_inject(args: argparse.Namespace) -> int:
    options = Options(image=args.image, classic=args.classic, podmonitor=args.podmonitor,
                      access_logs=tuple(dict.fromkeys(args.adapter)),
                      log_format=args.adapter_format, proxy_port=args.proxy_port,
                      admin_port=args.admin_port)
    ports = (options.proxy_port, options.admin_port)
    if ports[0] == ports[1]:
        raise ConfigError(f"--proxy-port, --admin-port: expected two different ports, got "
                          f"{ports[0]} for both")
    if options.access_logs and options.adapter_admin_port in ports:
        raise ConfigError(f"--proxy-port, --admin-port: {options.adapter_admin_port} is the "
                          f"adapter's admin port; expected another")

    def inject(docs: list[Doc]) -> Sequence[Doc | None]:
        injection = inject_documents(docs, options)
        for line in injection.report:  # as `linkerd inject` does: stdout stays manifests
            print(f"redline inject: {line}", file=sys.stderr)
        return injection.documents

    return _transform(args.filename, inject)


def run_uninject(args: argparse.Namespace) -> int:
    return _transform(args.filename, uninject_aligned)


def _load(sources: Sequence[str]) -> list[Piece]:
    """Every document of every input, in order, with the text it was read from."""
    pieces: list[Piece] = []
    for name in sources or ["-"]:
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{name}: cannot read: {exc.strerror}") from exc
        for piece in parse(text, name):
            if piece.document is not None and not isinstance(piece.document, dict):
                raise ConfigError(f"{name}: expected Kubernetes objects, got "
                                  f"{piece.document!r:.60}")
            pieces.append(piece)
    return pieces


def _transform(sources: Sequence[str], apply: Transform) -> int:
    """Read the sources, apply inject or uninject, write the result to stdout: documents
    left equal as they were read, changed ones re-emitted in their own style."""
    pieces = _load(sources)
    flat = [item for piece in pieces for item in iter_documents(piece.document)]
    result = apply(flat)
    # Put Lists back together, in their places; extra documents (PodMonitors) at the end.
    # (uninject gives None where a document it had added goes away.)
    position = 0
    output: list[str] = []
    for piece in pieces:
        count = len(list(iter_documents(piece.document)))
        items = result[position:position + count]
        position += count
        if piece.document is None:
            text = piece.separator + piece.text
        elif piece.document.get("kind") == "List":
            text = render(piece, _list_with(piece.document, items))
        elif items[0] is not None:
            text = render(piece, items[0])
        else:
            continue
        if output and not piece.separator:  # the first document of a further file
            text = ("---\n" if output[-1].endswith("\n") else "\n---\n") + text
        output.append(text)
    added = [d for d in result[position:] if d is not None]
    if added and output and not output[-1].endswith("\n"):
        output.append("\n")
    output += [("---\n" if output else "") + dump(d, pieces[-1].indent) for d in added]
    sys.stdout.write("".join(output))
    return 0


def _list_with(document: Doc, items: Sequence[Doc | None]) -> Doc:
    """A copy of a `kind: List` with its items replaced in place (keeping their comments)."""
    new = copy.deepcopy(document)
    for index in reversed(range(len(items))):
        item = items[index]
        if item is None:
            del new["items"][index]
        else:
            new["items"][index] = item
    return new


def _add_webhook(sub: SubParsers, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "webhook", parents=[common], help="mutating admission webhook that injects pods (TLS)",
        description="Serve a Kubernetes mutating admission webhook at /mutate over TLS; pods "
                    "of namespaces labelled redline.io/inject=enabled get redline's sidecars.")
    add = parser.add_argument
    default = ServerSettings()
    add("--tls-cert", required=True, metavar="FILE", help="certificate (PEM)")
    add("--tls-key", required=True, metavar="FILE", help="private key (PEM)")
    add("--listen", type=flag_type(host_port), default=default.listen, metavar="H:P",
        help="where to listen; port 0: any free port (default 0.0.0.0:8443)")
    add("--tls-reload", type=flag_type(positive_seconds), default=60.0, metavar="S",
        help="check the certificate files for a renewal every S seconds and serve the new one "
             "(default 60.0)")
    add("--threads", type=flag_type(positive_integer), default=default.threads, metavar="N",
        help=f"connections served at once (default {default.threads})")
    add("--handshake-timeout", type=flag_type(positive_seconds),
        default=default.handshake_timeout, metavar="S",
        help=f"drop a client that has not finished the TLS handshake after S seconds "
             f"(default {default.handshake_timeout:g})")
    add("--request-timeout", type=flag_type(positive_seconds),
        default=default.request_timeout, metavar="S",
        help=f"drop a client that sends or reads nothing for S seconds, and idle keep-alive "
             f"connections (default {default.request_timeout:g})")
    add("--drain-timeout", type=flag_type(positive_seconds), default=default.drain_timeout,
        metavar="S", help=f"on SIGTERM, wait up to S seconds for requests in flight "
                          f"(default {default.drain_timeout:g})")
    add("--max-request-bytes", type=flag_type(positive_integer),
        default=default.max_request_bytes, metavar="N",
        help="refuse (413, counted) a request body larger than N bytes: the API server sends "
             f"at most 3 MiB (default {default.max_request_bytes})")
    add("--image", default=Options.image, metavar="IMAGE",
        help=f"the sidecars' image (default {Options.image})")
    add("--classic", action="store_true",
        help="inject a regular container (clusters before 1.29)")
    parser.set_defaults(func=run_webhook)


def run_webhook(args: argparse.Namespace) -> int:
    # flask and cheroot load only for the webhook
    from redline.kubernetes.server import serve
    from redline.kubernetes.tls_reload import ReloadingContext
    from redline.kubernetes.webhook import WebhookMetrics, create_app

    settings = ServerSettings(listen=args.listen, threads=args.threads,
                              handshake_timeout=args.handshake_timeout,
                              request_timeout=args.request_timeout,
                              drain_timeout=args.drain_timeout,
                              max_request_bytes=args.max_request_bytes)
    try:
        tls = ReloadingContext(args.tls_cert, args.tls_key, args.tls_reload)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"--tls-cert/--tls-key: cannot load {args.tls_cert}: {exc}") from exc
    tls.start()
    metrics = WebhookMetrics()
    app = create_app(Options(image=args.image, classic=args.classic), metrics,
                     settings.max_request_bytes)
    return serve(app, tls.context, settings, metrics)
