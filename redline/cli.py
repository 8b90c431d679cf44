"""The `redline` command: one subcommand per part. Thin: parse flags, call the part.

Every flag can also come from the environment as REDLINE_<FLAG> (upper case, '-' -> '_'), so a
container can be configured without rewriting its command line; a flag given on the command line
wins. Config errors exit with code 2 and a message naming the file, the key and what was expected.
"""

from __future__ import annotations

import argparse
import difflib
import errno
import importlib
import os
import re
import sys
from collections.abc import Callable, Sequence

from redline import __version__, build
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
    "autoscale": "redline.autoscale.command",
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
    return _build_parsers(environ, command)[0]


def _build_parsers(environ: dict[str, str] | None, command: str | None
                   ) -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The `redline` parser and each subcommand's own parser, by name."""
    parser = argparse.ArgumentParser(
        prog="redline",
        description="RED metrics for services and USE metrics for nodes.",
    )
    parser.add_argument("--version", action="version",
                        version=f"redline {__version__} (compiled: {build.describe()})")
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
        example = next((flag for action in subparser._actions for flag in action.option_strings
                        if flag.startswith("--") and flag not in _COMMON_FLAGS), None)
        if example is not None:
            variable = ENV_PREFIX + example[2:].upper().replace("-", "_")
            subparser.epilog = (f"Every flag can also be set by an environment variable "
                                f"REDLINE_<FLAG>, e.g. {variable} for {example}; the "
                                f"command line wins.")
    return parser, sub.choices


_COMMON_FLAGS = ("--help", "--log-format", "--log-level")


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
            value = _FromEnvironment(_convert(action, variable, item)
                                     for item in raw.split(",") if item)
        else:
            value = _convert(action, variable, raw)
        action.default = value
        action.required = False


class _FromEnvironment(list[object]):
    """A repeatable flag's values from REDLINE_<FLAG>. argparse appends command-line values to
    a copy of the default; the copy of this one is empty, so the command line replaces the
    environment's values instead of adding to them (the command line wins, as for every flag)."""

    def __copy__(self) -> list[object]:
        return []


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


def _check_flags(parser: argparse.ArgumentParser, arguments: list[str]) -> None:
    """Unknown flags get the subcommand's usage and the nearest known flag, before argparse
    would stop at a missing required flag or print the top-level usage."""
    flags = [flag for action in parser._actions for flag in action.option_strings]
    for argument in arguments:
        if argument == "--":
            return
        name = argument.split("=", 1)[0]
        if name.startswith("--") and not any(flag.startswith(name) for flag in flags):
            close = difflib.get_close_matches(name, flags, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            parser.error(f"unrecognized arguments: {argument}{hint}")


# What a failed bind means, for the errors a user can fix with a flag.
_BIND_ERRORS = {
    errno.EADDRINUSE: "address already in use (another process listens there)",
    errno.EADDRNOTAVAIL: "not an address of this machine",
    errno.EACCES: "permission denied (ports below 1024 need privileges)",
}


def _bind_error(args: argparse.Namespace, exc: OSError) -> str | None:
    """A message naming the H:P flag whose address could not be bound, or None when `exc`
    is not a bind error. asyncio names the address in its message (`('0.0.0.0', 9901)`);
    servers that do not are matched to the only address flag, or all of them are named."""
    reason = _BIND_ERRORS.get(exc.errno or 0)
    if reason is None:
        return None
    addresses = {dest: value for dest, value in vars(args).items()
                 if isinstance(value, tuple) and len(value) == 2
                 and isinstance(value[0], str) and isinstance(value[1], int) and value[1]}
    if not addresses:
        return None
    mentioned = {int(port) for port in re.findall(r"(\d{1,5})\)", str(exc))}
    named = [dest for dest, (_, port) in addresses.items() if port in mentioned] \
        or list(addresses)
    taken = ", ".join(f"--{dest.replace('_', '-')} {addresses[dest][0]}:{addresses[dest][1]}"
                      for dest in named)
    options = " or ".join(f"--{dest.replace('_', '-')} H:P" for dest in named)
    return f"{taken}: {reason}; choose another address with {options}"


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    args: argparse.Namespace | None = None
    try:
        parser, subparsers = _build_parsers(None, arguments[0] if arguments else None)
        if arguments and arguments[0] in subparsers:
            _check_flags(subparsers[arguments[0]], arguments[1:])
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
    except OSError as exc:
        message = _bind_error(args, exc) if args is not None else None
        if message is None:
            raise
        print(f"redline: {message}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
