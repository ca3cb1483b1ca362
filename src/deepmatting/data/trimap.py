"""Trimaps from alpha mattes (training, evaluation) and from coarse masks (inference).

A trimap marks each pixel as background (0), unknown (128) or foreground (255). :func:`make_trimap`
erodes the definite foreground and background of an alpha matte with a disk of radius ``width``, so every
pixel with ``0 < alpha < 1`` and a band of ``width`` pixels around the boundary becomes unknown.

The erosion is exact (identical to thresholding ``scipy.ndimage.distance_transform_edt``, which the tests
check) but about five times faster: a horizontal distance transform by running max/min, then the disk's
vertical chords — see :func:`erode_disk`.
"""

from __future__ import annotations

import math

import numpy as np

from ..tensors import TRIMAP_BG, TRIMAP_FG, TRIMAP_UNKNOWN

#: The widest band (erosion radius) in pixels: distances are counted in uint8 (see :func:`_row_distance`).
MAX_WIDTH = 254


def _row_distance(zero: np.ndarray, cap: int) -> np.ndarray:
    """Distance along its row from each pixel to the nearest True pixel of ``zero``, capped at ``cap``.

    Parameters
    ----------
    zero : np.ndarray, HxW bool
    cap : int, at most 255

    Returns
    -------
    np.ndarray, HxW uint8
    """
    w = zero.shape[1]
    dtype = np.int16 if w < 16000 else np.int32
    far = dtype(np.iinfo(dtype).max // 2)
    idx = np.arange(w, dtype=dtype)
    left = np.where(zero, idx, -far)  # index of the nearest zero at or left of each pixel
    np.maximum.accumulate(left, axis=1, out=left)
    right = np.where(zero[:, ::-1], idx[::-1], far)  # ... at or right of it (computed on the mirror)
    np.minimum.accumulate(right, axis=1, out=right)
    right = right[:, ::-1]
    np.subtract(idx, left, out=left)
    np.subtract(right, idx, out=right)
    np.minimum(left, right, out=left)
    np.minimum(left, cap, out=left)
    return left.astype(np.uint8)


def erode_disk(mask: np.ndarray, radius: float) -> np.ndarray:
    """Binary erosion of ``mask`` by a disk of ``radius`` pixels; outside the image does not erode.

    A pixel survives when no False pixel lies within Euclidean distance ``radius`` of it; this equals
    ``distance_transform_edt(mask) > radius``. With ``d`` the horizontal distance to the nearest False
    pixel in each row, a pixel survives when, for every row offset ``dy`` in the disk, ``d`` of the pixel
    ``dy`` rows away exceeds the disk's half-chord ``floor(sqrt(radius^2 - dy^2))``.

    Parameters
    ----------
    mask : np.ndarray, HxW bool
    radius : float, >= 0 (radius < 1 returns a copy of ``mask``)

    Returns
    -------
    np.ndarray, HxW bool
    """
    mask = np.asarray(mask, dtype=bool)
    r = int(math.floor(radius))
    if r < 1 or mask.all() or not mask.any():
        return mask.copy()
    if r > MAX_WIDTH:
        raise ValueError(f"erosion radius {radius} is too large (at most {MAX_WIDTH} pixels)")
    h, w = mask.shape
    dist = _row_distance(~mask, r + 1)
    padded = np.full((h + 2 * r, w), 255, np.uint8)  # rows outside the image never erode
    padded[r:r + h] = dist
    keep = dist > r
    tmp = np.empty((h, w), bool)
    for dy in range(1, r + 1):
        half_chord = math.isqrt(math.floor(radius * radius - dy * dy))  # = floor(sqrt(radius^2 - dy^2))
        np.greater(padded[r + dy:r + dy + h], half_chord, out=tmp)
        keep &= tmp
        np.greater(padded[r - dy:r - dy + h], half_chord, out=tmp)
        keep &= tmp
    return keep


def trimap_from_masks(fg: np.ndarray, bg: np.ndarray, width: float) -> np.ndarray:
    """Trimap whose foreground is ``fg`` eroded by ``width`` and background ``bg`` eroded by ``width``.

    Parameters
    ----------
    fg, bg : np.ndarray, HxW bool, disjoint (definite foreground and background)
    width : float, pixels

    Returns
    -------
    np.ndarray, HxW uint8 in {0, 128, 255}
    """
    trimap = np.full(fg.shape, TRIMAP_UNKNOWN, np.uint8)
    trimap[erode_disk(fg, width)] = TRIMAP_FG
    trimap[erode_disk(bg, width)] = TRIMAP_BG
    return trimap


def _check_width(width: float, name: str = "width") -> None:
    if not (0 <= width <= MAX_WIDTH):
        raise ValueError(f"trimap {name} must be between 0 and {MAX_WIDTH} pixels, got {width}")


def make_trimap(alpha: np.ndarray, width: float = 10, *, width_range: tuple[int, int] | None = None,
                rng: np.random.Generator | None = None, eps: float = 1e-3) -> np.ndarray:
    """Trimap from an alpha matte: every pixel with fractional alpha, plus a ``width`` px band, is unknown.

    Foreground is ``alpha >= 1 - eps``, background ``alpha <= eps``; both are eroded by a disk of radius
    ``width`` and what is left is unknown. So a pixel is unknown when ``0 < alpha < 1`` there or when it
    lies within ``width`` pixels of a pixel of another class. ``width=0`` marks only the fractional pixels
    (and, for a hard mask, nothing). The image border does not count as a boundary.

    Parameters
    ----------
    alpha : np.ndarray, HxW float in [0, 1] (uint8 0..255 is accepted too)
    width : float, default 10
        Band width in pixels, used when ``width_range`` is None (deterministic: evaluation, inference).
    width_range : (int, int), optional
        Draw the width uniformly from ``lo..hi`` (inclusive) with ``rng`` (training).
    rng : np.random.Generator, optional
        Required with ``width_range``.
    eps : float, default 1e-3
        Tolerance for "fully" transparent / opaque.

    Returns
    -------
    np.ndarray, HxW uint8 in {0, 128, 255}

    Examples
    --------
    >>> alpha = np.zeros((5, 7), np.float32); alpha[:, 4:] = 1; alpha[:, 3] = 0.5
    >>> make_trimap(alpha, width=1)[0]
    array([  0,   0, 128, 128, 128, 255, 255], dtype=uint8)
    """
    alpha = np.asarray(alpha)
    if alpha.ndim != 2:
        raise ValueError(f"alpha must be HxW, got shape {alpha.shape}")
    if width_range is not None:
        if rng is None:
            raise ValueError("make_trimap: width_range needs an rng (np.random.Generator) to draw the width")
        lo, hi = width_range
        _check_width(lo, "width_range"), _check_width(hi, "width_range")
        if lo > hi:
            raise ValueError(f"width_range must be (lo, hi) with lo <= hi, got {width_range}")
        width = int(rng.integers(lo, hi + 1))
    _check_width(width)
    if alpha.dtype == np.uint8:
        fg, bg = alpha == 255, alpha == 0
    else:
        fg, bg = alpha >= 1 - eps, alpha <= eps
    return trimap_from_masks(fg, bg, width)


def trimap_from_mask(mask: np.ndarray, width: float = 10, *, threshold: float = 0.5) -> np.ndarray:
    """Trimap from a coarse binary or soft mask (e.g. a segmentation): unknown ``width`` px each side.

    The mask is thresholded at ``threshold``; pixels within ``width`` pixels of the other side of the
    boundary become unknown. Used at inference when the user gives a rough mask instead of a trimap.

    Parameters
    ----------
    mask : np.ndarray, HxW bool, float in [0, 1], or uint8 0..255
    width : float, default 10
        Half-width of the unknown band in pixels (the band is about ``2 * width`` wide).
    threshold : float, default 0.5
        In the [0, 1] scale (uint8 masks are divided by 255 first).

    Returns
    -------
    np.ndarray, HxW uint8 in {0, 128, 255}

    Examples
    --------
    >>> mask = np.zeros((1, 8), np.float32); mask[:, 4:] = 0.9
    >>> trimap_from_mask(mask, width=2)[0]
    array([  0,   0, 128, 128, 128, 128, 255, 255], dtype=uint8)
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be HxW, got shape {mask.shape}")
    _check_width(width)
    if mask.dtype == np.bool_:
        fg = mask
    elif mask.dtype == np.uint8:
        fg = mask >= threshold * 255
    else:
        fg = mask >= threshold
    return trimap_from_masks(fg, ~fg, width)


#: Soft mask values strictly between these count as unknown (a segmenter's own uncertainty).
SOFT_MASK_RANGE = (0.05, 0.95)


def coarse_mask_band(foreground: np.ndarray) -> int:
    """Half-width in pixels of the unknown band for a coarse mask: 2% of the subject's size.

    The subject's size is the diameter of a disc of the foreground's area, so the band follows the subject,
    not the frame: 5 px for small subjects (at least), 17 px for a 870 px subject, 40 px for a 2000 px one
    (at most 254).

    Parameters
    ----------
    foreground : np.ndarray, HxW bool
    """
    diameter = math.sqrt(4 * float(np.count_nonzero(foreground)) / math.pi)
    return int(min(MAX_WIDTH, max(5, round(0.02 * diameter))))


def clean_mask(foreground: np.ndarray, min_area: float) -> np.ndarray:
    """Drop foreground specks and fill background holes smaller than ``min_area`` pixels (8-connected).

    Segmenters leave isolated specks and pin-holes; each would otherwise get a ring of unknown pixels.
    Holes that touch the image border are background, not holes, and stay.

    Parameters
    ----------
    foreground : np.ndarray, HxW bool
    min_area : float, pixels

    Returns
    -------
    np.ndarray, HxW bool
    """
    from scipy import ndimage

    eight = np.ones((3, 3), bool)
    out = foreground.copy()
    labels, n = ndimage.label(out, structure=eight)
    if n:
        areas = np.bincount(labels.ravel())
        out[(areas < min_area)[labels] & (labels > 0)] = False
    holes, n = ndimage.label(~out, structure=eight)
    if n:
        areas = np.bincount(holes.ravel())
        border = np.unique(np.concatenate([holes[0], holes[-1], holes[:, 0], holes[:, -1]]))
        small = areas < min_area
        small[border] = False
        small[0] = False
        out[small[holes]] = True
    return out


def trimap_from_coarse_mask(mask: np.ndarray, band: float | None = None, *,
                            threshold: float = 0.5) -> np.ndarray:
    """The trimap for a coarse mask from any segmenter (rembg, SAM, a person segmenter), at inference.

    1. threshold at ``threshold``, then drop foreground specks and fill holes smaller than ``band²``
       (:func:`clean_mask`), so they leave no rings of unknown;
    2. unknown ``band`` px either side of the edge (:func:`trimap_from_masks`), ``band`` defaulting to 2% of
       the subject's size (:func:`coarse_mask_band`);
    3. where the mask is soft (strictly inside :data:`SOFT_MASK_RANGE`), unknown too: the segmenter was
       unsure there.

    Parameters
    ----------
    mask : np.ndarray, HxW float in [0, 1] (or bool)
    band : float, optional
    threshold : float, default 0.5

    Returns
    -------
    np.ndarray, HxW uint8 in {0, 128, 255}
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be HxW, got shape {mask.shape}")
    soft = mask.astype(np.float32, copy=False)
    raw = soft >= threshold
    width = coarse_mask_band(raw) if band is None else band
    _check_width(width)
    fg = clean_mask(raw, min_area=max(1.0, width) ** 2)
    trimap = trimap_from_masks(fg, ~fg, width)
    lo, hi = SOFT_MASK_RANGE
    trimap[(soft > lo) & (soft < hi)] = TRIMAP_UNKNOWN
    return trimap
