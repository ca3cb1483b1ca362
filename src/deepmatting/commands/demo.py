"""``deepmatting demo``: train on the built-in synthetic data, evaluate on a held-out set, draw figures."""

from __future__ import annotations

import argparse

from .options import add_device, report_errors

HELP = "the main job on the built-in default: synthetic data, training within a budget, evaluation, figures"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..demo import DEMO_DEFAULTS

    p.add_argument("--out", default="runs/demo", help="output folder")
    p.add_argument("--max-minutes", type=float, default=DEMO_DEFAULTS["max_minutes"],
                   help="training budget in minutes (the same option as `deepmatting train`)")
    p.add_argument("--train-samples", type=int, default=DEMO_DEFAULTS["train_samples"],
                   help="procedural training samples")
    p.add_argument("--heldout", type=int, default=DEMO_DEFAULTS["heldout"], help="held-out samples")
    p.add_argument("--size", type=int, default=DEMO_DEFAULTS["size"], help="held-out sample size (px)")
    p.add_argument("--crop", type=int, default=DEMO_DEFAULTS["crop"], help="training sample size (px)")
    p.add_argument("--batch-size", type=int, default=DEMO_DEFAULTS["batch_size"], help="batch size")
    p.add_argument("--workers", type=int, default=1, help="data loader workers")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--amp", action="store_true", help="mixed precision (bf16 on the CPU, fp16 on CUDA)")
    add_device(p)


def run(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    return report_errors("demo", lambda: run_demo(
        args.out,
        args.max_minutes,
        train_samples=args.train_samples,
        heldout=args.heldout,
        size=args.size,
        crop=args.crop,
        batch_size=args.batch_size,
        workers=args.workers,
        seed=args.seed,
        device=args.device,
        amp=args.amp,
    ) and 0)
