"""The `redline` command: one subcommand per part. Thin: parse flags, call the part.

Every flag can also come from the environment as REDLINE_<FLAG> (upper case, '-' -> '_'), so a
container can be configured without rewriting its command line; a flag given on the command line
wins. Config errors exit with code 2 and a message naming the file, the key and what was expected.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from redline import __version__
from redline.config import ConfigError
from redline.flags import SubParsers
from redline.logs import setup_logging

ENV_PREFIX = "REDLINE_"
EXIT_CONFIG = 2
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

Command = Callable[[argparse.Namespace], int]


# Each part's command module (`<part>/command.py`: `add_parser(subparsers, common)` and the
# functions it sets as `func`) adds its subcommand(s), in the order of `redline --help`. A
# command line that names a subcommand imports only that part: a sidecar does not pay in
# memory for the dashboards' or the webhook's libraries.
SUBCOMMANDS: dict[str, str] = {
    "ambassador": "redline.sidecars.ambassador.command",
    "adapter": "redline.sidecars.adapter.command",
    "node-exporter": "redline.exporters.node.command",
    "alerts": "redline.alerts.command",
    "dashboards": "redline.dashboards.command",
    "inject": "redline.kubernetes.command",
    "uninject": "redline.kubernetes.command",
    "webhook": "redline.kubernetes.command",
    "stat": "redline.stat.command",
    "demo": "redline.demo.command",
    "demo-app": "redline.demo.command",
    "demo-load": "redline.demo.command",
    "routes": "redline.exporters.command",
}


Registrar = Callable[[SubParsers, argparse.ArgumentParser], None]


def _registrars(command: str | None) -> list[Registrar]:
    """Each part's `add_parser`, once per module (inject, uninject and webhook share one)."""
    wanted = [SUBCOMMANDS[command]] if command in SUBCOMMANDS else list(SUBCOMMANDS.values())
    registrars: list[Registrar] = []
    for module in dict.fromkeys(wanted):
        registrars.append(importlib.import_module(module).add_parser)
    return registrars


def build_parser(environ: dict[str, str] | None = None,
                 command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="redline",
        description="RED metrics for services and USE metrics for nodes.",
    )
    parser.add_argument("--version", action="version", version=f"redline {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--log-format", choices=("json", "text"), default="json",
                        help="log format on stderr (default: json)")
    common.add_argument("--log-level", choices=("debug", "info", "warning", "error"),
                        default="info", help="lowest level logged (default: info)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in _registrars(command):
        add(sub, common)
    env = os.environ if environ is None else environ
    for subparser in sub.choices.values():
        _apply_environment(subparser, env)
    return parser


def _apply_environment(parser: argparse.ArgumentParser, environ: dict[str, str] | os._Environ[str]
                       ) -> None:
    """Use REDLINE_<FLAG> as the default of each --flag; the command line still wins."""
    for action in parser._actions:
        long_flags = [o for o in action.option_strings if o.startswith("--")]
        if not long_flags or action.dest == "help":
            continue
        variable = ENV_PREFIX + long_flags[0][2:].upper().replace("-", "_")
        if variable not in environ:
            continue
        raw = environ[variable]
        value: object
        if isinstance(action, argparse._StoreTrueAction):
            if raw.lower() not in _TRUE | _FALSE:
                raise ConfigError(f"{variable}: expected true or false, got {raw!r}")
            value = raw.lower() in _TRUE
        elif isinstance(action, argparse._AppendAction):
            value = [_convert(action, variable, item) for item in raw.split(",") if item]
        else:
            value = _convert(action, variable, raw)
        action.default = value
        action.required = False


def _convert(action: argparse.Action, variable: str, raw: str) -> object:
    value: object = raw
    if callable(action.type):
        try:
            value = action.type(raw)
        except (TypeError, ValueError, argparse.ArgumentTypeError) as exc:
            raise ConfigError(f"{variable}: {exc}") from exc
    if action.choices is not None and value not in action.choices:
        choices = ", ".join(map(str, action.choices))
        raise ConfigError(f"{variable}: expected one of {choices}, got {raw!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    try:
        arguments = sys.argv[1:] if argv is None else list(argv)
        parser = build_parser(command=arguments[0] if arguments else None)
        args = parser.parse_args(arguments)
        if args.command is None:
            parser.print_help()
            return EXIT_CONFIG
        setup_logging(args.log_format, args.log_level)
        command: Command = args.func
        return command(args)
    except ConfigError as exc:
        print(f"redline: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
