"""The README's "from a segmenter's mask" figure: a coarse mask -> the derived trimap -> alpha -> cutout.

A segmenter (rembg, SAM, a person segmenter) gives a mask at low resolution, soft at its edge, with the odd
speck and hole. This script makes one like that from a shared photo's ground truth (thresholded, computed
at 1/8 resolution and upsampled bilinearly, a speck and a hole added), then runs exactly what
``deepmatting predict --image PHOTO --mask MASK --outputs alpha,cutout,trimap`` runs, and draws the steps.

    .venv/bin/python scripts/figure_mask.py --photo GT01 --out docs/images/mask_pipeline.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from deepmatting import cutout, predict
from deepmatting.data import read_alpha, read_image, resize_array
from deepmatting.inference import mask_to_trimap
from deepmatting.visualize import checkerboard, panel_grid

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "data" / "alphamatting-lowres"


def segmenter_like_mask(alpha: np.ndarray, factor: int = 8) -> np.ndarray:
    """A mask as a segmenter gives it: the shape at 1/``factor`` resolution, upsampled, a speck, a hole."""
    h, w = alpha.shape
    small = resize_array((alpha > 0.5).astype(np.float32), (h // factor, w // factor))
    mask = resize_array(small, (h, w))
    ys, xs = np.nonzero(alpha > 0.99)
    cy, cx = int(np.median(ys)), int(np.median(xs))
    mask[cy - 4:cy + 4, cx - 4:cx + 4] = 0.0  # a pin-hole inside the subject
    mask[8:14, 8:14] = 1.0  # a speck in the background
    return np.clip(mask, 0, 1)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photos", default=str(PHOTOS))
    p.add_argument("--photo", default="GT01")
    p.add_argument("--out", default=str(ROOT / "docs" / "images" / "mask_pipeline.png"))
    args = p.parse_args()
    photos = Path(args.photos)
    image = read_image(next((photos / "images").glob(f"{args.photo}.*")))
    mask = segmenter_like_mask(read_alpha(next((photos / "alphas").glob(f"{args.photo}.*"))))
    trimap = mask_to_trimap(mask)  # what predict derives from the mask
    alpha = predict(image, mask=mask)
    rgba = cutout(image, alpha).astype(np.float32) / 255
    h, w = alpha.shape
    board = checkerboard(h, w, square=max(4, h // 40))
    shown = rgba[..., 3:] * rgba[..., :3] + (1 - rgba[..., 3:]) * board
    panels = [(image, "photo"), (mask, "coarse mask (a segmenter's)"), (trimap / 255, "derived trimap"),
              (alpha, "alpha"), (shown, "cutout")]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    panel_grid([panels], args.out, panel_inches=3.2)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
