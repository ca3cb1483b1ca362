"""Predict an alpha matte at any resolution: input checks, padding, tiling, known regions, backends.

One code path serves every backend. A *backend* is any object with

- ``pad_multiple: int`` — what H and W get padded to (the backend pads itself; tiles are aligned to it),
- ``input: str`` — ``"trimap"`` or ``"mask"`` (what the model reads beside the image),
- ``__call__(image Bx3xHxW float32 [0,1], trimap Bx1xHxW float32 {0,0.5,1}) -> Bx1xHxW float32 [0,1]``
  on NumPy arrays.

:class:`TorchBackend` wraps a :class:`~deepmatting.models.DeepMatting`; ``deepmatting.export.OnnxBackend``
runs an exported ONNX file with onnxruntime. :func:`predict` checks the inputs, turns a coarse mask into a
trimap, cuts large images into overlapping tiles (only tiles that contain unknown pixels are run, so peak
memory follows the tile size, not the image size), blends them with linear ramps, and copies the known
trimap regions into the result.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.resources
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from PIL import Image

from .checkpoint import CheckpointError
from .data.io import image_pixels, plane_pixels, upright
from .data.trimap import trimap_from_mask
from .device import autocast_dtype, resolve_device
from .models import DeepMatting
from .models.blocks import fuse_conv_bn
from .tensors import TRIMAP_BG, TRIMAP_FG, TRIMAP_UNKNOWN, trimap_to_float

#: Where the default weights live inside the package (shipped only by some builds).
DEFAULT_WEIGHTS = "weights/default.pt"

NO_DEFAULT_MODEL = (
    "no model given and no default model ships with this version of deepmatting: pass a checkpoint "
    "(train one with `deepmatting train` or run `make demo`)"
)

#: Default tile side and overlap of :func:`predict`, in pixels.
DEFAULT_TILE_SIZE = 1024
DEFAULT_TILE_OVERLAP = 64



# ---- backends -------------------------------------------------------------------------------------
@runtime_checkable
class Backend(Protocol):
    """What :func:`predict` needs from a model: see the module docstring."""

    pad_multiple: int
    input: str

    def __call__(self, image: np.ndarray, trimap: np.ndarray) -> np.ndarray: ...


class TorchBackend:
    """Run a :class:`DeepMatting` model on NumPy batches.

    The backend runs a copy of the model in eval mode, with every BatchNorm folded into the convolution
    before it (fewer passes over memory: faster on the CPU), moved to ``device`` and to the channels-last
    memory format; the module passed in is left unchanged. Inference runs under ``torch.inference_mode``.

    Parameters
    ----------
    model : DeepMatting
    device : str or torch.device, default "auto"
        ``auto|cpu|cuda|cuda:N|mps`` (see :func:`deepmatting.device.resolve_device`).
    amp : bool, optional
        Mixed precision: float16 autocast on CUDA, bfloat16 autocast on the CPU. ``None`` (the default)
        turns it on for CUDA only; the CPU keeps float32 unless ``amp=True``.
    channels_last : bool, default True
        Run convolutions in the NHWC memory format (faster on most CPUs and GPUs).

    Examples
    --------
    >>> backend = TorchBackend(DeepMatting(), device="cpu")
    >>> backend(np.zeros((1, 3, 40, 50), np.float32), np.full((1, 1, 40, 50), 0.5, np.float32)).shape
    (1, 1, 40, 50)
    """

    def __init__(self, model: DeepMatting, device: str | torch.device = "auto", amp: bool | None = None,
                 channels_last: bool = True):
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.amp = self.device.type == "cuda" if amp is None else bool(amp)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        fused = fuse_conv_bn(copy.deepcopy(model).eval())
        self.model = fused.to(self.device, memory_format=self.memory_format)
        self.pad_multiple = int(model.pad_multiple)
        self.input = model.config.input

    def __call__(self, image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).to(self.device)
            t = torch.from_numpy(np.ascontiguousarray(trimap, dtype=np.float32)).to(self.device)
            x = x.contiguous(memory_format=self.memory_format)  # (B, 3, H, W)
            t = t.contiguous(memory_format=self.memory_format)  # (B, 1, H, W)
            with torch.autocast(self.device.type, dtype=autocast_dtype(self.device), enabled=self.amp):
                alpha = self.model(x, t)  # (B, 1, H, W)
            return alpha.float().cpu().numpy()


def default_weights() -> contextlib.AbstractContextManager[Path] | None:
    """A context manager giving the path of the packaged default weights, or None when none ship."""
    resource = importlib.resources.files("deepmatting").joinpath(DEFAULT_WEIGHTS)
    if not resource.is_file():
        return None
    return importlib.resources.as_file(resource)


def load_backend(checkpoint: str | os.PathLike | None = None, onnx: str | os.PathLike | None = None,
                 device: str | torch.device = "auto", amp: bool | None = None) -> Backend:
    """The backend for a checkpoint, an ONNX file, or the packaged default model.

    Parameters
    ----------
    checkpoint : path, optional
        A ``.pt`` file written by ``deepmatting train`` or ``DeepMatting.save``.
    onnx : path, optional
        An ONNX file from ``deepmatting export``, run with onnxruntime (``pip install deepmatting[onnx]``).
    device, amp
        For PyTorch models, see :class:`TorchBackend`.

    Raises
    ------
    CheckpointError
        When the checkpoint cannot be loaded, or when neither is given and no default model ships.
    ValueError
        When both ``checkpoint`` and ``onnx`` are given.

    Examples
    --------
    >>> backend = load_backend("runs/demo/best.pt", device="cpu")  # doctest: +SKIP
    >>> alphas = [predict(image, trimap, backend=backend) for image, trimap in pairs]  # doctest: +SKIP
    """
    if onnx is not None:
        if checkpoint is not None:
            raise ValueError("give a checkpoint or an ONNX model, not both")
        from .export import OnnxBackend

        return OnnxBackend(onnx)
    if checkpoint is not None:
        return TorchBackend(DeepMatting.from_checkpoint(checkpoint), device=device, amp=amp)
    weights = default_weights()
    if weights is None:
        raise CheckpointError(NO_DEFAULT_MODEL)
    with weights as path:
        model = DeepMatting.from_checkpoint(path)
    return TorchBackend(model, device=device, amp=amp)


# ---- input checks -----------------------------------------------------------------------------------
def _shape(a: np.ndarray) -> str:
    return "x".join(str(s) for s in a.shape)


def _unit_float(a: np.ndarray, name: str) -> np.ndarray:
    """bool, uint8 (/255), uint16 (/65535) or float in [0,1] -> float32 in [0,1]."""
    if a.dtype == np.bool_:
        return a.astype(np.float32)
    if a.dtype == np.uint8:
        return np.multiply(a, np.float32(1 / 255), dtype=np.float32)
    if a.dtype == np.uint16:
        return np.multiply(a, np.float32(1 / 65535), dtype=np.float32)
    if a.dtype.kind == "f":
        out = a.astype(np.float32, copy=False)  # not modified below: no copy of a float32 input
        if out.size and not np.isfinite(out).all():
            raise ValueError(f"{name}: contains NaN or infinite values")
        lo, hi = float(out.min(initial=0)), float(out.max(initial=0))
        if lo < 0 or hi > 1:
            raise ValueError(f"{name}: float values span {lo:g}..{hi:g}, expected 0..1 "
                             "(divide 8-bit data by 255, or pass it as uint8)")
        return out
    raise ValueError(f"{name}: unsupported dtype {a.dtype}; pass uint8 (0..255), uint16 (0..65535) "
                     "or float in [0, 1]")


def as_image(image: np.ndarray | Image.Image) -> np.ndarray:
    """Check and convert an image to ``HxWx3 float32`` in [0,1].

    Accepts a PIL image (converted like :func:`deepmatting.data.io.read_image`: EXIF orientation, gray
    repeated, alpha dropped, 16-bit kept), or an array ``HxWx3`` (``HxW`` gray and ``HxWx4`` with the alpha
    dropped are accepted too) of uint8 (/255), uint16 (/65535) or float in [0,1].

    Raises
    ------
    ValueError
        Wrong shape, dtype or value range.
    """
    if isinstance(image, Image.Image):
        image = image_pixels(upright(image), "image")
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 4:
        a = a[:, :, :3]
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3) or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"image must be an HxWx3 array (or a PIL image), got shape {a.shape}")
    a = _unit_float(a, "image")
    return np.ascontiguousarray(np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a)


def _as_plane(plane: np.ndarray | Image.Image, name: str) -> np.ndarray:
    if isinstance(plane, Image.Image):
        plane = plane_pixels(upright(plane), name, name)
    a = np.asarray(plane)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim != 2:
        raise ValueError(f"{name} must be an HxW array, got shape {a.shape}")
    return a


def as_trimap(trimap: np.ndarray | Image.Image) -> np.ndarray:
    """Check and convert a trimap to ``HxW uint8`` in {0, 128, 255}.

    Accepts uint8 {0,128,255} or float {0, 0.5, 1} (within 1e-3).

    Raises
    ------
    ValueError
        Wrong shape, or values other than the three trimap levels.
    """
    t = _as_plane(trimap, "trimap")
    if t.dtype == np.uint8:
        bad = (t != TRIMAP_BG) & (t != TRIMAP_UNKNOWN) & (t != TRIMAP_FG)
        out = t
    elif t.dtype.kind == "f":
        t = t.astype(np.float32)
        out = np.full(t.shape, TRIMAP_UNKNOWN, np.uint8)
        out[np.abs(t) <= 1e-3] = TRIMAP_BG
        out[np.abs(t - 1) <= 1e-3] = TRIMAP_FG
        bad = ~((out != TRIMAP_UNKNOWN) | (np.abs(t - 0.5) <= 1e-3))
    else:
        raise ValueError(f"trimap: unsupported dtype {t.dtype}; "
                         "pass uint8 {0,128,255} or float {0,0.5,1}")
    if bad.any():
        values = np.unique(t[bad])[:8].tolist()
        raise ValueError(f"trimap: {int(bad.sum())} pixels are not background/unknown/foreground (found "
                         f"{values}); use 0/128/255 (uint8) or 0/0.5/1 (float), "
                         "or pass a coarse mask as mask=")
    return np.ascontiguousarray(out)


def as_mask(mask: np.ndarray | Image.Image) -> np.ndarray:
    """Check and convert a coarse (binary or soft) mask to ``HxW float32`` in [0,1]."""
    return np.ascontiguousarray(_unit_float(_as_plane(mask, "mask"), "mask"))


def default_mask_band(height: int, width: int) -> int:
    """Half-width in pixels of the unknown band around a coarse mask's edge: 1% of the longer side.

    At least 5 and at most 254 pixels: 5 px up to 500 px images, 10 px at 1000 px, 40 px at 4000 px.
    """
    return int(min(254, max(5, round(max(height, width) / 100))))


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


def run_tiled(backend: Backend, image: np.ndarray, guide: np.ndarray, unknown: np.ndarray | None = None, *,
              tile_size: int = DEFAULT_TILE_SIZE, tile_overlap: int = DEFAULT_TILE_OVERLAP) -> np.ndarray:
    """Run ``backend`` over an image in overlapping tiles and blend them.

    Parameters
    ----------
    backend : Backend
    image : np.ndarray, HxWx3 float32 [0,1]
    guide : np.ndarray, HxW float32: the trimap {0,0.5,1} or the coarse mask fed to the model
    unknown : np.ndarray, HxW bool, optional
        Pixels whose prediction is needed; tiles without any are skipped (all tiles run when None).
    tile_size, tile_overlap : int
        Tile side (rounded down to ``backend.pad_multiple``) and the minimum overlap between neighbours.

    Returns
    -------
    np.ndarray, HxW float32: the blended prediction where any tile ran, 0 elsewhere.
    """
    h, w = guide.shape
    m = max(1, int(backend.pad_multiple))
    tile = max(m, tile_size // m * m)
    overlap = max(0, min(tile_overlap, tile // 2))
    if max(h, w) <= tile_size:  # one tile, no blending
        tile = max(h, w)
    acc = np.zeros((h, w), np.float32)
    weight = np.zeros((h, w), np.float32)
    for rows, cols, wt in _tiles(h, w, tile, overlap, m):
        if unknown is not None and not unknown[rows, cols].any():
            continue
        x = np.ascontiguousarray(image[rows, cols].transpose(2, 0, 1)[None])  # (1, 3, h, w)
        t = np.ascontiguousarray(guide[rows, cols][None, None])  # (1, 1, h, w)
        pred = np.asarray(backend(x, t), dtype=np.float32)
        if pred.shape != t.shape:
            raise RuntimeError(f"the backend returned shape {pred.shape} for an input of shape {t.shape}")
        acc[rows, cols] += wt * pred[0, 0]
        weight[rows, cols] += wt
    np.divide(acc, weight, out=acc, where=weight > 0)
    return acc


# ---- predict ----------------------------------------------------------------------------------------
def predict(image: np.ndarray | Image.Image, trimap: np.ndarray | Image.Image | None = None,
            mask: np.ndarray | Image.Image | None = None,
            model: DeepMatting | str | os.PathLike | None = None, *, device: str = "auto",
            tile_size: int = DEFAULT_TILE_SIZE, tile_overlap: int = DEFAULT_TILE_OVERLAP,
            mask_band: float | None = None, backend: Backend | None = None) -> np.ndarray:
    """Predict the alpha matte of an image from a trimap or a coarse mask, at any resolution.

    Parameters
    ----------
    image : np.ndarray or PIL.Image.Image
        ``HxWx3`` uint8 (0..255), uint16 (0..65535) or float in [0,1], or a PIL image (see
        :func:`as_image`).
    trimap : np.ndarray, optional
        ``HxW`` uint8 {0 background, 128 unknown, 255 foreground} or float {0, 0.5, 1}.
    mask : np.ndarray, optional
        ``HxW`` coarse binary or soft mask (uint8 0..255, bool, or float in [0,1]). For trimap models it
        becomes a trimap (:func:`deepmatting.data.trimap.trimap_from_mask`: thresholded at 0.5, unknown
        ``mask_band`` px either side of the edge); mask models (``config.input == "mask"``) read it directly.
    model : DeepMatting, path, or None
        A model, a checkpoint file, or None for the default model that ships with the package (a
        :class:`~deepmatting.checkpoint.CheckpointError` says so when there is none).
    device : str
        Where a PyTorch model runs: ``auto|cpu|cuda|mps``.
    tile_size, tile_overlap : int
        Images longer than ``tile_size`` on a side are processed in overlapping tiles of that size (rounded
        down to the model's padding multiple), blended with linear ramps over ``tile_overlap`` px. Only
        tiles with unknown pixels run, and peak memory follows the tile size, not the image size.
    mask_band : float, optional
        Half-width of the unknown band made from a mask; default :func:`default_mask_band` (1% of the
        longer side, 5..254 px).
    backend : Backend, optional
        A ready backend (e.g. :class:`TorchBackend` or ``deepmatting.export.OnnxBackend``); replaces
        ``model`` and ``device``.

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
    if backend is not None and model is not None:
        raise ValueError("pass a model or a backend, not both")
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
                             f"{_shape(plane)} (shape {plane.shape}); they must have the same size")

    if backend is None:
        if isinstance(model, DeepMatting):
            backend = TorchBackend(model, device=device)
        elif isinstance(model, (str, os.PathLike)) or model is None:
            backend = load_backend(checkpoint=model, device=device)
        else:
            raise ValueError("model must be a DeepMatting, a checkpoint path or None, "
                             f"got {type(model).__name__}")
    if backend.input == "mask":
        if soft is None:
            raise ValueError("this model reads a coarse mask beside the image (config.input='mask'): "
                             "pass mask=, not a trimap")
        alpha = run_tiled(backend, img, soft, tile_size=tile_size, tile_overlap=tile_overlap)
        return np.clip(alpha, 0, 1, out=alpha)
    if soft is not None:
        band = default_mask_band(h, w) if mask_band is None else mask_band
        tri = trimap_from_mask(soft, band)
    if tri is None:
        raise ValueError("a trimap (HxW, 0/128/255) or a coarse mask (HxW, binary or soft) is needed "
                         "beside the image: pass trimap= or mask=")
    unknown = tri == TRIMAP_UNKNOWN
    alpha = run_tiled(backend, img, trimap_to_float(tri), unknown, tile_size=tile_size,
                      tile_overlap=tile_overlap)
    np.clip(alpha, 0, 1, out=alpha)
    alpha[tri == TRIMAP_BG] = 0.0
    alpha[tri == TRIMAP_FG] = 1.0
    return alpha
