"""Joint transforms on the sample dict: each one a callable ``(sample, rng) -> new sample``.

A sample is ``{"image": HxWx3 float32, "alpha": HxW float32, "trimap": HxW uint8 {0,128,255},
"fg"/"bg": HxWx3 float32 (optional), "name": str}``. Geometry (crop, scale, flip, pad) applies to every
array alike, with bilinear interpolation for image / fg / bg / alpha and nearest for the trimap, so the
trimap keeps its three values. Colour changes touch the image and fg only. A sample that carries fg and bg
is treated as a composite: after resampling or colour changes its image is re-composited from them, so
``image == alpha * fg + (1 - alpha) * bg`` keeps holding (crops and flips preserve it by themselves).

Transforms return a new dict and never write into the input dict or its arrays. Randomness comes only
from the ``rng`` argument (the dataset passes ``np.random.default_rng([seed, epoch, index])``), so a
pipeline is reproducible whatever the number of data-loader workers.

Examples
--------
>>> from deepmatting.data import SyntheticMattingDataset, train_transforms
>>> ds = SyntheticMattingDataset(4, size=400, transform=train_transforms(320))
>>> ds[0]["image"].shape, ds[0]["trimap"].dtype
((320, 320, 3), dtype('uint8'))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..tensors import TRIMAP_UNKNOWN
from .trimap import make_trimap

#: A transform: ``(sample, rng) -> sample``.
Transform = Callable[[dict, np.random.Generator], dict]

#: Keys resized bilinearly (HxWx3 or HxW float32; ``prior``: the classical mattes, HxW or HxWxC) and the
#: trimap key, resized with nearest neighbour.
COLOR_KEYS = ("image", "fg", "bg")
SMOOTH_KEYS = (*COLOR_KEYS, "alpha", "prior")
LABEL_KEYS = ("trimap",)
SPATIAL_KEYS = (*SMOOTH_KEYS, *LABEL_KEYS)

# Rec. 601 luma, used for grayscale in the colour jitter.
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)


def _spatial(sample: dict) -> list[str]:
    return [k for k in SPATIAL_KEYS if sample.get(k) is not None]


def _size(sample: dict) -> tuple[int, int]:
    h, w = sample["alpha"].shape[:2] if "alpha" in sample else sample["image"].shape[:2]
    return int(h), int(w)


# --------------------------------------------------------------------------------------------------
# Functional building blocks
# --------------------------------------------------------------------------------------------------

def resize_array(arr: np.ndarray, size: tuple[int, int], nearest: bool = False) -> np.ndarray:
    """Resize an ``HxW`` or ``HxWxC`` array to ``size = (h, w)``.

    Nearest neighbour (pixel centres aligned) keeps the set of values, for trimaps. Otherwise bilinear
    (``align_corners=False``) in float32, antialiased when shrinking by more than 2x; results stay within
    the input's range.

    Parameters
    ----------
    arr : np.ndarray, HxW or HxWxC
    size : (int, int), output height and width
    nearest : bool

    Returns
    -------
    np.ndarray, hxw or hxwxC, C-contiguous, same dtype (float32 when bilinear)
    """
    h, w = int(size[0]), int(size[1])
    H, W = arr.shape[:2]
    if (h, w) == (H, W):
        return np.ascontiguousarray(arr)
    if nearest:
        rows = np.minimum(((np.arange(h) + 0.5) * (H / h)).astype(np.intp), H - 1)
        cols = np.minimum(((np.arange(w) + 0.5) * (W / w)).astype(np.intp), W - 1)
        return arr[rows[:, None], cols]
    if arr.dtype != np.float32 or not arr.flags.writeable or min(arr.strides) < 0:
        arr = np.array(arr, dtype=np.float32)
    t = torch.from_numpy(arr)
    t = t[None, None] if arr.ndim == 2 else t.permute(2, 0, 1)[None]  # (1, C, H, W), channels-last strides
    out = F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False,
                        antialias=H > 2 * h or W > 2 * w)
    out = out[0, 0] if arr.ndim == 2 else out[0].permute(1, 2, 0)  # (h, w) or (h, w, C)
    out = np.ascontiguousarray(out.numpy())
    # antialiased and bilinear resampling can overshoot the input's range by a rounding error (1.0000002)
    return np.clip(out, arr.min(), arr.max(), out=out) if out.size and arr.size else out


def _is_composite(sample: dict) -> bool:
    return all(sample.get(k) is not None for k in ("fg", "bg", "alpha"))


def resize(sample: dict, size: tuple[int, int]) -> dict:
    """Resize every spatial array of ``sample`` to ``size = (h, w)`` (nearest for the trimap).

    Resampling does not commute with compositing, so a sample that carries ``fg`` and ``bg`` gets its
    image re-composited from the resized fg, bg and alpha (it stays an exact composite).
    """
    out = dict(sample)
    recomposite = _is_composite(sample)
    for k in _spatial(sample):
        if not (recomposite and k == "image"):
            out[k] = resize_array(sample[k], size, nearest=k in LABEL_KEYS)
    if recomposite:
        out["image"] = composite(out["alpha"], out["fg"], out["bg"])
    return out


def crop(sample: dict, top: int, left: int, height: int, width: int) -> dict:
    """Crop a window of every spatial array; parts of the window outside the image are reflect-padded.

    Reflecting every array alike keeps ``image == alpha * fg + (1 - alpha) * bg`` true in the padding
    (the relation is per pixel) and keeps the trimap's three values.
    """
    H, W = _size(sample)
    t0, l0 = max(top, 0), max(left, 0)
    t1, l1 = min(top + height, H), min(left + width, W)
    if t0 >= t1 or l0 >= l1:
        raise ValueError(f"crop window (top={top}, left={left}, {height}x{width}) misses the {H}x{W} image")
    pads = ((t0 - top, top + height - t1), (l0 - left, left + width - l1))
    out = dict(sample)
    for k in _spatial(sample):
        arr = sample[k][t0:t1, l0:l1]
        if any(p for pair in pads for p in pair):
            arr = np.pad(arr, pads + ((0, 0),) * (arr.ndim - 2), mode="reflect")
        out[k] = np.ascontiguousarray(arr)
    return out


def composite(alpha: np.ndarray, fg: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """``alpha * fg + (1 - alpha) * bg``, the matting equation.

    Parameters
    ----------
    alpha : np.ndarray, HxW float32 in [0, 1]
    fg, bg : np.ndarray, HxWx3 float32 in [0, 1]

    Returns
    -------
    np.ndarray, HxWx3 float32 in [0, 1]
    """
    a = alpha[:, :, None]
    return (bg + a * (fg - bg)).astype(np.float32, copy=False)


# --------------------------------------------------------------------------------------------------
# Transforms
# --------------------------------------------------------------------------------------------------

class Compose:
    """Apply transforms in order, passing each the same ``rng``.

    Parameters
    ----------
    transforms : sequence of callables ``(sample, rng) -> sample``
    """

    def __init__(self, transforms: Sequence[Transform]):
        self.transforms = list(transforms)

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        for t in self.transforms:
            sample = t(sample, rng)
        return sample

    @property
    def makes_trimap(self) -> bool:
        """Whether the pipeline builds the trimap itself (so a dataset need not build one first)."""
        return any(isinstance(t, RandomTrimap) for t in self.transforms)

    def __repr__(self) -> str:
        inner = ",\n".join(f"    {t!r}" for t in self.transforms)
        return f"{type(self).__name__}([\n{inner}\n])"


class RandomCropAroundUnknown:
    """Square crop centred on a random unknown trimap pixel, resized to ``out_size`` (Deep Image Matting).

    A crop side is drawn from those of ``sizes`` that fit inside the image (from the smallest size when
    none fits); the window is centred on a random pixel with trimap == 128 (without a trimap: a pixel of
    fractional alpha, or of a hard mask's edge; a random pixel when there is none), shifted to lie inside
    the image, and reflect-padded where the image is smaller than the crop. Sampling without a trimap lets
    the trimap be built after the crop, on far fewer pixels (see :class:`RandomTrimap`).
    The crop is then resized to ``out_size`` (bilinear; nearest for the trimap), so larger crop sizes act
    as a random zoom-out.

    Parameters
    ----------
    sizes : sequence of int, default (320, 480, 640)
    out_size : int, default 320
    """

    def __init__(self, sizes: Sequence[int] = (320, 480, 640), out_size: int = 320):
        if not sizes or min(sizes) < 1 or out_size < 1:
            raise ValueError(f"crop sizes and out_size must be positive, got {sizes}, {out_size}")
        self.sizes = tuple(int(s) for s in sizes)
        self.out_size = int(out_size)

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        H, W = _size(sample)
        fitting = [s for s in self.sizes if s <= min(H, W)] or [min(self.sizes)]
        c = fitting[int(rng.integers(len(fitting)))]
        unknown = _unknown_positions(sample)
        if unknown.size:
            cy, cx = divmod(int(unknown[rng.integers(unknown.size)]), W)
        else:
            cy, cx = int(rng.integers(H)), int(rng.integers(W))
        top = min(max(cy - c // 2, 0), H - c) if H >= c else -((c - H) // 2)
        left = min(max(cx - c // 2, 0), W - c) if W >= c else -((c - W) // 2)
        out = crop(sample, top, left, c, c)
        return resize(out, (self.out_size, self.out_size)) if c != self.out_size else out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sizes={self.sizes}, out_size={self.out_size})"


def _unknown_positions(sample: dict) -> np.ndarray:
    """Flat indices of the pixels a crop may centre on: trimap == 128, else the alpha's transition."""
    if sample.get("trimap") is not None:
        return np.flatnonzero(sample["trimap"] == TRIMAP_UNKNOWN)
    alpha = sample["alpha"]
    positions = np.flatnonzero((alpha > 1e-3) & (alpha < 1 - 1e-3))
    if positions.size == 0:  # a hard mask: its edge pixels
        hard = alpha >= 0.5
        edge = np.zeros_like(hard)
        edge[:, 1:] |= hard[:, 1:] != hard[:, :-1]
        edge[1:] |= hard[1:] != hard[:-1]
        positions = np.flatnonzero(edge)
    return positions


class RandomScale:
    """Resize the whole sample by a factor drawn uniformly from ``scale_range``.

    Cost grows with the image size: on full-resolution photos prefer the crop sizes of
    :class:`RandomCropAroundUnknown`, which zoom for the price of the crop.
    """

    def __init__(self, scale_range: tuple[float, float] = (0.75, 1.25)):
        lo, hi = scale_range
        if not 0 < lo <= hi:
            raise ValueError(f"scale_range must be (lo, hi) with 0 < lo <= hi, got {scale_range}")
        self.scale_range = (float(lo), float(hi))

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        s = float(rng.uniform(*self.scale_range))
        H, W = _size(sample)
        return resize(sample, (max(1, round(H * s)), max(1, round(W * s))))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scale_range={self.scale_range})"


class RandomFlip:
    """Mirror every spatial array left-right with probability ``p``."""

    def __init__(self, p: float = 0.5):
        self.p = float(p)

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        if rng.random() >= self.p:
            return dict(sample)
        out = dict(sample)
        for k in _spatial(sample):
            out[k] = np.ascontiguousarray(sample[k][:, ::-1])
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"


def color_matrix(brightness: float, contrast: float, saturation: float, hue: float,
                 mean_gray: float) -> tuple[np.ndarray, np.ndarray]:
    """The affine colour map ``x -> x @ M.T + offset`` of brightness, contrast, saturation, hue changes.

    Parameters
    ----------
    brightness, contrast, saturation : float, multiplicative factors (1 = unchanged)
    hue : float, rotation of the hue in turns (0 = unchanged, 0.5 = opposite colours)
    mean_gray : float, mean luma of the image, the pivot of the contrast change

    Returns
    -------
    M : np.ndarray, 3x3 float32
    offset : np.ndarray, 3 float32
    """
    gray = np.outer(np.ones(3), _LUMA)  # x -> luma(x) in every channel
    m_sat = saturation * np.eye(3) + (1 - saturation) * gray
    angle = 2 * math.pi * hue
    rot = np.array([[1, 0, 0], [0, math.cos(angle), -math.sin(angle)], [0, math.sin(angle), math.cos(angle)]])
    m_hue = _YIQ_TO_RGB @ rot @ _RGB_TO_YIQ  # rotation about the gray axis
    m = m_hue @ m_sat * (contrast * brightness)
    offset = np.full(3, (1 - contrast) * brightness * mean_gray)  # gray is fixed by m_sat and m_hue
    return m.astype(np.float32), offset.astype(np.float32)


class ColorJitter:
    """Random brightness, contrast, saturation and hue of the image (and fg); alpha and trimap untouched.

    Factors are drawn uniformly from ``1 ± brightness`` etc., the hue shift from ``± hue`` turns, and
    applied as one affine colour map, clipped to [0, 1]. With ``fg`` and ``bg`` in the sample, ``fg`` is
    jittered and the image re-composited as ``alpha * fg + (1 - alpha) * bg``, so the sample stays a
    consistent composite; otherwise the image (and ``fg`` when present) is jittered.

    Parameters
    ----------
    brightness, contrast, saturation : float, default 0.2, 0.2, 0.2
    hue : float, default 0.03 (turns)
    p : float, default 0.8, probability of jittering at all
    """

    def __init__(self, brightness: float = 0.2, contrast: float = 0.2, saturation: float = 0.2,
                 hue: float = 0.03, p: float = 0.8):
        self.brightness, self.contrast, self.saturation, self.hue, self.p = (
            float(brightness), float(contrast), float(saturation), float(hue), float(p))

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        if rng.random() >= self.p:
            return dict(sample)
        b, c, s = (float(rng.uniform(1 - v, 1 + v))
                   for v in (self.brightness, self.contrast, self.saturation))
        h = float(rng.uniform(-self.hue, self.hue))
        has_fg = sample.get("fg") is not None
        source = sample["fg"] if has_fg else sample["image"]
        mean_gray = float(source.reshape(-1, 3).mean(axis=0) @ _LUMA)
        m, offset = color_matrix(b, c, s, h, mean_gray)

        def apply(x: np.ndarray) -> np.ndarray:
            y = np.einsum("...c,dc->...d", x, m)  # not x @ m.T: BLAS threads cost far more on 3x3
            y += offset
            return np.clip(y, 0.0, 1.0, out=y)

        out = dict(sample)
        if has_fg:
            out["fg"] = apply(sample["fg"])
            if _is_composite(sample):
                out["image"] = composite(sample["alpha"], out["fg"], sample["bg"])
                return out
        out["image"] = apply(sample["image"])
        return out

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(brightness={self.brightness}, contrast={self.contrast}, "
                f"saturation={self.saturation}, hue={self.hue}, p={self.p})")


class RandomTrimap:
    """Build the trimap of a training sample: a random band, wide irregular regions, or the user's own.

    Real users' trimaps are wider and less regular than an eroded band: hand-drawn strokes leave large
    unknown areas of pure background or foreground next to the edge. So, per sample:

    - with probability ``keep_p``, a trimap the sample already has (read from a file) is kept;
    - otherwise the trimap is made from the alpha (:func:`make_trimap`) with a band width drawn from
      ``width_range``, and with probability ``blob_p`` irregular blobs of unknown are added: a smooth random
      field, thresholded, inside a wider band of a reach drawn from ``blob_reach`` px.

    Run it after the crop: the cost then follows the crop, not the photo.

    Parameters
    ----------
    width_range : (int, int), default (3, 25)
        Band width in pixels, drawn uniformly (inclusive); see :func:`make_trimap`.
    blob_p : float, default 0.0
        Probability of adding irregular wide unknown regions.
    blob_reach : (int, int), default (10, 120)
        How far (px) from the edge the blobs may reach, drawn uniformly per sample.
    keep_p : float, default 0.0
        Probability of keeping the sample's own trimap, when it has one.
    """

    def __init__(self, width_range: tuple[int, int] = (3, 25), blob_p: float = 0.0,
                 blob_reach: tuple[int, int] = (10, 120), keep_p: float = 0.0):
        self.width_range = (int(width_range[0]), int(width_range[1]))
        self.blob_reach = (int(blob_reach[0]), int(blob_reach[1]))
        for name, p in (("blob_p", blob_p), ("keep_p", keep_p)):
            if not 0 <= p <= 1:
                raise ValueError(f"RandomTrimap: {name} must be a probability in [0, 1], got {p}")
        self.blob_p, self.keep_p = float(blob_p), float(keep_p)

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        keep = rng.random() < self.keep_p
        blobs = rng.random() < self.blob_p
        if keep and sample.get("trimap") is not None:
            return dict(sample)
        out = dict(sample)
        trimap = make_trimap(sample["alpha"], width_range=self.width_range, rng=rng)
        if blobs:
            reach = int(rng.integers(self.blob_reach[0], self.blob_reach[1] + 1))
            wide = make_trimap(sample["alpha"], width=min(reach, 254)) == TRIMAP_UNKNOWN
            trimap[wide & _smooth_blobs(trimap.shape, rng)] = TRIMAP_UNKNOWN
        out["trimap"] = trimap
        return out

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(width_range={self.width_range}, blob_p={self.blob_p}, "
                f"blob_reach={self.blob_reach}, keep_p={self.keep_p})")


def _smooth_blobs(shape: tuple[int, int], rng: np.random.Generator, cell: int = 24) -> np.ndarray:
    """A random ``HxW`` bool mask of smooth blobs: coarse uniform noise, upsampled bilinearly, thresholded.

    About 25-60% of the pixels are set (the threshold is drawn too); ``cell`` is the blobs' scale in px.
    """
    h, w = shape
    coarse = rng.random((h // cell + 2, w // cell + 2)).astype(np.float32)
    field = resize_array(coarse, (h, w))
    return field > rng.uniform(0.4, 0.75)


class Composite:
    """Build ``image = alpha * fg + (1 - alpha) * bg`` from the sample's ``fg``, ``bg`` and ``alpha``."""

    def __call__(self, sample: dict, rng: np.random.Generator | None = None) -> dict:
        missing = [k for k in ("fg", "bg", "alpha") if sample.get(k) is None]
        if missing:
            raise KeyError(f"Composite needs 'fg', 'bg' and 'alpha' in the sample; missing {missing}")
        out = dict(sample)
        out["image"] = composite(sample["alpha"], sample["fg"], sample["bg"])
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class PadToMultiple:
    """Pad bottom and right so height and width are multiples of ``multiple`` (full-resolution evaluation).

    Image, fg and bg are padded with ``mode`` (reflect by default); alpha and trimap with 0 (known
    background, so padding never counts in the unknown-region metrics). The size before padding is
    recorded as ``sample["pad"] = (h, w)``; crop predictions back with ``pred[..., :h, :w]``.

    Parameters
    ----------
    multiple : int, default 32 (the model's output stride)
    mode : str, default "reflect", any ``np.pad`` mode for the colour arrays
    """

    def __init__(self, multiple: int = 32, mode: str = "reflect"):
        if multiple < 1:
            raise ValueError(f"multiple must be >= 1, got {multiple}")
        self.multiple, self.mode = int(multiple), mode

    def __call__(self, sample: dict, rng: np.random.Generator | None = None) -> dict:
        h, w = _size(sample)
        ph, pw = -h % self.multiple, -w % self.multiple
        out = dict(sample)
        out["pad"] = (h, w)
        if ph == 0 and pw == 0:
            return out
        for k in _spatial(sample):
            arr = sample[k]
            pads = ((0, ph), (0, pw)) + ((0, 0),) * (arr.ndim - 2)
            out[k] = np.pad(arr, pads, mode=self.mode) if k in COLOR_KEYS else np.pad(arr, pads)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(multiple={self.multiple}, mode={self.mode!r})"


# --------------------------------------------------------------------------------------------------
# Factories
# --------------------------------------------------------------------------------------------------

def train_transforms(crop_size: int = 320, *, crop_sizes: Sequence[int] | None = None,
                     trimap_width_range: tuple[int, int] | None = (3, 25), trimap_blob_p: float = 0.0,
                     trimap_keep_p: float = 0.0, flip: bool = True, color_jitter: bool = True,
                     scale_range: tuple[float, float] | None = None) -> Compose:
    """The training pipeline: [scale], crop around the unknown band, flip, colour jitter, random trimap.

    Parameters
    ----------
    crop_size : int, default 320
        Side of the training crops.
    crop_sizes : sequence of int, optional
        Window sides to crop before resizing to ``crop_size``; default ``crop_size * (1, 1.5, 2)``
        (320, 480, 640 for 320, as in Deep Image Matting).
    trimap_width_range : (int, int) or None, default (3, 25)
        Build the trimap from the alpha, after the crop, with a random width (see :class:`RandomTrimap`);
        None keeps the dataset's trimap.
    trimap_blob_p, trimap_keep_p : float, default 0.0
        :class:`RandomTrimap`'s probabilities of wide irregular unknown regions and of keeping a trimap the
        sample has from a file.
    flip, color_jitter : bool
    scale_range : (float, float), optional
        Resize the whole sample first (costly on large images; off by default).

    Returns
    -------
    Compose
        With ``makes_trimap`` True when it builds the trimap (datasets then skip building one).
    """
    if crop_sizes is None:
        crop_sizes = (crop_size, round(crop_size * 1.5), crop_size * 2)
    steps: list[Transform] = []
    if scale_range is not None:
        steps.append(RandomScale(scale_range))
    steps.append(RandomCropAroundUnknown(crop_sizes, crop_size))
    if flip:
        steps.append(RandomFlip())
    if color_jitter:
        steps.append(ColorJitter())
    if trimap_width_range is not None:
        steps.append(RandomTrimap(trimap_width_range, blob_p=trimap_blob_p, keep_p=trimap_keep_p))
    return Compose(steps)


def eval_transforms(multiple: int = 32) -> Compose:
    """The evaluation pipeline: full resolution, padded to a multiple of the model's stride.

    Pass the model's padding multiple (it lives in the model config) when it is not 32.
    """
    return Compose([PadToMultiple(multiple)])
