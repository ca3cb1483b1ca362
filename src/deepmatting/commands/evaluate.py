"""``deepmatting evaluate``: the four benchmark metrics of a model on a test folder."""

from __future__ import annotations

import argparse

from .options import add_device, add_model_source, bounded_number, report_errors

HELP = "per-image and mean SAD, MSE, Grad and Conn of a model on a folder, optionally against a baseline"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..data.trimap import MAX_WIDTH
    from ..evaluate import BASELINES

    p.add_argument("--data", required=True, help="folder with images/, masks/ or alphas/, optional trimaps/")
    add_model_source(p, "evaluate")
    p.add_argument("--json", default=None,
                   help="write the results as JSON here (checked to be writable before the evaluation)")
    p.add_argument("--save-alphas", default=None, help="write each predicted alpha as PNG into this folder")
    p.add_argument("--baseline", default=None, choices=BASELINES,
                   help="also run a baseline on the same inputs and print both tables side by side")
    p.add_argument("--trimap-width", type=bounded_number(int, low=0, high=MAX_WIDTH), default=10,
                   help="unknown band (px) of trimaps made from the ground truth when DATA has no trimaps/")
    add_device(p)


def run(args: argparse.Namespace) -> int:
    from ..evaluate import evaluate

    return report_errors("evaluate", lambda: evaluate(
        args.data,
        args.checkpoint,
        onnx=args.onnx,
        quality=args.quality,
        device=args.device,
        baseline=args.baseline,
        save_alphas=args.save_alphas,
        json_path=args.json,
        trimap_width=args.trimap_width,
    ) and 0)
