"""Command-line options shared by several subcommands, declared once."""

from __future__ import annotations

import argparse

from ..device import DEVICE_CHOICES
from ..models import list_architectures


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        default="auto",
        choices=DEVICE_CHOICES,
        help="where to run (auto picks the GPU when present)",
    )


def add_arch(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", default=None, choices=list_architectures(), help="model architecture")


def add_checkpoint(parser: argparse.ArgumentParser, required: bool = False) -> None:
    parser.add_argument(
        "--checkpoint",
        required=required,
        default=None,
        help="a model checkpoint (.pt) written by `deepmatting train` or DeepMatting.save",
    )
