"""`redline demo-app` and `redline demo-load`: the demo's app and load generator as processes
(the docker-compose stack runs them as containers from redline's image)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import threading
from typing import IO

from redline.config import ConfigError
from redline.flags import (
    SubParsers,
    flag_type,
    host_port,
    positive_integer,
    positive_number,
    positive_seconds,
)
from redline.signals import stop_flag

log = logging.getLogger("redline.demo")


def add_parser(sub: SubParsers, common: argparse.ArgumentParser) -> None:
    demo = sub.add_parser(
        "demo", parents=[common], help="run the whole toolkit locally and watch RED and USE",
        description="Start, on 127.0.0.1, a demo app with the ambassador in front, an outbound "
                    "ambassador to its payment dependency, the adapter on its access log, the "
                    "node exporter and a load generator (and Prometheus and Alertmanager with "
                    "redline's rules when installed); show RED, USE and alerts live; stop "
                    "everything at the end.")
    demo.add_argument("--duration", type=flag_type(positive_number), default=300.0, metavar="S",
                      help="seconds to run (default 300; Ctrl-C ends it sooner)")
    demo.add_argument("--refresh", type=flag_type(positive_number), default=3.0, metavar="S",
                      help="seconds between screen updates (default 3)")
    demo.add_argument("--rate", type=flag_type(positive_number), default=50.0, metavar="N",
                      help="requests per second of the load generator (default 50)")
    demo.add_argument("--workdir", metavar="DIR",
                      help="where logs, rules and dashboards go (default: a new temp dir)")
    demo.set_defaults(func=run_demo_command)

    app = sub.add_parser(
        "demo-app", parents=[common], help="the demo app (routes with realistic RED behaviour)",
        description="Serve the demo app: fast reads, an id route, a heavy-tailed search and a "
                    "checkout that fails a few percent of the time and calls --dependency.")
    app.add_argument("--listen", type=flag_type(host_port), default=("127.0.0.1", 8080),
                     metavar="H:P", help="where to listen (default 127.0.0.1:8080)")
    app.add_argument("--role", choices=("app", "dependency", "inventory"), default="app",
                     help="the shop app, the payment service its checkout calls, or the "
                          "gRPC inventory it calls (needs grpcio) (default app)")
    app.add_argument("--access-log", metavar="PATH",
                     help="append an nginx-style access log here (for the adapter)")
    app.add_argument("--dependency", metavar="URL",
                     help="base URL of the payment service (the outbound ambassador)")
    app.add_argument("--grpc-dependency", type=flag_type(host_port), metavar="H:P",
                     help="the gRPC inventory the item route and the checkout call (through "
                          "an ambassador with --protocol h2c; needs grpcio)")
    app.add_argument("--seed", type=int, metavar="N",
                     help="random seed, for reproducible behaviour")
    app.set_defaults(func=run_app)

    load = sub.add_parser(
        "demo-load", parents=[common], help="load generator for the demo app",
        description="Request the demo app's routes in realistic proportions from concurrent "
                    "keep-alive clients; prints the count of each status at the end.")
    load.add_argument("--target", default="http://127.0.0.1:8000", metavar="URL",
                      help="base URL to load (the inbound ambassador; default %(default)s)")
    load.add_argument("--rate", type=flag_type(positive_number), default=50.0, metavar="N",
                      help="requests per second (default 50)")
    load.add_argument("--concurrency", type=flag_type(positive_integer), default=8, metavar="N",
                      help="concurrent clients (default 8)")
    load.add_argument("--duration", type=flag_type(positive_seconds), default=float("inf"),
                      metavar="S",
                      help="seconds to run (default: no limit, until SIGTERM or Ctrl-C)")
    load.add_argument("--seed", type=int, metavar="N", help="random seed")
    load.set_defaults(func=run_load_command)


def run_demo_command(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from redline.demo.run import run_demo

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="redline-demo-"))
    stop = stop_flag()  # SIGTERM or Ctrl-C: stop cleanly
    return run_demo(args.duration, args.refresh, args.rate, workdir, stop)


def run_app(args: argparse.Namespace) -> int:
    if args.role == "inventory":
        return _run_inventory(args)
    from werkzeug.serving import make_server  # flask loads only for the demo app

    from redline.demo.app import create_app
    from redline.demo.inventory import InventoryClient

    stream: IO[str] | None = None
    if args.access_log:
        try:
            # Not a `with`: the file lives as long as the server and is closed below.
            stream = open(args.access_log, "a", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise ConfigError(f"--access-log: cannot open {args.access_log}: {exc}") from exc
    inventory = None
    if args.grpc_dependency:
        grpc_host, grpc_port = args.grpc_dependency
        try:
            inventory = InventoryClient(f"{grpc_host}:{grpc_port}")
        except ConfigError as exc:
            raise ConfigError(f"--grpc-dependency: {exc}") from exc
    host, port = args.listen
    server = make_server(host, port, create_app(args.role, access_log=stream,
                                                dependency_url=args.dependency, seed=args.seed,
                                                inventory=inventory.call if inventory
                                                else None),
                         threaded=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the access log is the file's job
    stop = stop_flag()  # SIGTERM or Ctrl-C: stop cleanly

    def shut_down_on_stop() -> None:
        stop.wait()
        server.shutdown()
    threading.Thread(target=shut_down_on_stop, daemon=True).start()
    log.info("demo app listening", extra={"listen": f"{host}:{server.server_port}",
                                          "role": args.role})
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if stream is not None:
            stream.close()
        if inventory is not None:
            inventory.close()
    return 0


def _run_inventory(args: argparse.Namespace) -> int:
    from redline.demo.inventory import serve

    stop = stop_flag()  # SIGTERM or Ctrl-C: stop cleanly
    host, port = args.listen
    with contextlib.suppress(KeyboardInterrupt):
        serve(host, port, stop, seed=args.seed, listening=lambda: log.info(
            "demo inventory listening", extra={"listen": f"{host}:{port}", "role": args.role}))
    return 0


def run_load_command(args: argparse.Namespace) -> int:
    from redline.demo.load import run_load

    stop = stop_flag()  # SIGTERM or Ctrl-C: stop cleanly
    try:
        result = run_load(args.target, rate=args.rate, concurrency=args.concurrency,
                          duration=args.duration, seed=args.seed, stop=stop)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    counts = " ".join(f"{status}={n}" for status, n in sorted(result.statuses.items()))
    print(f"requests={result.total} {counts}", file=sys.stdout)
    return 0
