"""Data pipeline throughput: samples/s of each dataset through ``train_transforms(320)`` and a DataLoader.

Writes a temporary folder of ~1.5 MP photos and mattes (made from synthetic samples) for CustomDataset and
CompositionDataset, then times batches of 8 with 0 and 2 workers (one torch thread everywhere), plus the
bare synthetic generator and the per-sample cost of the readers and trimap generation at 1.5 MP.

    .venv/bin/python benchmarks/bench_data.py [--files 12] [--batches 6]

Writes ``benchmarks/results/data.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import format_table, machine_info, median_time, write_results  # noqa: E402

from deepmatting.data import (  # noqa: E402
    CompositionDataset,
    CustomDataset,
    SyntheticMattingDataset,
    make_trimap,
    read_alpha,
    read_image,
    synthesize,
    train_transforms,
)
from deepmatting.tensors import collate  # noqa: E402

PHOTO = (1000, 1500)  # 1.5 MP
BATCH = 8


def _u8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


def write_folders(root: Path, n: int) -> None:
    """root/custom/{images,masks} and root/comp/{fg,alpha,bg} at ~1.5 MP, from synthetic samples."""
    for d in ("custom/images", "custom/masks", "comp/fg", "comp/alpha", "comp/bg"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        s = synthesize(np.random.default_rng(1000 + i), PHOTO)
        Image.fromarray(_u8(s["image"])).save(root / f"custom/images/{i:03d}.jpg", quality=92)
        Image.fromarray(_u8(s["alpha"]), "L").save(root / f"custom/masks/{i:03d}.png")
        Image.fromarray(_u8(s["fg"])).save(root / f"comp/fg/{i:03d}.png")
        Image.fromarray(_u8(s["alpha"]), "L").save(root / f"comp/alpha/{i:03d}.png")
        Image.fromarray(_u8(s["bg"])).save(root / f"comp/bg/{i:03d}.jpg", quality=92)


def _one_thread(_worker_id: int) -> None:
    torch.set_num_threads(1)


def loader_rate(ds: torch.utils.data.Dataset, workers: int, batches: int) -> tuple[float, float | None]:
    """Samples/s over ``batches`` batches after a first (warm-up, worker start-up) batch, and with no
    workers also the CPU ms per sample (less sensitive than wall time to other jobs on the machine)."""
    indices = [i % len(ds) for i in range((batches + 1) * BATCH)]
    loader = torch.utils.data.DataLoader(ds, batch_size=BATCH, sampler=indices, num_workers=workers,
                                         collate_fn=collate, worker_init_fn=_one_thread if workers else None)
    it = iter(loader)
    next(it)
    start, cpu = time.perf_counter(), time.process_time()
    n = sum(len(b["name"]) for b in it)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return n / wall, (1000 * cpu / n if workers == 0 else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=12, help="photos written for the folder datasets")
    parser.add_argument("--batches", type=int, default=6, help="timed batches of 8 per configuration")
    args = parser.parse_args()
    torch.set_num_threads(1)

    rows, components = [], []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        write_folders(root, args.files)
        print(f"wrote {args.files} photos of {PHOTO[1]}x{PHOTO[0]} in {time.perf_counter() - t0:.1f} s")

        # Per-sample cost of the pieces, at 1.5 MP (median of 5 after a warm-up).
        image_path, mask_path = root / "custom/images/000.jpg", root / "custom/masks/000.png"
        alpha = read_alpha(mask_path)
        for what, fn in [("read_image (1.5 MP JPEG)", lambda: read_image(image_path)),
                         ("read_alpha (1.5 MP PNG)", lambda: read_alpha(mask_path)),
                         ("make_trimap (1.5 MP, width 10)", lambda: make_trimap(alpha, 10)),
                         ("synthesize (320x320)", lambda: synthesize(np.random.default_rng(0), 320))]:
            components.append({"operation": what, "ms": 1000 * median_time(fn, repeats=5)})

        transform = train_transforms(320)
        datasets = {
            "CustomDataset (1.5 MP JPEG + PNG)": CustomDataset(root / "custom", transform=transform),
            "CompositionDataset (1.5 MP fg/alpha PNG, bg JPEG, n_bg=2)": CompositionDataset(
                root / "comp/fg", root / "comp/alpha", root / "comp/bg", n_bg=2, transform=transform),
            "SyntheticMattingDataset (320)": SyntheticMattingDataset(10_000, size=320, transform=transform),
        }
        for name, ds in datasets.items():
            for workers in (0, 2):
                rate, cpu_ms = loader_rate(ds, workers, args.batches)
                rows.append({"dataset": name, "workers": workers, "samples_per_s": rate,
                             "ms_per_sample": 1000 / rate, "cpu_ms_per_sample": cpu_ms if cpu_ms else "-"})
                print(f"{name:60s} workers={workers}: {rate:.1f} samples/s")

        # The bare generator, one core, no transform: the figure the training loop on CPU depends on.
        # CPU time is reported beside wall time: it is less sensitive to other jobs sharing the cores.
        synth = SyntheticMattingDataset(10_000, size=320)
        n = 60
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(n):
            synth[i]
        rate = n / (time.perf_counter() - start)
        cpu_ms = 1000 * (time.process_time() - cpu) / n
        rows.append({"dataset": "SyntheticMattingDataset (320), no transform, no DataLoader", "workers": 0,
                     "samples_per_s": rate, "ms_per_sample": 1000 / rate, "cpu_ms_per_sample": cpu_ms})

    table = format_table(rows, ["dataset", "workers", "samples_per_s", "ms_per_sample", "cpu_ms_per_sample"])
    table += "\n\n" + format_table(components, ["operation", "ms"])
    load = {"before": load_before, "after": os.getloadavg()}
    print(f"load average (1, 5, 15 min) before {load['before']}, after {load['after']}")
    write_results("data", {"machine": machine_info(threads=1), "load_average": load, "batch_size": BATCH,
                           "crop": 320, "photo_size_hw": list(PHOTO), "files": args.files,
                           "timed_batches": args.batches, "rows": rows, "components": components}, table)


if __name__ == "__main__":
    main()
