"""The performance targets of issue #16, each row measured in one run: the end-to-end ``predict`` command on
a 12-megapixel photo (wall time and peak memory), ``deepmatting.predict`` and ``deepmatting.cutout`` alone,
and ``evaluate_all`` on real ground truth at 1920x1080.

The photo is synthetic but built like the issue's: a 4000x3000 JPEG (quality 90) of a textured subject
2000 px across on a textured background, composited with a soft edge, and a trimap with a 60 px unknown
band along that edge (``make_photo``). Rows:

- ``deepmatting predict --image big.jpg --trimap t.png --out o --quality fast`` in a fresh process (alpha
  and cutout written): wall seconds, and its peak resident memory (``ru_maxrss`` from ``wait4``); best of
  ``--cli-repeats``; then ``--quality best`` and ``fusion`` (the default) once each, against issue #25's
  target (exit 0 within 1.5 GB);
- ``deepmatting.predict`` alone on the decoded photo, warm (the backend loaded and one call made first);
- ``deepmatting.cutout`` alone (foreground estimation and the RGBA array) with the ground-truth alpha, soft
  across the whole band (the most it has to solve);
- ``evaluate_all`` on each photo of ``../shared/data/alphamatting-lowres`` (ground truth bilinear and
  Trimap1 nearest-neighbour, scaled to 1920x1080; the prediction is the ground truth blurred, with noise
  in the unknown region, as uint8): the median over the photos, the slowest photo, and one photo with its
  unknown region grown to 57 % of the pixels, each against the naive MATLAB transcription
  ``reference_metrics.py`` (time and largest relative difference). Skipped, with a message, when the
  photos are absent.

Each timing is the best of its repeats (``min``): the other work of a shared machine only ever adds time.
The machine, its load average before and after, and the threads are recorded.

Run: ``.venv/bin/python benchmarks/bench_targets.py [--quick]``; writes ``benchmarks/results/targets.json``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(SRC))

import reference_metrics as ref  # noqa: E402
from common import SHARED_DATA, format_table, load_average, machine_info, write_results  # noqa: E402

from deepmatting import cutout, evaluate_all, predict  # noqa: E402
from deepmatting.data import read_image, read_trimap  # noqa: E402
from deepmatting.inference import load_backend  # noqa: E402

HEIGHT, WIDTH = 3000, 4000
SUBJECT, BAND = 2000, 60  # the subject's diameter and the unknown band's width, in px
METRIC_SIZE = (1920, 1080)  # (width, height)
WIDE_UNKNOWN = 0.57

#: The issue's table: (row, what it measured then, the target, unit).
ISSUE = {
    "cli_wall": ("`deepmatting predict --image big.jpg --trimap t.png --out o --quality fast` (wall)",
                 21.0, 7.0, "s"),
    "cli_peak_rss": ("peak RSS of that command", 2.8, 1.5, "GB"),
    "predict": ("`deepmatting.predict` alone (warm)", 6.0, 3.0, "s"),
    "predict_per_mp": ("`deepmatting.predict` alone (warm), per megapixel", 0.50, 0.25, "s/MP"),
    "cutout": ("`deepmatting.cutout` alone (foreground estimation)", 8.4, 1.5, "s"),
    "evaluate_all": ("`evaluate_all`, a real photo's ground truth and trimap at 1920x1080 (median)", 0.20,
                     0.08, "s"),
}
#: Issue #25: every quality on the 12-megapixel photo exits 0 within 1.5 GB (``best`` failed on every photo
#: over about 4 MP before). ``fast`` is the command row above (the default when issue #16 measured it).
QUALITY_TARGET_GB = 1.5
QUALITIES_AT_12MP = ("fast", "best", "fusion")


def _noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Smooth ``(h, w, 3)`` float32 noise in [0, 1]: ``cells`` random values across, bicubic upsampled."""
    h, w = shape
    small = rng.random((max(2, cells * h // w), cells, 3), dtype=np.float32)
    planes = [np.asarray(Image.fromarray(small[..., c]).resize((w, h), Image.BICUBIC)) for c in range(3)]
    return np.clip(np.stack(planes, axis=-1), 0, 1)


def make_photo(folder: Path, seed: int = 0) -> tuple[Path, Path, np.ndarray]:
    """Write ``big.jpg`` and ``t.png`` into ``folder``; return their paths and the ground-truth alpha."""
    rng = np.random.default_rng(seed)
    yy, xx = np.ogrid[:HEIGHT, :WIDTH]
    r = np.hypot(yy - HEIGHT / 2, xx - WIDTH / 2).astype(np.float32)
    radius = SUBJECT / 2
    angle = np.arctan2(yy - HEIGHT / 2, xx - WIDTH / 2)
    edge = radius + 12 * np.sin(7 * angle) + 6 * np.sin(23 * angle + 1)  # a wavy outline
    alpha = np.clip((edge - r) / (BAND * 0.8) + 0.5, 0, 1).astype(np.float32)  # soft across the band
    fg = 0.5 * _noise(rng, (HEIGHT, WIDTH), 40) + 0.4 * _noise(rng, (HEIGHT, WIDTH), 400) + 0.05
    bg = 0.7 * _noise(rng, (HEIGHT, WIDTH), 12) + 0.2 * _noise(rng, (HEIGHT, WIDTH), 800)
    photo = bg + alpha[..., None] * (fg - bg)
    image_path, trimap_path = folder / "big.jpg", folder / "t.png"
    Image.fromarray(np.round(photo * 255).astype(np.uint8)).save(image_path, quality=90)
    trimap = np.full((HEIGHT, WIDTH), 128, np.uint8)
    trimap[r <= edge - BAND / 2], trimap[r >= edge + BAND / 2] = 255, 0
    Image.fromarray(trimap).save(trimap_path)
    return image_path, trimap_path, alpha


def best_time(fn, repeats: int) -> tuple[float, object]:
    """The smallest wall time of ``repeats`` calls of ``fn``, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def run_cli(image: Path, trimap: Path, out: Path, quality: str | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (GB) of ``deepmatting predict`` (``--quality`` when given) in a fresh
    process."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "deepmatting", "predict", "--image", str(image), "--trimap", str(trimap),
           "--out", str(out), *(["--quality", quality] if quality else [])]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.read().decode()[-2000:]}")
    for name in ("big_alpha.png", "big_cutout.png"):
        if not (out / name).is_file():
            raise RuntimeError(f"{' '.join(cmd)} did not write {name}")
    return seconds, usage.ru_maxrss / 2**20  # kilobytes on Linux


def _metric_case(name: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(pred, gt, trimap)`` uint8 at 1920x1080 from one photo of the shared data."""
    def read(folder: str, resample: int) -> np.ndarray:
        return np.asarray(Image.open(SHARED_DATA / folder / name).convert("L").resize(METRIC_SIZE, resample))

    gt, trimap = read("alphas", Image.BILINEAR), read("trimaps", Image.NEAREST)
    trimap = np.where(trimap < 64, 0, np.where(trimap > 192, 255, 128)).astype(np.uint8)
    pred = ndimage.gaussian_filter(gt / 255.0, 1.5) + (trimap == 128) * rng.normal(0, 0.04, gt.shape)
    return np.round(np.clip(pred, 0, 1) * 255).astype(np.uint8), gt, trimap


def _relative_difference(got: dict, want: dict) -> float:
    return max(abs(got[k] - want[k]) / abs(want[k]) if want[k] else abs(got[k]) for k in want)


def bench_metrics(repeats: int, ref_repeats: int) -> dict:
    if not (SHARED_DATA / "alphas").is_dir():
        message = f"no photos in {SHARED_DATA} (alphas/, trimaps/): evaluate_all not measured"
        print(message, flush=True)
        return {"skipped": message}
    rng = np.random.default_rng(0)
    rows = []
    names = sorted(p.name for p in (SHARED_DATA / "alphas").iterdir())
    for name in names:
        pred, gt, trimap = _metric_case(name, rng)
        seconds, _ = best_time(lambda a=(pred, gt, trimap): evaluate_all(*a), repeats)
        rows.append({"photo": name, "unknown_fraction": float(np.mean(trimap == 128)), "seconds": seconds,
                     "case": (pred, gt, trimap)})
        print(f"  evaluate_all {name}: {seconds * 1000:.1f} ms", flush=True)
    median = float(np.median([r["seconds"] for r in rows]))
    slowest = max(rows, key=lambda r: r["seconds"])
    pred, gt, trimap = rows[0]["case"]
    wide, grow = trimap.copy(), 0
    while np.mean(wide == 128) < WIDE_UNKNOWN:  # grow the first photo's unknown region to 57 %
        grow += 10
        wide = trimap.copy()
        wide[ndimage.binary_dilation(trimap == 128, iterations=grow)] = 128
    checks = []
    first = rows[0]["photo"]
    cases = {f"{first} (Trimap1)": rows[0]["case"], f"{slowest['photo']} (slowest)": slowest["case"],
             f"{first}, unknown grown by {grow} px": (pred, gt, wide)}
    for label, case in cases.items():
        seconds, got = best_time(lambda c=case: evaluate_all(*c), repeats)
        ref_seconds, want = best_time(lambda c=case: ref.ref_evaluate(*c), ref_repeats)
        checks.append({"case": label, "unknown_fraction": float(np.mean(case[2] == 128)), "seconds": seconds,
                       "reference_s": ref_seconds, "speedup": ref_seconds / seconds,
                       "max_rel_diff": _relative_difference(got, want)})
        print(f"  {label}: {seconds * 1000:.1f} ms, reference {ref_seconds:.2f} s", flush=True)
    for r in rows:
        del r["case"]
    return {"median_s": median, "slowest": {k: slowest[k] for k in ("photo", "seconds")}, "photos": rows,
            "against_reference": checks}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="one run of everything, no reference metrics repeats")
    p.add_argument("--cli-repeats", type=int, default=None, help="runs of the command (default 2, 1 quick)")
    p.add_argument("--repeats", type=int, default=None, help="runs of each in-process timing (default 3)")
    args = p.parse_args()
    cli_repeats = args.cli_repeats or (1 if args.quick else 2)
    repeats = args.repeats or (1 if args.quick else 3)
    load_start = load_average()
    print(f"issue #16 targets: load average {load_start} (other work on the machine adds time)", flush=True)

    measured = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        image_path, trimap_path, gt_alpha = make_photo(folder)
        qualities = {}
        for quality in QUALITIES_AT_12MP:
            runs = cli_repeats if quality == "fast" else 1
            cli = [run_cli(image_path, trimap_path, folder / f"o_{quality}{i}", quality) for i in range(runs)]
            qualities[quality] = {"seconds": min(s for s, _ in cli), "peak_rss_gb": max(gb for _, gb in cli)}
            print(f"  CLI --quality {quality}: {qualities[quality]['seconds']:.1f} s, peak RSS "
                  f"{qualities[quality]['peak_rss_gb']:.2f} GB", flush=True)
        measured["cli_wall"] = qualities["fast"]["seconds"]
        measured["cli_peak_rss"] = qualities["fast"]["peak_rss_gb"]
        image, trimap = read_image(image_path), read_trimap(trimap_path)
    backend = load_backend(device="cpu")
    predict(image, trimap, backend=backend)  # warm
    measured["predict"], alpha = best_time(lambda: predict(image, trimap, backend=backend), repeats)
    measured["predict_per_mp"] = measured["predict"] / (HEIGHT * WIDTH / 1e6)
    print(f"  predict: {measured['predict']:.2f} s", flush=True)
    measured["cutout"], _ = best_time(lambda: cutout(image, gt_alpha), repeats)
    print(f"  cutout: {measured['cutout']:.2f} s", flush=True)
    metrics = bench_metrics(repeats=3 if args.quick else 7, ref_repeats=1)
    if "median_s" in metrics:
        measured["evaluate_all"] = metrics["median_s"]

    rows = []
    for key, (step, then, target, unit) in ISSUE.items():
        value = measured.get(key)
        rows.append({"step": step, "issue (before)": f"{then} {unit}", "target": f"<= {target} {unit}",
                     "measured": "skipped" if value is None else f"{value:.3g} {unit}",
                     "met": "-" if value is None else ("yes" if value <= target else "NO")})
    table = format_table(rows)
    table += "\n\n" + format_table([
        {"`predict` on the 12 MP photo": f"--quality {q}", "exit": 0, "wall": f"{r['seconds']:.1f} s",
         "peak RSS": f"{r['peak_rss_gb']:.2f} GB", "target (#25)": f"exit 0, <= {QUALITY_TARGET_GB} GB",
         "met": "yes" if r["peak_rss_gb"] <= QUALITY_TARGET_GB else "NO"} for q, r in qualities.items()])
    if "against_reference" in metrics:
        table += "\n\n" + format_table(metrics["against_reference"])
    load_end = load_average()
    table += (f"\n\nLoad average (1, 5, 15 min) {load_start} before and {load_end} after, on "
              f"{machine_info()['cores_available']} cores; timings are the best of their repeats.")
    payload = {"machine": machine_info(), "quick": args.quick, "load_average": {"before": load_start,
               "after": load_end}, "photo": {"size": [WIDTH, HEIGHT], "subject_px": SUBJECT, "band_px": BAND},
               "repeats": {"cli": cli_repeats, "in_process": repeats}, "measured": measured,
               "qualities_at_12mp": qualities,
               "targets": {k: v[2] for k, v in ISSUE.items()}, "rows": rows, "metrics": metrics}
    write_results("targets", payload, table)


if __name__ == "__main__":
    main()
