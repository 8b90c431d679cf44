"""`redline routes`: check a routes file and show the http_route each request path gets."""

from __future__ import annotations

import argparse
import sys

from redline.flags import SubParsers


def run(args: argparse.Namespace) -> int:
    """Check a routes file and show how paths map to routes (paths from args or stdin)."""
    from redline.exporters.routes import RouteTemplater, load_routes

    templater = load_routes(args.routes) if args.routes else RouteTemplater()
    paths = args.paths or [line.strip() for line in sys.stdin if line.strip()]
    for path in paths:
        route = templater.route(path)
        shown = "(ignored)" if route is None else route.template
        suffix = " streaming" if route is not None and route.streaming else ""
        print(f"{path}\t{shown}{suffix}")
    return 0


def add_parser(sub: SubParsers, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "routes", parents=[common],
        help="check a routes file and show the http_route each path gets",
        description="Validate a routes file and print `path<TAB>route` for each path "
                    "given as an argument or read from standard input.",
    )
    parser.add_argument("--routes", metavar="FILE", help="routes file (YAML)")
    parser.add_argument("paths", nargs="*", metavar="PATH", help="request paths to template")
    parser.set_defaults(func=run)
