"""The ``deepmatting`` command: one entry point, one module per subcommand under ``deepmatting.commands``.

Each subcommand module defines ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int`` and is a thin
layer over a library function a user can call from Python. Command modules import nothing heavy at the
top, and only the subcommand named on the command line gets its arguments (which may import the library),
so ``deepmatting --help`` answers without loading PyTorch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__

#: Subcommands in the order ``--help`` lists them; each is ``deepmatting.commands.<name>``.
SUBCOMMANDS: tuple[str, ...] = ("train", "evaluate", "predict", "demo", "export", "serve")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; the arguments of a subcommand are added only when ``argv`` names it (or argv is None)."""
    parser = argparse.ArgumentParser(
        prog="deepmatting",
        description="Deep image matting: train, evaluate and predict alpha mattes.",
    )
    parser.add_argument("--version", action="version", version=f"deepmatting {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        module = importlib.import_module(f".commands.{name}", __package__)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP,
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        if argv is None or name in argv:
            module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 0
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
