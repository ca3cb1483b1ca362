"""``deepmatting train``: train a model on a folder (or the built-in synthetic data)."""

from __future__ import annotations

import argparse
import sys

from ..config import ModelConfig, TrainConfig
from .options import add_arch, add_device

HELP = "train a matting model (Adam, per-batch progress, validation, best/last checkpoints, resume, DDP)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    p.add_argument(
        "--data",
        default=None,
        help="training folder (images/, masks/ or alphas/, optional "
        "trimaps/); default: the built-in synthetic dataset",
    )
    p.add_argument("--val", default=None, help="validation folder in the same layout")
    add_arch(p)
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"epochs (default {d.epochs}, as in DIM)")
    p.add_argument(
        "--batch-size", type=int, default=d.batch_size, help=f"per process (default {d.batch_size})"
    )
    p.add_argument(
        "--lr",
        type=float,
        default=d.lr,
        help=f"Adam learning rate (default {d.lr}; warm-up then "
        "cosine decay over the epochs or the time budget)",
    )
    p.add_argument("--crop", type=int, default=d.crop, help=f"training crop size in px (default {d.crop})")
    p.add_argument(
        "--workers", type=int, default=d.workers, help=f"data loader workers (default {d.workers})"
    )
    p.add_argument("--out", default="runs/train", help="run folder (default runs/train)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--max-minutes", type=float, default=None, help="stop cleanly after this many minutes")
    p.add_argument("--amp", action="store_true", help="mixed precision (fp16 on CUDA, bf16 on the CPU)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=d.checkpoint_every,
        help=f"write last.pt every N steps (default {d.checkpoint_every}) and after every epoch",
    )
    p.add_argument("--best-metric", default=d.best_metric, choices=("sad", "mse", "grad", "conn"))
    p.add_argument(
        "--synthetic-train",
        type=int,
        default=d.synthetic_train,
        help="size of the built-in training set when no --data",
    )
    add_device(p)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    defaults = TrainConfig()
    return TrainConfig(
        model=ModelConfig(arch=args.arch or defaults.model.arch),
        data=args.data,
        val=args.val,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        crop=args.crop,
        workers=args.workers,
        seed=args.seed,
        amp=args.amp,
        device=args.device,
        max_minutes=args.max_minutes,
        checkpoint_every=args.checkpoint_every,
        best_metric=args.best_metric,
        synthetic_train=args.synthetic_train,
        synthetic_size=args.crop,
    )


def run(args: argparse.Namespace) -> int:
    from ..checkpoint import CheckpointError
    from ..data import DatasetError
    from ..train import TrainingError, train

    try:
        train(config_from_args(args), args.out, resume=args.resume)
    except (DatasetError, TrainingError, CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
