"""onnxruntime vs PyTorch eager: CPU latency of one forward pass at 1024x1024, and the largest difference.

The shipped default weights' architecture (``--arch`` another) with random weights (latency does not
depend on the weights), batch 1, a trimap with an unknown band; PyTorch and onnxruntime both limited to
the same number of threads (2 by default). PyTorch runs twice: plain eager (NCHW, as
``model(image, trimap)``) and through ``TorchBackend`` (the path ``predict`` takes: channels-last,
inference mode). Median of ``--repeats`` runs after ``--warmup``.

    .venv/bin/python benchmarks/bench_onnx.py            # writes benchmarks/results/onnx.json
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import format_table, machine_info, median_time, shipped_arch, write_results  # noqa: E402

from deepmatting import DeepMatting  # noqa: E402
from deepmatting.backends import OnnxBackend, TorchBackend  # noqa: E402
from deepmatting.export import export_onnx  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default=None, help="default: the shipped default weights' architecture")
    parser.add_argument("--size", type=int, default=1024, help="height and width in pixels (default 1024)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads for both (default 2)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = DeepMatting(args.arch or shipped_arch()).eval()
    rng = np.random.default_rng(0)
    s = args.size
    image = rng.random((1, 3, s, s), dtype=np.float32)
    trimap = np.zeros((1, 1, s, s), np.float32)
    trimap[..., s // 2:, :] = 1.0
    trimap[..., s // 2 - s // 8: s // 2 + s // 8, :] = 0.5  # an unknown band across the middle

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        path = export_onnx(model, Path(tmp) / "model.onnx")
        export_seconds = time.perf_counter() - start
        onnx_mb = path.stat().st_size / 1e6
        ort_backend = OnnxBackend(path, providers=["CPUExecutionProvider"], threads=args.threads)

        x, t = torch.from_numpy(image), torch.from_numpy(trimap)

        def eager():
            with torch.inference_mode():
                return model(x, t).numpy()

        torch_backend = TorchBackend(model, device="cpu")  # a BatchNorm-folded copy; `model` is unchanged

        runs = {
            "pytorch eager": eager,
            "pytorch TorchBackend (BN folded, channels-last)": lambda: torch_backend(image, trimap),
            "onnxruntime": lambda: ort_backend(image, trimap),
        }
        reference = eager()
        rows = []
        for name, fn in runs.items():
            seconds = median_time(fn, repeats=args.repeats, warmup=args.warmup)
            diff = float(np.abs(fn() - reference).max())
            rows.append({"runtime": name, "median_s": seconds, "max_abs_diff_vs_eager": diff})
        base = rows[0]["median_s"]
        for row in rows:
            row["speedup_vs_eager"] = base / row["median_s"]

    import onnxruntime

    table = format_table(rows, ["runtime", "median_s", "speedup_vs_eager", "max_abs_diff_vs_eager"])
    machine = machine_info(args.threads)
    machine["onnxruntime"] = onnxruntime.__version__
    machine["load_average_1_5_15min"] = list(os.getloadavg())  # other work on the machine skews timings
    write_results("onnx", {
        "machine": machine,
        "arch": args.arch,
        "size": [s, s],
        "batch": 1,
        "threads": args.threads,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "export_seconds": export_seconds,
        "onnx_megabytes": onnx_mb,
        "rows": rows,
    }, table)


if __name__ == "__main__":
    main()
