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

from recipe import RECIPES, cross_validate, folds  # scripts/recipe.py, beside this script

from deepmatting.config import ModelConfig
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
    fold = checkpoint.parent.name
    if fold not in ("fold_a", "fold_b"):
        print(f"{checkpoint}: expected a checkpoint inside a fold_a/ or fold_b/ folder", file=sys.stderr)
        return 2
    fold_names = folds(CustomDataset(photos).names)
    scored = fold_names[0] if fold == "fold_a" else fold_names[1]
    baselines = tuple(b for b in args.baselines.split(",") if b)
    tables = cross_validate(photos, [checkpoint], (scored,), baselines)
    rec = RECIPES[args.recipe]
    report = {
        "recipe": {k: (v if not isinstance(v, ModelConfig) else v.__dict__) for k, v in rec.__dict__.items()},
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
