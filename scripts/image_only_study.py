"""Image-only matting (issue #23), measured: on held-out synthetic samples, and cross-validated on photos.

``synthetic RUN``: score ``RUN/best.pt`` (trained by ``deepmatting train --input image``, on the built-in
synthetic data) on 64 synthetic samples no run saw (seed 50,000, as the demo's held-out set), with the
whole-image MAD and MSE, against two constant masks: the mean alpha of the training samples (what a model
that learned nothing but the prior would say) and the best constant for MAD on the held-out samples
themselves (their median alpha: a stronger baseline than any model could know).

``cv OUT``: the two folds of the shared photos (``recipe.folds``): an image-only ``effnet-lite0`` trained
for ``--minutes`` on one fold's 7 photos (images and alphas only), scored on the other fold's 7 with
``deepmatting.evaluate`` (whole-image MAD and MSE, and the benchmark metrics on Trimap1's unknown region),
against the constant mask of the training fold's mean alpha.

    .venv/bin/python scripts/image_only_study.py synthetic runs/image-synthetic
    .venv/bin/python scripts/image_only_study.py cv runs/image-cv --minutes 10
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from recipe import FOLD_MODELS, folds, prepare_photo_folder  # noqa: E402

from deepmatting import predict  # noqa: E402
from deepmatting.backends import load_backend  # noqa: E402
from deepmatting.config import ModelConfig, TrainConfig  # noqa: E402
from deepmatting.data import SyntheticMattingDataset, read_alpha  # noqa: E402
from deepmatting.evaluate import evaluate  # noqa: E402
from deepmatting.metrics import whole_image_errors  # noqa: E402
from deepmatting.train import train  # noqa: E402

PHOTOS = ROOT.parent / "shared" / "data" / "alphamatting-lowres"
RESULTS = ROOT / "benchmarks" / "results"
HELD_OUT_SEED = 50_000


def constant_errors(alphas: list[np.ndarray], value: float) -> dict[str, float]:
    """Mean whole-image MAD and MSE of the constant mask ``value`` over ``alphas`` (HxW float [0,1])."""
    rows = [whole_image_errors(np.full(a.shape, value, np.float32), a) for a in alphas]
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def study_synthetic(run: Path, samples: int) -> dict:
    config = json.loads((run / "config.json").read_text())
    size = config["synthetic_size"]
    held_out = SyntheticMattingDataset(samples, size=size, seed=HELD_OUT_SEED)
    training = SyntheticMattingDataset(samples, size=size, seed=config["seed"])
    prior = float(np.mean([training[i]["alpha"].mean() for i in range(samples)]))
    gts = [held_out[i]["alpha"] for i in range(samples)]
    backend = load_backend(run / "best.pt", device="cpu")
    start = time.perf_counter()
    rows = [whole_image_errors(predict(held_out[i]["image"], backend=backend), gt)
            for i, gt in enumerate(gts)]
    model = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    steps = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()][-1]
    best_constant = float(np.median(np.concatenate([g.ravel() for g in gts])))
    report = {
        "run": str(run), "steps": steps.get("step"), "train_seconds": steps.get("elapsed_s"),
        "held_out": {"samples": samples, "size": size, "seed": HELD_OUT_SEED},
        "model": model, "seconds_per_sample": (time.perf_counter() - start) / samples,
        "constant_training_mean": {"value": prior, **constant_errors(gts, prior)},
        "constant_best_for_mad": {"value": best_constant, **constant_errors(gts, best_constant)},
    }
    report["mad_ratio_to_training_mean"] = model["mad"] / report["constant_training_mean"]["mad"]
    report["mad_ratio_to_best_constant"] = model["mad"] / report["constant_best_for_mad"]["mad"]
    return report


def study_cv(out: Path, minutes: float, crop: int) -> dict:
    names = sorted(p.stem for p in (PHOTOS / "images").glob("*.png"))
    fold_names = folds(names)
    report: dict = {"minutes_per_fold": minutes, "crop": crop, "folds": {}}
    rows, constant_rows = [], []
    for tag, (train_names, test_names) in zip(FOLD_MODELS, [(fold_names[1], fold_names[0]),
                                                             (fold_names[0], fold_names[1])], strict=True):
        data = prepare_photo_folder(PHOTOS, train_names, out / tag / "data")
        test = prepare_photo_folder(PHOTOS, test_names, out / tag / "test")
        model = ModelConfig(arch="effnet-lite0", input="image")
        cfg = TrainConfig(model=model, data=str(data), val=str(data), epochs=None, max_minutes=minutes,
                          crop=crop, amp=True, device="cpu", workers=0,
                          val_every=10**6, checkpoint_every=50)
        run = out / tag / "run"
        summary = train(cfg, run, resume=(run / "last.pt").exists(), progress=False)
        result = evaluate(test, run / "last.pt", device="cpu", progress=False, printer=lambda s: None)
        prior = float(np.mean([read_alpha(PHOTOS / "alphas" / f"{n}.png").mean() for n in train_names]))
        gts = [read_alpha(PHOTOS / "alphas" / f"{n}.png") for n in test_names]
        constant_rows += [whole_image_errors(np.full(g.shape, prior, np.float32), g) for g in gts]
        rows += result["images"]
        report["folds"][tag] = {"trained_on": train_names, "scored_on": test_names, "steps": summary["steps"],
                                "mean": result["mean"], "constant": prior}
    report["images"] = rows
    report["model"] = {k: float(np.mean([r[k] for r in rows])) for k in ("mad", "mse_whole", "sad", "mse",
                                                                        "grad", "conn")}
    report["constant_training_mean"] = {k: float(np.mean([r[k] for r in constant_rows]))
                                        for k in ("mad", "mse_whole")}
    return report


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="study", required=True)
    s = sub.add_parser("synthetic")
    s.add_argument("run", type=Path)
    s.add_argument("--samples", type=int, default=64)
    c = sub.add_parser("cv")
    c.add_argument("out", type=Path)
    c.add_argument("--minutes", type=float, default=10.0)
    c.add_argument("--crop", type=int, default=320)
    args = p.parse_args()
    if args.study == "synthetic":
        report, name = study_synthetic(args.run, args.samples), "image_only_synthetic.json"
    else:
        report, name = study_cv(args.out, args.minutes, args.crop), "image_only_cv.json"
    (RESULTS / name).write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k not in ("images",)}, indent=1))
    print(f"wrote {RESULTS / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
