"""``deepmatting serve``: the local web app (``deepmatting.serve``): upload or draw, predict, download."""

from __future__ import annotations

import argparse
import sys

from .options import add_checkpoint, add_device

HELP = "a local web page: upload an image and a trimap/mask or draw scribbles, see and download the matte"

#: Options passed to ``deepmatting.serve.serve`` only when given (the library owns the defaults, which the
#: help texts name; tests/test_serve.py checks that they agree).
LIMITS = ("max_megapixels", "queue", "timeout", "max_connections", "allow_host")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_checkpoint(p)
    p.add_argument("--onnx", default=None, metavar="MODEL.onnx",
                   help="serve an exported ONNX model with onnxruntime instead of a checkpoint")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: the network)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860; 0 picks a free one)")
    p.add_argument("--max-megapixels", type=float, default=None, metavar="MP",
                   help="larger images are refused with a message (default 4)")
    p.add_argument("--queue", type=int, default=None, metavar="N",
                   help="predictions that may wait while one runs; more are answered 'busy' (default 2)")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="time a request may take to arrive, headers and body (default 30)")
    p.add_argument("--max-connections", type=int, default=None, metavar="N",
                   help="connections served at once; more are answered 'busy' (default 32)")
    p.add_argument("--allow-host", action="append", default=None, metavar="NAME",
                   help="a name this server may be reached by besides its IP addresses and localhost "
                        "(repeatable; other names are refused, against DNS rebinding)")
    add_device(p)


def run(args: argparse.Namespace) -> int:
    from ..checkpoint import CheckpointError
    from ..serve import serve

    options = {name: getattr(args, name) for name in LIMITS if getattr(args, name) is not None}
    if "max_megapixels" in options:
        options["max_pixels"] = int(options.pop("max_megapixels") * 1e6)
    if "allow_host" in options:
        options["allowed_hosts"] = options.pop("allow_host")
    try:
        serve(args.checkpoint, args.host, args.port, onnx=args.onnx, device=args.device, **options)
    except (CheckpointError, ImportError, ValueError, OSError) as e:
        print(f"deepmatting serve: error: {e}", file=sys.stderr)
        return 2
    return 0
