"""How much alpha a method gives pure background inside the unknown region (the "ghost band").

    .venv/bin/python scripts/background_alpha.py runs/pretrained/fold_a/last.pt [runs/.../fold_b/last.pt]

For every photo of the shared set scored by the given fold models (``fold_a`` scores the first fold,
``fold_b`` the second, as in ``scripts/recipe.py``), the pixels with trimap 128 and ground-truth alpha 0 are
pure background that the trimap left open; a perfect matte gives them 0. Prints, per photo and trimap set,
the mean alpha each method gives them, and the mean over the photos.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from recipe import folds, held_out  # scripts/recipe.py, beside this script

from deepmatting.backends import load_backend
from deepmatting.data import CustomDataset
from deepmatting.evaluate import baseline_predictors
from deepmatting.inference import sample_predictor

ROOT = Path(__file__).resolve().parents[1]


def background_alpha(alpha: np.ndarray, truth: np.ndarray, trimap: np.ndarray) -> float:
    """Mean of ``alpha`` (HxW, [0, 1]) over pixels with ``trimap == 128`` (uint8) and ``truth == 0``."""
    open_background = (trimap == 128) & (truth == 0)
    return float(alpha[open_background].mean()) if open_background.any() else float("nan")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="+", help="fold models: OUT/fold_a/last.pt, OUT/fold_b/last.pt")
    p.add_argument("--photos", default=str(ROOT.parent / "shared" / "data" / "alphamatting-lowres"))
    p.add_argument("--baselines", default="closed-form,knn")
    p.add_argument("--json", default=None, help="also write the numbers here")
    args = p.parse_args()
    photos = Path(args.photos)
    fold_names = folds(CustomDataset(photos).names)
    baselines = baseline_predictors([b for b in args.baselines.split(",") if b], skip_missing=True)
    # each fold model once, with the photos it did not see
    models = [(sample_predictor(load_backend(c)), held_out(Path(c), fold_names)) for c in args.checkpoints]
    out: dict = {}
    for trimaps in ("trimaps", "trimaps_alt"):
        dataset = CustomDataset(photos, trimaps=trimaps)
        rows: dict[str, dict[str, float]] = {}
        for model, scored in models:
            for name in scored:
                sample = dataset[dataset.names.index(name)]
                methods = {"model": model, **baselines}
                rows[name] = {m: background_alpha(f(sample), sample["alpha"], sample["trimap"])
                              for m, f in methods.items()}
                print(trimaps, name, {m: round(v, 4) for m, v in rows[name].items()}, flush=True)
        means = {m: float(np.nanmean([r[m] for r in rows.values()])) for m in next(iter(rows.values()))}
        print(f"{trimaps}: mean over {len(rows)} photos: {({m: round(v, 4) for m, v in means.items()})}")
        out[trimaps] = {"photos": rows, "mean": means}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
