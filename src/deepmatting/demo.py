"""The main job on the built-in default: synthetic data -> training -> held-out evaluation -> figures.

``run_demo`` (what ``make demo`` and ``deepmatting demo`` run) needs no data and no network:

1. writes a held-out synthetic set to ``OUT/heldout/`` (images/, masks/, trimaps/ — the ``CustomDataset``
   layout, so ``deepmatting evaluate`` and ``predict`` can be pointed at it too);
2. trains the default architecture on procedurally generated samples within a time budget
   (``OUT/best.pt``, ``OUT/last.pt``, ``OUT/metrics.jsonl``, ``OUT/curves.png``);
3. evaluates the best checkpoint on the held-out set against the trimap baseline and the package's own
   closed-form matting, writes ``OUT/metrics.json`` and prints the table;
4. writes side-by-side figures (image | predicted alpha | masked image | ground truth | error) to
   ``OUT/figures/``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

from .config import ModelConfig, TrainConfig
from .evaluate import baseline_predictors, format_table, score_methods
from .metrics import METRIC_NAMES

DEMO_DEFAULTS = {
    "max_minutes": 10.0,
    "train_samples": 1200,
    "heldout": 24,
    "size": 320,
    "batch_size": 8,
    "crop": 256,
}


def write_heldout(root: Path, n: int, size: int, seed: int) -> Path:
    """Write ``n`` synthetic samples as PNGs in the CustomDataset layout under ``root``."""
    from .data import SyntheticMattingDataset

    dataset = SyntheticMattingDataset(n, size=size, seed=seed)
    for sub in ("images", "masks", "trimaps"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        s = dataset[i]
        name = f"synthetic_{i:03d}.png"
        Image.fromarray(np.round(s["image"] * 255).astype(np.uint8)).save(root / "images" / name)
        Image.fromarray(np.round(s["alpha"] * 255).astype(np.uint8)).save(root / "masks" / name)
        Image.fromarray(s["trimap"]).save(root / "trimaps" / name)
    return root


def run_demo(
    out: str | os.PathLike = "runs/demo",
    max_minutes: float = DEMO_DEFAULTS["max_minutes"],
    *,
    train_samples: int = DEMO_DEFAULTS["train_samples"],
    heldout: int = DEMO_DEFAULTS["heldout"],
    size: int = DEMO_DEFAULTS["size"],
    crop: int = DEMO_DEFAULTS["crop"],
    batch_size: int = DEMO_DEFAULTS["batch_size"],
    workers: int = 1,
    seed: int = 0,
    device: str = "auto",
    amp: bool = False,
    figures: int = 4,
    classical: tuple[str, ...] = ("closed-form",),
    progress: bool = True,
) -> dict:
    """Run the whole demo; returns ``{"metrics": {method: means}, "paths": {...}}``.

    ``max_minutes`` is the training budget; ``classical`` names the classical baselines scored beside the
    trimap floor (skipped with a note when ``pymatting`` is missing). Data generation, evaluation and
    figures add about a minute on 2 CPU cores. The held-out set uses another seed than the training set,
    so the scores are on unseen samples.
    """
    from .backends import load_backend
    from .data import CustomDataset
    from .inference import sample_predictor
    from .train import train
    from .visualize import side_by_side

    out = Path(out)
    start = time.monotonic()
    heldout_dir = write_heldout(out / "heldout", heldout, size, seed + 50_000)
    print(f"[1/4] wrote {heldout} held-out synthetic samples to {heldout_dir}")

    cfg = TrainConfig(
        model=ModelConfig(),
        epochs=None,  # until the time budget
        batch_size=batch_size,
        lr=2e-3,
        crop=crop,
        workers=workers,
        seed=seed,
        amp=amp,
        device=device,
        max_minutes=max_minutes,
        checkpoint_every=100,
        synthetic_train=train_samples,
        synthetic_val=8,
        synthetic_size=size,
    )
    print(f"[2/4] training {cfg.model.arch} on synthetic data for {max_minutes:g} minutes (budget)")
    summary = train(cfg, out, resume=False, progress=progress, overwrite=True)  # each demo is a fresh run

    print("[3/4] evaluating the best checkpoint on the held-out set")
    dataset = CustomDataset(heldout_dir)
    predictor = sample_predictor(load_backend(out / "best.pt", device=device))  # evaluation and figures
    predictors = {"model": predictor, **baseline_predictors(("trimap", *classical), skip_missing=True)}
    results = score_methods(predictors, dataset, progress=progress)
    print(format_table(results))
    metrics = {m: {k: r["mean"][k] for k in METRIC_NAMES} for m, r in results.items()}
    for m, r in results.items():
        metrics[m]["seconds_per_image"] = r["seconds"]
    metrics_path = out / "metrics.json"
    metrics_path.write_text(json.dumps(metrics, indent=2))

    print("[4/4] writing figures")
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    figure_paths = []
    for i in range(min(figures, len(dataset))):
        sample = dataset[i]
        alpha = predictor(sample)
        path = fig_dir / f"{sample['name']}_figure.png"
        side_by_side(sample["image"], alpha, path, gt=sample["alpha"], trimap=sample["trimap"])
        figure_paths.append(str(path))
    beat = {k: metrics["model"][k] < metrics["trimap"][k] for k in METRIC_NAMES}
    beaten = ", ".join(k.upper() for k, v in beat.items() if v)
    paths = {
        "best": str(out / "best.pt"),
        "last": str(out / "last.pt"),
        "metrics": str(metrics_path),
        "curves": str(out / "curves.png"),
        "figures": figure_paths,
        "heldout": str(heldout_dir),
    }
    print(
        f"\ndone in {(time.monotonic() - start) / 60:.1f} min ({summary['steps']} training steps).\n"
        f"  model beats the trimap baseline on: {beaten or 'nothing'}\n"
        f"  checkpoint  {paths['best']}\n  metrics     {paths['metrics']}\n  curves      {paths['curves']}\n"
        f"  figures     {fig_dir}/\n  held-out    {heldout_dir}/\n"
        f"  next: deepmatting predict --checkpoint {paths['best']} --image {heldout_dir}/images "
        f"--trimap {heldout_dir}/trimaps --out {out}/predictions --figure"
    )
    return {"metrics": metrics, "paths": paths, "beats_trimap": beat, "train": summary}
