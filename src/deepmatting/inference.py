"""Predict an alpha matte at any resolution: input checks, coarse masks, tiling, known regions.

One code path serves every backend (:mod:`deepmatting.backends`: a PyTorch model, a checkpoint, an ONNX
file or the shipped default). :func:`predict` checks the inputs, turns a coarse mask into a trimap
(:func:`mask_to_trimap`), cuts large images into overlapping tiles (only tiles that contain unknown pixels
are run, so peak memory follows the tile size, not the image size), blends them with linear ramps, and
copies the known trimap regions into the result. An image-only model reads neither a trimap nor a mask:
all its tiles run.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator

import numpy as np
from PIL import Image

from .backends import Backend, describe_backend, load_backend
from .checkpoint import CheckpointError
from .closed_form import interruptible
from .data.pixels import as_image, as_mask, as_trimap
from .data.prior_pool import classical_matte
from .data.trimap import trimap_from_coarse_mask
from .models import DeepMatting
from .tensors import TRIMAP_BG, TRIMAP_FG, TRIMAP_UNKNOWN, trimap_to_float

#: Default tile side and overlap of :func:`predict`, in pixels.
DEFAULT_TILE_SIZE = 1024
DEFAULT_TILE_OVERLAP = 64


# ---- coarse masks -------------------------------------------------------------------------------
def mask_to_trimap(mask: np.ndarray | Image.Image, band: float | None = None) -> np.ndarray:
    """The trimap :func:`predict` makes from a coarse mask (:func:`deepmatting.data.trimap_from_coarse_mask`).

    Specks dropped and small holes filled, unknown ``band`` px either side of the edge (default: 2% of the
    subject's size, at least 5 px), and unknown wherever the mask is soft.

    Parameters
    ----------
    mask : np.ndarray or PIL.Image.Image, HxW binary or soft mask (see :func:`deepmatting.data.as_mask`)
    band : float, optional

    Returns
    -------
    np.ndarray, HxW uint8 {0, 128, 255}
    """
    return trimap_from_coarse_mask(as_mask(mask), band)


# ---- tiling ---------------------------------------------------------------------------------------
def tile_starts(length: int, tile: int, overlap: int, multiple: int) -> list[int]:
    """Start offsets of overlapping tiles covering ``0..length`` along one axis.

    Every start is a multiple of ``multiple`` (so tiles see the same pixel grid as the whole image);
    the tiles are ``tile`` long (the last one ends at ``length`` and may be up to ``multiple - 1``
    shorter); neighbours overlap by at least ``overlap`` pixels.
    """
    if length <= tile:
        return [0]
    units = max(1, (tile - overlap) // multiple)  # largest step, in multiples
    last = -(-(length - tile) // multiple)  # the last start, in multiples (rounded up: it ends at length)
    n = -(-last // units)  # number of steps
    return [(i * last // n) * multiple for i in range(n + 1)]


def _ramp(size: int, start: int, length: int, overlap: int) -> np.ndarray:
    """1-D blending weight of a tile: linear ramps of ``overlap`` px at edges inside the image, else 1."""
    w = np.ones(length, np.float32)
    if overlap <= 0:
        return w
    r = (np.arange(min(overlap, length), dtype=np.float32) + 0.5) / overlap  # (0, 1)
    if start > 0:
        w[: r.size] = np.minimum(w[: r.size], r)
    if start + length < size:
        w[length - r.size:] = np.minimum(w[length - r.size:], r[::-1])
    return w


def _tiles(h: int, w: int, tile: int, overlap: int,
           multiple: int) -> Iterator[tuple[slice, slice, np.ndarray]]:
    """``(rows, cols, weight hxw)`` for every tile of an ``h x w`` image."""
    for y in tile_starts(h, tile, overlap, multiple):
        hy = min(tile, h - y)
        wy = _ramp(h, y, hy, overlap)
        for x in tile_starts(w, tile, overlap, multiple):
            wx_len = min(tile, w - x)
            wx = _ramp(w, x, wx_len, overlap)
            yield slice(y, y + hy), slice(x, x + wx_len), wy[:, None] * wx[None, :]


def tile_side(h: int, w: int, largest: int, overlap: int, multiple: int, unknown: np.ndarray | None) -> int:
    """The tile side for an ``h x w`` image: ``largest``, or a smaller one that runs fewer pixels.

    Only tiles with unknown pixels run, so around a thin unknown band smaller tiles skip more of the known
    interior: among ``largest``, 3/4 and 1/2 of it (multiples of ``multiple``), a smaller side is chosen
    when its tiles with unknown pixels cover at least a quarter fewer pixels (smaller tiles give the network
    less context and cost more per pixel, so a small saving is not worth it). Images no longer than
    ``largest`` run whole.
    """
    if unknown is None or max(h, w) <= largest:
        return largest
    best, best_cost = largest, None
    for side in (largest, largest * 3 // 4, largest // 2):
        side = max(multiple, side // multiple * multiple)
        if side <= 2 * overlap:
            continue
        cost = sum(int(wt.size) for rows, cols, wt in _tiles(h, w, side, overlap, multiple)
                   if unknown[rows, cols].any())
        if best_cost is None or cost < 0.75 * best_cost:
            best, best_cost = side, cost
    return best


def _prior_tile(prior: np.ndarray) -> np.ndarray:
    """``hxw`` or ``hxwxP`` mattes -> ``1xPxhxw`` float32, C-contiguous."""
    planes = prior[None] if prior.ndim == 2 else prior.transpose(2, 0, 1)
    return np.ascontiguousarray(planes[None], dtype=np.float32)


def run_tiled(backend: Backend, image: np.ndarray, guide: np.ndarray, unknown: np.ndarray | None = None, *,
              prior: np.ndarray | None = None, tile_size: int = DEFAULT_TILE_SIZE,
              tile_overlap: int = DEFAULT_TILE_OVERLAP,
              check: Callable[[], None] | None = None) -> np.ndarray:
    """Run ``backend`` over an image in overlapping tiles and blend them.

    Parameters
    ----------
    backend : Backend
    image : np.ndarray, HxWx3 float32 [0,1]
    guide : np.ndarray or None, HxW float32: the trimap {0,0.5,1} or the coarse mask fed to the model; None
        for image-only models (``backend.input == "image"``)
    unknown : np.ndarray, HxW bool, optional
        Pixels whose prediction is needed; tiles without any are skipped (all tiles run when None).
    prior : np.ndarray, HxW or HxWxP float32 [0,1], optional
        The classical matte(s), for backends that read them (``backend.prior``).
    tile_size, tile_overlap : int
        The largest tile side (rounded down to ``backend.pad_multiple``; smaller tiles are used when they
        run fewer pixels, see :func:`tile_side`) and the minimum overlap between neighbours.
    check : callable, optional
        Called before each tile runs; it may raise to stop the work (see :func:`predict`).

    Returns
    -------
    np.ndarray, HxW float32: the blended prediction where any tile ran, 0 elsewhere.
    """
    h, w = image.shape[:2]
    m = max(1, int(backend.pad_multiple))
    tile = max(m, tile_size // m * m)
    overlap = max(0, min(tile_overlap, tile // 2))
    if max(h, w) <= tile_size:  # one tile, no blending
        tile = max(h, w)
    else:
        tile = tile_side(h, w, tile, overlap, m, unknown)
    acc = np.zeros((h, w), np.float32)
    weight = np.zeros((h, w), np.float32)
    for rows, cols, wt in _tiles(h, w, tile, overlap, m):
        if unknown is not None and not unknown[rows, cols].any():
            continue
        if check is not None:
            check()
        x = np.ascontiguousarray(image[rows, cols].transpose(2, 0, 1)[None])  # (1, 3, h, w)
        t = None if guide is None else np.ascontiguousarray(guide[rows, cols][None, None])  # (1, 1, h, w)
        extra = () if prior is None else (_prior_tile(prior[rows, cols]),)
        pred = np.asarray(backend(x, t, *extra), dtype=np.float32)
        if pred.shape != (1, 1, *x.shape[2:]):
            raise CheckpointError(f"{describe_backend(backend)}: returned an alpha of shape {pred.shape} for "
                                  f"an input of shape {x.shape}: not a matting model deepmatting can run")
        if not np.isfinite(pred).all():
            raise CheckpointError(f"{describe_backend(backend)}: the model produced non-finite values (NaN "
                                  "or infinity); its weights are broken (a diverged training run or a "
                                  "damaged file): no alpha was written")
        acc[rows, cols] += wt * pred[0, 0]
        weight[rows, cols] += wt
    np.divide(acc, weight, out=acc, where=weight > 0)
    return acc


# ---- predict ----------------------------------------------------------------------------------------
def predict(image: np.ndarray | Image.Image, trimap: np.ndarray | Image.Image | None = None,
            mask: np.ndarray | Image.Image | None = None,
            model: DeepMatting | str | os.PathLike | None = None, *, device: str = "auto",
            tile_size: int = DEFAULT_TILE_SIZE, tile_overlap: int = DEFAULT_TILE_OVERLAP,
            mask_band: float | None = None, backend: Backend | None = None,
            quality: str | None = None, check: Callable[[], None] | None = None) -> np.ndarray:
    """Predict the alpha matte of an image from a trimap or a coarse mask, at any resolution.

    Parameters
    ----------
    image : np.ndarray or PIL.Image.Image
        ``HxWx3`` uint8 (0..255), uint16 (0..65535) or float in [0,1], or a PIL image (see
        :func:`deepmatting.data.as_image`).
    trimap : np.ndarray, optional
        ``HxW`` uint8 {0 background, 128 unknown, 255 foreground} or float {0, 0.5, 1}; near values (JPEG
        noise, pymatting's 128/255) are snapped (:func:`deepmatting.data.as_trimap`). An image-only model
        (``config.input == "image"``) needs neither a trimap nor a mask, and warns that it ignores them.
    mask : np.ndarray, optional
        ``HxW`` coarse binary or soft mask (uint8 0..255, bool, or float in [0,1]). For trimap models it
        becomes a trimap (:func:`mask_to_trimap`: thresholded at 0.5, cleaned of specks and small holes,
        unknown ``mask_band`` px either side of the edge and where the mask is soft); mask models
        (``config.input == "mask"``) read it directly.
    model : DeepMatting, path, or None
        A model, a checkpoint file, or None for the default model that ships with the package (loaded once
        per process; a :class:`~deepmatting.checkpoint.CheckpointError` says so when there is none). For
        many images with another model, build its backend once: ``backend=load_backend(path)``.
    device : str
        Where a PyTorch model runs: ``auto|cpu|cuda|mps``.
    tile_size, tile_overlap : int
        Images longer than ``tile_size`` on a side are processed in overlapping tiles of at most that size
        (rounded down to the model's padding multiple; down to half of it when smaller tiles cover the
        unknown pixels with fewer pixels), blended with linear ramps over ``tile_overlap`` px. Only
        tiles with unknown pixels run, and peak memory follows the tile size, not the image size.
    mask_band : float, optional
        Half-width of the unknown band made from a mask; default 2% of the subject's size, 5..254 px
        (:func:`deepmatting.data.trimap.coarse_mask_band`).
    backend : Backend, optional
        A ready backend (:func:`deepmatting.load_backend`: PyTorch or onnxruntime); replaces ``model`` and
        ``device``.
    quality : "fast", "best" or "fusion", optional
        Which shipped model when ``model`` is None (``checkpoint.QUALITY_SUMMARIES``): ``"fusion"`` (the
        default: closed-form and KNN matting fused by a network), ``"best"`` (a network refining
        closed-form matting) or ``"fast"`` (a network alone: quickest, roughest).
    check : callable, optional
        Called between the steps (after the classical matte, before each tile); whatever it raises stops
        the prediction. The web server's time limit and its check for a client that has gone use it.

    Returns
    -------
    np.ndarray, HxW float32 in [0, 1]; exactly 0 and 1 in the known regions of the trimap.

    Raises
    ------
    ValueError
        Bad shapes, dtypes or values; sizes that do not match (both shapes named); no trimap or mask;
        both a trimap and a mask; a trimap for a mask model.

    Examples
    --------
    >>> image = np.random.rand(120, 90, 3).astype(np.float32)
    >>> trimap = np.full((120, 90), 128, np.uint8); trimap[:30] = 0; trimap[-30:] = 255
    >>> alpha = predict(image, trimap, model=DeepMatting())
    >>> alpha.shape, alpha.dtype, float(alpha[0, 0]), float(alpha[-1, -1])
    ((120, 90), dtype('float32'), 0.0, 1.0)
    """
    if backend is not None and (model is not None or quality is not None):
        raise ValueError("pass a model (or a quality) or a backend, not both")
    if trimap is not None and mask is not None:
        raise ValueError("pass a trimap or a mask, not both")
    if tile_size < 1 or tile_overlap < 0:
        raise ValueError(f"tile_size must be positive and tile_overlap >= 0, got {tile_size}, {tile_overlap}")
    img = as_image(image)
    h, w = img.shape[:2]
    tri = as_trimap(trimap) if trimap is not None else None
    soft = as_mask(mask) if mask is not None else None
    for name, plane in (("trimap", tri), ("mask", soft)):
        if plane is not None and plane.shape != (h, w):
            raise ValueError(f"the image is {h}x{w} (shape {img.shape}) but the {name} is "
                             f"{'x'.join(map(str, plane.shape))} (shape {plane.shape}); they must have the "
                             "same size")

    if backend is None:
        backend = load_backend(model, quality=quality, device=device)  # shipped models are cached
    if backend.input == "image":
        if tri is not None or soft is not None:
            warnings.warn(IGNORED_GUIDE, UserWarning, stacklevel=2)
        alpha = run_tiled(backend, img, None, tile_size=tile_size, tile_overlap=tile_overlap, check=check)
        return np.clip(alpha, 0, 1, out=alpha)
    if backend.input == "mask":
        if soft is None:
            raise ValueError("this model reads a coarse mask beside the image (config.input='mask'): "
                             "pass mask=, not a trimap")
        alpha = run_tiled(backend, img, soft, tile_size=tile_size, tile_overlap=tile_overlap, check=check)
        return np.clip(alpha, 0, 1, out=alpha)
    if soft is not None:
        tri = mask_to_trimap(soft, mask_band)
    if tri is None:
        raise ValueError("a trimap (HxW, 0/128/255) or a coarse mask (HxW, binary or soft) is needed "
                         f"beside the image: pass trimap= or mask= ({MASK_HINT})")
    unknown = tri == TRIMAP_UNKNOWN
    refines = getattr(backend, "prior", None) and unknown.any()
    solve_at = getattr(backend, "prior_pixels", None)
    with interruptible(check):  # the solves, too, stop at the check
        prior = classical_matte(backend.prior, img, tri, solve_at) if refines else None
    if check is not None:
        check()
    alpha = run_tiled(backend, img, trimap_to_float(tri), unknown, prior=prior, tile_size=tile_size,
                      tile_overlap=tile_overlap, check=check)
    np.clip(alpha, 0, 1, out=alpha)
    alpha[tri == TRIMAP_BG] = 0.0
    alpha[tri == TRIMAP_FG] = 1.0
    return alpha


#: The warning when an image-only model is given a trimap or a mask.
IGNORED_GUIDE = ("this model reads the image alone (config.input='image'): the trimap or mask given is "
                 "ignored")

#: Where a coarse mask comes from, for the messages that ask for one.
MASK_HINT = ("a segmenter gives a mask: e.g. `rembg i -om photo.jpg mask.png`; an RGBA cutout works as a "
             "mask too, its alpha is read")


def sample_predictor(backend: Backend, **options) -> Callable[[dict], np.ndarray]:
    """A predictor for :func:`deepmatting.scoring.score_dataset`: ``sample -> predict(image, trimap)``.

    ``options`` go to :func:`predict` (``tile_size``, ...). An image-only model is given the image alone
    (the sample's trimap still decides where the benchmark metrics are computed).
    """
    if backend.input == "image":
        return lambda sample: predict(sample["image"], backend=backend, **options)
    return lambda sample: predict(sample["image"], sample["trimap"], backend=backend, **options)
