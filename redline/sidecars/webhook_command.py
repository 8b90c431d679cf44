"""`redline webhook`: flags, TLS, and the Flask app of redline/sidecars/webhook.py."""

from __future__ import annotations

import argparse
import logging
import ssl

from redline.config import ConfigError, flag_type, parse_host_port, positive_seconds
from redline.sidecars.inject import Options
from redline.sidecars.tls_reload import ReloadingContext

log = logging.getLogger("redline.webhook")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
               common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "webhook", parents=[common], help="mutating admission webhook that injects pods (TLS)",
        description="Serve a Kubernetes mutating admission webhook at /mutate over TLS; pods "
                    "of namespaces labelled redline.io/inject=enabled get redline's sidecars.")
    parser.add_argument("--tls-cert", required=True, metavar="FILE", help="certificate (PEM)")
    parser.add_argument("--tls-key", required=True, metavar="FILE", help="private key (PEM)")
    parser.add_argument("--listen", type=flag_type(parse_host_port), default=("0.0.0.0", 8443),
                        metavar="H:P", help="where to listen (default 0.0.0.0:8443)")
    parser.add_argument("--tls-reload", type=flag_type(positive_seconds), default=60.0,
                        metavar="S", help="check the certificate files for a renewal every S "
                                          "seconds and serve the new one (default 60)")
    parser.add_argument("--image", default=Options.image, help="the sidecars' image")
    parser.add_argument("--classic", action="store_true",
                        help="inject a regular container (clusters before 1.29)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from redline.sidecars.webhook import create_app  # flask loads only for the webhook

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
