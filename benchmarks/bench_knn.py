"""KNN matting on real photos: ``deepmatting.knn_matting`` against ``pymatting.estimate_alpha_knn``, with
closed-form matting (ours and pymatting's) timed in the same run for the scale.

The data and the protocol are ``bench_closed_form.py``'s: the 14 alphamatting.com low-resolution photos in
``SHARED_DATA``, both trimap sets, the methods interleaved on each photo, ``--repeats`` runs each, the
fastest kept. Methods:

- ``pymatting``: ``estimate_alpha_knn`` with its defaults (20 + 10 neighbours, Jacobi CG to 1e-7 with its
  known pixels held by a penalty of 100);
- ``ours``: ``solve_knn`` (the same graph, the known pixels exact, neighbours searched from the unknown
  pixels and the known ones within 10 px, Jacobi CG in float32 to 1e-5), CG from 0;
- ``ours-warm-cf``: the same, warm-started from closed-form's alpha (as the fusion model's priors are
  solved; the closed-form solve is not counted here);
- ``closed-form-ours``, ``closed-form-pymatting``: closed-form matting, for the time scale.

Per method and trimap set: seconds per photo, ratio to pymatting's KNN, SAD, MSE, Grad, Conn, and the
difference from pymatting's alpha on the unknown pixels.

Run: ``.venv/bin/python benchmarks/bench_knn.py [--repeats 1] [--limit N | --quick]``; writes
``benchmarks/results/knn.json``. Without the data folder it says why and exits 0; without pymatting only
ours runs.
"""

from __future__ import annotations

import os

THREADS = 2
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = str(THREADS)

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from bench_closed_form import TRIMAP_SETS, load_photo, run_photo, summary_rows  # noqa: E402
from common import SHARED_DATA, format_table, machine_info, photos_or_skip, write_results  # noqa: E402

from deepmatting.closed_form import closed_form_alpha  # noqa: E402
from deepmatting.knn_matting import solve_knn  # noqa: E402
from deepmatting.tensors import trimap_to_float  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
QUICK_LIMIT = 3


def methods(with_pymatting: bool) -> dict:
    """name -> function(photo) -> (alpha HxW float, CG iterations or None); "pymatting" is the reference."""

    def ours(photo, initial=None):
        result = solve_knn(photo["image"], photo["trimap"], initial=initial)
        return result.alpha, result.iterations

    found = {}
    if with_pymatting:
        import pymatting

        def pymatting_run(estimate):
            def run(photo):
                image = photo["image"].astype(np.float64)
                return estimate(image, trimap_to_float(photo["trimap"]).astype(np.float64)), None
            return run

        found["pymatting"] = pymatting_run(pymatting.estimate_alpha_knn)
        found["closed-form-pymatting"] = pymatting_run(pymatting.estimate_alpha_cf)
    found["ours"] = ours
    found["ours-warm-cf"] = lambda photo: ours(photo, photo["closed_form"])
    found["closed-form-ours"] = lambda photo: (closed_form_alpha(photo["image"], photo["trimap"]), None)
    return found


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=SHARED_DATA, help="the photos (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=1,
                   help="runs per method and photo, the fastest kept (default 1: pymatting's KNN takes "
                        "10-15 s a photo)")
    p.add_argument("--limit", type=int, default=None, help="only the first N photos")
    p.add_argument("--quick", action="store_true", help=f"the first {QUICK_LIMIT} photos, one run each")
    args = p.parse_args()
    data = photos_or_skip(args.data, "knn", "images/, alphas/, trimaps/, trimaps_alt/")
    if data is None:
        return
    with_pymatting = importlib.util.find_spec("pymatting") is not None
    if not with_pymatting:
        print("pymatting is not installed: only our solver runs (pip install 'deepmatting[baseline]')")
    else:
        import pymatting  # noqa: F401 - compiled here (numba, ~30 s), not inside the first timing
    load_before = os.getloadavg()
    runners = methods(with_pymatting)
    repeats = 1 if args.quick else args.repeats
    limit = args.limit or (QUICK_LIMIT if args.quick else None)
    names = sorted(path.stem for path in (data / "images").glob("*.png"))[:limit]
    results = {}
    for trimap_set in TRIMAP_SETS:
        results[trimap_set] = {}
        for name in names:
            photo = load_photo(data, name, trimap_set)
            photo["closed_form"] = closed_form_alpha(photo["image"], photo["trimap"])
            results[trimap_set][name] = run_photo(photo, runners, repeats)
            line = ", ".join(f"{m} {r['seconds']:.2f} s SAD {r['sad']:.2f}"
                             for m, r in results[trimap_set][name].items())
            print(f"{TRIMAP_SETS[trimap_set]} {name}: {line}", flush=True)
    rows = summary_rows(results)
    for row in rows:  # the differences are from pymatting's KNN alpha: not a measure of closed-form
        if row["method"].startswith("closed-form"):
            row.pop("max_diff_pymatting", None), row.pop("mean_diff_pymatting", None)
    columns = ["trimaps", "method", "s_per_photo", "x_pymatting_mean", "x_pymatting_max", "sad", "mse",
               "grad", "conn", "iterations", "max_diff_pymatting", "mean_diff_pymatting"]
    table = format_table(rows, [c for c in columns if any(c in r for r in rows)])
    table += ("\n\nMeans over the photos (s_per_photo: the fastest of the repeats; x_pymatting: time / "
              "pymatting's KNN time per photo, mean and max); SAD, Grad, Conn in thousands, MSE on the "
              "unknown region; diff: |alpha - pymatting's KNN alpha| on unknown pixels, largest and mean.")
    machine = machine_info(THREADS)
    if with_pymatting:
        import pymatting

        machine["pymatting"] = pymatting.__version__
    write_results("knn", {
        "machine": machine,
        "load_average": {"before": list(load_before), "after": list(os.getloadavg())},
        "data": os.path.relpath(data, REPO),
        "photos": len(names),
        "quick": args.quick,
        "repeats": repeats,
        "results": results,
        "rows": rows,
    }, table)


if __name__ == "__main__":
    main()
