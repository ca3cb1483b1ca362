"""``deepmatting train``: train a model on a folder (or the built-in synthetic data)."""

from __future__ import annotations

import argparse

from .options import add_arch, add_device, bounded_number, natural_int, report_errors

HELP = "train a matting model (Adam, per-batch progress, validation, best/last checkpoints, resume, DDP)"


def config_option(name: str):
    """The argparse ``type=`` of the option for ``TrainConfig.<name>``: its range in
    :data:`deepmatting.config.TRAIN_BOUNDS`, so the command line and the config refuse the same values."""
    from ..config import TRAIN_BOUNDS

    b = TRAIN_BOUNDS[name]
    return bounded_number(b.kind, low=b.low, high=b.high, low_open=b.low_open)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..config import RESUMABLE_FIELDS, TrainConfig

    d = TrainConfig()
    opt = config_option
    p.add_argument("--data", default=None,
                   help="training folder (images/, masks/ or alphas/, optional trimaps/; or the Deep Image "
                        "Matting layout fg/, alphas/, bg/); default: the built-in synthetic dataset")
    p.add_argument("--val", default=None,
                   help="validation folder in the CustomDataset layout (with or without --data); default: "
                        "the training images, or synthetic samples for synthetic or composited data")
    add_arch(p)
    p.add_argument("--input", default="trimap", choices=("trimap", "image"),
                   help="what the model reads beside the image: a trimap (made from the ground truth in "
                        "training), or nothing: 'image' trains a model that mattes a photo by itself "
                        "(images/ + masks/ suffice; the loss covers the whole image)")
    p.add_argument("--epochs", type=natural_int, default=d.epochs,
                   help="epochs (as in DIM); 0: until --max-minutes")
    p.add_argument("--batch-size", type=opt("batch_size"), default=d.batch_size,
                   help="batch size per process")
    p.add_argument("--lr", type=opt("lr"), default=d.lr,
                   help="Adam learning rate (warm-up, then cosine decay over the epochs or the time budget)")
    p.add_argument("--crop", type=opt("crop"), default=d.crop, help="training crop size in px")
    p.add_argument("--workers", type=opt("workers"), default=d.workers, help="data loader workers")
    p.add_argument("--out", default="runs/train", help="run folder")
    run = p.add_mutually_exclusive_group()
    run.add_argument("--resume", action="store_true",
                     help="continue from OUT/last.pt with the options the run was started with: repeat them "
                          f"(only {', '.join('--' + f.replace('_', '-') for f in RESUMABLE_FIELDS)} may "
                          "change; any other change is refused, naming it)")
    run.add_argument("--overwrite", action="store_true",
                     help="replace the run already in OUT (without it or --resume such a folder is refused)")
    p.add_argument("--init", default=None, metavar="CHECKPOINT_OR_QUALITY",
                   help="fine-tune: start from this checkpoint's weights, or a shipped model's (fast, best, "
                        "fusion); its architecture and preprocessing are used (--arch is ignored)")
    p.add_argument("--val-every", type=opt("val_every"), default=d.val_every,
                   help="validate (full resolution, all four metrics) every N epochs, and after the last")
    p.add_argument("--max-minutes", type=opt("max_minutes"), default=None,
                   help="time budget: stop cleanly after this many minutes of training (over all resumes)")
    p.add_argument("--amp", action="store_true", help="mixed precision (fp16 on CUDA, bf16 on the CPU)")
    p.add_argument("--seed", type=opt("seed"), default=d.seed,
                   help="random seed (data order, augmentation, init)")
    p.add_argument("--checkpoint-every", type=opt("checkpoint_every"), default=d.checkpoint_every,
                   help="write last.pt every N steps (and after every epoch); 0: after every epoch only")
    p.add_argument("--best-metric", default=d.best_metric, choices=("sad", "mse", "grad", "conn"),
                   help="the validation metric that picks best.pt")
    p.add_argument("--max-megapixels", type=opt("max_megapixels"), default=d.max_megapixels,
                   help="dataset images larger than this are refused by name (a flag to raise the limit)")
    p.add_argument("--synthetic-train", type=opt("synthetic_train"), default=d.synthetic_train,
                   help="size of the built-in training set when no --data")
    add_device(p)


def config_from_args(args: argparse.Namespace):
    from ..config import ModelConfig, TrainConfig

    return TrainConfig(
        model=ModelConfig(arch=args.arch, input=args.input),
        data=args.data,
        val=args.val,
        epochs=args.epochs or None,
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
        val_every=args.val_every,
        init=args.init,
        synthetic_train=args.synthetic_train,
        synthetic_size=args.crop,
        max_megapixels=args.max_megapixels,
    )


def run(args: argparse.Namespace) -> int:
    from ..train import train

    return report_errors("train", lambda: train(config_from_args(args), args.out, resume=args.resume,
                                                        overwrite=args.overwrite) and 0)
