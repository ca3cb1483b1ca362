"""A fixed pool of training samples with their classical matte, computed once and cached on disk.

Models that refine a classical matte (``effnet-cf`` refines closed-form matting) need, for every training
crop, the matte the classical method gives on that crop. Closed-form matting costs a few tenths of a second
on a 320 px crop: computed in the data loader it would be the bottleneck of every step. So a pool of
``n`` augmented samples is drawn once from the training set (crop, scale, flip, colour, trimap: all of
the usual augmentation), the classical matte of each is computed, and the samples are cached as ``.npz``
files keyed by the pool's seed and the sample index; training then reads them back and only adds a
random horizontal flip (which commutes with the matte). A pool interrupted while being built resumes
where it stopped.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..checkpoint import atomic_write
from ..tensors import TRIMAP_BG, TRIMAP_FG, TRIMAP_UNKNOWN
from .transforms import resize_array

#: Larger images get their classical matte solved at this size (pixels) and upsampled.
PRIOR_MAX_PIXELS = 1_000_000

#: Arrays kept per sample (``prior`` is the classical matte); colour arrays are stored as 8-bit.
_COLOR_KEYS = ("image", "fg", "bg")


#: The classical mattes a model can read, and how many channels each gives: ``"closed-form"`` (Levin et al.
#: 2008) and ``"closed-form+knn"`` (closed-form and KNN matting, Chen et al. 2013, stacked HxWx2).
PRIOR_CHANNELS = {"closed-form": 1, "closed-form+knn": 2}


def _solve_priors(name: str, image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """The classical matte(s) at the image's own size: HxW, or HxWxC for several."""
    from ..closed_form import closed_form_alpha

    cf = np.asarray(closed_form_alpha(image, trimap), dtype=np.float32)
    if name == "closed-form":
        return cf
    from ..knn_matting import knn_alpha

    return np.stack([cf, knn_alpha(image, trimap, initial=cf)], axis=-1)  # KNN warm-started from CF


def classical_matte(name: str, image: np.ndarray, trimap: np.ndarray,
                    max_pixels: int | None = None) -> np.ndarray:
    """The classical matte a refining model reads (``model.prior``), for training crops and at inference.

    Parameters
    ----------
    name : str, one of :data:`PRIOR_CHANNELS`: ``"closed-form"``
        (:func:`deepmatting.closed_form.closed_form_alpha`) or ``"closed-form+knn"`` (that and
        :func:`deepmatting.knn_matting.knn_alpha`, stacked)
    image : np.ndarray, HxWx3 float32 [0,1]
    trimap : np.ndarray, HxW uint8 {0,128,255}
    max_pixels : int, optional
        Solve at most at this many pixels (default :data:`PRIOR_MAX_PIXELS`).

    Returns
    -------
    np.ndarray, HxW float32 in [0, 1] (``"closed-form"``) or HxWx2 (``"closed-form+knn"``: closed-form, KNN);
    0.5 everywhere when the trimap has no known pixel (classical matting is undetermined then: the refining
    model decides alone). Known pixels are exactly 0 and 1. Images over ``max_pixels`` are solved at that
    size and the mattes upsampled (the solvers' memory grows with the unknown pixels: about 3 GB at
    2 MP); the refining model then works at full resolution.
    """
    if name not in PRIOR_CHANNELS:
        raise ValueError(f"unknown prior matte {name!r}: deepmatting computes {', '.join(PRIOR_CHANNELS)}")
    h, w = trimap.shape
    shape = (h, w) if PRIOR_CHANNELS[name] == 1 else (h, w, PRIOR_CHANNELS[name])
    if (trimap == TRIMAP_UNKNOWN).all():
        return np.full(shape, 0.5, np.float32)
    scale = min(1.0, ((max_pixels or PRIOR_MAX_PIXELS) / (h * w)) ** 0.5)
    if scale == 1.0:
        return _solve_priors(name, image, trimap)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    small = _solve_priors(name, resize_array(image, size), resize_array(trimap, size, nearest=True))
    alpha = np.clip(resize_array(small, (h, w)), 0, 1)
    alpha[trimap == TRIMAP_BG], alpha[trimap == TRIMAP_FG] = 0.0, 1.0
    return alpha


class PriorPool(torch.utils.data.Dataset):
    """``n`` samples of ``source`` (augmented as its transform says) with their classical matte ``prior``.

    Parameters
    ----------
    source : Dataset with ``set_epoch``
        The training set (composites, photos or synthetic samples, with their transform). Pool sample ``i``
        is ``source[i % len(source)]`` at epoch ``i // len(source)``: each pass over the source draws new
        augmentations.
    n : int
        Samples in the pool.
    cache : path
        Folder of the cached samples (created; reused when the pool is built again with the same seed).
    prior : str, default "closed-form"
    seed : int, default 0
        Names the cache files and seeds the flips.
    progress : bool
        A progress bar while the pool is built.

    Each sample is the source's sample dict plus ``prior`` (HxW or HxWxC float32 in [0, 1]); colours are kept
    at 8-bit precision.
    """

    def __init__(self, source, n: int, cache: str | os.PathLike, prior: str = "closed-form", seed: int = 0,
                 progress: bool = True):
        if n < 1:
            raise ValueError(f"PriorPool: n must be at least 1, got {n}")
        self.source, self.n, self.prior, self.seed = source, int(n), prior, int(seed)
        self.cache = Path(cache)
        self.cache.mkdir(parents=True, exist_ok=True)
        self.epoch = 0
        missing = [i for i in range(self.n) if not self._path(i).exists()]
        for i in tqdm(missing, desc=f"{prior} mattes of the training pool", unit="sample",
                      disable=not progress):
            self._build(i)

    def _path(self, i: int) -> Path:
        return self.cache / f"{self.prior}_{self.seed}_{i:06d}.npz"

    def _build(self, i: int) -> None:
        self.source.set_epoch(i // len(self.source))
        sample = self.source[i % len(self.source)]
        arrays = {k: np.round(sample[k] * 255).astype(np.uint8)
                  for k in _COLOR_KEYS if sample.get(k) is not None}
        arrays["alpha"] = sample["alpha"].astype(np.float16)
        arrays["trimap"] = sample["trimap"]
        arrays["prior"] = classical_matte(self.prior, sample["image"], sample["trimap"]).astype(np.float16)
        name = np.array(sample.get("name", str(i)))
        atomic_write(self._path(i), lambda f: np.savez(f, name=name, **arrays))

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's flips."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.n:
            raise IndexError(f"index {i} out of range for a pool of {self.n} samples")
        with np.load(self._path(i)) as data:
            sample = {k: data[k].astype(np.float32) / 255 if k in _COLOR_KEYS else data[k]
                      for k in data.files}
        sample["name"] = str(sample["name"])
        sample["alpha"] = sample["alpha"].astype(np.float32)
        sample["prior"] = sample["prior"].astype(np.float32)
        if np.random.default_rng([self.seed, self.epoch, i]).random() < 0.5:
            sample = {k: np.ascontiguousarray(v[:, ::-1]) if getattr(v, "ndim", 0) >= 2 else v
                      for k, v in sample.items()}
        return sample
