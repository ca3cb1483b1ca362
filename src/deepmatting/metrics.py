"""Benchmark-exact matting errors: SAD, MSE, gradient error and connectivity error.

The four errors of the Deep Image Matting benchmark (Xu et al., CVPR 2017) with the semantics of its official
MATLAB evaluation code: ``compute_sad_loss.m``, ``compute_mse_loss.m``, ``compute_gradient_loss.m`` (with
``gaussgradient.m``), ``compute_connectivity_error.m``, and the scaling applied by ``evaluate.m``. They are
pure functions of numpy arrays; :class:`MetricAccumulator` averages them over a data set.

Conventions
-----------
Inputs
    ``pred`` and ``gt`` are ``(H, W)`` alpha mattes, either ``uint8`` in [0, 255] (alpha = value / 255,
    divided in float32 like MATLAB's ``single(x)/255``) or floating in [0, 1] (taken as alpha, rounded to
    float32). The two may have different dtypes. ``trimap`` is an ``(H, W)`` ``uint8`` array; only its pixels
    equal to 128 (the unknown region) are scored. ``trimap=None`` scores every pixel.
Units
    SAD, gradient and connectivity errors are divided by 1000 (the paper's tables; ``compute_sad_loss.m``
    divides the SAD, ``evaluate.m`` the other two). The MSE is a plain mean over the unknown pixels, not
    scaled. With no unknown pixel SAD, gradient and connectivity errors are 0.0 and the MSE is NaN (0 / 0, as
    in MATLAB).
Precision
    Per-pixel arithmetic follows MATLAB: float32 (``single``) for SAD, MSE and connectivity; the gradient
    filtering in float64, because ``mat2gray`` returns double for the benchmark's uint8 PNGs (it is applied
    to the uint8 values themselves, or to the float32 alphas), with the amplitudes rounded to float32 before
    they are subtracted (``single(pred_amp) - single(target_amp)``). Sums are accumulated in float64 where
    MATLAB sums singles in single precision (which can be off by more than 1e-6 on large images), and
    SAD/MSE divide each alpha by 255 before subtracting where ``compute_sad_loss.m`` divides the difference
    (a difference of about 1e-7 relative).

Gradient error (``compute_gradient_loss.m``)
    Each alpha is first min-max normalised on its own (``mat2gray``: (x - min) / (max - min) with the global
    min and max of the whole image; a constant image gives zeros) -- not divided by 255. The gradient comes
    from ``gaussgradient.m`` with sigma 1.4: a 9x9 first-derivative-of-Gaussian kernel, normalised to unit
    Frobenius norm, applied by true convolution with replicated borders (``imfilter(..., 'replicate',
    'conv')``). The kernel has rank 1, so it is applied as two 1-D convolutions, and only where needed: the
    image is cut into strips of 64 rows, and in each strip the columns that hold unknown pixels (runs
    closer than 8 columns merged) are filtered with the filter's 4-pixel reach read from the image
    (replicated only at the image border); all these boxes are filtered at once, side by side in one array.
    The error is ``sum((|grad pred| - |grad gt|)^2)`` over the unknown region, / 1000.

Connectivity error (``compute_connectivity_error.m``, step 0.1)
    Thresholds are built exactly like MATLAB's colon operator ``0:step:1`` (first half ``a + k*d``, second
    half ``b - k*d``, see :func:`_matlab_colon`), so ``0:0.1:1`` holds 0.6 and 0.7 exactly and, as in MATLAB,
    ``3 * 0.1 = 0.30000000000000004`` -- numpy's ``arange`` differs. At each threshold only the pixels where
    both alphas reach it form 4-connected components (the background is not a component); the largest
    component (ties go to the component whose first pixel comes first in column-major order, as with
    ``bwconncomp`` and ``max``) is ``omega``, empty when there is no component. A pixel's level ``l`` is the
    threshold before the first one whose ``omega`` misses it (1 if it is in all of them); then
    ``phi = 1 - d * (d >= 0.15)`` with ``d = alpha - l``, and the error is ``sum(|phi_pred - phi_gt|)`` over
    the unknown region, / 1000. Components are found on the whole image, never on a crop of the unknown
    region: they may extend outside it. The thresholds share one pass over the image (how many thresholds
    each pixel reaches, and where that count changes along a row); each threshold's set is then a list of
    horizontal runs, and its components are found on the runs rather than on the pixels. The float32
    alphas are compared with the double thresholds exactly; for uint8 inputs this gives the same sets as a
    float32 comparison would.

Pitfalls of common Python ports that this module avoids: dividing by 255 instead of ``mat2gray`` in the
gradient error, counting the background as the largest component, numpy ``arange`` thresholds, and
row-major tie-breaking between equally large components.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse import csgraph

__all__ = [
    "METRIC_NAMES",
    "MetricAccumulator",
    "connectivity_error",
    "evaluate_all",
    "gradient_error",
    "mse_score",
    "sad_score",
]

METRIC_NAMES = ("sad", "mse", "grad", "conn")
"""The keys of :func:`evaluate_all`'s result, in the order of the benchmark's tables."""

UNKNOWN_VALUE = 128  # trimap value of the unknown region
SCALE = 1000.0  # SAD, gradient and connectivity errors are reported / 1000
GRADIENT_SIGMA = 1.4  # compute_gradient_loss.m
PHI_THRESHOLD = 0.15  # compute_connectivity_error.m
_STRIP = 64  # rows of the strips the gradient is computed on


# --------------------------------------------------------------------------------------------------------
# Input checks and the shared preparation
# --------------------------------------------------------------------------------------------------------


def _check_alpha(x: np.ndarray, name: str) -> np.ndarray:
    """``x`` as a 2-D uint8 or float32 array, or a ValueError naming the problem."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (H, W) alpha matte, got an array of shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{name} is empty (shape {x.shape})")
    if x.dtype == np.uint8:
        return x
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{name} must be uint8 in [0, 255] or float in [0, 1], got dtype {x.dtype}")
    lo, hi = x.min(), x.max()
    if not (lo >= 0 and hi <= 1):  # NaN fails both comparisons
        raise ValueError(
            f"{name} is float, so its values must lie in [0, 1], got values in [{lo}, {hi}]"
            " (pass uint8 for alphas in 0..255)"
        )
    return x.astype(np.float32, copy=False)


def _check_trimap(trimap: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray | None:
    if trimap is None:
        return None
    trimap = np.asarray(trimap)
    if trimap.shape != shape:
        raise ValueError(f"trimap must have the shape of pred and gt {shape}, got {trimap.shape}")
    if trimap.dtype != np.uint8:
        raise ValueError(
            f"trimap must be uint8 with 128 marking the unknown region, got dtype {trimap.dtype}"
        )
    return trimap


def _to_alpha(values: np.ndarray) -> np.ndarray:
    """uint8 -> float32 ``value / 255`` (MATLAB ``single(x)/255``); float32 is returned as is."""
    if values.dtype == np.uint8:
        return values.astype(np.float32) / np.float32(255)
    return values


@dataclass(frozen=True)
class _Inputs:
    """Validated inputs and the work the four metrics share."""

    pred: np.ndarray  # (H, W) uint8 or float32
    gt: np.ndarray  # (H, W) uint8 or float32
    unknown: np.ndarray | None  # (H, W) bool, None: every pixel
    index: np.ndarray | None  # (N,) flat indices of the unknown pixels, None: every pixel
    pred_u: np.ndarray  # (N,) float32 alpha of pred at the unknown pixels
    gt_u: np.ndarray  # (N,) float32 alpha of gt at the unknown pixels


def _prepare(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray | None) -> _Inputs:
    pred, gt = _check_alpha(pred, "pred"), _check_alpha(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt must have the same shape, got {pred.shape} and {gt.shape}")
    trimap = _check_trimap(trimap, pred.shape)
    if trimap is None:
        unknown = index = None
        pred_u, gt_u = _to_alpha(pred.ravel()), _to_alpha(gt.ravel())
    else:
        unknown = trimap == UNKNOWN_VALUE
        index = np.flatnonzero(unknown)
        pred_u, gt_u = _to_alpha(pred.ravel()[index]), _to_alpha(gt.ravel()[index])
    return _Inputs(pred, gt, unknown, index, pred_u, gt_u)


# --------------------------------------------------------------------------------------------------------
# SAD and MSE
# --------------------------------------------------------------------------------------------------------


def _sad(x: _Inputs) -> float:
    return float(np.abs(x.pred_u - x.gt_u).sum(dtype=np.float64)) / SCALE


def _mse(x: _Inputs) -> float:
    if x.pred_u.size == 0:
        return math.nan
    diff = x.pred_u - x.gt_u  # float32, like MATLAB's single error map
    return float(np.square(diff).sum(dtype=np.float64)) / x.pred_u.size


# --------------------------------------------------------------------------------------------------------
# Gradient error
# --------------------------------------------------------------------------------------------------------


def _gaussian_derivative_kernels(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """The two 1-D factors ``(gauss, dgauss)`` of ``gaussgradient.m``'s kernel, ``hx = outer(gauss, dgauss)``.

    Both are float64 of length ``2 * halfsize + 1`` (9 for sigma 1.4), indexed from offset ``-halfsize``.
    Normalising ``hx`` to unit Frobenius norm is normalising each factor to unit Euclidean norm.
    """
    halfsize = math.ceil(sigma * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * sigma * 1e-2)))
    x = np.arange(-halfsize, halfsize + 1, dtype=np.float64)
    gauss = np.exp(-(x**2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))
    dgauss = -x * gauss / sigma**2
    return gauss / np.linalg.norm(gauss), dgauss / np.linalg.norm(dgauss)


def _gradient_xy(images: np.ndarray, margin: int, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """``(gx, gy)`` of each ``(K, h, w)`` float64 image, both ``(K, h - 2m, w - 2m)``, ``m = margin``.

    ``gx = imfilter(IM, hx, 'conv')`` with ``hx(i, j) = gauss(i) * dgauss(j)``: ``dgauss`` along the columns
    (axis -1), then ``gauss`` along the rows; ``gy`` uses ``hy = hx'``. ``mode="nearest"`` is MATLAB's
    ``'replicate'``: right at the image border, and ignored ``margin`` pixels away from the other edges.
    """
    gauss, dgauss = _gaussian_derivative_kernels(sigma)
    cols = slice(margin, images.shape[-1] - margin)
    rows = slice(margin, images.shape[-2] - margin)
    along_x = ndimage.convolve1d(images, dgauss, axis=-1, mode="nearest")[..., cols]  # (K, h, w - 2m)
    gx = ndimage.convolve1d(along_x, gauss, axis=-2, mode="nearest")[:, rows]  # (K, h - 2m, w - 2m)
    along_x = ndimage.convolve1d(images, gauss, axis=-1, mode="nearest")[..., cols]
    gy = ndimage.convolve1d(along_x, dgauss, axis=-2, mode="nearest")[:, rows]
    return gx, gy


def _mat2gray(values: np.ndarray, lo: float, hi: float) -> None:
    """MATLAB ``mat2gray`` of float64 ``values`` in place, with the image's global ``lo``/``hi``; a constant
    image gives zeros."""
    if hi == lo:
        values[...] = 0
    else:
        values -= lo
        values /= hi - lo


def _unknown_segments(unknown: np.ndarray, strip: int, reach: int) -> list[tuple[int, int, int]]:
    """Where the gradient is needed: ``(row, col0, col1)`` for each segment, ascending.

    The image is cut into strips of ``strip`` rows; in each, the columns holding unknown pixels form runs,
    and runs less than ``2 * reach`` columns apart are merged, so the ``reach`` columns either side of a
    segment hold no unknown pixel of its strip. A segment covers rows ``row:row + strip`` and columns
    ``col0:col1``.
    """
    segments = []
    for row in range(0, unknown.shape[0], strip):
        cols = np.flatnonzero(unknown[row : row + strip].any(axis=0))
        if cols.size:
            breaks = np.flatnonzero(np.diff(cols) > 2 * reach)
            firsts, lasts = cols[np.r_[0, breaks + 1]], cols[np.r_[breaks, -1]]
            segments += [(row, int(c0), int(c1) + 1) for c0, c1 in zip(firsts, lasts, strict=True)]
    return segments


def _grad(x: _Inputs, sigma: float = GRADIENT_SIGMA) -> float:
    """The gradient error, filtering only strips of rows around the unknown pixels (all at once).

    Each segment of :func:`_unknown_segments`, grown by the filter's reach ``m`` on every side (read from
    the image, replicated beyond its border), is cut out; the boxes of all segments are laid side by side in
    one ``(2, strip + 2m, total width)`` array and filtered together. Filtering along a row mixes boxes only
    in their ``m``-column margins, which hold no unknown pixel, and filtering along a column never mixes
    them.
    """
    if x.unknown is not None and x.index.size == 0:
        return 0.0
    m = len(_gaussian_derivative_kernels(sigma)[0]) // 2  # the filter's reach
    h, w = x.pred.shape
    if x.unknown is None:  # every pixel: one segment, the whole image
        unknown, strip, segments = np.ones((h, w), dtype=bool), h, [(0, 0, w)]
    else:
        unknown, strip = x.unknown, _STRIP
        segments = _unknown_segments(unknown, strip, m)
    widths = [c1 - c0 + 2 * m for _, c0, c1 in segments]
    images = np.empty((2, strip + 2 * m, sum(widths)))  # (2, strip + 2m, total width), pred's then gt's
    mask = np.zeros((strip, sum(widths)), dtype=bool)  # the unknown pixels of the boxes' cores
    for i, a in enumerate((x.pred, x.gt)):
        padded = np.pad(a, ((m, m + (-h) % strip), (m, m)), mode="edge")  # MATLAB's 'replicate'
        left = 0
        for (row, c0, c1), width in zip(segments, widths, strict=True):  # the box starts at padded (row, c0)
            images[i, :, left : left + width] = padded[row : row + strip + 2 * m, c0 : c1 + 2 * m]
            left += width
        _mat2gray(images[i], float(a.min()), float(a.max()))
    left = 0
    for (row, c0, c1), width in zip(segments, widths, strict=True):
        core = unknown[row : row + strip, c0:c1]
        mask[: len(core), left + m : left + m + c1 - c0] = core
        left += width
    gx, gy = _gradient_xy(images, m, sigma)  # (2, strip, total width - 2m)
    gx *= gx
    gy *= gy
    gx += gy
    amp = np.sqrt(gx, out=gx).astype(np.float32)  # MATLAB: single(pred_amp), single(target_amp)
    error = np.subtract(amp[0], amp[1], out=amp[0])
    return float(np.square(error, out=error).sum(dtype=np.float64, where=mask[:, m:-m])) / SCALE


# --------------------------------------------------------------------------------------------------------
# Connectivity error
# --------------------------------------------------------------------------------------------------------


def _matlab_colon(a: float, d: float, b: float) -> np.ndarray:
    """MATLAB's ``a:d:b`` (float64), built as MATLAB builds it (C. Moler's ``colonop.m``), for ``d > 0``.

    The first half is ``a + k*d`` and the second half ``c - k*d`` with ``c`` the exact end point when it is
    within rounding of ``b``, so ``0:0.1:1`` is 0, 0.1, 0.2, 0.30000000000000004, 0.4, 0.5, 0.6, 0.7, 0.8,
    0.9, 1 where ``np.arange(0, 1.1, 0.1)`` gives 0.6000000000000001 and 0.7000000000000001.
    """
    if not d > 0 or b < a:
        return np.zeros(0)
    tol = 2.0 * np.finfo(float).eps * max(abs(a), abs(b))
    n = math.floor((b - a) / d + 0.5)  # MATLAB's round: halves away from zero
    if a + n * d - b > tol:
        n -= 1
    c = a + n * d
    if c - b > -tol:
        c = b
    v = np.zeros(n + 1)
    k = np.arange(n // 2 + 1)
    v[k] = a + k * d
    v[n - k] = c - k * d
    if n % 2 == 0:
        v[n // 2] = (a + c) / 2
    return v


def _smallest_at_least(threshold: float, dtype: np.dtype) -> float:
    """The smallest ``dtype`` value whose alpha is >= ``threshold`` (exactly), so ``x >= it`` tests the alpha.

    For uint8 the alpha is ``single(x)/255`` (the result may be 256: no value reaches the threshold); for
    float32 it is ``x`` itself.
    """
    if dtype == np.uint8:
        alphas = np.arange(256, dtype=np.float32) / np.float32(255)
        return int(np.count_nonzero(alphas.astype(np.float64) < threshold))
    value = np.float32(threshold)
    if float(value) < threshold:
        value = np.nextafter(value, np.float32(np.inf))
    return value


def _levels_reached(both: np.ndarray, levels: list) -> np.ndarray:
    """``(H, W)`` integers: how many of the ascending ``levels`` each pixel of ``both`` reaches (``>=``).

    The threshold sets of every step are then ``q >= k``, computed once for all thresholds.
    """
    dtype = np.uint8 if len(levels) < 256 else np.int32
    if both.dtype == np.uint8:  # a table of the 256 values
        return np.searchsorted(np.asarray(levels), np.arange(256), side="right").astype(dtype)[both]
    if len(levels) > 64:  # many thresholds: one sort-based pass beats a comparison per threshold
        return np.searchsorted(np.asarray(levels, np.float32), both, side="right").astype(dtype)
    reached = np.zeros(both.shape, dtype)
    for level in levels:
        reached += both >= level
    return reached


def _row_changes(q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where ``q`` changes along a row, and the values on either side (0 beyond the image's left and right).

    Returns ``(at, left, right)``: ``at`` is the flat index ``row * W + col`` of the pixel right of the
    change (``col == W``: just past the row's last pixel), ascending.
    """
    h, w = q.shape
    padded = np.zeros((h, w + 2), q.dtype)
    padded[:, 1:-1] = q
    flat = padded.ravel()
    change = np.flatnonzero(flat[1:] != flat[:-1])  # between flat[change] and flat[change + 1], within a row
    rows, cols = np.divmod(change + 1, w + 2)
    return rows * w + cols - 1, flat[change], flat[change + 1]


def _run_components(starts: np.ndarray, ends: np.ndarray, width: int) -> np.ndarray:
    """Component labels of horizontal runs ``[starts[i], ends[i])`` (flat indices, ascending, one row each).

    Two runs are 4-connected when they lie in adjacent rows and share a column. The runs of the next row
    that touch run ``i`` are the contiguous range ``first[i]:stop[i]`` of the sorted runs.
    """
    first = np.searchsorted(ends, starts + width, side="right")  # first run ending past our start, a row down
    stop = np.searchsorted(starts, ends + width, side="left")  # first run starting at or past our end there
    count = np.maximum(stop - first, 0)
    indptr = np.zeros(len(starts) + 1, dtype=np.intp)
    np.cumsum(count, out=indptr[1:])  # run i's neighbours below are indices[indptr[i]:indptr[i + 1]]
    indices = np.repeat(first - indptr[:-1], count) + np.arange(indptr[-1])
    graph = sparse.csr_matrix((np.ones(len(indices)), indices, indptr), shape=(len(starts),) * 2)
    return csgraph.connected_components(graph, directed=False)[1]


def _largest_runs(starts: np.ndarray, ends: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``(R,)`` bool: the runs of the largest 4-connected component (none of them for no run).

    Ties go to the component whose first pixel comes first in column-major order (MATLAB's ``bwconncomp``
    numbers components that way and ``max`` returns the first maximum).
    """
    if len(starts) == 0:
        return np.zeros(0, dtype=bool)
    h, w = shape
    labels = _run_components(starts, ends, w)
    sizes = np.bincount(labels, weights=ends - starts)  # exact: integers below 2**53
    winners = np.flatnonzero(sizes == sizes.max())
    best = winners[0]
    if len(winners) > 1:  # the tied component owning the column-major-first pixel (its runs' first pixels)
        tied = np.flatnonzero(np.isin(labels, winners))
        rows, cols = np.divmod(starts[tied], w)
        best = labels[tied[np.argmin(cols * h + rows)]]
    return labels == best


def _omega_depth(pred: np.ndarray, gt: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """``(H, W)`` integers: for how many leading thresholds ``thresholds[1:]`` the pixel lies in ``omega``.

    A pixel's level in ``compute_connectivity_error.m`` is ``thresholds[depth]`` (1 for a pixel in every
    ``omega``). Each ``omega`` is a connected subset of the previous threshold's set, so it lies inside
    exactly one component there: either the previous ``omega`` (then the nested ``omega``s continue) or
    another one (then no pixel is in all ``omega``s so far, and later thresholds change nothing).

    Work shared by the thresholds: the image is read once, into how many thresholds each pixel reaches and
    the places where that count changes along a row. Each threshold's set is then a list of horizontal runs
    cut from those changes, its components are found on the runs (far fewer than pixels), and its ``omega``
    is added to the depth as +1 at each run's start and -1 past its end (one cumulative sum at the end).
    """
    if pred.dtype != gt.dtype:
        pred, gt = _to_alpha(pred), _to_alpha(gt)
    both = np.minimum(pred, gt)  # both alphas >= t  <=>  the smaller one >= t
    levels = [_smallest_at_least(t, both.dtype) for t in thresholds[1:]]  # 256 for uint8: none reaches it
    at, left, right = _row_changes(_levels_reached(both, levels))
    depth_type = np.int8 if len(levels) < 128 else np.int32  # depth <= len(levels)
    steps = np.zeros(both.size + 1, dtype=depth_type)  # depth = cumsum(steps)
    previous = None  # (starts, omega) of the previous threshold
    for k in range(1, len(levels) + 1):
        starts, ends = at[(left < k) & (right >= k)], at[(left >= k) & (right < k)]
        omega = _largest_runs(starts, ends, both.shape)
        if not omega.any():
            break
        if previous is not None:  # omega is connected: one of its pixels tells which component holds it
            prev_starts, prev_omega = previous
            if not prev_omega[np.searchsorted(prev_starts, starts[omega][0], side="right") - 1]:
                break
        steps[starts[omega]] += 1
        steps[ends[omega]] -= 1
        previous = starts, omega
    return np.cumsum(steps[:-1], dtype=depth_type).reshape(both.shape)


def _conn(x: _Inputs, step: float = 0.1) -> float:
    if x.pred_u.size == 0:
        return 0.0
    thresholds = _matlab_colon(0.0, step, 1.0)
    depth = _omega_depth(x.pred, x.gt, thresholds)
    depth_u = depth.ravel() if x.index is None else depth.ravel()[x.index]
    # l_map is double in MATLAB; "single - double" is computed in single.
    level = np.append(thresholds[:-1], 1.0).astype(np.float32)[depth_u]
    phi_cut = _smallest_at_least(PHI_THRESHOLD, np.dtype(np.float32))
    pred_d, gt_d = x.pred_u - level, x.gt_u - level
    pred_phi = 1 - pred_d * (pred_d >= phi_cut)
    gt_phi = 1 - gt_d * (gt_d >= phi_cut)
    return float(np.abs(pred_phi - gt_phi).sum(dtype=np.float64)) / SCALE


# --------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------


def sad_score(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray | None = None) -> float:
    """Sum of absolute differences over the unknown region, / 1000 (``compute_sad_loss.m``).

    Parameters
    ----------
    pred, gt : (H, W) ndarray
        Alpha mattes, uint8 in [0, 255] or float in [0, 1].
    trimap : (H, W) uint8 ndarray or None
        Only pixels equal to 128 are scored; None scores every pixel.

    Returns
    -------
    float
        ``sum(|pred - gt|) / 1000`` in alpha units; 0.0 when there is no unknown pixel.

    Examples
    --------
    >>> gt = np.zeros((2, 2), np.uint8)
    >>> sad_score(np.full((2, 2), 255, np.uint8), gt, np.full((2, 2), 128, np.uint8))
    0.004
    """
    return _sad(_prepare(pred, gt, trimap))


def mse_score(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray | None = None) -> float:
    """Mean squared difference over the unknown region, not scaled (``compute_mse_loss.m``).

    Parameters
    ----------
    pred, gt : (H, W) ndarray
        Alpha mattes, uint8 in [0, 255] or float in [0, 1].
    trimap : (H, W) uint8 ndarray or None
        Only pixels equal to 128 are scored; None scores every pixel.

    Returns
    -------
    float
        ``sum((pred - gt)^2) / N`` over the ``N`` unknown pixels, in alpha units squared; NaN when ``N`` is
        0, as MATLAB's ``0 / 0``.

    Examples
    --------
    >>> mse_score(np.array([[0.5, 1.0]]), np.array([[0.0, 1.0]]))
    0.125
    """
    return _mse(_prepare(pred, gt, trimap))


def gradient_error(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray | None = None) -> float:
    """Gradient error over the unknown region, / 1000 (``compute_gradient_loss.m``, ``gaussgradient.m``).

    Each matte is min-max normalised on its own (``mat2gray``), its gradient taken with the
    Gaussian-derivative filters of sigma 1.4 (true convolution, replicated borders), and the squared
    differences of the gradient amplitudes are summed over the unknown region.

    Parameters
    ----------
    pred, gt : (H, W) ndarray
        Alpha mattes, uint8 in [0, 255] or float in [0, 1].
    trimap : (H, W) uint8 ndarray or None
        Only pixels equal to 128 are scored; None scores every pixel.

    Returns
    -------
    float
        ``sum((|grad pred| - |grad gt|)^2) / 1000`` (amplitudes of the normalised mattes); 0.0 when there is
        no unknown pixel.

    Examples
    --------
    >>> ramp = np.tile(np.linspace(0, 1, 8), (8, 1))
    >>> gradient_error(ramp, ramp)
    0.0
    >>> gradient_error(ramp, np.zeros((8, 8))) > 0
    True
    """
    return _grad(_prepare(pred, gt, trimap))


def connectivity_error(
    pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray | None = None, step: float = 0.1
) -> float:
    """Connectivity error over the unknown region, / 1000 (``compute_connectivity_error.m``).

    Parameters
    ----------
    pred, gt : (H, W) ndarray
        Alpha mattes, uint8 in [0, 255] or float in [0, 1].
    trimap : (H, W) uint8 ndarray or None
        Only pixels equal to 128 are scored; None scores every pixel. The connected components are always
        found on the whole image.
    step : float
        Spacing of the thresholds ``0:step:1``, in (0, 1]; the benchmark uses 0.1.

    Returns
    -------
    float
        ``sum(|phi_pred - phi_gt|) / 1000``; 0.0 when there is no unknown pixel.

    Examples
    --------
    >>> gt = np.array([[0, 255, 255]], np.uint8)
    >>> connectivity_error(np.array([[255, 0, 255]], np.uint8), gt)
    0.002
    """
    if isinstance(step, bool) or not isinstance(step, int | float | np.floating) or not 0 < step <= 1:
        raise ValueError(f"step must be a number in (0, 1], got {step!r}")
    return _conn(_prepare(pred, gt, trimap), float(step))


def evaluate_all(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray | None = None) -> dict[str, float]:
    """All four benchmark errors at once, sharing the input checks, conversion and unknown mask.

    Parameters
    ----------
    pred, gt : (H, W) ndarray
        Alpha mattes, uint8 in [0, 255] or float in [0, 1].
    trimap : (H, W) uint8 ndarray or None
        Only pixels equal to 128 are scored; None scores every pixel.

    Returns
    -------
    dict
        ``{"sad": ..., "mse": ..., "grad": ..., "conn": ...}``, equal to :func:`sad_score`,
        :func:`mse_score`, :func:`gradient_error` and :func:`connectivity_error` (step 0.1).

    Examples
    --------
    >>> alpha = np.eye(4, dtype=np.float32)
    >>> evaluate_all(alpha, alpha)
    {'sad': 0.0, 'mse': 0.0, 'grad': 0.0, 'conn': 0.0}
    """
    x = _prepare(pred, gt, trimap)
    return {"sad": _sad(x), "mse": _mse(x), "grad": _grad(x), "conn": _conn(x)}


WHOLE_IMAGE_NAMES = ("mad", "mse_whole")
"""The keys of :func:`whole_image_errors`: what trimap-free benchmarks (P3M, AIM-500) report."""


def whole_image_errors(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """Mean absolute difference and mean squared error over every pixel (no trimap: image-only matting).

    Parameters
    ----------
    pred, gt : (H, W) ndarray
        Alpha mattes, uint8 in [0, 255] or float in [0, 1].

    Returns
    -------
    dict
        ``{"mad": mean |pred - gt|, "mse_whole": mean (pred - gt)^2}``, alphas in [0, 1].

    Examples
    --------
    >>> whole_image_errors(np.zeros((2, 2), np.float32), np.eye(2, dtype=np.float32))
    {'mad': 0.5, 'mse_whole': 0.5}
    """
    x = _prepare(pred, gt, None)  # every pixel: the benchmark's SAD and MSE on the whole image
    return {"mad": _sad(x) * SCALE / x.pred_u.size, "mse_whole": _mse(x)}


class MetricAccumulator:
    """Running means of per-image metric dicts (such as :func:`evaluate_all`'s), mergeable across processes.

    Undefined values (NaN: the MSE of an image without unknown pixels) are skipped, not averaged in, and
    counted: ``compute()`` gives each metric's mean over the images where it is defined, ``skipped()`` how
    many images each metric left out. The state is ``sums`` and ``counts`` (per metric) and ``count`` (the
    number of dicts added): sum them over processes (:meth:`state` / :meth:`from_state`, or :meth:`merge`).

    Examples
    --------
    >>> acc = MetricAccumulator()
    >>> acc.update({"sad": 1.0, "mse": 0.5})
    >>> acc.update({"sad": 3.0, "mse": float("nan")})
    >>> acc.compute(), acc.skipped()
    ({'sad': 2.0, 'mse': 0.5}, {'sad': 0, 'mse': 1})
    """

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.count = 0

    def update(self, metrics: Mapping[str, float]) -> None:
        """Add one image's metrics; every update must carry the same keys. NaN values are skipped."""
        if not metrics:
            raise ValueError("MetricAccumulator.update needs a non-empty dict of metrics")
        if self.count and set(metrics) != set(self.sums):
            raise ValueError(f"metric keys changed: had {sorted(self.sums)}, got {sorted(metrics)}")
        for key, value in metrics.items():
            value = float(value)
            defined = not math.isnan(value)
            self.sums[key] = self.sums.get(key, 0.0) + (value if defined else 0.0)
            self.counts[key] = self.counts.get(key, 0) + int(defined)
        self.count += 1

    def merge(self, other: MetricAccumulator) -> MetricAccumulator:
        """Add ``other``'s state into this one (e.g. from another process); returns ``self``."""
        if self.count and other.count and set(other.sums) != set(self.sums):
            raise ValueError(f"cannot merge metrics {sorted(other.sums)} into {sorted(self.sums)}")
        for key, value in other.sums.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
            self.counts[key] = self.counts.get(key, 0) + other.counts[key]
        self.count += other.count
        return self

    def state(self, keys: tuple[str, ...] = METRIC_NAMES) -> list[float]:
        """``[sum per key..., count per key..., count]``: sum over processes, then :meth:`from_state`."""
        return [self.sums.get(k, 0.0) for k in keys] + [float(self.counts.get(k, 0)) for k in keys] + [
            float(self.count)]

    @classmethod
    def from_state(cls, values: list[float], keys: tuple[str, ...] = METRIC_NAMES) -> MetricAccumulator:
        """The accumulator whose :meth:`state` is ``values`` (e.g. summed over processes)."""
        n = len(keys)
        if len(values) != 2 * n + 1:
            raise ValueError(f"a state of {len(keys)} metrics has {2 * n + 1} values, got {len(values)}")
        acc = cls()
        if values[-1]:
            acc.sums = {k: float(values[i]) for i, k in enumerate(keys)}
            acc.counts = {k: round(values[n + i]) for i, k in enumerate(keys)}
            acc.count = round(values[-1])
        return acc

    def compute(self) -> dict[str, float]:
        """The mean of each metric over the updates where it is defined (NaN where it never is)."""
        if self.count == 0:
            raise ValueError("MetricAccumulator.compute called before any update")
        return {key: (total / self.counts[key] if self.counts[key] else math.nan)
                for key, total in self.sums.items()}

    def skipped(self) -> dict[str, int]:
        """How many updates each metric left out because its value was undefined (NaN)."""
        return {key: self.count - n for key, n in self.counts.items()}

    def reset(self) -> None:
        """Forget every update."""
        self.sums, self.counts, self.count = {}, {}, 0
