"""Closed-form matting on real photos: ``deepmatting.closed_form`` against ``pymatting.estimate_alpha_cf``.

The data: the 14 alphamatting.com low-resolution training photos in ``SHARED_DATA`` (``images/``,
``alphas/``, ``trimaps/`` = Trimap1, ``trimaps_alt/`` = Trimap2), both trimap sets. Methods, run one after
the other on each photo (interleaved, so that other work on the machine hits them alike), ``--repeats``
times each, the fastest run kept:

- ``pymatting``: ``estimate_alpha_cf`` with its defaults (eps 1e-7, CG to a relative residual of 1e-7 with
  its thresholded incomplete-Cholesky preconditioner), float64 image, float trimap;
- ``ours``: ``solve_closed_form`` (eps 1e-7, tol 1e-7, the single-precision LU preconditioner), CG from 0;
- ``ours-warm-trimap``: the same, warm-started from the trimap with unknown = 0.5;
- ``ours-warm-blur``: warm-started from the trimap blurred by a Gaussian of sigma 4 px.

Per method and trimap set: seconds per photo, SAD, MSE, Grad, Conn (``deepmatting.metrics.evaluate_all``,
unknown region; SAD, Grad, Conn in thousands), CG iterations, and the largest and mean difference from
pymatting's alpha on the unknown pixels. Separately: the import time of pymatting in a fresh process with
its numba cache as it is and with an empty cache (the first import on a machine compiles), and of
``deepmatting.closed_form``.

``--study`` adds the solver options tried while designing ``closed_form``, on ``--study-photos``: the set-up
(factorisation) and solve times, fill and CG iterations of the LU preconditioner in single and double
precision in nested-dissection order, a direct SuperLU solve in SuperLU's own orderings (COLAMD, minimum
degree) of the raster-ordered matrix, SuperLU's incomplete LU (drop tolerances 1e-3 and 1e-4) in
nested-dissection order as a CG preconditioner, and Jacobi-preconditioned CG cold and warm.

Run: ``.venv/bin/python benchmarks/bench_closed_form.py [--repeats 3] [--limit N | --quick] [--study]
[--no-cold-import]``; writes ``benchmarks/results/closed_form.json``. Without the data folder it says why
and exits 0; without pymatting only ``ours`` runs.
"""

from __future__ import annotations

import os

THREADS = 2
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = str(THREADS)

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse  # noqa: E402
import scipy.sparse.linalg  # noqa: E402
from scipy import ndimage  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from common import SHARED_DATA, format_table, machine_info, photos_or_skip, write_results  # noqa: E402

from deepmatting.closed_form import closed_form_system, solve_closed_form  # noqa: E402
from deepmatting.data import read_alpha, read_image, read_trimap  # noqa: E402
from deepmatting.metrics import evaluate_all  # noqa: E402
from deepmatting.tensors import trimap_to_float  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TRIMAP_SETS = {"trimaps": "Trimap1", "trimaps_alt": "Trimap2"}
QUICK_LIMIT = 3
BLUR_SIGMA = 4.0
STUDY_PHOTOS = ["GT19:trimaps", "GT01:trimaps_alt", "GT13:trimaps_alt"]
JACOBI_MAX_ITER = 3000
STUDY_COLUMNS = ["option", "setup_s", "solve_s", "iterations", "residual", "nnz"]


def import_seconds(module: str, env: dict | None = None) -> float:
    """Seconds to import ``module`` in a fresh interpreter (``env`` added to the environment)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO / "src"), **(env or {})})
    return float(out.stdout.strip().splitlines()[-1])


def import_times(with_pymatting: bool, cold: bool) -> dict:
    """Import seconds in fresh processes; ``cold``: also pymatting's with an empty numba cache."""
    times = {"deepmatting.closed_form (imports torch, via the package)":
             import_seconds("deepmatting.closed_form")}
    if with_pymatting:
        times["pymatting, numba cache as it is"] = import_seconds("pymatting")
    if with_pymatting and cold:
        with tempfile.TemporaryDirectory() as empty:
            times["pymatting, empty numba cache (first import)"] = import_seconds(
                "pymatting", {"NUMBA_CACHE_DIR": empty})
    return times


def load_photo(data: Path, name: str, trimap_set: str) -> dict:
    return {"name": name, "image": read_image(data / "images" / f"{name}.png"),
            "alpha": read_alpha(data / "alphas" / f"{name}.png"),
            "trimap": read_trimap(data / trimap_set / f"{name}.png")}


def methods(with_pymatting: bool) -> dict:
    """name -> function(photo) -> (alpha HxW float, CG iterations or None)."""

    def ours(initial):
        def run(photo):
            result = solve_closed_form(photo["image"], photo["trimap"], initial=initial(photo))
            return result.alpha, result.iterations
        return run

    found = {}
    if with_pymatting:
        import pymatting

        def run_pymatting(photo):
            image = photo["image"].astype(np.float64)
            trimap = trimap_to_float(photo["trimap"]).astype(np.float64)
            return pymatting.estimate_alpha_cf(image, trimap), None
        found["pymatting"] = run_pymatting
    found["ours"] = ours(lambda photo: None)
    found["ours-warm-trimap"] = ours(lambda photo: trimap_to_float(photo["trimap"]))
    found["ours-warm-blur"] = ours(
        lambda photo: ndimage.gaussian_filter(trimap_to_float(photo["trimap"]), BLUR_SIGMA))
    return found


def run_photo(photo: dict, runners: dict, repeats: int) -> dict:
    """Each method ``repeats`` times, interleaved (the order rotates each round); the fastest time, the
    metrics and the iterations."""
    seconds = {name: [] for name in runners}
    alphas, iterations = {}, {}
    names = list(runners)
    for round_ in range(repeats):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            run = runners[name]
            start = time.perf_counter()
            alphas[name], iterations[name] = run(photo)
            seconds[name].append(time.perf_counter() - start)
    unknown = photo["trimap"] == 128
    out = {}
    for name, alpha in alphas.items():
        alpha = np.clip(alpha, 0, 1).astype(np.float32)
        row = {"seconds": min(seconds[name]), **evaluate_all(alpha, photo["alpha"], photo["trimap"]),
               "iterations": iterations[name]}
        if "pymatting" in alphas and name != "pymatting":
            diff = np.abs(alpha[unknown] - alphas["pymatting"][unknown])
            row["max_diff_pymatting"], row["mean_diff_pymatting"] = float(diff.max()), float(diff.mean())
        out[name] = row
    return out


def summary_rows(results: dict) -> list[dict]:
    rows = []
    for trimap_set, photos in results.items():
        names = list(next(iter(photos.values())))
        for name in names:
            per = [photos[p][name] for p in photos]
            row = {"trimaps": TRIMAP_SETS[trimap_set], "method": name,
                   "s_per_photo": float(np.mean([r["seconds"] for r in per]))}
            if "pymatting" in names:
                ratios = [photos[p][name]["seconds"] / photos[p]["pymatting"]["seconds"] for p in photos]
                row["x_pymatting_mean"] = float(np.mean(ratios))
                row["x_pymatting_max"] = float(np.max(ratios))
            for metric in ("sad", "mse", "grad", "conn"):
                row[metric] = float(np.mean([r[metric] for r in per]))
            if per[0]["iterations"] is not None:
                row["iterations"] = float(np.mean([r["iterations"] for r in per]))
            if all("max_diff_pymatting" in r for r in per):
                row["max_diff_pymatting"] = float(np.max([r["max_diff_pymatting"] for r in per]))
                row["mean_diff_pymatting"] = float(np.mean([r["mean_diff_pymatting"] for r in per]))
            rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------------ the study


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _cg(matrix, rhs, precondition, x0=None, max_iter=300) -> tuple[int, float, float]:
    """scipy's CG to a relative residual of 1e-7: (iterations, final relative residual, seconds)."""
    count = [0]

    def callback(_):
        count[0] += 1

    operator = scipy.sparse.linalg.LinearOperator(matrix.shape, precondition, dtype=np.float64)
    x, seconds = _timed(lambda: scipy.sparse.linalg.cg(matrix, rhs, x0=x0, rtol=1e-7, maxiter=max_iter,
                                                       M=operator, callback=callback)[0])
    return count[0], float(np.linalg.norm(rhs - matrix @ x) / np.linalg.norm(rhs)), seconds


def _factor(matrix, dtype, permc_spec: str, drop_tol: float | None = None):
    """SuperLU: in the matrix's own order without pivoting (``NATURAL``: the nested dissection), else with
    scipy's defaults (what ``spsolve`` does) and the ordering ``permc_spec``."""
    csc = scipy.sparse.csc_array(matrix, dtype=dtype)
    options = {"permc_spec": permc_spec}
    if permc_spec == "NATURAL":
        options.update(diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    if drop_tol is None:
        return scipy.sparse.linalg.splu(csc, **options)
    return scipy.sparse.linalg.spilu(csc, drop_tol=drop_tol, fill_factor=20, **options)


def study_photo(photo: dict) -> list[dict]:
    """The solver options on one photo: set-up and solve seconds, fill, iterations, final residual."""
    system, build = _timed(lambda: closed_form_system(photo["image"], photo["trimap"]))
    matrix, rhs = system.matrix, system.rhs
    raster = np.argsort(system.pixels)
    raster_matrix, raster_rhs = matrix[raster][:, raster].tocsc(), rhs[raster]
    rows = [{"option": "build the system (vectorised, nested-dissection order)", "setup_s": build,
             "nnz": int(matrix.nnz)}]

    def factor_row(option, factor, solve_matrix, solve_rhs, dtype, **kw):
        lu, setup = _timed(factor)
        iterations, residual, seconds = _cg(solve_matrix, solve_rhs,
                                            lambda r: lu.solve(r.astype(dtype)).astype(np.float64), **kw)
        rows.append({"option": option, "setup_s": setup, "solve_s": seconds, "iterations": iterations,
                     "residual": residual, "nnz": int(lu.L.nnz + lu.U.nnz)})

    factor_row("LU float32, nested dissection (ours)", lambda: _factor(matrix, np.float32, "NATURAL"),
               matrix, rhs, np.float32)
    factor_row("LU float64, nested dissection", lambda: _factor(matrix, np.float64, "NATURAL"),
               matrix, rhs, np.float64)
    for spec in ("COLAMD", "MMD_AT_PLUS_A"):
        factor_row(f"LU float64, SuperLU {spec} order (scipy defaults)",
                   lambda spec=spec: _factor(raster_matrix, np.float64, spec), raster_matrix, raster_rhs,
                   np.float64)
    for drop in (1e-3, 1e-4):
        factor_row(f"ILU drop {drop:g}, nested dissection (CG, max 300)",
                   lambda drop=drop: _factor(matrix, np.float64, "NATURAL", drop), matrix, rhs, np.float64)
    diagonal = matrix.diagonal()
    blur = ndimage.gaussian_filter(trimap_to_float(photo["trimap"]), BLUR_SIGMA).ravel()[system.pixels]
    for option, x0 in (("Jacobi, cold", None), ("Jacobi, warm from the blurred trimap", blur)):
        iterations, residual, seconds = _cg(matrix, rhs, lambda r: r / diagonal, x0=x0,
                                            max_iter=JACOBI_MAX_ITER)
        rows.append({"option": f"{option} (max {JACOBI_MAX_ITER})", "setup_s": 0.0, "solve_s": seconds,
                     "iterations": iterations, "residual": residual})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=SHARED_DATA, help="the photos (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=3,
                   help="runs per method and photo, the fastest kept (default 3)")
    p.add_argument("--limit", type=int, default=None, help="only the first N photos")
    p.add_argument("--quick", action="store_true",
                   help=f"the first {QUICK_LIMIT} photos, one run each, no cold import")
    p.add_argument("--no-cold-import", dest="cold_import", action="store_false",
                   help="skip timing pymatting's import with an empty numba cache (it compiles, 30-70 s)")
    p.add_argument("--study", action="store_true", help="also compare the solver options (slow)")
    p.add_argument("--study-photos", nargs="+", default=STUDY_PHOTOS, metavar="NAME:TRIMAPS",
                   help="photos for --study (default: %(default)s)")
    args = p.parse_args()
    data = photos_or_skip(args.data, "closed_form", "images/, alphas/, trimaps/, trimaps_alt/")
    if data is None:
        return
    with_pymatting = importlib.util.find_spec("pymatting") is not None
    if not with_pymatting:
        print("pymatting is not installed: only our solver runs (pip install 'deepmatting[baseline]')")
    load_before = os.getloadavg()
    imports = import_times(with_pymatting, args.cold_import and not args.quick)
    print("import seconds:", {k: round(v, 2) for k, v in imports.items()}, flush=True)
    runners = methods(with_pymatting)
    repeats = 1 if args.quick else args.repeats
    limit = args.limit or (QUICK_LIMIT if args.quick else None)
    names = sorted(path.stem for path in (data / "images").glob("*.png"))[:limit]

    results = {}
    for trimap_set in TRIMAP_SETS:
        results[trimap_set] = {}
        for name in names:
            photo = load_photo(data, name, trimap_set)
            results[trimap_set][name] = run_photo(photo, runners, repeats)
            line = ", ".join(f"{m} {r['seconds']:.2f} s SAD {r['sad']:.2f}"
                             for m, r in results[trimap_set][name].items())
            print(f"{TRIMAP_SETS[trimap_set]} {name} ({int((photo['trimap'] == 128).sum())} unknown): {line}",
                  flush=True)
    rows = summary_rows(results)
    columns = ["trimaps", "method", "s_per_photo", "x_pymatting_mean", "x_pymatting_max", "sad", "mse",
               "grad", "conn", "iterations", "max_diff_pymatting", "mean_diff_pymatting"]
    table = format_table(rows, [c for c in columns if any(c in r for r in rows)])
    table += ("\n\nMeans over the photos (s_per_photo: the fastest of the repeats; x_pymatting: time / "
              "pymatting's time per photo, mean and max); SAD, Grad, Conn in thousands, MSE on the unknown "
              "region; diff: |alpha - pymatting's| on unknown pixels, largest over all photos and mean.\n\n"
              "Import, fresh process: " + ", ".join(f"{k} {v:.2f} s" for k, v in imports.items()) + ".")

    study = {}
    if args.study:
        for spec in args.study_photos:
            name, _, trimap_set = spec.partition(":")
            photo = load_photo(data, name, trimap_set or "trimaps")
            study[spec] = study_photo(photo)
            print(f"study {spec}:\n" + format_table(study[spec], STUDY_COLUMNS), flush=True)
        table += "\n\n" + "\n\n".join(
            f"Solver options, {spec} ({TRIMAP_SETS[spec.partition(':')[2] or 'trimaps']}):\n\n"
            + format_table(rows_, STUDY_COLUMNS) for spec, rows_ in study.items())
    machine = machine_info(THREADS)
    if with_pymatting:
        import pymatting

        machine["pymatting"] = pymatting.__version__
    machine["scipy"] = scipy.__version__
    write_results("closed_form", {
        "machine": machine,
        "load_average": {"before": list(load_before), "after": list(os.getloadavg())},
        "data": os.path.relpath(data, REPO),
        "photos": len(names),
        "quick": args.quick,
        "repeats": repeats,
        "imports_s": imports,
        "results": results,
        "rows": rows,
        "study": study,
    }, table)


if __name__ == "__main__":
    main()
