"""The training loop: one process, one GPU with mixed precision, or many processes under ``torchrun``.

``train(config, out_dir)`` runs Adam on the matting loss with per-batch progress (loss, SAD and MSE of the
batch's unknown region), validates every epoch at full resolution with the four benchmark metrics, keeps
``best.pt`` (by ``config.best_metric``) and ``last.pt`` (everything needed to resume: model, optimizer,
schedule, position in the epoch, RNG states, best value, config), both written atomically. A run killed at
any moment resumes from ``last.pt`` and loses at most ``checkpoint_every`` steps.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import time
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Sampler
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from . import __version__
from .checkpoint import atomic_save, load_checkpoint
from .config import ModelConfig, TrainConfig, from_dict
from .device import autocast_dtype
from .distributed import DistInfo, all_reduce_sum, barrier, broadcast_flag, setup, sync_buffers, teardown
from .evaluate import evaluate_dataset, model_predictor
from .losses import MattingLoss, unknown_mask
from .models import DeepMatting
from .run_log import RunLog
from .tensors import collate

WARMUP_STEPS = 100


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss, an incompatible checkpoint to resume from)."""


# ---- data ------------------------------------------------------------------------------------------
def build_datasets(cfg: TrainConfig) -> tuple[Dataset, Dataset, str]:
    """The training set (random crops, augmentation) and the validation set (full resolution).

    Returns ``(train, val, description)``. With no ``cfg.data``, the built-in synthetic data: a training set
    of ``synthetic_train`` samples and a disjoint validation set (another seed).
    """
    from .data import (
        CompositionDataset,
        CustomDataset,
        MixedDataset,
        SyntheticMattingDataset,
        train_transforms,
    )

    def transforms(crop_sizes=None):
        return train_transforms(
            cfg.crop,
            crop_sizes=crop_sizes,
            trimap_width_range=tuple(cfg.trimap_widths),
            trimap_blob_p=cfg.trimap_blobs,
            trimap_keep_p=cfg.trimap_keep,
        )

    if cfg.data is None:
        # generated at the crop size; the transforms add flips, colour jitter and a new trimap every epoch
        augment = transforms(crop_sizes=(cfg.crop,))
        train = SyntheticMattingDataset(cfg.synthetic_train, size=cfg.crop, seed=cfg.seed, transform=augment)
        val = SyntheticMattingDataset(cfg.synthetic_val, size=cfg.synthetic_size, seed=cfg.seed + 10_000)
        return train, val, f"built-in synthetic data ({cfg.synthetic_train} train, {cfg.synthetic_val} val)"
    root = Path(cfg.data)
    augment = transforms()
    if (root / "fg").is_dir() and (root / "bg").is_dir():
        alpha_dir = root / "alphas" if (root / "alphas").is_dir() else root / "alpha"
        trimap_dirs = sorted(d for d in root.iterdir() if d.is_dir() and d.name.startswith("trimaps"))
        train = CompositionDataset(
            root / "fg",
            alpha_dir,
            root / "bg",
            n_bg=cfg.composition_bgs,
            transform=augment,
            seed=cfg.seed,
            trimap_dirs=trimap_dirs,
        )
        note = f"{root} (composition layout: {len(train)} composites"
        note += f", trimaps from {', '.join(d.name for d in trimap_dirs)})" if trimap_dirs else ")"
    else:
        train = CustomDataset(root, transform=augment, seed=cfg.seed)
        note = f"{root} ({len(train)} images)"
    if cfg.synthetic_mix:
        synthetic = SyntheticMattingDataset(
            cfg.synthetic_mix,
            size=cfg.crop,
            seed=cfg.seed,
            transform=transforms(crop_sizes=(cfg.crop,)),
        )
        train = MixedDataset([train, synthetic])
        note += f" + {cfg.synthetic_mix} synthetic samples"
    if cfg.val is not None:
        val = CustomDataset(cfg.val)
        note += f", validation on {cfg.val}"
    elif isinstance(train, MixedDataset) or (root / "fg").is_dir():
        val = SyntheticMattingDataset(cfg.synthetic_val, size=cfg.synthetic_size, seed=cfg.seed + 10_000)
        note += f", validation on {cfg.synthetic_val} synthetic samples (no --val given)"
    else:
        val = CustomDataset(root)
        note += ", validation on the training images (no --val given)"
    return train, val, note


class _IndexSampler(Sampler[int]):
    """Yields a fixed list of indices: one rank's share of an epoch, minus the batches already done."""

    def __init__(self, indices: list[int]):
        self.indices = indices

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def epoch_indices(dataset: Dataset, cfg: TrainConfig, info: DistInfo, epoch: int) -> list[int]:
    """This rank's sample order for ``epoch``: a DistributedSampler shuffle seeded by (seed, epoch)."""
    sampler = DistributedSampler(
        dataset, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=cfg.seed, drop_last=True
    )
    sampler.set_epoch(epoch)
    indices = list(sampler)
    if len(indices) < cfg.batch_size:  # tiny datasets: repeat so that one batch can be formed
        indices = (indices * math.ceil(cfg.batch_size / max(1, len(indices))))[: cfg.batch_size]
    return indices


def make_loader(dataset: Dataset, indices: list[int], cfg: TrainConfig, info: DistInfo) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        sampler=_IndexSampler(indices),
        num_workers=cfg.workers,
        collate_fn=collate,
        drop_last=True,
        pin_memory=info.device.type == "cuda",
        worker_init_fn=_limit_worker_threads if cfg.workers else None,
        persistent_workers=False,
    )


def _limit_worker_threads(_: int) -> None:
    torch.set_num_threads(1)


# ---- per-batch numbers -------------------------------------------------------------------------------
def batch_metrics(pred: torch.Tensor, alpha: torch.Tensor, trimap: torch.Tensor) -> tuple[float, float]:
    """SAD (in thousands, mean per image) and MSE on the unknown region of a batch, as in the benchmark."""
    with torch.no_grad():
        mask = unknown_mask(trimap)
        diff = (pred.float() - alpha) * mask
        sad = diff.abs().sum(dim=(1, 2, 3)).mean() / 1000.0
        mse = diff.pow(2).sum() / mask.sum().clamp_min(1.0)
    return float(sad), float(mse)


def lr_factor(progress: float, step: int, warmup_steps: int = WARMUP_STEPS) -> float:
    """Linear warm-up over the first ``warmup_steps``, then cosine decay to 5% as ``progress`` goes 0 -> 1."""
    warm = min(1.0, (step + 1) / max(1, warmup_steps))
    return warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


# ---- checkpoints ---------------------------------------------------------------------------------------
def _rng_state() -> dict:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
    }


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(tuple(x if not isinstance(x, list) else tuple(x) for x in state["python"]))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))


class Trainer:
    """State and steps of one run. ``train()`` below is the function users call."""

    def __init__(self, cfg: TrainConfig, out_dir: str | os.PathLike, info: DistInfo, progress: bool = True):
        self.cfg, self.info, self.progress = cfg, info, progress and info.is_main
        self.out = Path(out_dir)
        self.last_path, self.best_path = self.out / "last.pt", self.out / "best.pt"
        torch.manual_seed(cfg.seed)
        self.model = DeepMatting(config=cfg.model).to(info.device, memory_format=torch.channels_last)
        # the model's config has the architecture's defaults filled in: save that one, compare with that one
        self.cfg = cfg = replace(cfg, model=self.model.config)
        self.ddp = (
            DistributedDataParallel(
                self.model, device_ids=[info.device] if info.device.type == "cuda" else None
            )
            if info.distributed
            else self.model
        )
        encoder = list(self.model.encoder.parameters())
        encoder_ids = {id(p) for p in encoder}
        groups = [
            {"params": encoder, "lr_scale": cfg.encoder_lr_scale},
            {"params": [p for p in self.model.parameters() if id(p) not in encoder_ids], "lr_scale": 1.0},
        ]
        self.optimizer = torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.loss_fn = MattingLoss(cfg.loss_weights)
        self.amp = cfg.amp
        self.scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp and info.device.type == "cuda")
        self.epoch = self.batch_in_epoch = self.step = 0
        self.elapsed = 0.0  # training seconds over all sessions of this run
        self.best = {"metric": cfg.best_metric, "value": math.inf, "epoch": None}

    # -- state --
    def state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "config": self.cfg.to_dict(),
            "version": __version__,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "step": self.step,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": {"elapsed": self.elapsed, "warmup_steps": WARMUP_STEPS},
            "scaler": self.scaler.state_dict(),
            "best": dict(self.best),
            "rng": _rng_state(),
        }

    def save_last(self) -> None:
        if self.info.is_main:
            atomic_save(self.state(), self.last_path)

    def save_best(self) -> None:
        if self.info.is_main:
            atomic_save(
                {
                    "model": self.model.state_dict(),
                    "config": self.cfg.to_dict(),
                    "version": __version__,
                    "epoch": self.epoch,
                    "step": self.step,
                    "best": dict(self.best),
                },
                self.best_path,
            )

    def load(self, path: Path) -> None:
        ckpt = load_checkpoint(path, map_location=self.info.device)
        saved = ckpt["config"].get("model", {}) if isinstance(ckpt["config"], dict) else {}
        if from_dict(ModelConfig, saved) != self.cfg.model:
            raise TrainingError(
                f"cannot resume from {path}: it holds a {saved} model, this run asks for {self.cfg.model}; "
                "use the same --arch, or a new --out folder"
            )
        if "optimizer" not in ckpt:
            raise TrainingError(f"cannot resume from {path}: it is not a training checkpoint (no optimizer)")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scaler.load_state_dict(ckpt.get("scaler", {}))
        self.epoch, self.batch_in_epoch, self.step = ckpt["epoch"], ckpt["batch_in_epoch"], ckpt["step"]
        self.elapsed = float(ckpt["scheduler"]["elapsed"])
        self.best = dict(ckpt["best"])
        if self.best.get("value") is None:
            self.best["value"] = math.inf
        _set_rng_state(ckpt["rng"])

    # -- schedule --
    def set_lr(self, total_steps: int) -> float:
        budget = (self.cfg.max_minutes or 0) * 60
        progress = max(self.step / max(1, total_steps), self.elapsed / budget if budget else 0.0)
        warmup = min(WARMUP_STEPS, max(1, total_steps // 20))
        lr = self.cfg.lr * lr_factor(progress, self.step, warmup)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        return lr

    def autocast(self):
        if not self.amp:
            return nullcontext()
        return torch.autocast(self.info.device.type, dtype=autocast_dtype(self.info.device))

    # -- one step --
    def train_step(self, batch: dict, total_steps: int) -> tuple[float, float, float, float]:
        dev = self.info.device
        batch = {k: (v.to(dev, non_blocking=True) if torch.is_tensor(v) else v) for k, v in batch.items()}
        image = batch["image"].contiguous(memory_format=torch.channels_last)
        lr = self.set_lr(total_steps)
        with self.autocast():
            pred = self.ddp(image, batch["trimap"])  # (B, 1, H, W)
        terms = self.loss_fn(pred.float(), batch)
        sad, mse = batch_metrics(pred, batch["alpha"], batch["trimap"])
        local = float(terms["total"].detach())
        finite = 1.0 if math.isfinite(local) else 0.0
        loss_sum, sad_sum, mse_sum, finite_sum = all_reduce_sum(
            [local if finite else 0.0, sad, mse, finite], self.info
        )
        if finite_sum < self.info.world_size:
            raise TrainingError(
                f"the loss became non-finite ({local}) at epoch {self.epoch + 1}, step {self.step + 1}; "
                f"stopping. The last good checkpoint is intact: {self.last_path}. Try a lower --lr "
                "or check the training data."
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(terms["total"]).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        n = self.info.world_size
        return loss_sum / n, sad_sum / n, mse_sum / n, lr

    # -- validation --
    def validate(self, val_set: Dataset) -> dict:
        """Full-resolution validation, each rank a share of the images, metrics summed across ranks."""
        sync_buffers(self.model, self.info)  # the predictor runs an eval-mode copy of self.model
        indices = list(range(self.info.rank, len(val_set), self.info.world_size))
        result = evaluate_dataset(
            model_predictor(self.model, self.info.device), val_set, indices=indices, progress=False
        )
        sums = all_reduce_sum(
            [result["sums"][k] for k in ("sad", "mse", "grad", "conn")] + [result["count"]], self.info
        )
        count = max(1.0, sums[-1])
        means = {k: sums[i] / count for i, k in enumerate(("sad", "mse", "grad", "conn"))}
        means["sample"] = result.get("sample")
        return means


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 of every parameter and buffer, in order: equal digests mean bit-identical weights."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def train(cfg: TrainConfig, out_dir: str | os.PathLike, resume: bool = False, progress: bool = True) -> dict:
    """Train a model as ``cfg`` says, writing checkpoints and logs into ``out_dir``.

    Returns a summary dict: epochs and steps done, the best validation value, paths, and whether the run
    stopped on its time budget. Under ``torchrun`` call it in every process; only rank 0 writes files.
    """
    info = setup(cfg.device)
    try:
        return _train(cfg, Path(out_dir), resume, progress, info)
    finally:
        teardown()


def _train(cfg: TrainConfig, out: Path, resume: bool, progress: bool, info: DistInfo) -> dict:
    start_time = time.monotonic()
    trainer = Trainer(cfg, out, info, progress)
    cfg = trainer.cfg  # with the model's resolved config
    resumed = resume and trainer.last_path.exists()
    if resumed:
        trainer.load(trainer.last_path)
    else:
        if resume and info.is_main:
            print(f"--resume: no {trainer.last_path} yet, starting a new run")
        try:
            if trainer.model.init_pretrained_encoder() and info.is_main:
                print("the encoder starts from its ImageNet weights")
        except ImportError as e:
            raise TrainingError(str(e)) from e
    train_set, val_set, note = build_datasets(cfg)
    log = RunLog(out, cfg.to_dict()) if info.is_main else None
    if log is not None and resume:
        log.truncate_after(trainer.epoch)
    steps_per_epoch = max(1, len(epoch_indices(train_set, cfg, info, 0)) // cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    if info.is_main:
        where = f"{info.device}" + (f" x {info.world_size} processes" if info.distributed else "")
        print(
            f"training {cfg.model.arch} ({trainer.model.num_parameters() / 1e6:.2f}M parameters) on {note}\n"
            f"  {steps_per_epoch} steps/epoch of batch {cfg.batch_size} x {info.world_size}, "
            f"{cfg.epochs} epochs, "
            f"device {where}, amp {cfg.amp}"
            + (f", budget {cfg.max_minutes} min" if cfg.max_minutes else "")
            + (f"\n  resuming at epoch {trainer.epoch + 1}, step {trainer.step}" if trainer.step else "")
        )
    budget = cfg.max_minutes * 60 if cfg.max_minutes else None
    session_start_elapsed = trainer.elapsed
    stopped_on_budget = False
    validated_at = None

    def out_of_time() -> bool:  # the budget counts the training time of every session of this run
        return budget is not None and session_start_elapsed + (time.monotonic() - start_time) >= budget

    while trainer.epoch < cfg.epochs and not stopped_on_budget:
        epoch = trainer.epoch
        if hasattr(train_set, "set_epoch"):
            train_set.set_epoch(epoch)
        indices = epoch_indices(train_set, cfg, info, epoch)[trainer.batch_in_epoch * cfg.batch_size :]
        loader = make_loader(train_set, indices, cfg, info)
        bar = tqdm(
            loader,
            total=len(indices) // cfg.batch_size,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            disable=not trainer.progress,
            dynamic_ncols=True,
            initial=0,
        )
        losses = []
        for batch in bar:
            loss, sad, mse, lr = trainer.train_step(batch, total_steps)
            trainer.step += 1
            trainer.batch_in_epoch += 1
            trainer.elapsed = session_start_elapsed + (time.monotonic() - start_time)
            losses.append(loss)
            bar.set_postfix(
                loss=f"{loss:.4f}", sad=f"{sad:.3f}", mse=f"{mse:.4f}", lr=f"{lr:.2e}", refresh=False
            )
            if cfg.checkpoint_every and trainer.step % cfg.checkpoint_every == 0:
                trainer.save_last()
            if broadcast_flag(out_of_time(), info):
                stopped_on_budget = True
                break
        bar.close()
        epoch_done = not stopped_on_budget or trainer.batch_in_epoch >= steps_per_epoch
        if epoch_done:
            trainer.epoch += 1
            trainer.batch_in_epoch = 0
        last_epoch = trainer.epoch >= cfg.epochs
        must_validate = epoch_done and (trainer.epoch % cfg.val_every == 0 or last_epoch)
        # a run stopped by its budget before any validation still leaves a best.pt behind
        must_validate |= stopped_on_budget and not trainer.best_path.exists()
        record = {
            "epoch": trainer.epoch,
            "step": trainer.step,
            "lr": trainer.optimizer.param_groups[-1]["lr"],  # the decoder: the base rate
            "train_loss": float(np.mean(losses)) if losses else None,
            "elapsed_s": round(trainer.elapsed, 1),
        }
        sample = None
        if must_validate:
            metrics = trainer.validate(val_set)
            sample = metrics.pop("sample")
            record.update({f"val_{k}": v for k, v in metrics.items()})
            value = metrics[cfg.best_metric]
            validated_at = trainer.step
            if value < trainer.best["value"] or not trainer.best_path.exists():
                trainer.best = {"metric": cfg.best_metric, "value": value, "epoch": trainer.epoch}
                trainer.save_best()
            if info.is_main:
                print(
                    f"epoch {trainer.epoch}: train loss {record['train_loss'] or float('nan'):.4f} | val "
                    + "  ".join(f"{k.upper()} {v:.4g}" for k, v in metrics.items())
                    + f" | best {cfg.best_metric.upper()} {trainer.best['value']:.4g}"
                    + f" (epoch {trainer.best['epoch']})"
                )
        trainer.save_last()
        if log is not None and (epoch_done or must_validate):
            log.log_epoch(record, sample)
        barrier(info)
    sync_buffers(trainer.model, info)
    if log is not None:
        log.close()
    summary = {
        "weights_sha256": weights_digest(trainer.model),
        "epochs": trainer.epoch,
        "steps": trainer.step,
        "best": trainer.best,
        "stopped_on_budget": stopped_on_budget,
        "last": str(trainer.last_path),
        "best_checkpoint": str(trainer.best_path),
        "validated_at_step": validated_at,
        "seconds": round(time.monotonic() - start_time, 1),
    }
    if info.is_main:
        why = "time budget reached" if stopped_on_budget else "all epochs done"
        print(
            f"stopped: {why} after {trainer.step} steps; best {cfg.best_metric.upper()} "
            f"{trainer.best['value']:.4g}; checkpoints in {out}"
        )
    return summary


__all__ = [
    "Trainer",
    "TrainingError",
    "batch_metrics",
    "build_datasets",
    "lr_factor",
    "train",
    "weights_digest",
]
