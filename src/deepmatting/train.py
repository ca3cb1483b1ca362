"""The training loop: one process, one GPU with mixed precision, or many processes under ``torchrun``.

Read like torchvision's reference scripts: :func:`train` builds the model, the data, the optimizer and a
small :class:`TrainState`, then alternates :func:`train_one_epoch` and :func:`evaluate` (full-resolution
validation with the four benchmark metrics, through the scoring path every other command uses). It keeps
``best.pt`` (by ``config.best_metric``) and ``last.pt`` (everything needed to resume: model, optimizer,
state, RNG states, config), both written atomically and only with finite weights. A run killed at any
moment resumes from ``last.pt`` and loses at most ``checkpoint_every`` steps; a diverged run stops with a
message that names the step and leaves the last good checkpoint as it was.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import random
import re
import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Sampler
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from . import __version__
from .backends import TorchBackend
from .checkpoint import CheckpointError, atomic_save, load_checkpoint
from .config import RESUMABLE_FIELDS, ConfigError, TrainConfig, from_dict
from .device import autocast_dtype
from .distributed import DistInfo, all_reduce_sum, barrier, broadcast_flag, setup, sync_buffers, teardown
from .inference import sample_predictor
from .losses import MattingLoss, unknown_mask
from .metrics import METRIC_NAMES, MetricAccumulator
from .models import DeepMatting
from .run_folder import RunFolderError, claim_run_folder
from .run_log import RunLog
from .scoring import score_dataset
from .tensors import collate

WARMUP_STEPS = 100
#: ... or this fraction of the run (by steps or by the time budget), whichever is shorter.
WARMUP_FRACTION = 0.05
#: Runs planned (or stopped) below this many steps are warned about: far too short to learn.
TOO_FEW_STEPS = 200


class TrainingError(RuntimeError):
    """Training cannot go on (divergence, a full disk, an incompatible checkpoint to resume from)."""


# ---- data ------------------------------------------------------------------------------------------
def build_datasets(cfg: TrainConfig, out: Path | None = None) -> tuple[Dataset, Dataset, str]:
    """The training set (random crops, augmentation) and the validation set (full resolution).

    Returns ``(train, val, description)``. With no ``cfg.data``, the built-in synthetic data: a training set
    of ``synthetic_train`` samples and a disjoint validation set (another seed). For a model that refines a
    classical matte, the training set is a pool of ``cfg.prior_pool`` samples with their matte, cached in
    ``OUT/prior_pool`` (:class:`deepmatting.data.PriorPool`).
    """
    from .data import PhotoPriorPool, PriorPool
    from .models.registry import get_architecture

    prior = get_architecture(cfg.model.arch).prior
    if prior is not None and cfg.prior_variants and cfg.data is not None:
        val, val_note = _validation_set(cfg, None)  # the photos are all for training
        cache = Path(cfg.prior_cache or Path(out or ".") / "prior_pool")
        train = PhotoPriorPool(cfg.data, cache, prior, cfg.prior_pool, variants=cfg.prior_variants,
                               crop=cfg.crop, trimap_widths=tuple(cfg.trimap_widths),
                               trimap_blobs=cfg.trimap_blobs, seed=cfg.seed,
                               max_pixels=cfg.model.prior_pixels)
        return train, val, f"{train!r} with their {prior} mattes (cached in {cache}); {val_note}"
    train, val, note = _source_datasets(cfg)
    if prior is not None:
        cache = Path(cfg.prior_cache or Path(out or ".") / "prior_pool")
        train = PriorPool(train, cfg.prior_pool, cache, prior, seed=cfg.seed)
        note += f"; a pool of {cfg.prior_pool} of its samples with their {prior} matte (cached in {cache})"
    return train, val, note


def _source_datasets(cfg: TrainConfig) -> tuple[Dataset, Dataset, str]:
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
        val, val_note = _validation_set(cfg, None)
        return train, val, f"built-in synthetic data ({cfg.synthetic_train} samples), {val_note}"
    root = Path(cfg.data)
    max_pixels = _max_pixels(cfg)
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
            max_pixels=max_pixels,
        )
        note = f"{root} (composition layout: {len(train)} composites"
        note += f", trimaps from {', '.join(d.name for d in trimap_dirs)})" if trimap_dirs else ")"
    else:
        train = CustomDataset(root, transform=augment, seed=cfg.seed, max_pixels=max_pixels)
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
    own_images = not isinstance(train, MixedDataset) and not (root / "fg").is_dir()
    val, val_note = _validation_set(cfg, root if own_images else None)
    return train, val, f"{note}, {val_note}"


def _max_pixels(cfg: TrainConfig) -> int:
    """The largest dataset image ``cfg.max_megapixels`` allows, in pixels (at least one)."""
    return max(1, round(cfg.max_megapixels * 1e6))


def _validation_set(cfg: TrainConfig, images: Path | None) -> tuple[Dataset, str]:
    """The validation set and a phrase saying what it is: ``cfg.val`` whenever it is given (whatever the
    training data), else the folder ``images`` (the training images themselves), else synthetic samples
    of another seed than the training set's."""
    from .data import CustomDataset, SyntheticMattingDataset

    if cfg.val is not None:
        return CustomDataset(cfg.val, max_pixels=_max_pixels(cfg)), f"validation on {cfg.val}"
    if images is not None:
        val = CustomDataset(images, max_pixels=_max_pixels(cfg))
        return val, "validation on the training images (no --val given)"
    val = SyntheticMattingDataset(cfg.synthetic_val, size=cfg.synthetic_size, seed=cfg.seed + 10_000)
    return val, f"validation on {cfg.synthetic_val} synthetic samples (no --val given)"


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
    """Linear warm-up over the first ``warmup_steps`` or the first ``WARMUP_FRACTION`` of ``progress``
    (whichever ends first: a short run still reaches its rate), then cosine decay to 5% as ``progress``
    goes 0 -> 1."""
    warm = min(1.0, max((step + 1) / max(1, warmup_steps), progress / WARMUP_FRACTION))
    return warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))




# ---- state and checkpoints -------------------------------------------------------------------------
@dataclass
class TrainState:
    """Where a run is: epochs done, batches done in the current epoch, optimizer steps, training seconds
    over every session, and the best validation value so far."""

    epoch: int = 0
    batch_in_epoch: int = 0
    step: int = 0
    elapsed: float = 0.0
    best: dict = field(default_factory=lambda: {"metric": "sad", "value": math.inf, "epoch": None})


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


def weights_are_finite(model: torch.nn.Module) -> bool:
    """True when every parameter and buffer of ``model`` is finite."""
    return all(bool(torch.isfinite(t).all()) for t in model.state_dict().values() if t.is_floating_point())


def save_checkpoint(path: Path, model: DeepMatting, cfg: TrainConfig, state: TrainState,
                    optimizer: torch.optim.Optimizer | None = None, scaler=None) -> None:
    """Write a training checkpoint atomically: ``best.pt`` without ``optimizer``, ``last.pt`` with it.

    Raises
    ------
    TrainingError
        When the weights are not finite (a diverged model is never written), or the file cannot be
        written (a full disk): the previous file is left as it was.
    """
    if not weights_are_finite(model):
        raise TrainingError(f"training diverged at step {state.step}: the weights are not finite; "
                            f"{path.name} was not written. {_what_exists(path.parent)} Try a lower --lr.")
    extra = {"epoch": state.epoch, "step": state.step, "best": dict(state.best), "state": asdict(state)}
    if optimizer is not None:
        extra.update(optimizer=optimizer.state_dict(), scaler=scaler.state_dict() if scaler else {},
                     rng=_rng_state())
    try:
        atomic_save(model.checkpoint_dict(config=cfg.to_dict(), **extra), path)
    except CheckpointError as e:
        raise TrainingError(str(e)) from e


def _what_exists(out: Path) -> str:
    """A sentence on the checkpoints left in ``out`` (for messages about a stopped run)."""
    found = [p for p in (out / "last.pt", out / "best.pt") if p.exists()]
    if not found:
        return "No checkpoint was written yet."
    return "The last good checkpoints are intact: " + ", ".join(str(p) for p in found) + "."


def remove_stale_temporaries(out: Path) -> list[Path]:
    """Delete the temporary files that runs killed while writing a checkpoint left in ``out``."""
    stale = [p for name in ("last.pt", "best.pt") for p in out.glob(f".{name}.*.tmp")]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def config_changes(saved: TrainConfig, cfg: TrainConfig) -> dict[str, tuple]:
    """The fields that differ between ``saved`` and ``cfg``: ``{name: (old, new)}``, the model's fields
    as ``model.<name>``; paths compared as paths (``data/`` and ``data`` are the same folder)."""
    def flat(c: TrainConfig) -> dict:
        d = c.to_dict()
        d.update({f"model.{k}": v for k, v in d.pop("model").items()})
        for name in ("data", "val", "init", "prior_cache"):
            d[name] = os.path.normpath(d[name]) if d[name] is not None else None
        return d

    old, new = flat(saved), flat(cfg)
    return {k: (old[k], new[k]) for k in new if old[k] != new[k]}


def _describe_changes(changes: dict[str, tuple]) -> str:
    return ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changes.items())


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version)[:3])


def _saved_train_config(ckpt: dict, path: Path) -> TrainConfig:
    """The TrainConfig a training checkpoint was written with, its model's defaults filled in as a run
    fills them; a :class:`TrainingError` naming ``path`` when it cannot be read."""
    version = ckpt.get("version")
    if not isinstance(version, str) or not _version_tuple(version):
        raise TrainingError(f"cannot resume from {path}: it records no deepmatting version ({version!r}); "
                            "it was not written by `deepmatting train`")
    if _version_tuple(version) > _version_tuple(__version__):
        raise TrainingError(f"cannot resume from {path}: it was written by a newer deepmatting ({version}; "
                            f"this is {__version__}): upgrade deepmatting to continue this run")
    try:
        saved = TrainConfig.from_dict(ckpt["config"])
        with torch.device("meta"):  # only the config's filled-in defaults are wanted, not the weights
            return replace(saved, model=DeepMatting(config=saved.model).config)
    except (ConfigError, TypeError, ValueError) as e:
        raise TrainingError(f"cannot resume from {path}: its training config is not valid ({e})") from e


def _state_from_dict(raw) -> TrainState:
    """The :class:`TrainState` saved as ``raw``: every field present, of its type and in range; else a
    ``ConfigError`` saying what is wrong."""
    fields = {f.name for f in dataclasses.fields(TrainState)}
    if not isinstance(raw, dict):
        raise ConfigError(f"is a {type(raw).__name__}, not a dict")
    missing, extra = sorted(fields - set(raw)), sorted(set(raw) - fields)
    if missing or extra:
        raise ConfigError("; ".join(x for x in (f"lacks {missing}" if missing else "",
                                                f"has unknown fields {extra}" if extra else "") if x))
    try:
        state = from_dict(TrainState, raw)
    except ConfigError as e:
        raise ConfigError(f"is not valid ({e})") from e
    if min(state.epoch, state.batch_in_epoch, state.step) < 0 or not (
            math.isfinite(state.elapsed) and state.elapsed >= 0):
        raise ConfigError(f"holds impossible counts ({raw})")
    best = state.best
    value = best.get("value") if isinstance(best, dict) else None
    if (not isinstance(best, dict) or not {"metric", "value", "epoch"} <= set(best)
            or not (value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)))):
        raise ConfigError(f"has no record of the best validation ({best!r})")
    return state


def resume_from(path: Path, model: DeepMatting, cfg: TrainConfig, optimizer, scaler,
                device) -> tuple[TrainState, dict[str, tuple]]:
    """Load ``last.pt`` into the model, optimizer and scaler and restore the RNG states.

    The run must go on as it started: ``cfg`` may differ from the checkpoint's config only in
    :data:`deepmatting.config.RESUMABLE_FIELDS` (how long, where, how often it checkpoints or validates).
    Returns the saved state and those changes (``{field: (old, new)}``).

    Raises
    ------
    TrainingError
        Naming ``path`` and the problem: another config (the fields that differ, old -> new), a file
        written by a newer deepmatting, or a checkpoint whose training part (``optimizer``, ``state``,
        ``rng``) is missing or damaged.
    """
    try:
        ckpt = load_checkpoint(path, map_location=device)
    except CheckpointError as e:
        raise TrainingError(f"cannot resume: {e}") from e
    saved = _saved_train_config(ckpt, path)
    changes = config_changes(saved, cfg)
    refused = {k: v for k, v in changes.items() if k not in RESUMABLE_FIELDS}
    if refused:
        raise TrainingError(
            f"cannot resume from {path}: this run asks for other options than the run it continues "
            f"({_describe_changes(refused)}); repeat the run's own options (only "
            f"{', '.join(RESUMABLE_FIELDS)} may change), or start a new run in another --out")
    missing = [k for k in ("optimizer", "state", "rng") if k not in ckpt]
    if missing:
        raise TrainingError(f"cannot resume from {path}: it is not a training checkpoint (no "
                            f"{' or '.join(map(repr, missing))}); "
                            "--resume needs the last.pt a run writes")
    try:
        state = _state_from_dict(ckpt["state"])
    except ConfigError as e:
        raise TrainingError(f"cannot resume from {path}: its 'state' {e}; the file is damaged or was not "
                            "written by this version of deepmatting") from e
    try:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scaler.load_state_dict(ckpt.get("scaler") or {})
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
        raise TrainingError(f"cannot resume from {path}: its weights or optimizer state do not fit the model "
                            f"({type(e).__name__}: {e})") from e
    try:
        _set_rng_state(ckpt["rng"])
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
        raise TrainingError(f"cannot resume from {path}: its random-number generator states are damaged "
                            f"({type(e).__name__}: {e})") from e
    if state.best.get("value") is None:
        state.best["value"] = math.inf
    return state, changes


# ---- one epoch, one validation -------------------------------------------------------------------------
def make_optimizer(model: DeepMatting, cfg: TrainConfig) -> torch.optim.Adam:
    """Adam with two parameter groups: the encoder (``lr * encoder_lr_scale``) and everything else."""
    encoder = list(model.encoder.parameters())
    encoder_ids = {id(p) for p in encoder}
    groups = [
        {"params": encoder, "lr_scale": cfg.encoder_lr_scale},
        {"params": [p for p in model.parameters() if id(p) not in encoder_ids], "lr_scale": 1.0},
    ]
    return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def set_learning_rate(optimizer: torch.optim.Optimizer, cfg: TrainConfig, state: TrainState,
                      total_steps: int | None) -> float:
    """Warm-up then cosine decay over the planned steps or the time budget (whichever ends first)."""
    budget = (cfg.max_minutes or 0) * 60
    by_steps = state.step / total_steps if total_steps else 0.0
    progress = max(by_steps, state.elapsed / budget if budget else 0.0)
    lr = cfg.lr * lr_factor(progress, state.step)
    for group in optimizer.param_groups:
        group["lr"] = lr * group["lr_scale"]
    return lr


def _autocast(cfg: TrainConfig, device: torch.device):
    return torch.autocast(device.type, dtype=autocast_dtype(device)) if cfg.amp else nullcontext()


def _diverged(state: TrainState, what: str, out: Path) -> TrainingError:
    return TrainingError(f"training diverged at step {state.step + 1} (epoch {state.epoch + 1}): {what}; "
                         f"stopping. {_what_exists(out)} Try a lower --lr or check the training data.")


@dataclass
class Step:
    """What one optimizer step needs: the module that runs the batches (a DistributedDataParallel wrapper
    under torchrun), the loss, the optimizer and the gradient scaler (a no-op off CUDA)."""

    model: torch.nn.Module
    loss_fn: MattingLoss
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler


def train_step(step: Step, batch: dict, cfg: TrainConfig, state: TrainState, info: DistInfo,
               total_steps: int | None, out: Path) -> tuple[float, float, float, float]:
    """One optimizer step on a batch; returns the loss, SAD and MSE (means over processes) and the rate.

    Raises
    ------
    TrainingError
        When the predictions or the loss are not finite (on any process): the step is not taken.
    """
    dev = info.device
    batch = {k: (v.to(dev, non_blocking=True) if torch.is_tensor(v) else v) for k, v in batch.items()}
    image = batch["image"].contiguous(memory_format=torch.channels_last)
    lr = set_learning_rate(step.optimizer, cfg, state, total_steps)
    prior = [batch["prior"]] if "prior" in batch else []  # for models that refine a classical matte
    if cfg.model.input == "image":  # no unknown region: the loss and the batch numbers cover every pixel
        batch["trimap"] = torch.full_like(batch["alpha"], 0.5)
    with _autocast(cfg, dev):
        pred = step.model(image, batch["trimap"], *prior)  # (B, 1, H, W)
    pred = pred.float()
    terms = step.loss_fn(pred, batch)
    loss = float(terms["total"].detach())
    problem = None if math.isfinite(loss) else f"the loss is {loss}"
    if problem is None and not bool(torch.isfinite(pred).all()):
        problem = "the predictions are not finite"
    if all_reduce_sum([float(problem is None)], info)[0] < info.world_size:
        raise _diverged(state, problem or "another process diverged", out)
    sad, mse = batch_metrics(pred, batch["alpha"], batch["trimap"])
    step.optimizer.zero_grad(set_to_none=True)
    step.scaler.scale(terms["total"]).backward()
    step.scaler.step(step.optimizer)
    step.scaler.update()
    loss, sad, mse = (v / info.world_size for v in all_reduce_sum([loss, sad, mse], info))
    return loss, sad, mse, lr


def train_one_epoch(step: Step, loader: DataLoader, cfg: TrainConfig, state: TrainState, info: DistInfo,
                    total_steps: int | None, out: Path, *, progress: bool,
                    on_step: Callable[[], bool]) -> tuple[list[float], bool]:
    """Train over ``loader`` (one epoch, or what is left of it); updates ``state`` after every step.

    ``on_step()`` is called after each step (checkpoints, the time budget); it returns True to stop.

    Returns
    -------
    (losses, stopped) : list of the steps' mean losses over processes, and whether ``on_step`` stopped it.

    Raises
    ------
    TrainingError
        When the predictions or the loss stop being finite (on any process): the step is not taken.
    """
    start, elapsed_before = time.monotonic(), state.elapsed
    desc = f"epoch {state.epoch + 1}" + (f"/{cfg.epochs}" if cfg.epochs else "")
    bar = tqdm(loader, total=len(loader), desc=desc, disable=not (progress and info.is_main),
               dynamic_ncols=True)
    losses = []
    for batch in bar:
        loss, sad, mse, lr = train_step(step, batch, cfg, state, info, total_steps, out)
        state.step += 1
        state.batch_in_epoch += 1
        state.elapsed = elapsed_before + (time.monotonic() - start)
        losses.append(loss)
        bar.set_postfix(loss=f"{loss:.4f}", sad=f"{sad:.3f}", mse=f"{mse:.4f}", lr=f"{lr:.2e}", refresh=False)
        if on_step():
            bar.close()
            return losses, True
    bar.close()
    return losses, False


def evaluate(model: DeepMatting, val_set: Dataset, info: DistInfo, step: int | None = None,
             out: Path | None = None) -> dict:
    """Full-resolution validation through the inference path; each process scores a share of the images.

    Returns the means of the four metrics over every process's images (undefined values skipped) and
    ``sample`` (a first prediction, for the log).

    Raises
    ------
    TrainingError
        When the model's predictions are not finite (a diverged model); with ``out``, the message says
        which checkpoints of the run are left.
    """
    sync_buffers(model, info)  # the backend runs an eval-mode copy of the model
    indices = list(range(info.rank, len(val_set), info.world_size))
    try:
        result = score_dataset(sample_predictor(TorchBackend(model, device=info.device)), val_set, indices,
                               progress=False)
    except CheckpointError as e:  # the inference path refuses non-finite output
        when = f" at step {step}" if step is not None else ""
        left = f" {_what_exists(out)}" if out is not None else ""
        raise TrainingError(f"training diverged{when}: the model's predictions on the validation set are not "
                            f"finite (NaN or infinity); stopping.{left} Try a lower --lr.") from e
    merged = MetricAccumulator.from_state(all_reduce_sum(result["accumulator"].state(), info))
    means = merged.compute() if merged.count else {k: math.nan for k in METRIC_NAMES}
    means["sample"] = result["sample"]
    return means


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 of every parameter and buffer, in order: equal digests mean bit-identical weights."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


# ---- the run ----------------------------------------------------------------------------------------------
def train(cfg: TrainConfig, out_dir: str | os.PathLike, resume: bool = False, progress: bool = True,
          overwrite: bool = False) -> dict:
    """Train a model as ``cfg`` says, writing checkpoints and logs into ``out_dir``.

    ``cfg.epochs`` None trains until the time budget ``cfg.max_minutes`` (one of them is needed).
    A folder that already holds a run is refused unless ``resume`` continues it or ``overwrite`` replaces
    it, and the folder is locked while the run holds it (:mod:`deepmatting.run_folder`).
    Returns a summary dict: epochs and steps done, the best validation value, paths, and whether the run
    stopped on its time budget. Under ``torchrun`` call it in every process; only rank 0 writes files.
    """
    if cfg.epochs is None and cfg.max_minutes is None:
        raise TrainingError("give a number of epochs or a time budget (max_minutes): with neither the run "
                            "would never end")
    out = Path(out_dir)
    info = setup(cfg.device)
    try:
        holding = claim_run_folder(out, resume, overwrite) if info.is_main else nullcontext()
        try:
            with holding:
                return _run(cfg, out, resume, progress, info)
        except RunFolderError as e:
            raise TrainingError(str(e)) from e
    finally:
        teardown()


def work_done(cfg: TrainConfig, epochs_done: int, seconds_done: float) -> str | None:
    """Why a run that has trained ``epochs_done`` epochs in ``seconds_done`` has nothing left to do under
    ``cfg`` (all of ``cfg.epochs``, or the whole ``cfg.max_minutes``), or None while it has."""
    if cfg.epochs is not None and epochs_done >= cfg.epochs:
        return f"all of its --epochs {cfg.epochs}; raise --epochs to train on"
    if cfg.max_minutes is not None and seconds_done >= cfg.max_minutes * 60:
        return f"its whole time budget of --max-minutes {cfg.max_minutes:g}; raise --max-minutes to train on"
    return None


def _check_work_left(cfg: TrainConfig, state: TrainState, path: Path) -> None:
    """Refuse a resume that would train nothing (a resumed run would otherwise stop after one step)."""
    reason = work_done(cfg, state.epoch, state.elapsed)
    if reason is not None:
        raise TrainingError(f"nothing to resume: the run in {path.parent} has trained {state.epoch} epochs "
                            f"({state.step} steps, {state.elapsed / 60:.3g} min), {reason}")


def initial_model(init: str) -> DeepMatting:
    """The model a fine-tuning run starts from: a shipped quality's (``"fast"``, ``"best"``, ...) or a
    checkpoint's, on the CPU; a :class:`TrainingError` when it cannot be loaded."""
    from .checkpoint import QUALITIES

    try:
        if init in QUALITIES and not Path(init).exists():
            return DeepMatting.pretrained(quality=init)
        return DeepMatting.from_checkpoint(init)
    except CheckpointError as e:
        raise TrainingError(f"cannot fine-tune from {init!r}: {e}") from e


def _run(cfg: TrainConfig, out: Path, resume: bool, progress: bool, info: DistInfo) -> dict:
    start_time = time.monotonic()
    torch.manual_seed(cfg.seed)
    initial = initial_model(cfg.init) if cfg.init else None  # fine-tuning: its architecture, its config
    if initial is not None:
        cfg = replace(cfg, model=initial.config)
    model = DeepMatting(config=cfg.model).to(info.device, memory_format=torch.channels_last)
    cfg = replace(cfg, model=model.config)  # the architecture's defaults filled in: saved and compared so
    runner = (DistributedDataParallel(model, device_ids=[info.device] if info.device.type == "cuda" else None)
              if info.distributed else model)
    optimizer = make_optimizer(model, cfg)
    scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp and info.device.type == "cuda")
    step = Step(runner, MattingLoss(cfg.loss_weights), optimizer, scaler)
    last_path, best_path = out / "last.pt", out / "best.pt"
    if info.is_main and resume and remove_stale_temporaries(out):
        print(f"removed temporary files of an interrupted checkpoint write in {out}")
    state = TrainState(best={"metric": cfg.best_metric, "value": math.inf, "epoch": None})
    changes = {}
    if resume and last_path.exists():
        state, changes = resume_from(last_path, model, cfg, optimizer, scaler, info.device)
        _check_work_left(cfg, state, last_path)
    else:
        if resume and info.is_main:
            print(f"--resume: no {last_path} yet, starting a new run")
        if initial is not None:
            model.load_state_dict(initial.state_dict())
            if info.is_main:
                print(f"fine-tuning {initial.weights_source} ({cfg.model.arch})")
        else:
            try:
                if model.init_pretrained_encoder() and info.is_main:
                    print("the encoder starts from its ImageNet weights")
            except ImportError as e:
                raise TrainingError(str(e)) from e
    model.weights_source = "training"
    train_set, val_set, note = build_datasets(cfg, out)
    first_epoch = epoch_indices(train_set, cfg, info, 0)
    if not first_epoch:  # nothing to learn from: refused before the run writes anything
        raise TrainingError(f"no training samples to train on ({note}: {len(train_set)} samples for "
                            f"{info.world_size} process(es))")
    steps_per_epoch = max(1, len(first_epoch) // cfg.batch_size)
    log = RunLog(out, cfg.to_dict()) if info.is_main else None
    if log is not None and resume:
        log.truncate_after(state.epoch)
    total_steps = steps_per_epoch * cfg.epochs if cfg.epochs else None
    if info.is_main:
        where = f"{info.device}" + (f" x {info.world_size} processes" if info.distributed else "")
        print(
            f"training {cfg.model.arch} ({model.num_parameters() / 1e6:.2f}M parameters) on {note}\n"
            f"  {steps_per_epoch} steps/epoch of batch {cfg.batch_size} x {info.world_size}, "
            + (f"{cfg.epochs} epochs" if cfg.epochs else "epochs until the budget")
            + f", device {where}, amp {cfg.amp}"
            + (f", budget {cfg.max_minutes} min" if cfg.max_minutes else "")
            + (f"\n  resuming at epoch {state.epoch + 1}, step {state.step}" if state.step else "")
            + (f" (changed: {_describe_changes(changes)})" if changes else "")
        )
        if total_steps is not None and total_steps < TOO_FEW_STEPS:
            warnings.warn(f"this run plans only {total_steps} optimizer steps: far too few to learn a "
                          "matting model (a few thousand is usual; fine-tuning needs some hundreds): raise "
                          "--epochs",
                          RuntimeWarning, stacklevel=2)
    budget = cfg.max_minutes * 60 if cfg.max_minutes else None
    stopped_on_budget = False
    validated_at = None

    def save(path: Path, with_optimizer: bool) -> None:
        if info.is_main:
            save_checkpoint(path, model, cfg, state, optimizer if with_optimizer else None, scaler)

    def on_step() -> bool:  # after every step: periodic last.pt, and the time budget (over every session)
        if cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0:
            save(last_path, True)
        return broadcast_flag(budget is not None and state.elapsed >= budget, info)

    while (cfg.epochs is None or state.epoch < cfg.epochs) and not stopped_on_budget:
        if hasattr(train_set, "set_epoch"):
            train_set.set_epoch(state.epoch)
        indices = epoch_indices(train_set, cfg, info, state.epoch)[state.batch_in_epoch * cfg.batch_size:]
        loader = make_loader(train_set, indices, cfg, info)
        losses, stopped_on_budget = train_one_epoch(step, loader, cfg, state, info, total_steps, out,
                                                    progress=progress, on_step=on_step)
        epoch_done = not stopped_on_budget or state.batch_in_epoch >= steps_per_epoch
        if epoch_done:
            state.epoch += 1
            state.batch_in_epoch = 0
        last_epoch = cfg.epochs is not None and state.epoch >= cfg.epochs
        must_validate = epoch_done and (state.epoch % cfg.val_every == 0 or last_epoch)
        # a run stopped by its budget before any validation still leaves a best.pt behind
        must_validate |= stopped_on_budget and not best_path.exists()
        record = {
            "epoch": state.epoch,
            "step": state.step,
            "lr": optimizer.param_groups[-1]["lr"],  # the decoder: the base rate
            "train_loss": float(np.mean(losses)) if losses else None,
            "elapsed_s": round(state.elapsed, 1),
        }
        sample = None
        if must_validate:
            metrics = evaluate(model, val_set, info, state.step, out)
            sample = metrics.pop("sample")
            record.update({f"val_{k}": v for k, v in metrics.items()})
            value = metrics[cfg.best_metric]
            validated_at = state.step
            if value < state.best["value"] or not best_path.exists():
                state.best = {"metric": cfg.best_metric, "value": value, "epoch": state.epoch}
                save(best_path, False)
            if info.is_main:
                print(
                    f"epoch {state.epoch}: train loss {record['train_loss'] or float('nan'):.4f} | val "
                    + "  ".join(f"{k.upper()} {v:.4g}" for k, v in metrics.items())
                    + f" | best {cfg.best_metric.upper()} {state.best['value']:.4g}"
                    + f" (epoch {state.best['epoch']})"
                )
        save(last_path, True)
        if log is not None and (epoch_done or must_validate):
            log.log_epoch(record, sample)
        barrier(info)
    sync_buffers(model, info)
    if log is not None:
        log.close()
    summary = {
        "weights_sha256": weights_digest(model),
        "epochs": state.epoch,
        "steps": state.step,
        "best": state.best,
        "stopped_on_budget": stopped_on_budget,
        "last": str(last_path),
        "best_checkpoint": str(best_path),
        "validated_at_step": validated_at,
        "seconds": round(time.monotonic() - start_time, 1),
    }
    if info.is_main:
        why = "time budget reached" if stopped_on_budget else "all epochs done"
        print(f"stopped: {why} after {state.step} steps; best {cfg.best_metric.upper()} "
              f"{state.best['value']:.4g}; checkpoints in {out}")
        if stopped_on_budget and state.step < TOO_FEW_STEPS:
            warnings.warn(f"the time budget allowed only {state.step} optimizer steps: far too few to learn "
                          "a matting model; raise --max-minutes, or use --amp or a GPU", RuntimeWarning,
                          stacklevel=2)
    return summary


__all__ = [
    "Step",
    "TrainState",
    "TrainingError",
    "batch_metrics",
    "build_datasets",
    "evaluate",
    "lr_factor",
    "save_checkpoint",
    "train",
    "train_one_epoch",
    "train_step",
    "weights_digest",
]
