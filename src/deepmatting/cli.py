"""The ``deepmatting`` command: one entry point, one module per subcommand under ``deepmatting.commands``.

Each subcommand module defines ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int`` and is a thin
layer over a library function a user can call from Python.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__

#: Subcommands in the order ``--help`` lists them; each is ``deepmatting.commands.<name>``.
SUBCOMMANDS: tuple[str, ...] = ("train", "evaluate", "predict", "demo", "export", "serve")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepmatting",
        description="Deep image matting: train, evaluate and predict alpha mattes.",
    )
    parser.add_argument("--version", action="version", version=f"deepmatting {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        module = importlib.import_module(f".commands.{name}", __package__)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 0
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
