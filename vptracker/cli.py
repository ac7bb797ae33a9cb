"""The `vptracker` command: each subcommand is one module in `vptracker/commands/`.

A module there defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``;
adding a file adds a subcommand, so `vptracker --help` lists exactly what exists.
Exit status: 0 success, 2 bad input (a setting, a model folder or a data file; one line per
problem, no traceback), 1 an internal error (with its traceback) or a failed run.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import vptracker.commands as commands_pkg
from vptracker.config import ConfigError
from vptracker.datasets.base import DatasetFormatError
from vptracker.models.folder import ModelDirError
from vptracker.plan.memory import PlanError


def _commands() -> dict[str, object]:
    found = {}
    for info in sorted(pkgutil.iter_modules(commands_pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        found[info.name.replace("_", "-")] = importlib.import_module(f"vptracker.commands.{info.name}")
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vptracker", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in _commands().items():
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def input_errors() -> tuple[type[BaseException], ...]:
    """Errors that describe the user's input, not a bug: each names the file or key at fault."""
    return ConfigError, ModelDirError, DatasetFormatError, PlanError


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except input_errors() as err:
        for line in str(err).splitlines() or [type(err).__name__]:
            print(f"vptracker {args.command}: error: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
