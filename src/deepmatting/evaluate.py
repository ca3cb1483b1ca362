"""Metric tables over a folder: the model (and optionally a classical baseline) on every image.

``evaluate_dataset`` runs any predictor ``sample -> alpha`` over a dataset and computes the four benchmark
metrics (SAD, MSE, Grad, Conn on the trimap's unknown region, see ``deepmatting.metrics``); ``evaluate`` is
what ``deepmatting evaluate`` calls. Baselines: ``trimap`` (unknown = 0.5, the floor any model must beat),
``closed-form`` and ``knn`` (Levin et al. 2008 and Chen et al. 2013, from the optional ``pymatting`` extra).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .tensors import TRIMAP_BG, TRIMAP_FG, trimap_to_float

METRIC_NAMES = ("sad", "mse", "grad", "conn")
BASELINES = ("trimap", "closed-form", "knn")
Predictor = Callable[[dict], np.ndarray]


def model_predictor(model, device="auto") -> Predictor:
    """A predictor running ``model`` (a DeepMatting) through the inference path at full resolution."""
    from .inference import TorchBackend

    return backend_predictor(TorchBackend(model, device=device))


def backend_predictor(backend) -> Predictor:
    """A predictor for any inference backend (PyTorch or onnxruntime)."""
    from .inference import predict

    return lambda sample: predict(sample["image"], sample["trimap"], backend=backend)


def _known_exact(alpha: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    alpha = np.clip(alpha, 0.0, 1.0).astype(np.float32)
    alpha[trimap == TRIMAP_BG] = 0.0
    alpha[trimap == TRIMAP_FG] = 1.0
    return alpha


def baseline_predictor(name: str) -> Predictor:
    """A classical method as a predictor: ``trimap``, ``closed-form`` or ``knn``."""
    if name == "trimap":
        return lambda sample: trimap_to_float(sample["trimap"])
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose one of {list(BASELINES)}")
    try:
        import pymatting
    except ImportError as e:
        raise ImportError(f"the {name} baseline needs pymatting: pip install 'deepmatting[baseline]'") from e
    method = pymatting.estimate_alpha_cf if name == "closed-form" else pymatting.estimate_alpha_knn

    def run(sample: dict) -> np.ndarray:
        image = sample["image"].astype(np.float64)
        trimap = trimap_to_float(sample["trimap"]).astype(np.float64)
        return _known_exact(method(image, trimap), sample["trimap"])

    return run


def evaluate_dataset(
    predictor: Predictor,
    dataset: Sequence[dict],
    indices: Sequence[int] | None = None,
    progress: bool = True,
    save_alphas: str | os.PathLike | None = None,
    desc: str = "evaluate",
) -> dict:
    """Run ``predictor`` on every sample and score it.

    Returns
    -------
    dict with ``images`` (one ``{"name", "sad", "mse", "grad", "conn", "seconds"}`` per sample), ``mean``
    (of each metric), ``sums`` and ``count`` (to reduce across processes), and ``sample`` (the first
    sample's ``alpha`` and ``pred``, for logging).
    """
    from PIL import Image

    from .metrics import evaluate_all

    indices = list(range(len(dataset))) if indices is None else list(indices)
    out_dir = Path(save_alphas) if save_alphas else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    rows, first = [], None
    for i in tqdm(indices, desc=desc, disable=not progress, dynamic_ncols=True):
        sample = dataset[i]
        start = time.perf_counter()
        pred = predictor(sample)
        seconds = time.perf_counter() - start
        scores = evaluate_all(pred, sample["alpha"], sample["trimap"])
        rows.append(
            {
                "name": sample.get("name", str(i)),
                **{k: float(scores[k]) for k in METRIC_NAMES},
                "seconds": seconds,
            }
        )
        if out_dir:
            Image.fromarray(np.round(np.clip(pred, 0, 1) * 255).astype(np.uint8)).save(
                out_dir / f"{rows[-1]['name']}.png"
            )
        if first is None:
            first = {"alpha": sample["alpha"], "pred": pred.astype(np.float32)}
    sums = {k: float(np.nansum([r[k] for r in rows])) for k in METRIC_NAMES}
    count = len(rows)
    mean = {k: (sums[k] / count if count else float("nan")) for k in METRIC_NAMES}
    return {"images": rows, "mean": mean, "sums": sums, "count": count, "sample": first}


def format_table(results: dict[str, dict]) -> str:
    """Per-image and mean rows, one column group per method (``{"model": result, "trimap": result}``)."""
    methods = list(results)
    head = f"{'image':<14}" + "".join(f" | {m[:22]:^34}" for m in methods)
    sub = f"{'':<14}" + "".join(" | " + " ".join(f"{k.upper():>8}" for k in METRIC_NAMES) for _ in methods)
    lines = [head, sub, "-" * len(sub)]
    names = [r["name"] for r in results[methods[0]]["images"]]
    for i, name in enumerate(names):
        cells = "".join(
            " | " + " ".join(f"{results[m]['images'][i][k]:>8.4g}" for k in METRIC_NAMES) for m in methods
        )
        lines.append(f"{name[:14]:<14}{cells}")
    lines.append("-" * len(sub))
    lines.append(
        f"{'mean':<14}"
        + "".join(" | " + " ".join(f"{results[m]['mean'][k]:>8.4g}" for k in METRIC_NAMES) for m in methods)
    )
    secs = (
        "".join(f" | {np.mean([r['seconds'] for r in results[m]['images']]):>33.3f}s" for m in methods)
        if names
        else ""
    )
    lines.append(f"{'s / image':<14}{secs}")
    return "\n".join(lines)


def public_result(result: dict) -> dict:
    """The JSON-facing part of an ``evaluate_dataset`` result."""
    return {"mean": result["mean"], "images": result["images"]}


def evaluate(
    data: str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    *,
    onnx: str | os.PathLike | None = None,
    device: str = "auto",
    baseline: str | None = None,
    save_alphas: str | os.PathLike | None = None,
    json_path: str | os.PathLike | None = None,
    trimap_width: int = 10,
    progress: bool = True,
    printer: Callable[[str], None] = print,
) -> dict:
    """Evaluate a checkpoint (or the default model) on a folder in the ``CustomDataset`` layout.

    Trimaps come from ``DATA/trimaps/`` when present, else they are made deterministically from the ground
    truth (``make_trimap`` with ``trimap_width``); the output says which (``"trimaps": "given"|"generated"``).

    Returns the JSON-shaped dict ``{"mean": {...}, "images": [...], "trimaps": ..., "baseline": {...}?}``.
    """
    from .data import CustomDataset
    from .inference import load_backend

    dataset = CustomDataset(data, trimap_width=trimap_width)
    trimaps = "given" if (Path(data) / "trimaps").is_dir() else "generated"
    backend = load_backend(checkpoint=checkpoint, onnx=onnx, device=device)
    results = {
        "model": evaluate_dataset(
            backend_predictor(backend), dataset, progress=progress, desc="model", save_alphas=save_alphas
        )
    }
    if baseline:
        results[baseline] = evaluate_dataset(
            baseline_predictor(baseline), dataset, progress=progress, desc=baseline
        )
    printer(
        f"{len(dataset)} images in {data}; trimaps {trimaps}"
        + ("" if trimaps == "given" else f" from the ground truth (band {trimap_width} px)")
    )
    printer(format_table(results))
    report = {**public_result(results["model"]), "trimaps": trimaps}
    if baseline:
        report["baseline"] = {"name": baseline, **public_result(results[baseline])}
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(report, indent=2))
        printer(f"wrote {json_path}")
    return report
