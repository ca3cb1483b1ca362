"""Scoring a predictor on a dataset: the one path behind validation, ``evaluate``, the demo and the recipe.

A *predictor* is any callable ``sample dict -> HxW float alpha`` (a model through
:func:`deepmatting.inference.sample_predictor`, or a classical baseline). :func:`score_dataset` runs it over
a dataset and computes the four benchmark metrics of every image on the trimap's unknown region
(:func:`deepmatting.metrics.evaluate_all`; the whole-image errors too, for image-only models); the means
skip undefined values (the MSE of an image without unknown pixels) and say how many each metric skipped
(:class:`~deepmatting.metrics.MetricAccumulator`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .data.io import write_alpha
from .metrics import METRIC_NAMES, MetricAccumulator, evaluate_all, whole_image_errors

Predictor = Callable[[dict], np.ndarray]


def score_dataset(
    predictor: Predictor,
    dataset: Sequence[dict],
    indices: Sequence[int] | None = None,
    *,
    progress: bool = True,
    save_alphas: str | os.PathLike | None = None,
    desc: str = "evaluate",
    whole_image: bool = False,
) -> dict:
    """Run ``predictor`` on every sample (or those at ``indices``) and score it.

    Parameters
    ----------
    predictor : callable, sample dict -> HxW float32 alpha in [0, 1]
    dataset : sequence of sample dicts with ``image``, ``alpha``, ``trimap`` and ``name``
    indices : sequence of int, optional
        The samples to score (e.g. one process's share); all by default.
    progress : bool
        A tqdm bar with the image rate.
    save_alphas : path, optional
        Write each prediction as an 8-bit PNG named after the sample into this folder.
    desc : str
        The bar's label.
    whole_image : bool
        Also the whole-image errors of trimap-free benchmarks (``mad``, ``mse_whole``:
        :func:`~deepmatting.metrics.whole_image_errors`), for image-only models.

    Returns
    -------
    dict
        ``images`` (one ``{"name", "sad", "mse", "grad", "conn", "seconds"}`` per sample), ``mean`` (each
        metric's mean over the images where it is defined), ``seconds`` (per image, on average),
        ``skipped`` (per metric, the images left out of its mean), ``accumulator`` (to merge across
        processes), and ``sample`` (the first sample's ``alpha`` and ``pred``, for logging).
    """
    indices = list(range(len(dataset))) if indices is None else list(indices)
    out_dir = Path(save_alphas) if save_alphas else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    rows, first = [], None
    accumulator = MetricAccumulator()
    bar = tqdm(indices, desc=desc, disable=not progress, dynamic_ncols=True, unit="image")
    for i in bar:
        sample = dataset[i]
        start = time.perf_counter()
        pred = predictor(sample)
        seconds = time.perf_counter() - start
        scores = {k: float(v) for k, v in evaluate_all(pred, sample["alpha"], sample["trimap"]).items()}
        if whole_image:
            scores.update(whole_image_errors(pred, sample["alpha"]))
        accumulator.update(scores)
        rows.append({"name": sample.get("name", str(i)), **scores, "seconds": seconds})
        if out_dir:
            write_alpha(out_dir / f"{rows[-1]['name']}.png", pred)
        if first is None:
            first = {"alpha": sample["alpha"], "pred": pred.astype(np.float32)}
    return {
        "images": rows,
        "mean": accumulator.compute() if rows else {k: float("nan") for k in METRIC_NAMES},
        "seconds": float(np.mean([r["seconds"] for r in rows])) if rows else float("nan"),
        "skipped": accumulator.skipped() if rows else {},
        "accumulator": accumulator,
        "sample": first,
    }


def merge_results(results: Sequence[dict]) -> dict:
    """Several :func:`score_dataset` results (e.g. cross-validation folds) as one: rows sorted by name."""
    accumulator = MetricAccumulator()
    for result in results:
        accumulator.merge(result["accumulator"])
    rows = sorted((row for result in results for row in result["images"]), key=lambda r: r["name"])
    seconds = float(np.mean([r["seconds"] for r in rows]))
    return {"images": rows, "mean": accumulator.compute(), "seconds": seconds,
            "skipped": accumulator.skipped(), "accumulator": accumulator,
            "sample": results[0]["sample"] if results else None}
