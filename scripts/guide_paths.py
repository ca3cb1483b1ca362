"""Each quality on the three guides a user gives: a trimap, a segmenter's mask and two scribbled strokes.

Issue #25 asks that the default quality be measured on the mask and scribble paths too (the fast model lost
most of the giraffe from two strokes). For every shared photo a model never saw, three guides are made
from its ground truth, each the same for every method:

- ``trimap``: the photo's Trimap1 (the benchmark's);
- ``mask``: a segmenter-like mask (``figure_mask.segmenter_like_mask``: the shape at 1/8 resolution,
  upsampled, a speck and a pin-hole), turned into a trimap as ``predict --mask`` does (``mask_to_trimap``);
- ``scribbles``: two strokes as a user draws them on the page (``scribble_strokes``): a cross through the
  subject's definite foreground and an L along the image's top and left edges in the definite background,
  each 7 px wide, turned into a trimap as the page does (``serve.app.scribbles_to_trimap``).

Photos: the first fold's 7 (GT01, GT05, ..., GT25), which none of the networks saw. Methods: ``fast`` and
``best`` (the shipped weights, trained on the second fold), ``fusion`` (the ``fold_a`` model of a
``scripts/pretrained.py --recipe fusion`` run, trained on the second fold: the shipped fusion saw all 14
photos), and the package's closed-form and KNN solvers. Whole-image SAD and MSE (x1000) against the ground
truth, because the guides' unknown regions differ.

    .venv/bin/python scripts/guide_paths.py --fusion-run runs/fusion
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from figure_mask import PHOTOS, segmenter_like_mask  # noqa: E402
from recipe import FOLD_MODELS, folds  # noqa: E402

from deepmatting import predict  # noqa: E402
from deepmatting.closed_form import closed_form_alpha  # noqa: E402
from deepmatting.data import read_alpha, read_image, read_trimap  # noqa: E402
from deepmatting.inference import load_backend, mask_to_trimap  # noqa: E402
from deepmatting.knn_matting import knn_alpha  # noqa: E402
from deepmatting.metrics import mse_score, sad_score  # noqa: E402
from deepmatting.serve.app import scribbles_to_trimap  # noqa: E402

STROKE = 3  # half-width of a stroke, px
GUIDES = ("trimap", "mask", "scribbles")


def scribble_strokes(alpha: np.ndarray) -> np.ndarray:
    """``HxWx4`` uint8 RGBA strokes for the ground truth ``alpha`` (HxW float in [0,1]): a white cross through
    the centre of the definite foreground (eroded by 10 px), a black L along the top and left edges where the
    background is definite; transparent elsewhere."""
    h, w = alpha.shape
    fg = ndimage.binary_erosion(alpha >= 1, iterations=10)
    bg = ndimage.binary_erosion(alpha <= 0, iterations=10)
    if not fg.any():
        fg = alpha >= 1
    ys, xs = np.nonzero(fg)
    cy, cx = int(np.median(ys)), int(np.median(xs))
    cross = np.zeros((h, w), bool)
    cross[cy, :] = cross[:, cx] = True
    ell = np.zeros((h, w), bool)
    ell[h // 20, :] = ell[:, w // 20] = True
    white = ndimage.binary_dilation(cross & fg, iterations=STROKE)
    black = ndimage.binary_dilation(ell & bg, iterations=STROKE) & ~white
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[white] = (255, 255, 255, 255)
    rgba[black] = (0, 0, 0, 255)
    return rgba


def guides(name: str, alpha: np.ndarray) -> dict[str, np.ndarray]:
    """The three trimaps (HxW uint8 {0, 128, 255}) of one photo."""
    return {"trimap": read_trimap(PHOTOS / "trimaps" / f"{name}.png"),
            "mask": mask_to_trimap(segmenter_like_mask(alpha)),
            "scribbles": scribbles_to_trimap(scribble_strokes(alpha))}


def methods_for(image: np.ndarray, backends: dict) -> dict:
    """``{method: trimap -> alpha}`` for one ``HxWx3`` image: each backend through ``predict``, and the
    package's closed-form and KNN solvers."""
    runs = {name: (lambda t, b=b: predict(image, t, backend=b)) for name, b in backends.items()}
    runs["closed-form"] = lambda t: closed_form_alpha(image, t)
    runs["knn"] = lambda t: knn_alpha(image, t)
    return runs


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fusion-run", type=Path, required=True, help="a fusion recipe run with fold_a/")
    p.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "guide_paths.json")
    args = p.parse_args()
    names = sorted(f.stem for f in (PHOTOS / "images").glob("*.png"))
    photos = folds(names)[0]  # the fold that fast, best and the fusion run's fold_a model never saw
    backends = {q: load_backend(quality=q, device="cpu") for q in ("fast", "best")}
    backends["fusion"] = load_backend(args.fusion_run / FOLD_MODELS[0] / "best.pt", device="cpu")
    rows = []
    for name in photos:
        image = read_image(PHOTOS / "images" / f"{name}.png")
        gt = read_alpha(PHOTOS / "alphas" / f"{name}.png")
        for guide, trimap in guides(name, gt).items():
            for method, run in methods_for(image, backends).items():
                start = time.perf_counter()
                alpha = run(trimap)
                seconds = time.perf_counter() - start
                rows.append({"photo": name, "guide": guide, "method": method, "seconds": seconds,
                             "unknown_fraction": float(np.mean(trimap == 128)),
                             "sad": sad_score(alpha, gt), "mse_x1000": 1000 * mse_score(alpha, gt)})
                print(f"{name} {guide:9s} {method:11s} SAD {rows[-1]['sad']:7.2f}  {seconds:6.2f} s",
                      flush=True)
    summary: dict = {}
    for r in rows:
        summary.setdefault(r["guide"], {}).setdefault(r["method"], []).append(r)
    keys = ("sad", "mse_x1000", "seconds")
    summary = {guide: {method: {k: float(np.mean([r[k] for r in sel])) for k in keys}
                       for method, sel in by_method.items()} for guide, by_method in summary.items()}
    print(f"\nmean whole-image SAD / MSE x1000 / seconds over {', '.join(photos)}")
    for guide, by_method in summary.items():
        print(f"  {guide:9s} " + "  ".join(f"{m} {v['sad']:.2f}/{v['mse_x1000']:.1f}/{v['seconds']:.2f}s"
                                          for m, v in by_method.items()))
    report = {"fusion_run": str(args.fusion_run), "photos": photos, "stroke_half_width": STROKE,
              "summary": summary, "rows": rows}
    args.json.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
