"""``deepmatting serve``: the local web app (``deepmatting.serve``): upload or draw, predict, download."""

from __future__ import annotations

import argparse

from .options import add_device, add_model_source, report_errors

HELP = "a local web page: upload an image and a trimap/mask or draw scribbles, see and download the matte"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_source(p, "serve")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (127.0.0.1: this machine only; 0.0.0.0: the network)")
    p.add_argument("--port", type=int, default=7860, help="port (0 picks a free one)")
    p.add_argument("--max-megapixels", type=float, default=25.0,
                   help="larger uploads are refused with a message")
    add_device(p)


def run(args: argparse.Namespace) -> int:
    from ..serve import serve

    return report_errors("serve", lambda: serve(args.checkpoint, args.host, args.port, onnx=args.onnx,
                                                device=args.device,
                                                max_pixels=int(args.max_megapixels * 1e6)))
