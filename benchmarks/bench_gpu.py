"""GPU speed: inference seconds per megapixel and training samples/s, float32 and mixed precision (CUDA only).

- **Inference**: a 1024x1024 image with an unknown band, batch 1, through
  ``deepmatting.backends.TorchBackend(model, device="cuda", amp=...)`` (channels-last, inference mode; the
  host-to-device copy of the inputs and the copy of the alpha back are included, as ``predict`` pays them),
  float32 and float16 autocast, for each architecture in ``deepmatting.list_architectures()``.
- **Training**: ``bench_train.bench_step`` on the GPU (``deepmatting.train.train_step``: forward,
  ``MattingLoss``, ``batch_metrics``, backward, Adam step; with AMP, float16 autocast and the
  ``GradScaler``), batch 8 at 320x320, the batch already on the device.

Every timed call ends with ``torch.cuda.synchronize()``, so the queued kernels are counted. Random weights
(speed does not depend on them); peak allocated GPU memory per case. Without CUDA it prints
"no CUDA device: GPU benchmark skipped" and writes ``{"skipped": "no CUDA device"}``.

Run: ``.venv/bin/python benchmarks/bench_gpu.py [--quick]``; writes ``benchmarks/results/gpu.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from common import format_table, machine_info, median_time, write_results  # noqa: E402

INFERENCE_SIZE = 1024


def _inference_inputs(size: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    image = rng.random((1, 3, size, size), dtype=np.float32)  # (1, 3, H, W)
    trimap = np.zeros((1, 1, size, size), np.float32)  # (1, 1, H, W)
    trimap[..., size // 2:, :] = 1.0
    trimap[..., size // 2 - size // 8: size // 2 + size // 8, :] = 0.5  # an unknown band across the middle
    return image, trimap


def bench_inference(arch: str, amp: bool, repeats: int, warmup: int) -> dict:
    from deepmatting import DeepMatting
    from deepmatting.backends import TorchBackend

    torch.manual_seed(0)
    backend = TorchBackend(DeepMatting(arch=arch), device="cuda", amp=amp)
    image, trimap = _inference_inputs(INFERENCE_SIZE)
    torch.cuda.reset_peak_memory_stats()

    def run() -> None:
        backend(image, trimap)  # returns a NumPy array (a device-to-host copy); synchronise anyway
        torch.cuda.synchronize()

    torch.cuda.synchronize()
    seconds = median_time(run, repeats=repeats, warmup=warmup)
    mp = INFERENCE_SIZE * INFERENCE_SIZE / 1e6
    row = {"arch": arch, "variant": "fp16 autocast" if amp else "fp32",
           "size": f"{INFERENCE_SIZE}x{INFERENCE_SIZE}", "seconds": seconds, "s_per_mp": seconds / mp,
           "peak_mem_mb": torch.cuda.max_memory_allocated() / 2**20}
    print(f"  inference {arch} {row['variant']}: {seconds * 1000:.1f} ms ({row['s_per_mp']:.4f} s/MP)",
          flush=True)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats")
    args = p.parse_args()

    if not torch.cuda.is_available():
        print("no CUDA device: GPU benchmark skipped")
        write_results("gpu", {"skipped": "no CUDA device"})
        return

    from bench_train import BATCH, SIZE, bench_step, training_batch

    from deepmatting import list_architectures

    device_name = torch.cuda.get_device_name(0)
    repeats, warmup = (3, 2) if args.quick else (10, 3)
    print(f"GPU benchmark on {device_name}: {repeats} repeats after {warmup} warm-up runs", flush=True)
    inference, training = [], []
    for arch in list_architectures():
        for amp in (False, True):
            inference.append(bench_inference(arch, amp, repeats, warmup))
            torch.cuda.empty_cache()
    batch = training_batch(SIZE, BATCH, device="cuda")
    for arch in list_architectures():
        for amp in (False, True):
            torch.cuda.reset_peak_memory_stats()
            row = bench_step(arch, amp, batch, repeats, warmup, device="cuda", sync=torch.cuda.synchronize)
            row["peak_mem_mb"] = torch.cuda.max_memory_allocated() / 2**20
            training.append(row)
            torch.cuda.empty_cache()

    table = f"GPU: {device_name}\n\n" + format_table(
        inference, ["arch", "variant", "size", "seconds", "s_per_mp", "peak_mem_mb"])
    table += "\n\n" + format_table(training, ["arch", "variant", "step_s", "samples_per_s", "metrics_ms",
                                              "metrics_fraction", "peak_mem_mb"])
    machine = machine_info()
    machine["gpu"] = device_name
    machine["cuda"] = torch.version.cuda
    write_results("gpu", {"machine": machine, "gpu": device_name, "quick": args.quick,
                          "train_batch": BATCH, "train_size": [SIZE, SIZE], "inference": inference,
                          "training": training, "rows": inference + training}, table)


if __name__ == "__main__":
    main()
