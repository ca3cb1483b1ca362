"""Figure of synthetic training samples: image | alpha | trimap, one sample per row.

    .venv/bin/python scripts/figure_synthetic.py [--out docs/images/synthetic_samples.png] [--seed 0]

Writes ``docs/images/synthetic_samples.png`` (kept small enough for the README).
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from deepmatting.data import SyntheticMattingDataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "synthetic_samples.png")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--indices", type=int, nargs="+", default=[0, 3, 7, 11])
    parser.add_argument("--size", type=int, default=320)
    args = parser.parse_args()

    ds = SyntheticMattingDataset(max(args.indices) + 1, size=args.size, seed=args.seed)
    rows = len(args.indices)
    fig, axes = plt.subplots(rows, 3, figsize=(7.5, 2.55 * rows), squeeze=False)
    for r, i in enumerate(args.indices):
        s = ds[i]
        frac = float(((s["alpha"] > 0) & (s["alpha"] < 1)).mean())
        unknown = float((s["trimap"] == 128).mean())
        panels = [(s["image"], f"{s['name']}: image", None),
                  (s["alpha"], f"alpha ({100 * frac:.0f}% fractional)", "gray"),
                  (s["trimap"], f"trimap ({100 * unknown:.0f}% unknown)", "gray")]
        for ax, (img, title, cmap) in zip(axes[r], panels, strict=True):
            vmax = 255 if img.dtype == np.uint8 else 1
            ax.imshow(img, cmap=cmap, vmin=0, vmax=vmax, interpolation="nearest")
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    fig.suptitle("SyntheticMattingDataset: hair, fur, glass, smoke, lace over textured backgrounds",
                 fontsize=9)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    # Noisy textures compress badly; a 256-colour palette keeps the PNG small and looks the same here.
    Image.open(buf).convert("RGB").quantize(256).save(args.out, optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
