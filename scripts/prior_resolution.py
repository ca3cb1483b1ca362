"""How a fusion model's quality and time follow the size its classical mattes are solved at (the ``fast``
quality's design: cheap priors, the network at full resolution), cross-validated.

    .venv/bin/python scripts/prior_resolution.py runs/fusion --pixels 1000000 100000 50000 \
        --json benchmarks/results/prior_resolution.json

Each fold model (``RUN/fold_a/last.pt``, ``RUN/fold_b/last.pt``) scores the photos it did not see with both
trimap sets, its mattes solved at most at each ``--pixels`` (``ModelConfig.prior_pixels``; larger photos
are solved smaller and the mattes upsampled bilinearly), and pymatting's closed-form runs on the same photos
in the same loop for the time scale. Prints the means and the speed-up over pymatting per setting.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from recipe import FOLD_MODELS, folds  # scripts/recipe.py

from deepmatting.backends import load_backend
from deepmatting.data import CustomDataset
from deepmatting.evaluate import baseline_predictor
from deepmatting.inference import sample_predictor
from deepmatting.metrics import evaluate_all
from deepmatting.models import DeepMatting

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("sad", "mse", "grad", "conn")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a fusion recipe's run folder (fold_a/ and fold_b/ inside)")
    p.add_argument("--photos", default=str(ROOT.parent / "shared" / "data" / "alphamatting-lowres"))
    p.add_argument("--pixels", type=int, nargs="+", default=[1_000_000, 100_000, 50_000])
    p.add_argument("--json", default=None)
    args = p.parse_args()
    photos, run = Path(args.photos), Path(args.run)
    fold_names = folds(CustomDataset(photos).names)
    reference = baseline_predictor("pymatting-closed-form")
    out: dict = {"run": str(run), "settings": {}}
    for trimaps in ("trimaps", "trimaps_alt"):
        dataset = CustomDataset(photos, trimaps=trimaps)
        rows: dict[str, list[dict]] = {str(n): [] for n in args.pixels}
        rows["pymatting closed-form"] = []
        for fold, scored in zip(FOLD_MODELS, fold_names, strict=True):
            models = {}
            for pixels in args.pixels:
                model = DeepMatting.from_checkpoint(run / fold / "last.pt")
                model.prior_pixels = pixels
                models[str(pixels)] = sample_predictor(load_backend(model))
            models["pymatting closed-form"] = reference
            for name in scored:
                sample = dataset[dataset.names.index(name)]
                for method, predictor in models.items():
                    start = time.perf_counter()
                    alpha = predictor(sample)
                    seconds = time.perf_counter() - start
                    rows[method].append({"name": name, "seconds": seconds,
                                         **evaluate_all(alpha, sample["alpha"], sample["trimap"])})
        reference_time = np.mean([r["seconds"] for r in rows["pymatting closed-form"]])
        print(f"\n{trimaps}:\n| solved at (pixels) | SAD | MSE | Grad | Conn | s / photo | x faster than "
              "pymatting CF |\n|---|---|---|---|---|---|---|")
        summary = {}
        for method, per in rows.items():
            mean = {k: float(np.mean([r[k] for r in per])) for k in (*METRICS, "seconds")}
            mean["speedup"] = float(reference_time / mean["seconds"])
            summary[method] = {"mean": mean, "images": per}
            print(f"| {method} | " + " | ".join(f"{mean[k]:.4g}" for k in (*METRICS, "seconds", "speedup"))
                  + " |")
        out["settings"][trimaps] = summary
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
