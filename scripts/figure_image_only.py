"""The README's image-only figure: photos matted from the image alone by the cross-validated fold models
of ``scripts/image_only_study.py cv`` (each photo by the model that never saw it), beside the ground truth
and the shipped default model given Trimap1 (which was trained on all 14 photos, these included).

    .venv/bin/python scripts/figure_image_only.py --run runs/image-cv --photos GT01 GT13 GT27
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from figure_mask import PHOTOS  # noqa: E402
from recipe import FOLD_MODELS, folds  # noqa: E402

from deepmatting import cutout, predict  # noqa: E402
from deepmatting.backends import load_backend  # noqa: E402
from deepmatting.data import read_alpha, read_image, read_trimap  # noqa: E402
from deepmatting.metrics import whole_image_errors  # noqa: E402
from deepmatting.visualize import checkerboard, panel_grid  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, required=True, help="the cv study's folder (fold_a/run, fold_b/run)")
    p.add_argument("--photos", nargs="+", default=["GT01", "GT13", "GT27"])
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "image_only.png")
    args = p.parse_args()
    first = folds(sorted(f.stem for f in (PHOTOS / "images").glob("*.png")))[0]
    backends = {fold: load_backend(args.run / fold / "run" / "last.pt", device="cpu") for fold in FOLD_MODELS}
    rows = []
    for name in args.photos:
        image = read_image(PHOTOS / "images" / f"{name}.png")
        gt = read_alpha(PHOTOS / "alphas" / f"{name}.png")
        fold = FOLD_MODELS[0] if name in first else FOLD_MODELS[1]  # the model that did not see the photo
        alpha = predict(image, backend=backends[fold])
        with_trimap = predict(image, read_trimap(PHOTOS / "trimaps" / f"{name}.png"))
        rgba = cutout(image, alpha).astype(np.float32) / 255
        board = checkerboard(*alpha.shape, square=max(4, alpha.shape[0] // 40))
        shown = rgba[..., 3:] * rgba[..., :3] + (1 - rgba[..., 3:]) * board
        mad = whole_image_errors(alpha, gt)["mad"]
        rows.append([(image, f"{name}: photo"), (gt, "ground truth"),
                     (alpha, f"image alone (MAD {mad:.3f})"), (shown, "its cutout"),
                     (with_trimap, "default + Trimap1 (it saw them)")])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    panel_grid(rows, args.out, panel_inches=2.6)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
