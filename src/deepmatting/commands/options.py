"""Command-line options shared by several subcommands, declared once, and the one way a command fails.

Nothing heavy is imported at the top: the parser of ``deepmatting --help`` is built from these modules.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable


def bounded_number(kind: type, *, low: float | None = None, high: float | None = None,
                   low_open: bool = False) -> Callable[[str], float | int]:
    """An argparse ``type=``: ``kind`` (int or float) of the text, finite and within ``[low, high]``
    (``(low, high]`` when ``low_open``); anything else is a one-line usage error naming the range."""
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        too_low = low is not None and (value <= low if low_open else value < low)
        if not math.isfinite(value) or too_low or (high is not None and value > high):
            show = (lambda v: str(int(v))) if kind is int else (lambda v: f"{v:g}")
            lo = "" if low is None else (f"> {show(low)}" if low_open else f">= {show(low)}")
            hi = "" if high is None else f"<= {show(high)}"
            what = "an integer" if kind is int else "a finite number"
            bounds = " and ".join(x for x in (lo, hi) if x)
            raise argparse.ArgumentTypeError(f"{text!r}: must be {what} {bounds}")
        return value
    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


#: The usual option types: a count of at least one, a count that may be zero, a positive finite number.
positive_int = bounded_number(int, low=1)
natural_int = bounded_number(int, low=0)
positive_float = bounded_number(float, low=0, low_open=True)
port_number = bounded_number(int, low=0, high=65535)


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
