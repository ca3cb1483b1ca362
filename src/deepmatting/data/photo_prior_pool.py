"""Whole photos with their classical mattes solved once, cached, and cropped afresh at every read.

A model that reads classical mattes (the ``cf-knn-fusion`` model reads closed-form and KNN matting) must
train on the mattes the solvers give at prediction time: solved on the whole photo, with the user's
trimap. Solving on each training crop instead (:class:`deepmatting.data.PriorPool`) costs a solve per
sample and changes the solvers' boundary conditions. So here every photo of a folder (the
``CustomDataset`` layout: images/, alphas/, and optionally trimaps*/ with the photo's own trimaps) is
expanded into *variants*, each a full-size sample with its own trimap:

- each of the photo's own trimaps (hand-drawn: wide and irregular);
- ``variants`` trimaps made from the ground-truth alpha: a band of ``trimap_widths`` px, and with
  probability ``trimap_blobs`` irregular blobs of unknown reaching up to 120 px from the edge;
- ``variants`` composites of the photo's foreground (estimated from its alpha) over procedural
  backgrounds, each with such a trimap: new backgrounds, as the literature does with few photos.

The classical mattes of every variant are solved once (closed-form about 0.5 s, KNN about 1 s per photo
of 0.4 MP here) and cached as ``.npz`` in ``cache``, keyed by photo, variant and seed, so the folds and
the final model of a recipe share them. Reading a sample then crops a window around an unknown pixel
(320, 480 or 640 px, resized to ``crop``: a random zoom), flips it with probability 0.5 and jitters the
image's colour mildly; the mattes follow the geometry (they commute with crops and flips).
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..checkpoint import atomic_write
from .io import is_image_file, read_alpha, read_image, read_trimap
from .prior_pool import classical_matte
from .transforms import ColorJitter, Compose, RandomCropAroundUnknown, RandomFlip, RandomTrimap, composite

#: Generated trimaps treat alpha within this of 0 or 1 as known.
TRIMAP_TOLERANCE = 0.02
#: Colours stored as 8-bit; mattes and alpha as float16.
_COLOR_KEYS = ("image",)


def _files(folder: Path) -> dict[str, Path]:
    """``{stem: path}`` of the image files in ``folder`` (empty when it does not exist)."""
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.iterdir()) if is_image_file(p)}


class PhotoPriorPool(torch.utils.data.Dataset):
    """Variants of real photos with their classical mattes, cropped at random when read.

    Parameters
    ----------
    root : path
        A folder with ``images/`` and ``alphas/`` (same stems) and optionally ``trimaps*/``.
    cache : path
        Folder of the solved variants (created; shared by pools of the same seed and settings).
    prior : str
        Which classical mattes (:data:`deepmatting.data.prior_pool.PRIOR_CHANNELS`).
    samples : int
        Samples per epoch (each a fresh crop of a variant, in turn).
    variants : int, default 3
        Generated trimaps per photo, and as many composites over new backgrounds.
    crop : int, default 320
        Side of the training crops.
    trimap_widths : (int, int), default (3, 30)
    trimap_blobs : float, default 0.4
    seed : int, default 0
    max_pixels : int, optional
        Solve the mattes at most at this many pixels, as the model will (``ModelConfig.prior_pixels``).
    progress : bool
        A progress bar while the variants are solved.

    Each sample is ``{"image": HxWx3 float32, "alpha": HxW float32, "trimap": HxW uint8, "prior": HxW or
    HxWxP float32, "name": str}`` at ``crop x crop``.
    """

    def __init__(self, root: str | os.PathLike, cache: str | os.PathLike, prior: str, samples: int, *,
                 variants: int = 3, crop: int = 320, trimap_widths: tuple[int, int] = (3, 30),
                 trimap_blobs: float = 0.4, seed: int = 0, max_pixels: int | None = None,
                 progress: bool = True):
        root = Path(root)
        images, alphas = _files(root / "images"), _files(root / "alphas")
        names = sorted(set(images) & set(alphas))
        if not names:
            raise ValueError(f"{root}: no photo with both images/ and alphas/ (the CustomDataset layout)")
        if samples < 1 or variants < 0:
            raise ValueError(f"PhotoPriorPool: samples must be >= 1 and variants >= 0, got {samples}, "
                             f"{variants}")
        self.root, self.cache, self.prior = root, Path(cache), prior
        self.samples, self.variants, self.seed = int(samples), int(variants), int(seed)
        self.max_pixels = max_pixels
        self.trimaps = RandomTrimap(tuple(trimap_widths), blob_p=trimap_blobs)
        self.cache.mkdir(parents=True, exist_ok=True)
        own = sorted(d for d in root.iterdir() if d.is_dir() and d.name.startswith("trimaps"))
        self.entries: list[tuple[str, str]] = []  # (photo, variant)
        for name in names:
            self.entries += [(name, d.name) for d in own if name in _files(d)]
            self.entries += [(name, f"band{j}") for j in range(self.variants)]
            self.entries += [(name, f"composite{j}") for j in range(self.variants)]
        self._paths = {"image": images, "alpha": alphas}
        self.transform = Compose([RandomCropAroundUnknown((crop, round(1.5 * crop), 2 * crop), crop),
                                  RandomFlip(), ColorJitter(0.1, 0.1, 0.1, 0.02)])
        self.epoch = 0
        missing = [e for e in self.entries if not self._path(*e).exists()]
        foregrounds: dict[str, np.ndarray] = {}
        for name, variant in tqdm(missing, desc=f"{prior} mattes of the photos' variants", unit="variant",
                                  disable=not progress):
            self._build(name, variant, foregrounds)

    def _path(self, name: str, variant: str) -> Path:
        solved_at = f"@{self.max_pixels}" if self.max_pixels else ""
        return self.cache / f"{self.prior}{solved_at}_{self.seed}_{name}_{variant}.npz"

    def _build(self, name: str, variant: str, foregrounds: dict[str, np.ndarray]) -> None:
        image = read_image(self._paths["image"][name])
        alpha = read_alpha(self._paths["alpha"][name])
        rng = np.random.default_rng([self.seed, zlib.crc32(name.encode()), zlib.crc32(variant.encode())])
        if variant.startswith("trimaps"):
            trimap = read_trimap(_files(self.root / variant)[name])
        else:
            if variant.startswith("composite"):
                from ..foreground import estimate_foreground
                from .synthetic import synthesize

                if name not in foregrounds:
                    foregrounds[name] = estimate_foreground(image, alpha)
                background = synthesize(rng, image.shape[:2])["bg"]
                image = composite(alpha, foregrounds[name], background)
            # ground truths carry faint noise (GT27: a tenth of its pixels between 1/255 and 0.02): pixels
            # within TRIMAP_TOLERANCE of 0 or 1 count as known, or the generated trimap is all unknown
            near_one = np.where(alpha >= 1 - TRIMAP_TOLERANCE, 1.0, alpha)
            clean = np.where(alpha <= TRIMAP_TOLERANCE, 0.0, near_one)
            trimap = self.trimaps({"alpha": clean.astype(np.float32)}, rng)["trimap"]
        arrays = {"image": np.round(image * 255).astype(np.uint8), "alpha": alpha.astype(np.float16),
                  "trimap": trimap,
                  "prior": classical_matte(self.prior, image, trimap, self.max_pixels).astype(np.float16)}
        atomic_write(self._path(name, variant), lambda f: np.savez(f, **arrays))

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's crops."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.samples

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.samples:
            raise IndexError(f"index {i} out of range for a pool of {self.samples} samples")
        name, variant = self.entries[i % len(self.entries)]
        with np.load(self._path(name, variant)) as data:
            sample = {k: data[k].astype(np.float32) / 255 if k in _COLOR_KEYS else data[k]
                      for k in data.files}
        sample["alpha"] = sample["alpha"].astype(np.float32)
        sample["prior"] = sample["prior"].astype(np.float32)
        sample["name"] = f"{name}/{variant}"
        return self.transform(sample, np.random.default_rng([self.seed, self.epoch, i]))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.root}, {len(self.entries)} variants of "
                f"{len({e[0] for e in self.entries})} photos, {self.samples} crops per epoch)")
