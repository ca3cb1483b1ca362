"""Score one fold model of a recipe on the photos it did not see (half a cross-validation).

    .venv/bin/python scripts/score_holdout.py runs/cf/fold_a/last.pt --recipe effnet-cf \
        --out runs/cf/report_fold_a.json

``fold_a`` is trained on the second fold and scores the first; ``fold_b`` the reverse (``recipe.folds``).
Writes a report in the layout of ``scripts/pretrained.py`` (``scripts/cv_tables.py`` reads it), for when
only one fold model could be trained.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from recipe import RECIPES, cross_validate, folds, held_out, recipe_summary  # scripts/recipe.py

from deepmatting.data import CustomDataset
from deepmatting.evaluate import public_result

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="OUT/fold_a/last.pt or OUT/fold_b/last.pt of a recipe run")
    p.add_argument("--photos", default=str(ROOT.parent / "shared" / "data" / "alphamatting-lowres"))
    p.add_argument("--recipe", default="effnet", choices=sorted(RECIPES))
    p.add_argument("--out", required=True, help="the report to write (JSON)")
    p.add_argument("--baselines", default="trimap,closed-form,knn")
    args = p.parse_args()
    checkpoint, photos = Path(args.checkpoint), Path(args.photos)
    try:
        scored = held_out(checkpoint, folds(CustomDataset(photos).names))
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    baselines = tuple(b for b in args.baselines.split(",") if b)
    tables = cross_validate(photos, [checkpoint], (scored,), baselines)
    report = {
        "recipe": recipe_summary(RECIPES[args.recipe]),
        "photos": str(photos),
        "checkpoint": str(checkpoint),
        "scored": scored,
        "trimap_sets": {t: {m: public_result(r) for m, r in tab.items()} for t, tab in tables.items()},
    }
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"report: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
