"""Datasets of matting samples read from folders: your own photos and mattes, or DIM-style composition.

Both are ``torch.utils.data.Dataset`` s that yield the sample dict (see :mod:`deepmatting.data`) and share
the randomness contract: ``__getitem__(i)`` draws everything random from
``np.random.default_rng([seed, epoch, i])``, so a sample depends only on ``(seed, epoch, i)`` — not on
the number of data-loader workers or the order of access. Call :meth:`set_epoch` at the start of each
epoch (with ``persistent_workers=True`` the workers keep their own copy of the dataset, so leave that off
or the epoch will not reach them).

Folder layouts are checked on construction, reading only file headers; problems found there are
reported together in one :class:`DatasetError`. Pixel-level problems (truncated files, colour masks, bad
trimap values) show up when a sample is decoded; ``validate(full=True)`` decodes everything up front.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .errors import DatasetError
from .folders import list_images, match_stems
from .io import DEFAULT_MAX_PIXELS, image_size, read_alpha, read_image, read_trimap
from .transforms import Composite, Transform, resize_array
from .trimap import make_trimap


def _check_sizes(pairs: list[tuple[Path, Path | None]], what: str) -> dict[int, str]:
    """Problems (by pair index) where the second file's size, read from the headers after EXIF rotation,
    differs from the first's, or a header cannot be read. Pairs whose second file is None are skipped."""
    problems: dict[int, str] = {}
    for k, (ref, other) in enumerate(pairs):
        if other is None:
            continue
        try:
            (h, w), (h2, w2) = image_size(ref), image_size(other)
        except DatasetError as e:
            problems[k] = str(e)
            continue
        if (h, w) != (h2, w2):
            problems[k] = (f"{other} is {w2}x{h2} but {ref} is {w}x{h}: a {what} must have the size of its "
                           f"image (after EXIF rotation); re-export it at {w}x{h}")
    return problems


def _raise_problems(where: Path | str, problems: list[str]) -> None:
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems)
        raise DatasetError(f"{where}: {len(problems)} problem(s) in the dataset:\n{listed}")


class _SeededDataset(torch.utils.data.Dataset):
    """Shared seed / epoch handling: sample ``i`` draws from ``np.random.default_rng([seed, epoch, i])``."""

    def __init__(self, transform: Transform | None, seed: int, max_pixels: int | None = DEFAULT_MAX_PIXELS):
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.max_pixels = max_pixels  # larger files are refused by the readers (see read_image)
        self.transform = transform
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's randomness (augmentation, random trimap widths, background crops)."""
        self.epoch = int(epoch)

    def rng(self, i: int) -> np.random.Generator:
        """The generator of sample ``i`` in the current epoch."""
        return np.random.default_rng([self.seed, self.epoch, i])

    def _index(self, i: int) -> int:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for a dataset of {n} samples")
        return i % n

    def _finish(self, sample: dict, rng: np.random.Generator) -> dict:
        return self.transform(sample, rng) if self.transform is not None else sample

    @property
    def builds_trimap(self) -> bool:
        """Whether the dataset must make a trimap from the alpha: not when the transform builds one later."""
        return not getattr(self.transform, "makes_trimap", False)

    def _generated_trimap(self, alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
        """The trimap made from ``alpha`` (``trimap_width`` or a width from ``trimap_width_range``), or None
        when the transform builds it after cropping."""
        if not self.builds_trimap:
            return None
        return make_trimap(alpha, self.trimap_width, width_range=self.trimap_width_range, rng=rng)


def _check_decoded(image: np.ndarray, plane: np.ndarray, image_path: Path, plane_path: Path,
                   what: str) -> None:
    if plane.shape != image.shape[:2]:
        (h, w), (h2, w2) = image.shape[:2], plane.shape
        raise DatasetError(f"{plane_path} is {w2}x{h2} but {image_path} is {w}x{h}: a {what} must have the "
                           f"size of its image (after EXIF rotation); re-export it at {w}x{h}")


class CustomDataset(_SeededDataset):
    """Your own photos with their alpha mattes (and optionally trimaps), matched by file name.

    Layout::

        root/images/    cat.jpg, dog.png, ...         the photos
        root/masks/     cat.png, dog.png, ...         alpha mattes (or root/alphas/)
        root/trimaps/   cat.png, dog.png, ...         optional; made from the mattes when absent
                                                      (another folder name: ``trimaps=``)

    Files are paired by name without extension. Trimaps come from ``trimaps/`` when that folder exists;
    otherwise :func:`make_trimap` builds them from the matte with ``trimap_width`` pixels (or a width drawn
    per sample from ``trimap_width_range``, for training).

    Parameters
    ----------
    root : str or os.PathLike
    transform : callable ``(sample, rng) -> sample``, optional
    trimap_width : int, default 10
    trimap_width_range : (int, int), optional
    seed : int, default 0
    trimaps : str, default "trimaps"
        The name of the trimap folder under ``root`` (e.g. ``trimaps_alt`` for a second set).
    max_pixels : int or None, default 50 MP
        Larger files are refused by name (see :func:`~deepmatting.data.read_image`); None lifts the limit.

    Raises
    ------
    DatasetError
        On construction, for a missing root or missing / empty ``images/`` or ``masks/``, images without
        masks and masks without images, trimaps that do not pair up, and size mismatches (all problems
        listed together). On ``ds[i]``, naming the file, for truncated or undecodable files, colour
        masks and bad trimap values.

    Examples
    --------
    >>> ds = CustomDataset("my_photos", transform=train_transforms(320))  # doctest: +SKIP
    >>> ds.validate(full=True)  # decode every file now, rather than mid-training  # doctest: +SKIP
    """

    def __init__(self, root: str | os.PathLike, transform: Transform | None = None, trimap_width: int = 10,
                 trimap_width_range: tuple[int, int] | None = None, seed: int = 0, trimaps: str = "trimaps",
                 max_pixels: int | None = DEFAULT_MAX_PIXELS):
        super().__init__(transform, seed, max_pixels)
        self.root = Path(root)
        self.trimap_width, self.trimap_width_range = trimap_width, trimap_width_range
        layout = "expected root/images/ and root/masks/ (or root/alphas/), optionally root/trimaps/"
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: dataset folder does not exist ({layout})")
        self.images_dir = self.root / "images"
        if not self.images_dir.is_dir():
            raise DatasetError(f"{self.root}: no images/ folder ({layout})")
        masks = [self.root / d for d in ("masks", "alphas") if (self.root / d).is_dir()]
        if not masks:
            raise DatasetError(f"{self.root}: no masks/ or alphas/ folder ({layout})")
        if len(masks) > 1:
            raise DatasetError(f"{self.root}: has both masks/ and alphas/; keep one of them ({layout})")
        self.masks_dir = masks[0]
        images = list_images(self.images_dir, "images")
        mattes = list_images(self.masks_dir, "masks")
        for folder, files in ((self.images_dir, images), (self.masks_dir, mattes)):
            if not files:
                raise DatasetError(f"{self.root}: {folder.name}/ has no image files ({layout})")
        self.trimaps_dir: Path | None = self.root / trimaps
        trimaps = list_images(self.trimaps_dir, "trimaps") if self.trimaps_dir.is_dir() else {}
        if not trimaps:
            if self.trimaps_dir.is_dir():
                warnings.warn(f"{self.trimaps_dir} has no image files; trimaps will be made from the masks",
                              UserWarning, stacklevel=2)
            self.trimaps_dir = None

        problems = match_stems(images, mattes, self.images_dir, self.masks_dir, "image", "mask")
        if self.trimaps_dir is not None:
            problems += match_stems(images, trimaps, self.images_dir, self.trimaps_dir, "image", "trimap")
        stems = sorted(images.keys() & mattes.keys() & (trimaps.keys() if trimaps else images.keys()))
        self.items = [(images[k], mattes[k], trimaps.get(k)) for k in stems]
        _raise_problems(self.root, problems + [m for ms in self._header_problems().values() for m in ms])

    def _header_problems(self) -> dict[int, list[str]]:
        """Size mismatches or unreadable headers, by sample index."""
        problems: dict[int, list[str]] = {}
        for what, pairs in (("mask", [(i, m) for i, m, _ in self.items]),
                            ("trimap", [(i, t) for i, _, t in self.items])):
            for k, msg in _check_sizes(pairs, what).items():
                problems.setdefault(k, []).append(msg)
        return problems

    def __len__(self) -> int:
        return len(self.items)

    @property
    def names(self) -> list[str]:
        """The samples' names (image file stems), in index order."""
        return [image.stem for image, _, _ in self.items]

    def _load(self, i: int, rng: np.random.Generator) -> dict:
        image_path, mask_path, trimap_path = self.items[i]
        image = read_image(image_path, self.max_pixels)
        alpha = read_alpha(mask_path, self.max_pixels)
        _check_decoded(image, alpha, image_path, mask_path, "mask")
        if trimap_path is not None:
            trimap = read_trimap(trimap_path, self.max_pixels)
            _check_decoded(image, trimap, image_path, trimap_path, "trimap")
        else:
            trimap = self._generated_trimap(alpha, rng)
        return {"image": image, "alpha": alpha, "trimap": trimap, "name": image_path.stem}

    def __getitem__(self, i: int) -> dict:
        i = self._index(i)
        rng = self.rng(i)
        return self._finish(self._load(i, rng), rng)

    def validate(self, full: bool = False) -> int:
        """Check the files again, all problems reported together; with ``full``, decode every file.

        Without ``full`` the file headers are checked (sizes, readability), as on construction. ``full=True``
        also finds truncated files, colour masks and bad trimap values, which only show when the pixels
        are decoded (about as long as one epoch without augmentation).

        Returns
        -------
        int, the number of samples checked

        Raises
        ------
        DatasetError
            Listing every problem found.
        """
        problems = self._header_problems()
        if full:
            for i in range(len(self)):
                if i in problems:
                    continue
                try:
                    self._load(i, self.rng(i))
                except DatasetError as e:
                    problems[i] = [str(e)]
        _raise_problems(self.root, [m for i in sorted(problems) for m in problems[i]])
        return len(self)

    def __repr__(self) -> str:
        trimaps = "files" if self.trimaps_dir is not None else "generated"
        return (f"{type(self).__name__}(root={str(self.root)!r}, n={len(self)}, trimaps={trimaps}, "
                f"seed={self.seed})")


class CompositionDataset(_SeededDataset):
    """Deep Image Matting training data: foregrounds with alphas, composited onto backgrounds on the fly.

    ``fg_dir`` and ``alpha_dir`` pair by file name (checked like :class:`CustomDataset`). Each foreground
    is used with ``n_bg`` backgrounds, so ``len(ds) == n_fg * n_bg``; sample ``i`` takes foreground
    ``i // n_bg`` and the background at position ``i`` (cyclically) of a permutation of ``bg_dir`` fixed by
    ``seed``, so one foreground gets ``n_bg`` different backgrounds when there are enough. The background
    is scaled (aspect kept) so that it just covers the foreground, then cropped to the foreground's size at
    a random position (see :func:`cover_crop`). ``image = alpha * fg + (1 - alpha) * bg`` is computed by
    the :class:`~deepmatting.data.transforms.Composite` transform; the sample keeps ``fg`` and ``bg`` for
    the composition loss.

    Trimaps are made from the alpha (after the crop when the transform builds them), or read from
    ``trimap_dirs``: folders of trimaps drawn for the foregrounds (by hand, say), paired by file name; with
    several folders, each sample reads one of them at random.

    Parameters
    ----------
    fg_dir, alpha_dir, bg_dir : str or os.PathLike
    n_bg : int, default 1
    transform : callable ``(sample, rng) -> sample``, optional
    seed : int, default 0
    trimap_width : int, default 10
    trimap_width_range : (int, int), optional
    trimap_dirs : sequence of path, optional
    max_pixels : int or None, default 50 MP
        Larger files are refused by name (see :func:`~deepmatting.data.read_image`).

    Raises
    ------
    DatasetError
        For missing or empty folders, unpaired foregrounds / alphas, size mismatches (on construction),
        and undecodable files (when a sample is read).
    """

    def __init__(self, fg_dir: str | os.PathLike, alpha_dir: str | os.PathLike, bg_dir: str | os.PathLike,
                 n_bg: int = 1, transform: Transform | None = None, seed: int = 0, trimap_width: int = 10,
                 trimap_width_range: tuple[int, int] | None = None,
                 trimap_dirs: Sequence[str | os.PathLike] = (), max_pixels: int | None = DEFAULT_MAX_PIXELS):
        super().__init__(transform, seed, max_pixels)
        if n_bg < 1:
            raise ValueError(f"n_bg must be >= 1, got {n_bg}")
        self.fg_dir, self.alpha_dir, self.bg_dir = Path(fg_dir), Path(alpha_dir), Path(bg_dir)
        self.n_bg = int(n_bg)
        self.trimap_width, self.trimap_width_range = trimap_width, trimap_width_range
        fgs = list_images(self.fg_dir, "foregrounds")
        alphas = list_images(self.alpha_dir, "alphas")
        bgs = list_images(self.bg_dir, "backgrounds")
        for folder, files in ((self.fg_dir, fgs), (self.alpha_dir, alphas), (self.bg_dir, bgs)):
            if not files:
                raise DatasetError(f"{folder}: no image files in this folder")
        problems = match_stems(fgs, alphas, self.fg_dir, self.alpha_dir, "foreground", "alpha")
        self.items = [(fgs[k], alphas[k]) for k in sorted(fgs.keys() & alphas.keys())]
        problems += list(_check_sizes(self.items, "alpha").values())
        self.trimap_sets: list[list[Path]] = []
        for folder in map(Path, trimap_dirs):
            trimaps = list_images(folder, "trimaps")
            problems += match_stems(fgs, trimaps, self.fg_dir, folder, "foreground", "trimap")
            paths = [trimaps.get(fg.stem) for fg, _ in self.items]
            problems += list(_check_sizes([(fg, t) for (fg, _), t in zip(self.items, paths, strict=True)],
                                          "trimap").values())
            self.trimap_sets.append(paths)
        _raise_problems(self.fg_dir.parent, problems)
        self.backgrounds = [bgs[k] for k in sorted(bgs)]
        order_rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(0xB6,)))
        self.bg_order = order_rng.permutation(len(self.backgrounds))

    def __len__(self) -> int:
        return len(self.items) * self.n_bg

    def background_index(self, i: int) -> int:
        """Which background (index into ``self.backgrounds``) sample ``i`` uses; fixed by ``seed``."""
        return int(self.bg_order[self._index(i) % len(self.backgrounds)])

    def __getitem__(self, i: int) -> dict:
        i = self._index(i)
        rng = self.rng(i)
        fg_path, alpha_path = self.items[i // self.n_bg]
        bg_path = self.backgrounds[self.background_index(i)]
        fg = read_image(fg_path, self.max_pixels)
        alpha = read_alpha(alpha_path, self.max_pixels)
        _check_decoded(fg, alpha, fg_path, alpha_path, "alpha")
        bg = cover_crop(read_image(bg_path, self.max_pixels), fg.shape[:2], rng)
        if self.trimap_sets:
            trimap_path = self.trimap_sets[int(rng.integers(len(self.trimap_sets)))][i // self.n_bg]
            trimap = read_trimap(trimap_path, self.max_pixels)
            _check_decoded(fg, trimap, fg_path, trimap_path, "trimap")
        else:
            trimap = self._generated_trimap(alpha, rng)
        sample = {"fg": fg, "bg": bg, "alpha": alpha, "trimap": trimap,
                  "name": f"{fg_path.stem}+{bg_path.stem}"}
        return self._finish(Composite()(sample, rng), rng)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(n_fg={len(self.items)}, n_bg={self.n_bg}, "
                f"backgrounds={len(self.backgrounds)}, seed={self.seed})")


def cover_crop(image: np.ndarray, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Scale ``image`` (aspect kept) so that it just covers ``size = (h, w)``, then crop ``size`` at random.

    The scale is ``max(h / H, w / W)``: small backgrounds are enlarged, large ones reduced, so the crop
    shows the whole background along one side.

    Parameters
    ----------
    image : np.ndarray, HxWx3 float32
    size : (int, int)
    rng : np.random.Generator, draws the crop position

    Returns
    -------
    np.ndarray, hxwx3 float32
    """
    h, w = size
    H, W = image.shape[:2]
    scale = max(h / H, w / W)
    if scale != 1:
        H, W = max(h, round(H * scale)), max(w, round(W * scale))
        image = resize_array(image, (H, W))
    top, left = int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1))
    return np.ascontiguousarray(image[top:top + h, left:left + w])


class MixedDataset(torch.utils.data.Dataset):
    """Several datasets as one: indices run through each in turn; ``set_epoch`` reaches all of them.

    Used to mix real composites with the procedural synthetic data. The parts must produce samples of the
    same size (their transforms crop to the training size); ``fg``/``bg`` reach the composition loss only in
    batches where every sample has them (see :func:`deepmatting.tensors.collate`).
    """

    def __init__(self, parts: Sequence[torch.utils.data.Dataset]):
        if not parts:
            raise ValueError("MixedDataset needs at least one dataset")
        self.parts = list(parts)
        self.offsets = np.cumsum([0] + [len(p) for p in self.parts])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def set_epoch(self, epoch: int) -> None:
        for part in self.parts:
            if hasattr(part, "set_epoch"):
                part.set_epoch(epoch)

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for a dataset of {len(self)} samples")
        k = int(np.searchsorted(self.offsets, i, side="right") - 1)
        return self.parts[k][i - int(self.offsets[k])]

    def __repr__(self) -> str:
        return f"MixedDataset({', '.join(type(p).__name__ + f'[{len(p)}]' for p in self.parts)})"
