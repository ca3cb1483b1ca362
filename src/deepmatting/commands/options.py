"""Command-line options shared by several subcommands, declared once, and the one way a command fails.

Nothing heavy is imported at the top: the parser of ``deepmatting --help`` is built from these modules.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        default="auto",
        help="where to run: auto (the GPU when present), cpu, cuda, cuda:N or mps",
    )


def add_arch(parser: argparse.ArgumentParser) -> None:
    from ..models.registry import DEFAULT_ARCH, list_architectures

    parser.add_argument("--arch", default=DEFAULT_ARCH, choices=list_architectures(),
                        help="model architecture")


def add_model_source(parser: argparse.ArgumentParser, what: str = "run") -> None:
    """``--checkpoint``, ``--onnx`` or ``--quality``: the model to ``what`` (the shipped fast one by default).
    """
    from ..checkpoint import QUALITIES, qualities_help

    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--quality",
        default=None,
        choices=QUALITIES,
        help=f"which shipped model (when no --checkpoint/--onnx): {qualities_help()}",
    )
    group.add_argument(
        "--checkpoint",
        default=None,
        help=f"a model checkpoint (.pt) to {what}, written by `deepmatting train` or DeepMatting.save "
        "(default: the model that ships with deepmatting)",
    )
    group.add_argument(
        "--onnx",
        default=None,
        metavar="MODEL.onnx",
        help=f"an exported ONNX model to {what} with onnxruntime instead of a checkpoint",
    )


def user_errors() -> tuple[type[Exception], ...]:
    """The exceptions that mean "bad input or environment": one line on stderr rather than a traceback."""
    from ..checkpoint import CheckpointError
    from ..data import DatasetError
    from ..train import TrainingError

    return (DatasetError, CheckpointError, TrainingError, ImportError, ValueError, OSError)


def report_errors(command: str, call: Callable[[], int | None]) -> int:
    """Run ``call()``; a user error becomes ``deepmatting COMMAND: error: ...`` on stderr and exit code 2."""
    try:
        return int(call() or 0)
    except user_errors() as e:
        print(f"deepmatting {command}: error: {e}", file=sys.stderr)
        return 2
