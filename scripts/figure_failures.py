"""The README's known-failure figure: photos where the model fails, beside the truth and closed-form.

Each row is one shared photo scored by a fold model that never saw it (``fold_a`` models saw the second
fold only, see ``scripts/recipe.py``): the photo, its trimap, the ground truth, the model's alpha and
closed-form matting's (and, with ``--refiner``, a refining model's), each alpha titled with its SAD.

    .venv/bin/python scripts/figure_failures.py runs/pretrained/fold_a/last.pt --photos-named GT13 GT21 \
        --out docs/images/failure_cases.png
    .venv/bin/python scripts/figure_failures.py runs/fusion/fold_a/last.pt runs/fusion/fold_b/last.pt \
        --knn --photos-named GT13 GT27 --out docs/images/fusion_worst.png

With several fold models, each photo is scored by the one that held it out (``recipe.held_out``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from recipe import folds, held_out  # scripts/recipe.py

from deepmatting import predict
from deepmatting.backends import load_backend
from deepmatting.closed_form import closed_form_alpha
from deepmatting.data import CustomDataset
from deepmatting.knn_matting import knn_alpha
from deepmatting.metrics import sad_score
from deepmatting.visualize import panel_grid

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "data" / "alphamatting-lowres"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="+", help="fold models (OUT/fold_a/last.pt ...) that did not see "
                   "the photos; each photo is scored by the one that held it out")
    p.add_argument("--photos", default=str(PHOTOS))
    p.add_argument("--photos-named", nargs="+", default=["GT13", "GT21"])
    p.add_argument("--refiner", default=None, help="also show this model (e.g. the effnet-cf fold model)")
    p.add_argument("--knn", action="store_true", help="also show KNN matting")
    p.add_argument("--trimaps", default="trimaps", help="trimaps (Trimap1) or trimaps_alt (Trimap2)")
    p.add_argument("--out", default=str(ROOT / "docs" / "images" / "failure_cases.png"))
    args = p.parse_args()
    dataset = CustomDataset(args.photos, trimaps=args.trimaps)
    fold_names = folds(dataset.names)
    backends = {Path(c): load_backend(c) for c in args.checkpoints}

    def scorer(name: str):
        if len(backends) == 1:
            return next(iter(backends.values()))
        return next(b for c, b in backends.items() if name in held_out(c, fold_names))

    refiner = load_backend(args.refiner) if args.refiner else None
    rows = []
    for name in args.photos_named:
        sample = dataset[dataset.names.index(name)]
        image, truth, trimap = sample["image"], sample["alpha"], sample["trimap"]
        model = predict(image, trimap, backend=scorer(name))
        classical = closed_form_alpha(image, trimap)
        rows.append([
            (image, name),
            (trimap / 255, "trimap"),
            (truth, "ground truth"),
            (model, f"model, SAD {sad_score(model, truth, trimap):.1f}"),
            (classical, f"closed-form, SAD {sad_score(classical, truth, trimap):.1f}"),
        ])
        if args.knn:
            knn = knn_alpha(image, trimap)
            rows[-1].append((knn, f"KNN, SAD {sad_score(knn, truth, trimap):.1f}"))
        if refiner is not None:
            refined = predict(image, trimap, backend=refiner)
            rows[-1].append((refined, f"best quality, SAD {sad_score(refined, truth, trimap):.1f}"))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    panel_grid(rows, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
