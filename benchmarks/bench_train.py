"""Training throughput on the CPU (2 threads): samples/s of a full training step, of the data loaders, and
the share of the step spent on the per-batch metrics.

- **Step**: ``deepmatting.train.train_step`` as training runs it (channels-last model and image,
  forward, ``MattingLoss``, ``batch_metrics``, backward, Adam step) on one batch of 8 synthetic 320x320
  crops (``train_transforms(320, crop_sizes=(320,))``, with fg/bg so every loss term runs), for each
  architecture in ``deepmatting.list_architectures()``, in float32 and under bfloat16 autocast
  (``TrainConfig(amp=True)`` on the CPU). Median wall time after a warm-up step; the process CPU time of
  the same steps is reported beside it (less sensitive to other jobs on the machine).
- **Metrics share**: ``batch_metrics`` alone on that batch's prediction, as a fraction of the step.
- **Loading**: samples/s of each dataset through a DataLoader with ``deepmatting.tensors.collate``, batch 8,
  0 and 2 workers (``bench_data``'s folders of ~1.5 MP photos and its timing loop), as training builds
  them: ``SyntheticMattingDataset`` with ``train_transforms(320, crop_sizes=(320,))``; ``CustomDataset`` and
  ``CompositionDataset`` with ``train_transforms(320)``. Each rate is also given as a multiple of each
  architecture's fastest step rate.
- **Pipeline**: the default architecture in float32 fed by ``train.make_loader`` (synthetic data, 2
  workers) for a few steps: what a CPU training run gets when workers and the step share the 2 cores.

Targets: every dataset's loader with 2 workers at least 3x the step rate of the default architecture
(its faster precision), so that loading is never the bottleneck; ``batch_metrics`` at most 10% of the
step. Both loaders and steps are timed alone: in a real CPU run the workers share the 2 cores with the
step (the pipeline row shows what that costs).

Run: ``.venv/bin/python benchmarks/bench_train.py [--quick]``; writes ``benchmarks/results/train.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from bench_data import loader_rate, write_folders  # noqa: E402
from common import format_table, load_average, machine_info, median_time, write_results  # noqa: E402

from deepmatting import DeepMatting, MattingLoss, list_architectures  # noqa: E402
from deepmatting.config import ModelConfig, TrainConfig  # noqa: E402
from deepmatting.data import (  # noqa: E402
    CompositionDataset,
    CustomDataset,
    SyntheticMattingDataset,
    train_transforms,
)
from deepmatting.device import autocast_dtype  # noqa: E402
from deepmatting.distributed import DistInfo  # noqa: E402
from deepmatting.models import DEFAULT_ARCH  # noqa: E402
from deepmatting.tensors import collate  # noqa: E402
from deepmatting.train import (  # noqa: E402
    Step,
    TrainState,
    batch_metrics,
    epoch_indices,
    make_loader,
    make_optimizer,
    train_step,
)

THREADS = 2
SIZE = 320
BATCH = 8
TARGET_LOADER_X_STEP = 3.0
TARGET_METRICS_FRACTION = 0.10
SLOW_ARCHS = ("dim-vgg16",)  # seconds to a minute per step on 2 cores: few repeats
DTYPE_NAMES = {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32"}
TOTAL_STEPS = 10_000  # for the learning-rate schedule only; no step count is reached


def training_batch(size: int = SIZE, batch: int = BATCH, device: str | torch.device = "cpu") -> dict:
    """One collated batch of synthetic training crops (with fg/bg), as the training loader yields it."""
    ds = SyntheticMattingDataset(batch, size=size, transform=train_transforms(size, crop_sizes=(size,)))
    samples = collate([ds[i] for i in range(batch)])
    return {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in samples.items()}


def synthetic_train_set(n: int) -> SyntheticMattingDataset:
    """The built-in training set as ``build_datasets`` makes it: generated at the crop size, augmented."""
    return SyntheticMattingDataset(n, size=SIZE, transform=train_transforms(SIZE, crop_sizes=(SIZE,)))


class Trainer:
    """What ``deepmatting.train`` builds for one run, stepped by hand (no checkpoint is written)."""

    def __init__(self, cfg: TrainConfig, info: DistInfo):
        model = DeepMatting(config=cfg.model).to(info.device, memory_format=torch.channels_last)
        self.cfg, self.info, self.state = cfg, info, TrainState()
        scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp and info.device.type == "cuda")
        self.step = Step(model, MattingLoss(cfg.loss_weights), make_optimizer(model, cfg), scaler)
        self.out = Path(tempfile.gettempdir()) / "deepmatting-bench-train"

    def train_step(self, batch: dict, total_steps: int) -> None:
        """``deepmatting.train.train_step``, as ``train_one_epoch`` calls it."""
        train_step(self.step, batch, self.cfg, self.state, self.info, total_steps, self.out)
        self.state.step += 1


def make_trainer(arch: str, amp: bool, device: str = "cpu") -> Trainer:
    """A ``Trainer`` for ``arch`` on ``device`` (nothing is written: no step here saves a checkpoint)."""
    cfg = TrainConfig(model=ModelConfig(arch=arch, pretrained_encoder=False), amp=amp, device=device,
                      batch_size=BATCH, crop=SIZE)
    return Trainer(cfg, DistInfo(device=torch.device(device)))


def bench_step(arch: str, amp: bool, batch: dict, repeats: int, warmup: int, device: str = "cpu",
               sync: Callable[[], None] | None = None) -> dict:
    """Time ``Trainer.train_step`` and ``batch_metrics`` for one architecture and precision.

    ``sync`` (``torch.cuda.synchronize`` on a GPU) runs after every timed call, so that the time covers the
    queued kernels (the backward pass and the Adam step are asynchronous there).
    """
    sync = sync or (lambda: None)
    torch.manual_seed(0)
    trainer = make_trainer(arch, amp, device)
    n = len(batch["name"])

    def step() -> None:
        trainer.train_step(batch, TOTAL_STEPS)
        sync()

    for _ in range(warmup):
        step()
    wall, cpu = [], []
    for _ in range(repeats):
        sync()
        start, cpu_start = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
    step_s = sorted(wall)[len(wall) // 2]
    cpu_s = sorted(cpu)[len(cpu) // 2]

    # batch_metrics alone; its cost does not depend on the model, so a noisy copy of the ground truth
    # stands in for the prediction (in the autocast dtype, as the step passes it): no extra forward pass
    alpha = batch["alpha"]
    dtype = autocast_dtype(trainer.info.device) if amp else torch.float32
    pred = (alpha + 0.05 * torch.randn_like(alpha)).clamp(0, 1).to(dtype)  # (B, 1, H, W)
    sync()

    def metrics() -> None:
        batch_metrics(pred, alpha, batch["trimap"])  # returns Python floats: synchronises itself
        sync()

    metrics_s = median_time(metrics, repeats=20, warmup=2)
    variant = f"{DTYPE_NAMES[dtype]} autocast" if amp else "fp32"
    row = {"arch": arch, "variant": variant, "step_s": step_s, "samples_per_s": n / step_s,
           "cpu_s_per_step": cpu_s, "metrics_ms": 1000 * metrics_s, "metrics_fraction": metrics_s / step_s,
           "repeats": repeats}
    print(f"  {arch} {variant}: {step_s:.2f} s/step, {n / step_s:.2f} samples/s, batch_metrics "
          f"{1000 * metrics_s:.1f} ms ({metrics_s / step_s:.2%} of the step)", flush=True)
    return row


def bench_pipeline(step_rate: float, steps: int) -> dict:
    """The default architecture (float32) fed by the training loader: synthetic data, 2 workers."""
    cfg = TrainConfig(model=ModelConfig(arch=DEFAULT_ARCH), batch_size=BATCH, crop=SIZE, workers=2,
                      device="cpu", synthetic_train=BATCH * (steps + 1))
    info = DistInfo()
    ds = synthetic_train_set(cfg.synthetic_train)
    torch.manual_seed(0)
    trainer = Trainer(cfg, info)
    loader = iter(make_loader(ds, epoch_indices(ds, cfg, info, 0), cfg, info))
    trainer.train_step(next(loader), TOTAL_STEPS)  # warm-up, and the workers have started
    start, n = time.perf_counter(), 0
    for batch in loader:
        trainer.train_step(batch, TOTAL_STEPS)
        n += len(batch["name"])
    rate = n / (time.perf_counter() - start)
    print(f"  pipeline {DEFAULT_ARCH} fp32 + 2 workers: {rate:.2f} samples/s "
          f"({rate / step_rate:.0%} of the step alone)", flush=True)
    return {"arch": DEFAULT_ARCH, "variant": "fp32", "workers": cfg.workers, "steps": steps,
            "samples_per_s": rate, "fraction_of_step_rate": rate / step_rate}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="fewer repeats and batches, 4 photos, dim-vgg16 without warm-up (a few minutes)")
    p.add_argument("--archs", nargs="+", default=None, help="architectures (default: all registered)")
    p.add_argument("--no-loaders", action="store_true", help="skip the data-loader and pipeline measurements")
    args = p.parse_args()
    torch.set_num_threads(THREADS)
    archs = args.archs or list_architectures()
    load_start = load_average()
    if load_start and load_start[0] > 0.5:
        print(f"warning: load average {load_start[0]:.1f}: other processes share the CPU, and the timings "
              "suffer (rerun on an idle machine)", flush=True)

    print(f"training step: batch {BATCH} x {SIZE}x{SIZE}, {THREADS} threads", flush=True)
    batch = training_batch()
    steps = []
    for arch in archs:
        slow = arch in SLOW_ARCHS
        repeats = (1 if slow else 3) if args.quick else (2 if slow else 8)
        warmup = 0 if (slow and args.quick) else 1
        for amp in (False, True):
            steps.append(bench_step(arch, amp, batch, repeats, warmup))
    fastest = {a: max(r["samples_per_s"] for r in steps if r["arch"] == a) for a in archs}

    loaders, pipeline = [], None
    if not args.no_loaders:
        files, batches = (4, 2) if args.quick else (12, 6)
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            write_folders(root, files)
            augment = train_transforms(SIZE)  # what build_datasets gives folder datasets
            datasets = {
                f"SyntheticMattingDataset ({SIZE})": synthetic_train_set(10_000),
                "CustomDataset (1.5 MP JPEG + PNG)": CustomDataset(root / "custom", transform=augment),
                "CompositionDataset (1.5 MP, n_bg=2)": CompositionDataset(
                    root / "comp/fg", root / "comp/alpha", root / "comp/bg", n_bg=2, transform=augment),
            }
            for name, ds in datasets.items():
                for workers in (0, 2):
                    rate, _ = loader_rate(ds, workers, batches)
                    row = {"dataset": name, "workers": workers, "samples_per_s": rate}
                    row.update({f"x_{a}_step": rate / fastest[a] for a in archs})
                    loaders.append(row)
                    print(f"  {name} workers={workers}: {rate:.1f} samples/s", flush=True)
        if DEFAULT_ARCH in archs:
            step_rate = next(r["samples_per_s"] for r in steps
                             if r["arch"] == DEFAULT_ARCH and r["variant"] == "fp32")
            pipeline = bench_pipeline(step_rate, steps=3 if args.quick else 8)

    targets = {}
    if loaders and DEFAULT_ARCH in archs:
        worst = min((r for r in loaders if r["workers"] == 2), key=lambda r: r["samples_per_s"])
        value = worst["samples_per_s"] / fastest[DEFAULT_ARCH]
        targets["loader_x_default_step_2_workers"] = {
            "value": value, "slowest_dataset": worst["dataset"], "target": TARGET_LOADER_X_STEP,
            "met": value >= TARGET_LOADER_X_STEP}
    worst = max(steps, key=lambda r: r["metrics_fraction"])
    targets["metrics_fraction_of_step"] = {
        "value": worst["metrics_fraction"], "worst": f"{worst['arch']} {worst['variant']}",
        "target": TARGET_METRICS_FRACTION, "met": worst["metrics_fraction"] <= TARGET_METRICS_FRACTION}

    table = format_table(steps, ["arch", "variant", "step_s", "samples_per_s", "cpu_s_per_step", "metrics_ms",
                                 "metrics_fraction"])
    if loaders:
        table += "\n\n" + format_table(loaders)
    if pipeline:
        table += (f"\n\npipeline ({pipeline['arch']} fp32, synthetic data, {pipeline['workers']} workers): "
                  f"{pipeline['samples_per_s']:.3g} samples/s, "
                  f"{pipeline['fraction_of_step_rate']:.0%} of the step alone")
    table += "\n\n" + "\n".join(
        f"- {name}: {t['value']:.3g} (target {'>=' if 'loader' in name else '<='} {t['target']}): "
        + ("met" if t["met"] else "NOT met") for name, t in targets.items())
    write_results("train", {
        "machine": machine_info(THREADS), "quick": args.quick,
        "load_average": {"start": load_start, "end": load_average()},
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "batch_size": BATCH, "size": [SIZE, SIZE], "steps": steps, "loaders": loaders, "pipeline": pipeline,
        "targets": targets, "rows": steps,
    }, table)


if __name__ == "__main__":
    main()
