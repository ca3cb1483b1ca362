"""The fusion model's targets, checked on a recipe's cross-validated report (issue "beat both classical
methods"), with per-photo tables.

    .venv/bin/python scripts/fusion_targets.py runs/fusion/report_cv.json [--mean-of-priors] [--json OUT]

For each trimap set: the means of the model, closed-form and KNN (the report's baselines, pymatting's), the
better of the two classical methods per photo, and with ``--mean-of-priors`` the untrained fusion model (the
mean of the package's closed-form and KNN mattes, solved here); then every target with its numbers and
PASS / MISS, and the SAD per photo with the model's ratio to the better classical SAD on that photo.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

METRICS = ("sad", "mse", "grad", "conn")
SETS = {"trimaps": "Trimap1", "trimaps_alt": "Trimap2"}
#: The report's names of the classical baselines (old reports: "closed-form"/"knn" were pymatting's).
CLASSICAL = {"closed-form": ("pymatting-closed-form", "closed-form"), "knn": ("pymatting-knn", "knn")}


def rows_of(methods: dict, names: tuple[str, ...]) -> dict[str, dict]:
    for name in names:
        if name in methods:
            return {row["name"]: row for row in methods[name]["images"]}
    raise KeyError(f"the report has none of {names}")


def mean_of_priors(photos: Path, trimaps: str, names: list[str]) -> dict[str, dict]:
    """The untrained fusion model's rows: the mean of the package's closed-form and KNN mattes."""
    from deepmatting.data import classical_matte, read_alpha, read_image, read_trimap
    from deepmatting.metrics import evaluate_all

    rows = {}
    for name in names:
        image = read_image(next((photos / "images").glob(f"{name}.*")))
        alpha = read_alpha(next((photos / "alphas").glob(f"{name}.*")))
        trimap = read_trimap(next((photos / trimaps).glob(f"{name}.*")))
        fused = classical_matte("closed-form+knn", image, trimap).mean(axis=-1)
        rows[name] = {"name": name, **evaluate_all(fused, alpha, trimap)}
    return rows


def targets(model: dict, cf: dict, knn: dict) -> list[tuple[str, float, float, bool]]:
    """``(target, model value, bound, met)`` for each of the issue's targets."""
    mean = {m: {k: float(np.mean([r[k] for r in rows.values()])) for k in METRICS}
            for m, rows in (("model", model), ("cf", cf), ("knn", knn))}
    worst = max(model[p]["sad"] / min(cf[p]["sad"], knn[p]["sad"]) for p in model)
    out = []
    for metric in ("sad", "conn"):
        bound = min(mean["cf"][metric], mean["knn"][metric])
        out.append((f"{metric.upper()} below the better of CF and KNN", mean["model"][metric], bound,
                    mean["model"][metric] < bound))
    for metric in ("grad", "mse"):
        out.append((f"{metric.upper()} below closed-form's", mean["model"][metric], mean["cf"][metric],
                    mean["model"][metric] < mean["cf"][metric]))
    out.append(("no photo's SAD over 1.5x the better classical SAD (worst ratio)", worst, 1.5, worst <= 1.5))
    for metric in METRICS:
        bound = min(mean["cf"][metric], mean["knn"][metric])
        out.append((f"beyond: {metric.upper()} below both", mean["model"][metric], bound,
                    mean["model"][metric] < bound))
    out.append(("beyond: SAD <= 0.85x closed-form's", mean["model"]["sad"], 0.85 * mean["cf"]["sad"],
                mean["model"]["sad"] <= 0.85 * mean["cf"]["sad"]))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("report")
    p.add_argument("--mean-of-priors", action="store_true",
                   help="also score the untrained fusion (the mean of closed-form and KNN), solved here")
    p.add_argument("--json", default=None, help="write the tables and targets here")
    args = p.parse_args()
    report = json.loads(Path(args.report).read_text())
    photos = Path(report["photos"])
    out: dict = {"report": args.report, "trimap_sets": {}}
    for trimaps, methods in report["trimap_sets"].items():
        model, cf, knn = (rows_of(methods, ("model",)), rows_of(methods, CLASSICAL["closed-form"]),
                          rows_of(methods, CLASSICAL["knn"]))
        names = sorted(model)
        better = {p: min((cf[p], knn[p]), key=lambda r: r["sad"]) for p in names}
        table = {"model": model, "closed-form": cf, "knn": knn, "better of CF and KNN (per photo)": better}
        if args.mean_of_priors:
            table["mean of CF and KNN (untrained fusion)"] = mean_of_priors(photos, trimaps, names)
        print(f"\n### {SETS.get(trimaps, trimaps)}\n")
        print("| method | SAD | MSE | Grad | Conn |\n|---|---|---|---|---|")
        for method, rows in table.items():
            cells = " | ".join(f"{np.mean([rows[p][k] for p in names]):.4g}" for k in METRICS)
            print(f"| {method} | {cells} |")
        checked = targets(model, cf, knn)
        print("\n| target | model | bound | |\n|---|---|---|---|")
        for name, value, bound, met in checked:
            print(f"| {name} | {value:.4g} | {bound:.4g} | {'PASS' if met else 'MISS'} |")
        print("\n| photo | model | closed-form | KNN | model / better |\n|---|---|---|---|---|")
        for p in names:
            ratio = model[p]["sad"] / min(cf[p]["sad"], knn[p]["sad"])
            print(f"| {p} | {model[p]['sad']:.2f} | {cf[p]['sad']:.2f} | {knn[p]['sad']:.2f} | {ratio:.2f} |")
        out["trimap_sets"][trimaps] = {
            "means": {m: {k: float(np.mean([rows[p][k] for p in names])) for k in METRICS}
                      for m, rows in table.items()},
            "targets": [{"target": n, "model": v, "bound": b, "met": bool(m)} for n, v, b, m in checked],
            "sad_per_photo": {p: {m: rows[p]["sad"] for m, rows in table.items()} for p in names},
        }
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
