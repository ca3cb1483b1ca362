"""``deepmatting serve``: the local web app (``deepmatting.serve``): upload or draw, predict, download."""

from __future__ import annotations

import argparse

from .options import (
    add_device,
    add_model_source,
    bounded_number,
    natural_int,
    port_number,
    positive_int,
    report_errors,
)

HELP = "a local web page: upload an image and a trimap/mask or draw scribbles, see and download the matte"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..serve import MAX_CONNECTIONS, MAX_PIXELS, TIMEOUT
    from ..serve.app import PREDICTION_TIMEOUT, QUEUE

    add_model_source(p, "serve")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (127.0.0.1: this machine only; 0.0.0.0: the network)")
    p.add_argument("--port", type=port_number, default=7860, help="port, 0-65535 (0 picks a free one)")
    p.add_argument("--max-megapixels", type=bounded_number(float, low=1e-6), default=MAX_PIXELS / 1e6,
                   metavar="MP", help="larger images are refused with a message")
    p.add_argument("--queue", type=natural_int, default=QUEUE, metavar="N",
                   help="predictions that may wait while one runs; more are answered 'busy'")
    p.add_argument("--timeout", type=bounded_number(float, low=1), default=TIMEOUT, metavar="SECONDS",
                   help="time a request may take to arrive from its first byte, head and body (at least "
                        "64 KiB/s after 2 s), an idle connection may stay open, and an answer may take to "
                        "be read (at least 1)")
    p.add_argument("--prediction-timeout", type=bounded_number(float, low=1), default=PREDICTION_TIMEOUT,
                   metavar="SECONDS",
                   help="time one prediction may hold the model; a longer one is stopped at its next step "
                        "(a step that has begun ends first) and answered 503, and the next request runs")
    p.add_argument("--max-connections", type=positive_int, default=MAX_CONNECTIONS, metavar="N",
                   help="requests served at once; more are answered 'busy' (connections waiting for a "
                        "request cost no thread and do not count)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="a name this server may be reached by besides its IP addresses and localhost "
                        "(repeatable; other names are refused, against DNS rebinding)")
    add_device(p)


def run(args: argparse.Namespace) -> int:
    from ..serve import serve

    return report_errors("serve", lambda: serve(
        args.checkpoint, args.host, args.port, onnx=args.onnx, quality=args.quality, device=args.device,
        max_pixels=round(args.max_megapixels * 1e6), queue=args.queue, timeout=args.timeout,
        prediction_timeout=args.prediction_timeout, max_connections=args.max_connections,
        allowed_hosts=args.allow_host,
    ))
