"""``deepmatting serve``: the local web app (``deepmatting.serve``): upload or draw, predict, download."""

from __future__ import annotations

import argparse

from .options import add_device, add_model_source, report_errors

HELP = "a local web page: upload an image and a trimap/mask or draw scribbles, see and download the matte"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..serve import MAX_CONNECTIONS, MAX_PIXELS, TIMEOUT
    from ..serve.app import QUEUE

    add_model_source(p, "serve")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (127.0.0.1: this machine only; 0.0.0.0: the network)")
    p.add_argument("--port", type=int, default=7860, help="port (0 picks a free one)")
    p.add_argument("--max-megapixels", type=float, default=MAX_PIXELS / 1e6, metavar="MP",
                   help="larger images are refused with a message")
    p.add_argument("--queue", type=int, default=QUEUE, metavar="N",
                   help="predictions that may wait while one runs; more are answered 'busy'")
    p.add_argument("--timeout", type=float, default=TIMEOUT, metavar="SECONDS",
                   help="time a request may take to arrive, headers and body")
    p.add_argument("--max-connections", type=int, default=MAX_CONNECTIONS, metavar="N",
                   help="connections served at once; more are answered 'busy'")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="a name this server may be reached by besides its IP addresses and localhost "
                        "(repeatable; other names are refused, against DNS rebinding)")
    add_device(p)


def run(args: argparse.Namespace) -> int:
    from ..serve import serve

    return report_errors("serve", lambda: serve(
        args.checkpoint, args.host, args.port, onnx=args.onnx, quality=args.quality, device=args.device,
        max_pixels=int(args.max_megapixels * 1e6), queue=args.queue, timeout=args.timeout,
        max_connections=args.max_connections, allowed_hosts=args.allow_host,
    ))
