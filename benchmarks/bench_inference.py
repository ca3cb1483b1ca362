"""Inference speed and memory on the CPU (2 threads): every architecture, precision and memory format, a
12-megapixel image through the tiling path, and foreground estimation.

For each architecture in ``deepmatting.list_architectures()`` (random weights: speed does not depend on
them) and each size, seconds per megapixel (median of repeated runs after a warm-up) of

- ``fp32``: eager float32, contiguous (NCHW) tensors;
- ``channels_last``: eager float32, NHWC memory format;
- ``folded+channels_last``: BatchNorm folded into the convolutions, NHWC (what ``TorchBackend``, and so
  ``predict``, runs);
- ``channels_last+bf16``: the same under bfloat16 autocast (``TorchBackend(amp=True)`` on the CPU);
- ``compile``: ``torch.compile`` of the channels-last model (default architecture only; its compile time,
  the first call minus a steady-state call, is reported separately; ``--no-compile`` skips it),

each with its largest absolute difference from ``fp32``. Then a 4000x3000 image through
``deepmatting.predict`` (1024 px tiles) with the default model, once with a realistic trimap (a band made
from a coarse mask) and once with everything unknown (every tile runs), each in a fresh subprocess so its
peak resident memory (``VmHWM``) is its own; and ``estimate_foreground`` on a 1-megapixel image.

Targets: the architecture of the shipped default weights at most 0.25 s per megapixel on 2 cores (its
fastest eager variant; onnxruntime is ``bench_onnx.py``'s) and at least 10x faster than ``dim-vgg16`` in
fp32; the 12-megapixel image within 3 GB peak RSS.

Run: ``.venv/bin/python benchmarks/bench_inference.py [--quick] [--no-compile]``; writes
``benchmarks/results/inference.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from common import format_table, machine_info, median_time, shipped_arch, write_results  # noqa: E402

from deepmatting import DeepMatting, list_architectures  # noqa: E402
from deepmatting.models import DEFAULT_ARCH  # noqa: E402
from deepmatting.models.blocks import fuse_conv_bn  # noqa: E402

THREADS = 2
TARGET_S_PER_MP = 0.25
TARGET_SPEEDUP_VS_DIM = 10.0
TARGET_PEAK_RSS_GB = 3.0
SLOW_ARCHS = ("dim-vgg16",)


def _inputs(size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(1, 3, size, size, generator=g)  # (1, 3, H, W)
    trimap = torch.full((1, 1, size, size), 0.5)
    trimap[..., : size // 4, :] = 0.0
    trimap[..., -(size // 4):, :] = 1.0
    return image, trimap


def _run(model: torch.nn.Module, image: torch.Tensor, trimap: torch.Tensor,
         bf16: bool = False) -> torch.Tensor:
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        return model(image, trimap).float()


def bench_size(model: DeepMatting, size: int, repeats: int, compile_model: bool) -> list[dict]:
    """Every variant of one model at ``size x size``; leaves the model in the contiguous format."""
    arch = model.config.arch
    mp = size * size / 1e6
    image, trimap = _inputs(size)
    image_cl = image.contiguous(memory_format=torch.channels_last)
    trimap_cl = trimap.contiguous(memory_format=torch.channels_last)
    model.to(memory_format=torch.contiguous_format)
    reference = _run(model, image, trimap)
    rows = []

    def record(variant: str, fn) -> dict:
        seconds = median_time(fn, repeats=repeats, warmup=1)
        diff = float((fn() - reference).abs().max()) if variant != "fp32" else 0.0
        rows.append({"arch": arch, "size": f"{size}x{size}", "variant": variant, "s_per_mp": seconds / mp,
                     "seconds": seconds, "max_abs_diff": diff})
        print(f"  {arch} {size} {variant}: {seconds / mp:.3f} s/MP (max |diff| {diff:.2e})", flush=True)
        return rows[-1]

    record("fp32", lambda: _run(model, image, trimap))
    model.to(memory_format=torch.channels_last)
    record("channels_last", lambda: _run(model, image_cl, trimap_cl))
    record("channels_last+bf16", lambda: _run(model, image_cl, trimap_cl, bf16=True))
    folded = fuse_conv_bn(copy.deepcopy(model).eval()).to(memory_format=torch.channels_last)
    record("folded+channels_last", lambda: _run(folded, image_cl, trimap_cl))
    if compile_model:
        torch._dynamo.reset()
        compiled = torch.compile(model)
        start = time.perf_counter()
        _run(compiled, image_cl, trimap_cl)
        first = time.perf_counter() - start
        row = record("compile", lambda: _run(compiled, image_cl, trimap_cl))
        row["compile_s"] = first - row["seconds"]  # the first call, less one steady-state call
        print(f"  {arch} {size} compile time: {row['compile_s']:.1f} s", flush=True)
    model.to(memory_format=torch.contiguous_format)
    return rows


def bench_model(arch: str, sizes: list[int], repeats: int, compile_model: bool) -> list[dict]:
    """All sizes and variants of one architecture (random weights); few repeats for the slow ones."""
    torch.manual_seed(0)
    model = DeepMatting(arch=arch).eval()
    reps = 1 if arch in SLOW_ARCHS else repeats
    rows = []
    for size in sizes:
        rows += bench_size(model, size, reps, compile_model and arch == DEFAULT_ARCH)
    return rows


# ---- 12 MP through the tiling path, in a fresh process ------------------------------------------------
def _vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_tiling(case: str, height: int, width: int, tile_size: int) -> dict:
    """Runs inside the subprocess: predict a ``height x width`` image and report time and peak memory."""
    from deepmatting import inference
    from deepmatting.backends import TorchBackend, load_backend
    from deepmatting.checkpoint import default_weights
    from deepmatting.data.trimap import trimap_from_mask

    torch.set_num_threads(THREADS)
    if default_weights() is not None:
        backend, model_name = load_backend(device="cpu"), "packaged default weights"
    else:
        torch.manual_seed(0)
        backend, model_name = TorchBackend(DeepMatting(), device="cpu"), f"{DEFAULT_ARCH} (random)"
    rng = np.random.default_rng(0)
    image = rng.random((height, width, 3), dtype=np.float32)
    if case == "all-unknown":
        trimap = np.full((height, width), 128, np.uint8)
    else:
        yy, xx = np.ogrid[:height, :width]
        mask = ((yy - height * 0.55) / (height * 0.4)) ** 2 + ((xx - width * 0.5) / (width * 0.3)) ** 2 < 1
        trimap = trimap_from_mask(mask, max(5, round(max(height, width) / 100)))  # a band of 1% of the side
    unknown = trimap == 128
    before = _vm_hwm_mb()
    start = time.perf_counter()
    alpha = inference.predict(image, trimap, backend=backend, tile_size=tile_size)
    seconds = time.perf_counter() - start
    m = backend.pad_multiple
    starts_y = inference.tile_starts(height, tile_size // m * m, inference.DEFAULT_TILE_OVERLAP, m)
    starts_x = inference.tile_starts(width, tile_size // m * m, inference.DEFAULT_TILE_OVERLAP, m)
    ts = tile_size // m * m
    run = sum(bool(unknown[y:y + ts, x:x + ts].any()) for y in starts_y for x in starts_x)
    assert alpha.shape == (height, width)
    return {"case": case, "model": model_name, "size": f"{width}x{height}", "tile_size": tile_size,
            "unknown_fraction": float(unknown.mean()), "tiles_run": run,
            "tiles_total": len(starts_y) * len(starts_x),
            "seconds": seconds, "s_per_mp": seconds / (height * width / 1e6),
            "rss_before_predict_mb": before, "peak_rss_mb": _vm_hwm_mb()}


def bench_tiling(case: str, height: int = 3000, width: int = 4000, tile_size: int = 1024) -> dict:
    cmd = [sys.executable, __file__, "--child", case, "--child-size", f"{height}x{width}",
           "--child-tile", str(tile_size)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"  12 MP {case}: {result['seconds']:.1f} s, {result['tiles_run']}/{result['tiles_total']} tiles, "
          f"peak RSS {result['peak_rss_mb']:.0f} MB", flush=True)
    return result


def bench_foreground(repeats: int) -> dict:
    from deepmatting.foreground import estimate_foreground

    rng = np.random.default_rng(0)
    h = w = 1000
    image = rng.random((h, w, 3), dtype=np.float32)
    yy, xx = np.mgrid[0:h, 0:w] / h
    alpha = np.clip((0.35 - np.hypot(xx - 0.5, yy - 0.5)) / 0.1, 0, 1).astype(np.float32)
    seconds = median_time(lambda: estimate_foreground(image, alpha), repeats=repeats, warmup=1)
    print(f"  foreground 1 MP: {seconds:.2f} s", flush=True)
    return {"size": f"{w}x{h}", "seconds": seconds}


def _loadavg() -> float:
    """The 1-minute load average (0 where the OS does not report it)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="512x512 only, fewer repeats, no torch.compile")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed runs per case (default 5, 2 with --quick)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-size", default="3000x4000", help=argparse.SUPPRESS)
    p.add_argument("--child-tile", type=int, default=1024, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        h, w = (int(v) for v in args.child_size.split("x"))
        print(json.dumps(child_tiling(args.child, h, w, args.child_tile)))
        return

    torch.set_num_threads(THREADS)
    load_start = _loadavg()
    if load_start > 0.5:
        print(f"warning: load average {load_start:.1f} before starting: other processes are using the CPU, "
              "and 2-thread timings suffer badly from that (rerun on an idle machine)", flush=True)
    repeats = args.repeats or (2 if args.quick else 5)
    sizes = [512] if args.quick else [512, 1024]
    compile_model = not (args.quick or args.no_compile)
    print(f"inference benchmark: {THREADS} threads, sizes {sizes}, {repeats} repeats", flush=True)
    rows = []
    for arch in list_architectures():
        rows += bench_model(arch, sizes, repeats, compile_model)
    tiling = [bench_tiling("band")] + ([] if args.quick else [bench_tiling("all-unknown")])
    foreground = bench_foreground(1 if args.quick else 3)

    def best(arch: str, size: str) -> dict:
        eager = [r for r in rows if r["arch"] == arch and r["size"] == size and r["variant"] != "compile"]
        return min(eager, key=lambda r: r["s_per_mp"])

    largest = f"{sizes[-1]}x{sizes[-1]}"
    shipped = shipped_arch()
    default_fp32 = next(r for r in rows if r["arch"] == shipped and r["size"] == largest
                        and r["variant"] == "fp32")
    default_best = best(shipped, largest)
    dim = [r for r in rows if r["arch"] == "dim-vgg16" and r["size"] == largest and r["variant"] == "fp32"]
    speedup = dim[0]["s_per_mp"] / default_fp32["s_per_mp"] if dim else None
    peak_gb = max(t["peak_rss_mb"] for t in tiling) / 1024
    targets = {
        "default_s_per_mp": {"arch": shipped, "fp32": default_fp32["s_per_mp"],
                             "best_eager": default_best["s_per_mp"],
                             "best_variant": default_best["variant"], "size": largest,
                             "target": TARGET_S_PER_MP, "met": default_best["s_per_mp"] <= TARGET_S_PER_MP},
        "speedup_vs_dim_vgg16_fp32": {"value": speedup, "target": TARGET_SPEEDUP_VS_DIM,
                                      "met": speedup is not None and speedup >= TARGET_SPEEDUP_VS_DIM},
        "peak_rss_12mp_gb": {"value": peak_gb, "target": TARGET_PEAK_RSS_GB,
                             "met": peak_gb <= TARGET_PEAK_RSS_GB},
    }
    table = format_table(rows, ["arch", "size", "variant", "s_per_mp", "max_abs_diff", "compile_s"])
    table += "\n\n" + format_table(tiling, ["case", "model", "size", "tiles_run", "tiles_total",
                                            "unknown_fraction", "seconds", "peak_rss_mb"])
    table += f"\n\nforeground estimation {foreground['size']}: {foreground['seconds']:.3g} s"
    table += "\n\n" + "\n".join(
        f"- {name}: {t.get('value', t.get('best_eager')) or float('nan'):.4g} (target {t['target']}): "
        + ("met" if t["met"] else "NOT met") for name, t in targets.items())
    payload = {"machine": machine_info(THREADS), "quick": args.quick,
               "load_average": {"start": load_start, "end": _loadavg()}, "rows": rows, "tiling_12mp": tiling,
               "foreground_1mp": foreground, "targets": targets}
    write_results("inference", payload, table)


if __name__ == "__main__":
    main()
