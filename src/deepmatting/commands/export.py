"""``deepmatting export``: write a checkpoint as an ONNX file for onnxruntime (``deepmatting.export``)."""

from __future__ import annotations

import argparse
import sys

from ..export import DEFAULT_OPSET, MIN_OPSET
from .options import add_checkpoint

HELP = "export a model to ONNX (any batch, height and width; needs `pip install 'deepmatting[onnx]'`)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_checkpoint(p)
    p.add_argument("--out", required=True, help="the .onnx file to write")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                   help=f"ONNX opset version (default {DEFAULT_OPSET}, at least {MIN_OPSET})")


def run(args: argparse.Namespace) -> int:
    from ..checkpoint import CheckpointError
    from ..export import export_onnx

    try:
        path = export_onnx(args.checkpoint, args.out, opset=args.opset)
    except (CheckpointError, ImportError, ValueError) as e:
        print(f"deepmatting export: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0
