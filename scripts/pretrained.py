"""Reproduce a shipped model (``make pretrained``: the fusion quality): two cross-validation folds, then the
final model on all the photos.

    .venv/bin/python scripts/pretrained.py --recipe fusion --out runs/fusion \
        [--install src/deepmatting/weights/fusion.pt]

Writes ``OUT/report_cv.json`` after the folds and ``OUT/report.json`` at the end (per-image and mean metrics
of the fold models on the photos they did not see, with Trimap1 and Trimap2, against the trimap floor and
pymatting's closed-form and KNN) and a copy as ``benchmarks/results/pretrained_RECIPE.json``. The package's
weights are written only with ``--install`` (with their provenance: recipe, steps, photos seen).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from recipe import RECIPES, run_recipe  # scripts/recipe.py, beside this script

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photos", default=str(ROOT.parent / "shared" / "data" / "alphamatting-lowres"))
    p.add_argument("--out", default="runs/pretrained")
    p.add_argument("--recipe", default="fusion", choices=sorted(RECIPES))
    p.add_argument("--steps", type=int, default=None, help="training steps per model (recipe default)")
    p.add_argument("--minutes", type=float, default=None, help="a time budget per model instead of steps")
    p.add_argument(
        "--install", default=None, help="write the final model here (the package's default weights)"
    )
    p.add_argument("--baselines", default="trimap,pymatting-closed-form,pymatting-knn")
    args = p.parse_args()
    photos = Path(args.photos)
    if not (photos / "images").is_dir():
        print(f"no photos at {photos}: the recipe needs the real photos with ground truth", file=sys.stderr)
        return 2
    baselines = tuple(b for b in args.baselines.split(",") if b)
    report = run_recipe(photos, args.out, args.recipe, steps=args.steps, minutes=args.minutes,
                        baselines=baselines, install_to=args.install)
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(args.out) / "report.json", results / f"pretrained_{args.recipe}.json")
    print(
        json.dumps(
            {t: {m: r["mean"] for m, r in s.items()} for t, s in report["trimap_sets"].items()}, indent=1
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
