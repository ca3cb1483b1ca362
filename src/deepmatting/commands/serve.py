"""``deepmatting serve``: the local web app (``deepmatting.serve``): upload or draw, predict, download."""

from __future__ import annotations

import argparse
import sys

from .options import add_checkpoint, add_device

HELP = "a local web page: upload an image and a trimap/mask or draw scribbles, see and download the matte"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_checkpoint(p)
    p.add_argument("--onnx", default=None, metavar="MODEL.onnx",
                   help="serve an exported ONNX model with onnxruntime instead of a checkpoint")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: the network)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860; 0 picks a free one)")
    p.add_argument("--max-megapixels", type=float, default=25.0,
                   help="larger uploads are refused with a message (default 25)")
    add_device(p)


def run(args: argparse.Namespace) -> int:
    from ..checkpoint import CheckpointError
    from ..serve import serve

    try:
        serve(args.checkpoint, args.host, args.port, onnx=args.onnx, device=args.device,
              max_pixels=int(args.max_megapixels * 1e6))
    except (CheckpointError, ImportError, ValueError, OSError) as e:
        print(f"deepmatting serve: error: {e}", file=sys.stderr)
        return 2
    return 0
