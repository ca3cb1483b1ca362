"""``deepmatting export``: write a model as an ONNX file for onnxruntime (``deepmatting.export``)."""

from __future__ import annotations

import argparse

from .options import report_errors

HELP = "export a model to ONNX (any batch, height and width; needs `pip install 'deepmatting[onnx]'`)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..export import DEFAULT_OPSET, MIN_OPSET

    p.add_argument("--checkpoint", default=None,
                   help="a model checkpoint (.pt) to export (default: the model that ships with the package)")
    p.add_argument("--out", required=True, help="the .onnx file to write")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                   help=f"ONNX opset version (at least {MIN_OPSET})")


def run(args: argparse.Namespace) -> int:
    from ..export import export_onnx

    def export() -> None:
        path = export_onnx(args.checkpoint, args.out, opset=args.opset)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")

    return report_errors("export", export)
