"""Matting quality on real photos: the package's models against classical baselines, per image and on average.

The data: the alphamatting.com low-resolution training photos in ``SHARED_DATA`` (``../shared/data/
alphamatting-lowres`` beside the repository: ``images/``, ``alphas/``, ``trimaps/`` = Trimap1,
``trimaps_alt/`` = Trimap2), read in place with ``deepmatting.data.CustomDataset``. Methods:

- the package's models: ``runs/demo/best.pt`` when it exists (``make demo``), the packaged weights of
  every quality that ships (``deepmatting.checkpoint.default_weights``), and every
  ``--checkpoint NAME=PATH``; run at full resolution through ``predict`` (``load_backend``);
- ``trimap``: the trimap itself with unknown = 0.5, the floor any method must beat;
- ``pymatting-closed-form`` and ``pymatting-knn`` from ``pymatting`` (the optional ``baseline`` extra:
  ``pip install pymatting``; its first import compiles with numba for about 30 s), the reference;
- ``closed-form`` and ``knn``: the package's own solvers (``deepmatting.closed_form``, ``knn_matting``).

All four metrics (SAD and Grad in thousands, MSE, Conn in thousands, on the unknown region, see
``deepmatting.metrics``) per image and averaged, the seconds per image (mean) and per megapixel (median
over the photos), for Trimap1 and, with ``--both-trimaps``, Trimap2.
Scoring goes through ``deepmatting.scoring.score_dataset``.

Run: ``.venv/bin/python benchmarks/bench_quality.py [--both-trimaps] [--limit N | --quick]
[--checkpoint NAME=PATH ...]``; writes ``benchmarks/results/quality.json``. Without the data folder it
prints why and exits 0; without pymatting the models and the trimap floor still run.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from common import SHARED_DATA, format_table, machine_info, photos_or_skip, write_results  # noqa: E402

from deepmatting import evaluate  # noqa: E402
from deepmatting.backends import load_backend  # noqa: E402
from deepmatting.checkpoint import QUALITIES, default_weights  # noqa: E402
from deepmatting.data import CustomDataset, DatasetError, list_images, read_trimap  # noqa: E402
from deepmatting.inference import sample_predictor  # noqa: E402
from deepmatting.scoring import score_dataset  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEMO_CHECKPOINT = REPO / "runs" / "demo" / "best.pt"
TRIMAP_SETS = {"trimaps": "Trimap1", "trimaps_alt": "Trimap2"}
THREADS = 2
QUICK_LIMIT = 3


class SwappedTrimaps:
    """The samples of a ``CustomDataset`` with each trimap read from ``folder/<name>.*`` instead.

    For a second trimap set beside the first (``trimaps_alt/`` for Trimap2): everything else, and the
    checks of the dataset, stay those of ``dataset``.

    Raises
    ------
    DatasetError
        On construction when an image has no trimap in ``folder``; on ``ds[i]`` when a trimap's size is
        not its image's, or its values are not a trimap's (from ``read_trimap``).
    """

    def __init__(self, dataset: CustomDataset, folder: str | os.PathLike):
        self.dataset, self.folder = dataset, Path(folder)
        self.trimaps = list_images(self.folder, "trimaps")
        missing = [image.stem for image, _, _ in dataset.items if image.stem not in self.trimaps]
        if missing:
            raise DatasetError(f"{self.folder}: no trimap for {', '.join(missing)} (one per image of "
                               f"{dataset.images_dir}, same file name)")

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict:
        sample = dict(self.dataset[i])
        path = self.trimaps[Path(self.dataset.items[i][0]).stem]
        trimap = read_trimap(path)
        if trimap.shape != sample["alpha"].shape:
            (h, w), (h2, w2) = sample["alpha"].shape, trimap.shape
            raise DatasetError(f"{path} is {w2}x{h2} but its image is {w}x{h}: re-export it at {w}x{h}")
        sample["trimap"] = trimap
        return sample


def load_dataset(data: Path, trimap_set: str) -> CustomDataset | SwappedTrimaps:
    """``data`` in the ``CustomDataset`` layout, with the trimaps of ``data/trimap_set``."""
    dataset = CustomDataset(data)
    return dataset if trimap_set == "trimaps" else SwappedTrimaps(dataset, data / trimap_set)


def _checkpoint_arg(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep:
        name, path = Path(text).stem, text
    if not Path(path).is_file():
        raise argparse.ArgumentTypeError(f"{path}: no such checkpoint file")
    return name, Path(path)


def model_methods(checkpoints: list[tuple[str, Path]], device: str) -> dict:
    """Predictors of the models: the demo run's best checkpoint, the packaged weights, and ``checkpoints``."""
    found: list[tuple[str, Path | str]] = []
    if DEMO_CHECKPOINT.is_file():
        found.append(("demo", DEMO_CHECKPOINT))
    for quality in QUALITIES:
        if default_weights(quality) is not None:
            found.append((quality, quality))  # as predict runs them
    found += checkpoints
    methods, sources = {}, {}
    for name, source in found:
        if isinstance(source, str):
            methods[name] = sample_predictor(load_backend(quality=source, device=device))
            sources[name] = f"packaged weights, quality {source!r}"
        else:
            methods[name] = sample_predictor(load_backend(source, device=device))
            sources[name] = os.path.relpath(source, REPO)
    return {"predictors": methods, "sources": sources}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=SHARED_DATA, help="the photos (default: %(default)s)")
    p.add_argument("--trimaps", choices=list(TRIMAP_SETS), default="trimaps",
                   help="trimap folder: trimaps (Trimap1, default) or trimaps_alt (Trimap2)")
    p.add_argument("--both-trimaps", action="store_true", help="run with trimaps/ and trimaps_alt/")
    p.add_argument("--checkpoint", type=_checkpoint_arg, action="append", default=[], metavar="NAME=PATH",
                   help="another model to score (repeatable)")
    p.add_argument("--no-baselines", action="store_true", help="skip closed-form and KNN (the slow part)")
    p.add_argument("--limit", type=int, default=None, help="only the first N photos")
    p.add_argument("--quick", action="store_true", help=f"the first {QUICK_LIMIT} photos (unless --limit)")
    p.add_argument("--device", default="cpu", help="for the models (default cpu)")
    args = p.parse_args()
    torch.set_num_threads(THREADS)

    data = photos_or_skip(args.data, "quality", "images/, alphas/, trimaps/")
    if data is None:
        return
    sets = list(TRIMAP_SETS) if args.both_trimaps else [args.trimaps]
    for trimap_set in list(sets):
        if not (data / trimap_set).is_dir():
            print(f"no {data / trimap_set}: {TRIMAP_SETS[trimap_set]} skipped")
            sets.remove(trimap_set)

    models = model_methods(args.checkpoint, args.device)
    if not models["predictors"]:
        print(f"no model to score: no {os.path.relpath(DEMO_CHECKPOINT, REPO)} (make demo), no packaged "
              "default weights, no --checkpoint; scoring the baselines only")
    baselines = ["trimap"]
    pymatting_version = None
    if args.no_baselines:
        pass
    elif importlib.util.find_spec("pymatting") is None:
        print("pymatting is not installed: closed-form and KNN skipped (pip install 'deepmatting[baseline]')")
    else:
        print("importing pymatting (its first import compiles with numba, about 30 s) ...", flush=True)
        import pymatting

        pymatting_version = pymatting.__version__
        baselines += ["pymatting-closed-form", "pymatting-knn"]
    if not args.no_baselines:
        baselines += ["closed-form", "knn"]  # the package's own solvers
    methods = {**models["predictors"], **{b: evaluate.baseline_predictor(b) for b in baselines}}

    limit = args.limit or (QUICK_LIMIT if args.quick else None)
    results, rows, text_tables = {}, [], []
    for trimap_set in sets:
        dataset = load_dataset(data, trimap_set)
        indices = list(range(len(dataset)))[:limit]
        print(f"{TRIMAP_SETS[trimap_set]} ({trimap_set}/): {len(indices)} of {len(dataset)} photos, "
              f"methods {list(methods)}", flush=True)
        per_method = {name: score_dataset(predictor, dataset, indices, desc=name)
                      for name, predictor in methods.items()}
        text = evaluate.format_table(per_method)
        print(text, flush=True)
        text_tables.append(f"{TRIMAP_SETS[trimap_set]} ({trimap_set}/), per image:\n\n```text\n{text}\n```")
        results[trimap_set] = {}
        megapixels = {dataset.names[i]: dataset[i]["alpha"].size / 1e6 for i in indices}
        for name, result in per_method.items():
            seconds = float(np.mean([r["seconds"] for r in result["images"]]))
            s_per_mp = float(np.median([r["seconds"] / megapixels[r["name"]] for r in result["images"]]))
            results[trimap_set][name] = {**evaluate.public_result(result), "s_per_image": seconds,
                                         "s_per_mp": s_per_mp}
            rows.append({"trimaps": TRIMAP_SETS[trimap_set], "method": name, **result["mean"],
                         "s_per_image": seconds, "s_per_mp": s_per_mp})

    table = format_table(rows, ["trimaps", "method", "sad", "mse", "grad", "conn", "s_per_image", "s_per_mp"])
    table += "\n\nMeans over the photos; SAD, Grad and Conn in thousands, MSE on the unknown region.\n\n"
    table += "\n\n".join(text_tables)
    machine = machine_info(THREADS)
    machine["pymatting"] = pymatting_version
    write_results("quality", {
        "machine": machine,
        "data": os.path.relpath(data, REPO),
        "photos": len(indices) if sets else 0,
        "quick": args.quick,
        "limit": limit,
        "trimap_sets": {s: TRIMAP_SETS[s] for s in sets},
        "device": args.device,
        "models": models["sources"],
        "methods": list(methods),
        "results": results,
        "rows": rows,
    }, table)


if __name__ == "__main__":
    main()
