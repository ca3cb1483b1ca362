"""What a training run leaves in its folder besides checkpoints: ``config.json``, ``metrics.jsonl``,
``curves.png`` (refreshed every epoch) and, when installed, TensorBoard scalars and sample mattes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


def write_json_atomic(obj: dict, path: str | os.PathLike) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    os.replace(tmp, path)


class RunLog:
    """Per-epoch records of a run; only the main process creates one."""

    def __init__(self, out_dir: str | os.PathLike, config: dict, tensorboard: bool = True):
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(config, self.dir / "config.json")
        self.metrics_path = self.dir / "metrics.jsonl"
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(self.dir / "tensorboard"))
            except ImportError:  # tensorboard is optional
                self.writer = None

    def records(self) -> list[dict]:
        if not self.metrics_path.exists():
            return []
        return [json.loads(line) for line in self.metrics_path.read_text().splitlines() if line.strip()]

    def truncate_after(self, epoch: int) -> None:
        """Drop records of epochs after ``epoch`` (a resumed run rewrites them)."""
        kept = [r for r in self.records() if r["epoch"] <= epoch]
        tmp = self.metrics_path.with_name(".metrics.jsonl.tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
        os.replace(tmp, self.metrics_path)

    def log_epoch(self, record: dict, sample: dict | None = None) -> None:
        """Append one epoch's record, refresh the curves, and mirror it to TensorBoard."""
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        self.plot_curves()
        if self.writer is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("epoch", "step"):
                    self.writer.add_scalar(key, value, record["step"])
            if sample is not None:
                panels = np.concatenate([sample["alpha"], sample["pred"]], axis=1)[None]  # (1, H, 2W)
                self.writer.add_image("val/gt_vs_pred", panels, record["step"])
            self.writer.flush()

    def plot_curves(self) -> Path:
        """Training loss and validation metrics per epoch, in one PNG."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        records = self.records()
        keys = [("train_loss", "training loss")] + [
            (f"val_{k}", f"validation {k.upper()}") for k in ("sad", "mse", "grad", "conn")
        ]
        fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2))
        for ax, (key, title) in zip(axes, keys, strict=True):
            pts = [(r["epoch"], r[key]) for r in records if r.get(key) is not None]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", markersize=3)
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
        fig.tight_layout()
        path = self.dir / "curves.png"
        tmp = self.dir / ".curves.tmp.png"
        fig.savefig(tmp, dpi=80)
        plt.close(fig)
        os.replace(tmp, path)
        return path

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
