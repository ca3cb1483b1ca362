"""Markdown tables of a recipe's cross-validated report (``OUT/report.json`` of ``scripts/pretrained.py``).

    .venv/bin/python scripts/cv_tables.py runs/pretrained/report.json [runs/cf/report.json ...]

Prints, for each trimap set, the mean SAD / MSE / Grad / Conn and seconds per photo of every method, then
the per-photo SAD of every method side by side (the reports' models are named after their architecture).
Reports over different photos (``scripts/score_holdout.py``) are compared on the photos they share.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

METRICS = ("sad", "mse", "grad", "conn")
SETS = {"trimaps": "Trimap1", "trimaps_alt": "Trimap2"}


def load(paths: list[str]) -> dict[str, dict[str, dict[str, dict]]]:
    """``{trimap_set: {method: {photo: row}}}`` over the reports; each report's "model" is named by its arch.

    A method in several reports keeps the first report's rows.
    """
    tables: dict[str, dict[str, dict[str, dict]]] = {}
    for path in paths:
        report = json.loads(Path(path).read_text())
        name = report["recipe"]["model"]["arch"]
        for trimaps, methods in report["trimap_sets"].items():
            for method, result in methods.items():
                key = name if method == "model" else method
                rows = {row["name"]: row for row in result["images"]}
                tables.setdefault(trimaps, {}).setdefault(key, rows)
    return tables


def main(paths: list[str]) -> int:
    for trimaps, methods in load(paths).items():
        # every mean is over the photos that all the reports scored, so a half cross-validation (one fold
        # model, scripts/score_holdout.py) is compared like with like
        names = sorted(set.intersection(*(set(rows) for rows in methods.values())))
        label = SETS.get(trimaps, trimaps)
        print(f"\n**{label}** (means over {len(names)} photos, each scored by a model that did not see it)\n")
        print("| method | SAD | MSE | Grad | Conn | s / photo |")
        print("|---|---|---|---|---|---|")
        for method, rows in methods.items():
            mean = {k: float(np.mean([rows[n][k] for n in names])) for k in (*METRICS, "seconds")}
            cells = " | ".join(f"{mean[k]:.4f}" if k == "mse" else f"{mean[k]:.2f}" for k in METRICS)
            print(f"| {method} | {cells} | {mean['seconds']:.2f} |")
        print(f"\nSAD per photo, {SETS.get(trimaps, trimaps)}:\n")
        print("| photo | " + " | ".join(methods) + " |")
        print("|---" * (len(methods) + 1) + "|")
        for name in names:
            print(f"| {name} | " + " | ".join(f"{rows[name]['sad']:.2f}" for rows in methods.values()) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
