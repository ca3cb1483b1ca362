"""Metric tables over a folder: the model (and optionally a classical baseline) on every image.

:func:`deepmatting.scoring.score_dataset` runs any predictor ``sample -> alpha`` over a dataset and computes
the four benchmark metrics (SAD, MSE, Grad, Conn on the trimap's unknown region); ``evaluate`` is what
``deepmatting evaluate`` calls, :func:`format_table` prints results side by side. Baselines: ``trimap``
(unknown = 0.5, the floor any model must beat), ``closed-form`` and ``knn`` (Levin et al. 2008 and Chen et
al. 2013, the package's own solvers), and ``pymatting-closed-form`` and ``pymatting-knn`` (the same methods
from the optional ``pymatting`` extra, the reference implementation).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence

import numpy as np

from .metrics import METRIC_NAMES, WHOLE_IMAGE_NAMES
from .scoring import Predictor, score_dataset
from .tensors import TRIMAP_BG, TRIMAP_FG, trimap_to_float

BASELINES = ("trimap", "closed-form", "knn", "pymatting-closed-form", "pymatting-knn")


def _known_exact(alpha: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    alpha = np.clip(alpha, 0.0, 1.0).astype(np.float32)
    alpha[trimap == TRIMAP_BG] = 0.0
    alpha[trimap == TRIMAP_FG] = 1.0
    return alpha


def baseline_predictor(name: str) -> Predictor:
    """A classical method as a predictor: one of :data:`BASELINES`."""
    if name == "trimap":
        return lambda sample: trimap_to_float(sample["trimap"])
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose one of {list(BASELINES)}")
    if name in ("closed-form", "knn"):
        from .closed_form import closed_form_alpha
        from .knn_matting import knn_alpha

        solve = closed_form_alpha if name == "closed-form" else knn_alpha
        return lambda sample: _known_exact(solve(sample["image"], sample["trimap"]), sample["trimap"])
    try:
        import pymatting
    except ImportError as e:
        raise ImportError(f"the {name} baseline needs pymatting: pip install 'deepmatting[baseline]'") from e
    method = pymatting.estimate_alpha_cf if name == "pymatting-closed-form" else pymatting.estimate_alpha_knn

    def run(sample: dict) -> np.ndarray:
        image = sample["image"].astype(np.float64)
        trimap = trimap_to_float(sample["trimap"]).astype(np.float64)
        return _known_exact(method(image, trimap), sample["trimap"])

    return run


def baseline_predictors(names: Sequence[str], *, skip_missing: bool = False,
                        printer: Callable[[str], None] = print) -> dict[str, Predictor]:
    """The predictors of the baselines ``names``, resolved before any work starts.

    A baseline whose optional dependency is missing raises ``ImportError`` (with the install line), or with
    ``skip_missing`` is left out with a printed note.
    """
    predictors = {}
    for name in names:
        try:
            predictors[name] = baseline_predictor(name)
        except ImportError as e:
            if not skip_missing:
                raise
            printer(f"({name} baseline skipped: {e})")
    return predictors


def score_methods(predictors: dict[str, Predictor], dataset: Sequence[dict],
                  indices: Sequence[int] | None = None, *, progress: bool = True, label: str = "",
                  save_alphas: str | os.PathLike | None = None, whole_image: bool = False) -> dict[str, dict]:
    """:func:`~deepmatting.scoring.score_dataset` for each named predictor (the model, baselines) on the
    same samples; ``save_alphas`` applies to the one called ``model``. Returns ``{name: result}``."""
    return {
        name: score_dataset(predictor, dataset, indices, progress=progress, desc=f"{name}{label}",
                            save_alphas=save_alphas if name == "model" else None, whole_image=whole_image)
        for name, predictor in predictors.items()
    }


def format_table(results: dict[str, dict]) -> str:
    """Per-image and mean rows, one column group per method (``{"model": result, "trimap": result}``): the
    four benchmark metrics, and the whole-image MAD and MSE when the results have them."""
    methods = list(results)
    rows0 = results[methods[0]]["images"]
    keys = [*METRIC_NAMES, *(k for k in WHOLE_IMAGE_NAMES if rows0 and k in rows0[0])]
    width = 9 * len(keys) - 1
    head = f"{'image':<14}" + "".join(f" | {m[:22]:^{width}}" for m in methods)
    sub = f"{'':<14}" + "".join(" | " + " ".join(f"{k.upper():>8}" for k in keys) for _ in methods)
    lines = [head, sub, "-" * len(sub)]
    names = [r["name"] for r in rows0]
    for i, name in enumerate(names):
        cells = "".join(
            " | " + " ".join(f"{results[m]['images'][i][k]:>8.4g}" for k in keys) for m in methods
        )
        lines.append(f"{name[:14]:<14}{cells}")
    lines.append("-" * len(sub))
    lines.append(
        f"{'mean':<14}"
        + "".join(" | " + " ".join(f"{results[m]['mean'][k]:>8.4g}" for k in keys) for m in methods)
    )
    secs = "".join(f" | {results[m]['seconds']:>{width - 1}.3f}s" for m in methods) if names else ""
    lines.append(f"{'s / image':<14}{secs}")
    skipped = {m: {k: n for k, n in results[m]["skipped"].items() if n} for m in methods}
    for m, counts in skipped.items():
        if counts:
            lines.append(f"({m}: " + ", ".join(f"{k.upper()} undefined on {n} image{'s' if n != 1 else ''}"
                                               for k, n in counts.items()) + ", left out of its mean)")
    return "\n".join(lines)


def public_result(result: dict) -> dict:
    """The JSON-facing part of a :func:`~deepmatting.scoring.score_dataset` result.

    Image names that are not valid UTF-8 (a file name's undecodable bytes, which Python keeps as lone
    surrogates) get U+FFFD in their place, so strict JSON readers accept the file.
    """
    images = [{**row, "name": _valid_text(row["name"])} for row in result["images"]]
    return {"mean": result["mean"], "seconds": result["seconds"], "skipped": result["skipped"],
            "images": images}


def _valid_text(name: str) -> str:
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def evaluate(
    data: str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    *,
    onnx: str | os.PathLike | None = None,
    quality: str | None = None,
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
    An image-only model is given the image alone; its results add the whole-image ``mad`` and ``mse_whole``.

    Returns the JSON-shaped dict ``{"mean": {...}, "images": [...], "trimaps": ..., "baseline": {...}?}``,
    also written to ``json_path`` when given (atomically; a place that cannot take the file is an
    ``OSError`` before anything is evaluated).
    """
    from .atomic import atomic_write, check_writable
    from .backends import load_backend
    from .data import CustomDataset
    from .inference import sample_predictor

    if json_path:
        check_writable(json_path)
    dataset = CustomDataset(data, trimap_width=trimap_width)
    trimaps = "given" if dataset.trimaps_dir is not None else "generated"
    baselines = baseline_predictors([baseline] if baseline else [])  # a missing extra fails here, first
    backend = load_backend(checkpoint, onnx=onnx, quality=quality, device=device)
    predictors = {"model": sample_predictor(backend), **baselines}
    image_only = backend.input == "image"
    results = score_methods(predictors, dataset, progress=progress, save_alphas=save_alphas,
                            whole_image=image_only)
    printer(
        f"{len(dataset)} images in {data}; trimaps {trimaps}"
        + ("" if trimaps == "given" else f" from the ground truth (band {trimap_width} px)")
        + ("; the model reads the image alone: the trimap only says where SAD, MSE, GRAD and CONN are "
           "computed, MAD and MSE_WHOLE cover every pixel" if image_only else "")
    )
    printer(format_table(results))
    report = {**public_result(results["model"]), "trimaps": trimaps}
    if onnx is None:
        from .checkpoint import training_photos

        seen = sorted(set(training_photos(checkpoint, quality)) & set(dataset.names))
        report["seen_in_training"] = seen
        if seen:
            printer(f"note: {len(seen)} of these {len(dataset)} images were in the model's training set "
                    f"({', '.join(seen)}): their scores are not held-out scores")
    if baseline:
        report["baseline"] = {"name": baseline, **public_result(results[baseline])}
    if json_path:
        text = json.dumps(report, indent=2).encode()
        atomic_write(json_path, lambda f: f.write(text))
        printer(f"wrote {json_path}")
    return report
