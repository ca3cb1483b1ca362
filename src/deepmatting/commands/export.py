"""``deepmatting export``: write a model as an ONNX file for onnxruntime (``deepmatting.export``)."""

from __future__ import annotations

import argparse

from .options import bounded_number, report_errors

HELP = "export a model to ONNX (any batch, height and width; needs `pip install 'deepmatting[onnx]'`)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..checkpoint import QUALITIES, qualities_help
    from ..export import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET

    source = p.add_mutually_exclusive_group()
    source.add_argument("--checkpoint", default=None,
                        help="a model checkpoint (.pt) to export (default: the shipped model)")
    source.add_argument("--quality", default=None, choices=QUALITIES,
                        help=f"export a shipped model ({qualities_help()}); for best and fusion the "
                             "network part: the classical mattes, its inputs, are solved outside the graph")
    p.add_argument("--out", required=True, help="the .onnx file to write")
    p.add_argument("--opset", type=bounded_number(int, low=MIN_OPSET, high=MAX_OPSET), default=DEFAULT_OPSET,
                   help=f"ONNX opset version ({MIN_OPSET} to {MAX_OPSET})")


def run(args: argparse.Namespace) -> int:
    from ..atomic import check_writable
    from ..checkpoint import DEFAULT_QUALITY
    from ..export import export_onnx

    def export() -> None:
        from ..models import DeepMatting

        check_writable(args.out)  # a folder or an unwritable place fails now, not after the export
        model = DeepMatting.pretrained(args.checkpoint, quality=args.quality or DEFAULT_QUALITY)
        path = export_onnx(model, args.out, opset=args.opset)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")

    return report_errors("export", export)
