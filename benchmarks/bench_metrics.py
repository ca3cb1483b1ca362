"""Speed and agreement of ``deepmatting.metrics`` against the naive MATLAB transcription, on one core.

Builds realistic 1920x1080 cases (a soft body-and-head blob with hair-like strands as ground truth, a trimap
band from eroding the ground truth's foreground and background, a prediction with blur, noise and a few
blobs of wrong alpha, all uint8 as the benchmark's PNGs), times each metric of the package, ``evaluate_all``
and the reference ``benchmarks/reference_metrics.py`` (median of repeated runs after a warm-up), and reports
seconds, the speed-up and the largest relative difference. Writes ``benchmarks/results/metrics.json``.

Run: ``.venv/bin/python benchmarks/bench_metrics.py [--seeds 3] [--repeats 5]``
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy import ndimage  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import reference_metrics as ref  # noqa: E402
from common import format_table, load_average, machine_info, median_time, write_results  # noqa: E402

from deepmatting import metrics  # noqa: E402

torch.set_num_threads(1)

HEIGHT, WIDTH = 1080, 1920


def _strands(rng: np.random.Generator, shape: tuple[int, int], center: tuple[float, float], radius: float):
    """Soft hair-like strands (float alpha in [0, 1]) growing out of a circle, as curved random walks."""
    h, w = shape
    acc = np.zeros(shape)
    for _ in range(160):
        angle = rng.uniform(-np.pi, 0.1)  # mostly upwards and sideways
        y, x = center[0] + radius * np.sin(angle), center[1] + radius * np.cos(angle)
        heading, opacity = angle + rng.normal(0, 0.3), rng.uniform(0.25, 0.9)
        for _ in range(int(rng.uniform(40, 260))):
            heading += rng.normal(0, 0.08)
            y, x = y + np.sin(heading), x + np.cos(heading)
            if not (0 <= y < h - 1 and 0 <= x < w - 1):
                break
            iy, ix, fy, fx = int(y), int(x), y - int(y), x - int(x)  # bilinear splat
            acc[iy, ix] += opacity * (1 - fy) * (1 - fx)
            acc[iy + 1, ix] += opacity * fy * (1 - fx)
            acc[iy, ix + 1] += opacity * (1 - fy) * fx
            acc[iy + 1, ix + 1] += opacity * fy * fx
    return np.clip(ndimage.gaussian_filter(acc, 0.6) * 2.5, 0, 1)


def make_case(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(pred, gt, trimap)``, each ``(1080, 1920)`` uint8, for one seed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:HEIGHT, :WIDTH].astype(np.float64)
    cx = WIDTH / 2 + rng.uniform(-200, 200)
    head_center, head_r = (rng.uniform(300, 360), cx + rng.uniform(-40, 40)), rng.uniform(150, 190)
    body_ry = 1050 - (head_center[0] + head_r) + rng.uniform(40, 80)  # the body overlaps the head: a neck
    body_dist = np.hypot((xx - cx) / rng.uniform(300, 420), (yy - 1050) / body_ry)
    head_dist = np.hypot(yy - head_center[0], xx - head_center[1]) / head_r
    soft = rng.uniform(2.0, 4.0)  # edge width in pixels
    body = np.clip((1 - body_dist) * 400 / soft + 0.5, 0, 1)
    head = np.clip((1 - head_dist) * head_r / soft + 0.5, 0, 1)
    gt = np.maximum(np.maximum(body, head), _strands(rng, (HEIGHT, WIDTH), head_center, head_r * 0.95))

    gt8 = np.round(gt * 255).astype(np.uint8)
    band = rng.uniform(10, 25)
    sure_fg = ndimage.distance_transform_edt(gt8 == 255) > band
    sure_bg = ndimage.distance_transform_edt(gt8 == 0) > band
    trimap = np.full(gt8.shape, 128, np.uint8)
    trimap[sure_fg], trimap[sure_bg] = 255, 0

    pred = ndimage.gaussian_filter(gt8 / 255.0, rng.uniform(1.0, 2.5))
    pred += rng.normal(0, 0.004, pred.shape) + (trimap == 128) * rng.normal(0, 0.04, pred.shape)
    for _ in range(5):  # blobs of wrong alpha near the object
        by, bx = rng.uniform(150, HEIGHT - 50), cx + rng.uniform(-600, 600)
        blob = np.exp(-(((yy - by) / rng.uniform(15, 60)) ** 2 + ((xx - bx) / rng.uniform(15, 60)) ** 2))
        pred = pred * (1 - blob) + rng.uniform(0, 1) * blob
    pred8 = np.round(np.clip(pred, 0, 1) * 255).astype(np.uint8)
    return pred8, gt8, trimap


def _relative_difference(a: float, b: float) -> float:
    return abs(a - b) / abs(b) if b else abs(a - b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ref-repeats", type=int, default=3)
    args = parser.parse_args()
    load_before = load_average()

    package = {
        "sad": metrics.sad_score,
        "mse": metrics.mse_score,
        "grad": metrics.gradient_error,
        "conn": metrics.connectivity_error,
        "evaluate_all": metrics.evaluate_all,
    }
    reference = {
        "sad": ref.ref_sad,
        "mse": ref.ref_mse,
        "grad": ref.ref_grad,
        "conn": ref.ref_conn,
        "evaluate_all": ref.ref_evaluate,
    }
    per_seed = []
    for seed in range(args.seeds):
        pred, gt, trimap = make_case(seed)
        entry = {"seed": seed, "unknown_fraction": float(np.mean(trimap == 128)), "times": {}, "values": {}}
        for name in package:
            case = (pred, gt, trimap)
            t_pkg = median_time(lambda f=package[name], c=case: f(*c), repeats=args.repeats)
            t_ref = median_time(lambda f=reference[name], c=case: f(*c), repeats=args.ref_repeats)
            entry["times"][name] = {"package": t_pkg, "reference": t_ref}
        got, want = metrics.evaluate_all(pred, gt, trimap), ref.ref_evaluate(pred, gt, trimap)
        for name in metrics.METRIC_NAMES:
            separate = package[name](pred, gt, trimap)
            entry["values"][name] = {"package": got[name], "separate": separate, "reference": want[name]}
        per_seed.append(entry)
        print(f"seed {seed}: unknown {entry['unknown_fraction']:.1%}, values {got}", flush=True)

    rows = []
    for name in package:
        t_pkg = float(np.mean([e["times"][name]["package"] for e in per_seed]))
        t_ref = float(np.mean([e["times"][name]["reference"] for e in per_seed]))
        keys = metrics.METRIC_NAMES if name == "evaluate_all" else (name,)
        diff = max(
            _relative_difference(e["values"][k][which], e["values"][k]["reference"])
            for e in per_seed
            for k in keys
            for which in ("package", "separate")
        )
        row = {"metric": name, "package_s": t_pkg, "reference_s": t_ref, "speedup": t_ref / t_pkg}
        rows.append({**row, "max_rel_diff": diff})
    table = format_table(rows)
    payload = {
        "machine": machine_info(threads=1),
        "load_average": {"before": load_before, "after": load_average()},
        "image_size": [HEIGHT, WIDTH],
        "seeds": args.seeds,
        "repeats": args.repeats,
        "reference_repeats": args.ref_repeats,
        "targets": {"evaluate_all_s": 0.25, "speedup": 4.0, "max_rel_diff": 1e-6},
        "rows": rows,
        "per_seed": per_seed,
    }
    write_results("metrics", payload, table)


if __name__ == "__main__":
    main()
