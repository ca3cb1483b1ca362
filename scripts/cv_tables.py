"""Markdown tables of a recipe's cross-validated report (``OUT/report.json`` of ``scripts/pretrained.py``).

    .venv/bin/python scripts/cv_tables.py runs/pretrained/report.json [runs/cf/report.json ...]

Prints, for each trimap set, the mean SAD / MSE / Grad / Conn and seconds per photo of every method, then
the per-photo SAD of every method side by side (the reports' models are named after their recipe).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

METRICS = ("sad", "mse", "grad", "conn")
SETS = {"trimaps": "Trimap1", "trimaps_alt": "Trimap2"}


def load(paths: list[str]) -> dict[str, dict[str, dict]]:
    """``{trimap_set: {method: result}}`` over the reports; each report's "model" is named by its arch."""
    tables: dict[str, dict[str, dict]] = {}
    for path in paths:
        report = json.loads(Path(path).read_text())
        name = report["recipe"]["model"]["arch"]
        for trimaps, methods in report["trimap_sets"].items():
            for method, result in methods.items():
                key = name if method == "model" else method
                tables.setdefault(trimaps, {}).setdefault(key, result)
    return tables


def main(paths: list[str]) -> int:
    tables = load(paths)
    for trimaps, methods in tables.items():
        photos = len(next(iter(methods.values()))["images"])
        print(f"\n**{SETS.get(trimaps, trimaps)}** (means over {photos} photos, each scored by a model that "
              "did not see it)\n")
        print("| method | SAD | MSE | Grad | Conn | s / photo |")
        print("|---|---|---|---|---|---|")
        for method, result in methods.items():
            mean = result["mean"]
            seconds = result.get("seconds", mean.get("seconds", float("nan")))
            cells = " | ".join(f"{mean[k]:.4f}" if k == "mse" else f"{mean[k]:.2f}" for k in METRICS)
            print(f"| {method} | {cells} | {seconds:.2f} |")
        names = [row["name"] for row in next(iter(methods.values()))["images"]]
        print(f"\nSAD per photo, {SETS.get(trimaps, trimaps)}:\n")
        print("| photo | " + " | ".join(methods) + " |")
        print("|---" * (len(methods) + 1) + "|")
        for i, name in enumerate(names):
            cells = " | ".join(f"{r['images'][i]['sad']:.2f}" for r in methods.values())
            print(f"| {name} | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
