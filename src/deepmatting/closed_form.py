"""Closed-form matting (Levin, Lischinski, Weiss, "A Closed-Form Solution to Natural Image Matting", IEEE
TPAMI 2008): alpha from an image and a trimap by one sparse linear solve, in numpy and scipy.

The model
    In every ``(2r+1) x (2r+1)`` window ``w_k`` alpha is an affine function of the colour,
    ``alpha_i = a_k . I_i + b_k``. Minimising
    ``sum_k sum_{i in w_k} (alpha_i - a_k . I_i - b_k)^2 + eps |a_k|^2`` over the ``a_k, b_k`` leaves the
    quadratic energy ``alpha^T L alpha`` with the matting Laplacian

    ``L_ij = sum_{k : i, j in w_k} (delta_ij - (1 + (I_i - mu_k)^T (Sigma_k + eps/|w| I_3)^-1 (I_j - mu_k))
    / |w|)``

    where ``mu_k`` and ``Sigma_k`` are the mean and covariance of the window's colours and ``|w| = (2r+1)^2``.
    Windows lie wholly inside the image. Known pixels of the trimap fix alpha (0 or 1); the unknown ones
    ``U`` solve

    ``(L_UU + diag(lambda)) alpha_U = -L_UK alpha_K + lambda prior_U``

    where ``lambda`` is ``prior_weight`` (0 by default: plain closed-form matting, the system ``pymatting``'s
    ``estimate_alpha_cf`` solves, with the same ``eps = 1e-7`` and ``r = 1``).
The solver
    Only the unknown pixels are unknowns and only the windows that touch one are built, vectorised over
    the windows (one pass per pair of window positions). The unknowns are numbered in a nested-dissection
    order of the pixel grid (each box of unknown pixels is cut across its longer side by a band ``2r``
    pixels wide, which the ``(4r+1) x (4r+1)`` stencil cannot cross, where the band holds few pixels and
    the halves balance), which keeps the fill of a sparse factorisation near ``n log n``. The system is
    solved by preconditioned conjugate gradients (CG) from ``initial`` (zero when not given). The default
    preconditioner, ``"lu"``, is the complete LU factorisation of the matrix in single precision
    (SuperLU, in that order, no pivoting): CG then needs 1 to 3 iterations to reach ``tol``, and falls
    back to a double-precision factorisation if single precision is not enough. ``"jacobi"`` (the
    diagonal) costs nothing to set up but needs hundreds to thousands of iterations: it is for warm starts
    that are already close, or for experiments.

``benchmarks/bench_closed_form.py`` times it against ``pymatting.estimate_alpha_cf`` on the 14
alphamatting.com photos (<= 800 px, both trimap sets, 2 busy cores): 0.39 to 0.47 of pymatting's time per
photo on average (0.72 at worst, 0.2 on the largest unknown regions), the same SAD/MSE/Grad/Conn to three
or four digits, and no compilation (pymatting's first import compiles with numba for 30 s to 2 min).
Memory grows a little faster than the unknown pixels: about 1.7 GB for 0.45 M unknowns, 2.9 GB for 0.8 M.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
from scipy import ndimage

from .tensors import TRIMAP_BG, TRIMAP_FG, TRIMAP_UNKNOWN

#: The preconditioners :func:`solve_closed_form` knows.
PRECONDITIONERS = ("lu", "jacobi")
#: Nested dissection leaves boxes of at most this many unknown pixels uncut (8 to 64: about the same fill).
_LEAF_PIXELS = 16
#: CG iterations allowed with the single-precision LU before falling back to double precision.
_LU32_ITERATIONS = 20
#: Image values this far outside [0, 1] (resampling's rounding: 1.0000002) are clipped, not refused.
_RANGE_TOLERANCE = 1e-4


@dataclass(frozen=True)
class ClosedFormSystem:
    """The linear system of the unknown pixels, ``matrix @ alpha_U = rhs``.

    Attributes
    ----------
    matrix : scipy.sparse.csr_array, (n, n) float64
        ``L_UU + diag(lambda)``: symmetric positive definite, at most ``(4r+1)^2`` entries per row.
    rhs : np.ndarray, (n,) float64
        ``-L_UK alpha_K + lambda prior_U``.
    pixels : np.ndarray, (n,) int64
        Flat (row-major) index into the ``HxW`` image of the pixel of each row, in nested-dissection order
        (not raster order): ``alpha.ravel()[pixels] = x`` puts a solution in place.
    """

    matrix: scipy.sparse.csr_array
    rhs: np.ndarray
    pixels: np.ndarray


@dataclass(frozen=True)
class ClosedFormResult:
    """What :func:`solve_closed_form` returns.

    Attributes
    ----------
    alpha : np.ndarray, HxW float32 in [0, 1]
        The closed-form matte; exactly 0 and 1 on the trimap's known pixels.
    fit_error : np.ndarray, HxW float32 in [0, 0.5]
        How well the local colour-line model explains ``alpha`` around each unknown pixel: the root mean
        square residual (alpha units) of the windows' regularised affine fits, averaged over the windows
        that contain the pixel; 0 on known pixels. Large where alpha is not locally an affine function of
        the colour (the model's assumption fails, so its alpha is less trustworthy).
    iterations : int
        CG iterations (0 when ``initial`` already met ``tol`` or nothing was unknown).
    residual : float
        ``||rhs - matrix @ alpha_U|| / ||rhs||`` of the unclipped solution.
    converged : bool
        Whether ``residual <= tol`` within ``max_iter`` iterations.
    """

    alpha: np.ndarray
    fit_error: np.ndarray
    iterations: int
    residual: float
    converged: bool


@dataclass(frozen=True)
class _Windows:
    """The windows that touch an unknown pixel: ``nw`` of them, numbered 0..nw-1 (``nw`` marks "none")."""

    centres: np.ndarray  # (nw,) flat index of each window's centre pixel
    centred: np.ndarray  # (|w|, 3, nw) float64: colour minus window mean, per window position
    weighted: np.ndarray  # (|w|, 3, nw) float64: (Sigma + eps/|w| I)^-1 @ centred
    of_unknown: np.ndarray  # (|w|, n) int64: the window in which unknown pixel i sits at position a, or nw


# ---------------------------------------------------------------------------------------------- validation


def _as_image(image: np.ndarray) -> np.ndarray:
    """``HxWx3`` float in [0,1] or uint8 -> float64 in [0,1], or a ValueError that says what is wrong."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be HxWx3 (RGB), got shape {image.shape}")
    if image.dtype == np.uint8:
        return image.astype(np.float64) / 255.0
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"image must be float in [0, 1] or uint8, got dtype {image.dtype}")
    image = image.astype(np.float64)
    if not np.isfinite(image).all():
        raise ValueError("image has NaN or infinite values")
    low, high = float(image.min()), float(image.max())
    if low < -_RANGE_TOLERANCE or high > 1 + _RANGE_TOLERANCE:
        raise ValueError(f"image values must lie in [0, 1] (divide uint8 data by 255), got "
                         f"[{low!r}, {high!r}]")
    return np.clip(image, 0.0, 1.0, out=image) if low < 0 or high > 1 else image


def _trimap_masks(trimap: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The unknown and foreground masks (HxW bool) of a uint8 {0,128,255} or float {0,0.5,1} trimap."""
    trimap = np.asarray(trimap)
    if trimap.shape != shape:
        raise ValueError(f"trimap must be HxW matching the image {shape}, got shape {trimap.shape}")
    if trimap.dtype == np.uint8:
        bg, unknown, fg = TRIMAP_BG, TRIMAP_UNKNOWN, TRIMAP_FG
        expected = "uint8 {0, 128, 255}"
    elif np.issubdtype(trimap.dtype, np.floating):
        bg, unknown, fg = 0.0, 0.5, 1.0
        expected = "float {0, 0.5, 1}"
    else:
        raise ValueError(f"trimap must be uint8 {{0, 128, 255}} or float {{0, 0.5, 1}}, got dtype "
                         f"{trimap.dtype}")
    is_unknown, is_fg = trimap == unknown, trimap == fg
    bad = ~(is_unknown | is_fg | (trimap == bg))
    if bad.any():
        values = np.unique(trimap[bad])[:5].tolist()
        raise ValueError(f"trimap values must be {expected}; found {values}")
    return is_unknown, is_fg


def _as_plane(values: np.ndarray, name: str, shape: tuple[int, int], nonnegative: bool = False) -> np.ndarray:
    """An ``HxW`` float64 plane in [0, 1] (or >= 0 with ``nonnegative``), or a ValueError naming ``name``."""
    plane = np.asarray(values)
    if plane.shape != shape:
        raise ValueError(f"{name} must be HxW matching the image {shape}, got shape {plane.shape}")
    if not (np.issubdtype(plane.dtype, np.floating) or np.issubdtype(plane.dtype, np.integer)):
        raise ValueError(f"{name} must be a float array, got dtype {plane.dtype}")
    plane = plane.astype(np.float64)
    if not np.isfinite(plane).all():
        raise ValueError(f"{name} has NaN or infinite values")
    if nonnegative and plane.min() < 0:
        raise ValueError(f"{name} must be >= 0, got a minimum of {plane.min():.4g}")
    if not nonnegative and (plane.min() < 0 or plane.max() > 1):
        raise ValueError(f"{name} must lie in [0, 1], got [{plane.min():.4g}, {plane.max():.4g}]")
    return plane


def _check_settings(shape: tuple[int, int], eps: float, radius: int) -> None:
    if isinstance(radius, bool) or not isinstance(radius, int | np.integer) or radius < 1:
        raise ValueError(f"radius must be an integer >= 1, got {radius!r}")
    if min(shape) < 2 * radius + 1:
        raise ValueError(f"the image ({shape[0]}x{shape[1]}) is smaller than one {2 * radius + 1}x"
                         f"{2 * radius + 1} window (radius {radius})")
    if isinstance(eps, bool) or not isinstance(eps, int | float | np.floating) or not eps > 0:
        raise ValueError(f"eps must be a number > 0, got {eps!r}")


def _prior_terms(prior: np.ndarray | None, prior_weight: float | np.ndarray, shape: tuple[int, int]
                 ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The checked ``(prior, weight)`` planes, or ``(None, None)`` when the prior is off."""
    if np.isscalar(prior_weight):
        if isinstance(prior_weight, bool) or not np.isfinite(prior_weight) or prior_weight < 0:
            raise ValueError(f"prior_weight must be a number >= 0 or an HxW array, got {prior_weight!r}")
        if prior_weight == 0:
            return None, None
        weight = np.full(shape, float(prior_weight))
    else:
        weight = _as_plane(prior_weight, "prior_weight", shape, nonnegative=True)
        if not weight.any():
            return None, None
    if prior is None:
        raise ValueError("prior_weight > 0 needs a prior (an HxW alpha in [0, 1])")
    return _as_plane(prior, "prior", shape), weight


def check_solver_settings(tol: float, max_iter: int) -> None:
    """A ValueError unless ``tol`` is a number > 0 and ``max_iter`` an integer >= 1 (the CG settings)."""
    if isinstance(tol, bool) or not isinstance(tol, int | float | np.floating) or not tol > 0:
        raise ValueError(f"tol must be a number > 0, got {tol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int | np.integer) or max_iter < 1:
        raise ValueError(f"max_iter must be an integer >= 1, got {max_iter!r}")


@dataclass(frozen=True)
class _Problem:
    """Checked inputs: image HxWx3 float64, unknown and fg HxW bool, prior and weight HxW float64 or None."""

    image: np.ndarray
    unknown: np.ndarray
    fg: np.ndarray
    prior: np.ndarray | None
    weight: np.ndarray | None
    eps: float
    radius: int


def _problem(image: np.ndarray, trimap: np.ndarray, prior: np.ndarray | None,
             prior_weight: float | np.ndarray, eps: float, radius: int) -> _Problem:
    """Check the inputs shared by :func:`closed_form_system` and :func:`solve_closed_form`."""
    image = _as_image(image)
    shape = image.shape[:2]
    unknown, fg = _trimap_masks(trimap, shape)
    _check_settings(shape, eps, radius)
    prior, weight = _prior_terms(prior, prior_weight, shape)
    return _Problem(image, unknown, fg, prior, weight, float(eps), int(radius))


# ---------------------------------------------------------------------------------------- the linear system


def _window_offsets(radius: int) -> list[tuple[int, int]]:
    """``(dy, dx)`` of the pixels of a window relative to its centre, in raster order."""
    return [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]


def _windows(image: np.ndarray, unknown: np.ndarray, pixels: np.ndarray, eps: float, radius: int
             ) -> _Windows:
    """Colour statistics of every window inside the image that holds an unknown pixel, and the windows
    around each unknown pixel (flat indices ``pixels``)."""
    h, w = unknown.shape
    size = 2 * radius + 1
    area = size * size
    touches = ndimage.binary_dilation(unknown, structure=np.ones((size, size), bool))
    inside = np.zeros((h, w), bool)
    inside[radius:h - radius, radius:w - radius] = True
    cy, cx = np.nonzero(touches & inside)  # (nw,) each
    nw = cy.size
    index = np.full((h + 2 * radius, w + 2 * radius), nw, np.int64)
    index[cy + radius, cx + radius] = np.arange(nw)
    planes = np.ascontiguousarray(image.transpose(2, 0, 1))  # (3, H, W)
    colours = np.stack([planes[:, cy + dy, cx + dx] for dy, dx in _window_offsets(radius)])  # (|w|, 3, nw)
    centred = colours - colours.mean(axis=0)  # (|w|, 3, nw)
    # covariance + eps/|w| I, as its six distinct entries, then its inverse by cofactors
    s00, s01, s02, s11, s12, s22 = ((centred[:, p] * centred[:, q]).mean(axis=0)
                                    for p, q in ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)))
    s00 += eps / area
    s11 += eps / area
    s22 += eps / area
    c00, c01, c02 = s11 * s22 - s12 * s12, s02 * s12 - s01 * s22, s01 * s12 - s02 * s11
    c11, c12, c22 = s00 * s22 - s02 * s02, s01 * s02 - s00 * s12, s00 * s11 - s01 * s01
    det = s00 * c00 + s01 * c01 + s02 * c02
    inverse = np.array([[c00, c01, c02], [c01, c11, c12], [c02, c12, c22]]) / det  # (3, 3, nw)
    weighted = np.einsum("pqk,aqk->apk", inverse, centred)  # (|w|, 3, nw)
    ys, xs = pixels // w, pixels % w
    of_unknown = np.stack([index[ys - dy + radius, xs - dx + radius] for dy, dx in _window_offsets(radius)])
    return _Windows(cy * w + cx, centred, weighted, of_unknown)


def _nested_dissection(ys: np.ndarray, xs: np.ndarray, separator: int) -> np.ndarray:
    """A fill-reducing order of the pixels ``(ys, xs)`` (given in raster order): the permutation to apply.

    Each box of pixels (at first all of them) is cut across its longer side by a band ``separator`` pixels
    wide, placed in the middle half of the box where ``(pixels in the band + 1) / (pixels on the smaller
    side)`` is least: a small separator between balanced halves. Each half becomes a box (the bounding box
    of its pixels) to cut in turn; the band's pixels are numbered after both halves (post-order), the
    pixels of a box of at most ``_LEAF_PIXELS`` pixels in raster order. Vectorised: ``order`` keeps each
    box's pixels together in one segment, and every pass cuts all the boxes of a level at once.
    """
    n = ys.size
    order = np.arange(n)  # pixel numbers, one segment per box: after the last pass, the permutation
    start, end = np.array([0]), np.array([n])  # the segments of the boxes still to cut
    while start.size:
        big = end - start > _LEAF_PIXELS
        start, end = start[big], end[big]
        if not start.size:
            break
        count = end - start  # (boxes,)
        first = np.cumsum(count) - count  # each box's first entry in the arrays below
        box = np.repeat(np.arange(start.size), count)  # (m,) box of each pixel being cut
        position = np.repeat(start - first, count) + np.arange(count.sum())  # (m,) its place in order
        pixel = order[position]
        y, x = ys[pixel], xs[pixel]
        y0, x0 = np.minimum.reduceat(y, first), np.minimum.reduceat(x, first)
        height = np.maximum.reduceat(y, first) + 1 - y0
        width = np.maximum.reduceat(x, first) + 1 - x0
        across_y = height >= width
        length = np.where(across_y, height, width)  # (boxes,) the side being cut
        coord = np.where(across_y[box], y - y0[box], x - x0[box])  # (m,) in [0, length)

        # per box, a histogram of coord with `separator` empty bins after it: bin t is a cut at t
        bins = length + separator
        offset = np.cumsum(bins) - bins
        histogram = np.bincount(offset[box] + coord, minlength=bins.sum())
        bin_box = np.repeat(np.arange(start.size), bins)
        t = np.arange(bins.sum()) - offset[bin_box]
        below = np.cumsum(histogram) - histogram  # pixels before bin t ...
        below -= np.repeat(below[offset], bins)  # ... in its box: the left half of a cut at t
        band = np.concatenate([below[separator:], np.zeros(separator, np.int64)]) - below
        above = count[bin_box] - below - band
        cost = (band + 1.0) / np.maximum(np.minimum(below, above), 1)
        margin = length[bin_box] // 4
        cost[(t < margin) | (t + separator > length[bin_box] - margin)] = np.inf
        cost += 1e-9 * np.abs(2 * t + separator - length[bin_box])  # ties: the cut nearest the middle
        best = np.minimum.reduceat(cost, offset)
        hits = np.flatnonzero(cost == best[bin_box])
        hits = hits[np.r_[True, bin_box[hits[1:]] != bin_box[hits[:-1]]]]  # the first hit of each box
        cut = np.zeros(start.size, np.int64)
        cut[bin_box[hits]] = t[hits]
        cuttable = np.isfinite(best)  # too short to cut: the box stays one leaf
        cut[~cuttable] = length[~cuttable]

        # reorder each segment stably: left half, right half, band
        side = np.where(coord < cut[box], 0, np.where(coord >= cut[box] + separator, 1, 2))  # (m,)
        place = np.empty_like(position)
        begin = start.copy()
        sizes = []
        for part in range(3):
            mask = side == part
            rank = np.cumsum(mask) - mask
            rank -= np.repeat(rank[first], count)
            place[mask] = begin[box[mask]] + rank[mask]
            sizes.append(np.add.reduceat(mask.astype(np.int64), first))
            begin = begin + sizes[-1]
        order[place] = pixel
        middle = start + sizes[0]
        start = np.concatenate([start[cuttable], middle[cuttable]])
        end = np.concatenate([middle[cuttable], middle[cuttable] + sizes[1][cuttable]])
    return order


def _build_system(problem: _Problem) -> tuple[ClosedFormSystem, _Windows]:
    """The system of :class:`ClosedFormSystem` and the windows it was built from."""
    unknown, radius = problem.unknown, problem.radius
    h, w = unknown.shape
    reach = 2 * radius  # the stencil spans (2 reach + 1)^2 pixels
    offsets = _window_offsets(radius)
    area = len(offsets)
    raster = np.flatnonzero(unknown)
    pixels = raster[_nested_dissection(raster // w, raster % w, reach)]  # (n,)
    n = pixels.size
    ys, xs = pixels // w, pixels % w
    windows = _windows(problem.image, unknown, pixels, problem.eps, radius)
    nw = windows.centres.size
    stencil = [(dy, dx) for dy in range(-reach, reach + 1) for dx in range(-reach, reach + 1)]
    slot = {d: s for s, d in enumerate(stencil)}
    rows = np.zeros((len(stencil), n))  # rows[s, i] = L[pixel i, pixel i + stencil[s]]
    value = np.empty(nw + 1)
    value[nw] = 0.0  # "no window"
    for a, (ay, ax) in enumerate(offsets):
        for b in range(a, area):
            by, bx = offsets[b]
            # the (a, b) entry of every window's |w| x |w| block
            np.sum(windows.centred[a] * windows.weighted[b], axis=0, out=value[:nw])
            value[:nw] += 1.0
            value[:nw] *= -1.0 / area
            if a == b:
                value[:nw] += 1.0
            rows[slot[(by - ay, bx - ax)]] += value[windows.of_unknown[a]]
            if a != b:
                rows[slot[(ay - by, ax - bx)]] += value[windows.of_unknown[b]]

    column = np.full((h + 2 * reach, w + 2 * reach), -1, np.int64)  # row of each unknown pixel, padded
    column[ys + reach, xs + reach] = np.arange(n)
    is_fg = np.zeros((h + 2 * reach, w + 2 * reach), bool)
    is_fg[reach:reach + h, reach:reach + w] = problem.fg
    columns = np.stack([column[ys + reach + dy, xs + reach + dx] for dy, dx in stencil], axis=1)  # (n, S)
    fg_neighbour = np.stack([is_fg[ys + reach + dy, xs + reach + dx] for dy, dx in stencil])  # (S, n)
    rhs = -np.einsum("sn,sn->n", rows, fg_neighbour)  # known fg pixels (alpha 1) move to the right side
    data = np.ascontiguousarray(rows.T)  # (n, S)
    if problem.weight is not None:
        data[:, slot[(0, 0)]] += problem.weight.ravel()[pixels]
        rhs += (problem.weight * problem.prior).ravel()[pixels]
    keep = columns >= 0
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(keep.sum(axis=1), out=indptr[1:])
    matrix = scipy.sparse.csr_array((data[keep], columns[keep], indptr), shape=(n, n))
    matrix.sort_indices()
    return ClosedFormSystem(matrix, rhs, pixels), windows


# ------------------------------------------------------------------------------------------------- solving


_STOP = threading.local()  # .check: the current thread's stop check (see interruptible)
_CHECK_EVERY = 8  # CG iterations between two stop checks


@contextlib.contextmanager
def interruptible(check: Callable[[], None] | None) -> Iterator[None]:
    """Within the block, this thread's iterative solves (closed-form and KNN) call ``check()`` every few
    iterations; it stops them by raising (the server's time limit and gone clients). None: no checks."""
    previous = getattr(_STOP, "check", None)
    _STOP.check = check
    try:
        yield
    finally:
        _STOP.check = previous


def poll_stop() -> None:
    """Call this thread's :func:`interruptible` check, if any (between the stages of a solve)."""
    check = getattr(_STOP, "check", None)
    if check is not None:
        check()


def _pcg(matrix: scipy.sparse.csr_array, rhs: np.ndarray, x: np.ndarray, precondition, tol: float,
         max_iter: int) -> tuple[np.ndarray, int, float]:
    """Preconditioned CG from ``x`` (updated in place) until ``||r|| <= tol ||rhs||``.

    Returns ``(x, iterations, ||r|| / ||rhs||)``; stops early, unconverged, if the preconditioner is not
    positive definite (``r . z <= 0``) or the iterate is no longer finite. Inside :func:`interruptible`,
    its check is called every ``_CHECK_EVERY`` iterations.
    """
    check = getattr(_STOP, "check", None)
    norm_b = float(np.linalg.norm(rhs))
    if norm_b == 0.0:
        x[:] = 0.0
        return x, 0, 0.0
    r = rhs - matrix @ x
    norm_r = float(np.linalg.norm(r))
    iterations = 0
    if norm_r <= tol * norm_b:
        return x, iterations, norm_r / norm_b
    z = precondition(r)
    rz = float(r @ z)
    p = z.copy()
    while iterations < max_iter and rz > 0 and np.isfinite(rz):
        if check is not None and iterations % _CHECK_EVERY == 0:
            check()
        iterations += 1
        q = matrix @ p
        step = rz / float(p @ q)
        x += step * p
        r -= step * q
        norm_r = float(np.linalg.norm(r))
        if norm_r <= tol * norm_b or not np.isfinite(norm_r):
            break
        z = precondition(r)
        rz, rz_old = float(r @ z), rz
        p *= rz / rz_old
        p += z
    return x, iterations, norm_r / norm_b


def _lu_solver(matrix: scipy.sparse.csr_array, dtype: type):
    """``r -> A^-1 r`` by a SuperLU factorisation in ``dtype``, keeping the matrix's (nested-dissection)
    order and never pivoting (the matrix is symmetric positive definite)."""
    # a symmetric CSR matrix is its own CSC: reuse the arrays
    csc = scipy.sparse.csc_array((matrix.data.astype(dtype), matrix.indices, matrix.indptr),
                                 shape=matrix.shape)
    lu = scipy.sparse.linalg.splu(csc, permc_spec="NATURAL", diag_pivot_thresh=0.0,
                                  options={"SymmetricMode": True})
    return lambda r: lu.solve(r.astype(dtype)).astype(np.float64)


def _solve(system: ClosedFormSystem, x: np.ndarray, preconditioner: str, tol: float, max_iter: int
           ) -> tuple[np.ndarray, int, float]:
    matrix = system.matrix
    if preconditioner == "jacobi":
        diagonal = matrix.diagonal()
        return _pcg(matrix, system.rhs, x, lambda r: r / diagonal, tol, max_iter)
    start = x.copy()
    x, iterations, residual = _pcg(matrix, system.rhs, x, _lu_solver(matrix, np.float32), tol,
                                   min(max_iter, _LU32_ITERATIONS))
    if residual <= tol or iterations >= max_iter:
        return x, iterations, residual
    # single precision was not enough for this matrix: factorise again in double precision
    x = x if np.isfinite(x).all() else start
    x, more, residual = _pcg(matrix, system.rhs, x, _lu_solver(matrix, np.float64), tol,
                             max_iter - iterations)
    return x, iterations + more, residual


def _fit_error(alpha: np.ndarray, system: ClosedFormSystem, windows: _Windows, radius: int) -> np.ndarray:
    """The root mean square residual of each window's regularised affine fit of ``alpha`` (HxW float64),
    averaged over the windows around each unknown pixel; 0 on known pixels. See :class:`ClosedFormResult`."""
    h, w = alpha.shape
    offsets = _window_offsets(radius)
    flat = alpha.ravel()
    values = np.stack([flat[windows.centres + dy * w + dx] for dy, dx in offsets])  # (|w|, nw)
    mean = values.mean(axis=0)
    covariance = np.einsum("apk,ak->pk", windows.centred, values) / len(offsets)  # colour-alpha, (3, nw)
    weighted = np.einsum("apk,ak->pk", windows.weighted, values) / len(offsets)  # (Sigma + eps/|w|)^-1 cov
    energy = np.empty(windows.centres.size + 1)  # per window: min over (a, b) of the mean squared residual
    energy[:-1] = (values * values).mean(axis=0) - mean * mean - (covariance * weighted).sum(axis=0)
    energy[-1] = 0.0  # "no window"
    np.maximum(energy, 0.0, out=energy)
    total = energy[windows.of_unknown].sum(axis=0)
    count = (windows.of_unknown < windows.centres.size).sum(axis=0)
    out = np.zeros(h * w, np.float32)
    out[system.pixels] = np.sqrt(total / count)
    return out.reshape(h, w)


# ------------------------------------------------------------------------------------------------- public


def closed_form_system(image: np.ndarray, trimap: np.ndarray, *, prior: np.ndarray | None = None,
                       prior_weight: float | np.ndarray = 0.0, eps: float = 1e-7, radius: int = 1
                       ) -> ClosedFormSystem:
    """The sparse linear system of closed-form matting over the unknown pixels of ``trimap``.

    See the module docstring for the equations; :func:`solve_closed_form` solves it. Useful to add terms
    of one's own or to check a solver.

    Parameters
    ----------
    image, trimap, prior, prior_weight, eps, radius
        As in :func:`solve_closed_form` (``prior_weight`` is the ``lambda`` of the equations).

    Returns
    -------
    ClosedFormSystem
        ``matrix`` (n x n CSR, float64), ``rhs`` (n,) and ``pixels`` (n,), n = the number of unknown pixels.

    Raises
    ------
    ValueError
        On inputs of the wrong shape, dtype or range, or settings out of range.

    Examples
    --------
    >>> image = np.random.default_rng(0).random((20, 30, 3))
    >>> trimap = np.zeros((20, 30), np.uint8)
    >>> trimap[:, 10:20], trimap[:, 20:] = 128, 255
    >>> system = closed_form_system(image, trimap)
    >>> system.matrix.shape, system.rhs.shape
    ((200, 200), (200,))
    """
    return _build_system(_problem(image, trimap, prior, prior_weight, eps, radius))[0]


def solve_closed_form(image: np.ndarray, trimap: np.ndarray, *, initial: np.ndarray | None = None,
                      prior: np.ndarray | None = None, prior_weight: float | np.ndarray = 0.0,
                      eps: float = 1e-7, radius: int = 1, tol: float = 1e-7, max_iter: int = 1000,
                      preconditioner: Literal["lu", "jacobi"] = "lu") -> ClosedFormResult:
    """Closed-form alpha matting, with what a refining network may also want: the local fit error and how
    the solve went. :func:`closed_form_alpha` returns only the alpha.

    Parameters
    ----------
    image : np.ndarray, HxWx3 float in [0, 1] (uint8 accepted)
    trimap : np.ndarray, HxW uint8 {0, 128, 255} or float {0, 0.5, 1}
        Background, unknown, foreground.
    initial : np.ndarray, HxW float in [0, 1], optional
        Where CG starts on the unknown pixels (a network's alpha: a warm start); zero when not given.
    prior : np.ndarray, HxW float in [0, 1], optional
        An alpha to stay close to; needed when ``prior_weight`` > 0.
    prior_weight : float >= 0 or np.ndarray HxW float >= 0, default 0
        Adds ``prior_weight_i (alpha_i - prior_i)^2`` to the energy at each unknown pixel; 0 gives plain
        closed-form matting.
    eps : float > 0, default 1e-7
        Regularisation of the windows' colour covariances (``pymatting``'s default; larger: smoother).
    radius : int >= 1, default 1
        Windows are ``(2 radius + 1)`` pixels square.
    tol : float > 0, default 1e-7
        CG stops when ``||rhs - A x|| <= tol ||rhs||`` (``pymatting``'s ``rtol``; the matrix is badly
        conditioned, so a looser ``tol`` leaves visible errors in alpha).
    max_iter : int >= 1, default 1000
        At most this many CG iterations; the result then warns and says ``converged=False``.
    preconditioner : {"lu", "jacobi"}, default "lu"
        ``"lu"``: complete sparse factorisation (1 to 3 iterations); ``"jacobi"``: the diagonal (no set-up,
        many iterations; worth it only from a close ``initial``).

    Returns
    -------
    ClosedFormResult
        ``alpha`` (HxW float32 in [0, 1], known pixels exact), ``fit_error`` (HxW float32 in [0, 0.5]),
        ``iterations``, ``residual``, ``converged``.

    Raises
    ------
    ValueError
        On inputs of the wrong shape, dtype or range, settings out of range, or a trimap with unknown
        pixels but no known pixel (and no prior): alpha is then undetermined.

    Warns
    -----
    RuntimeWarning
        When CG did not reach ``tol`` within ``max_iter`` iterations.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> image = rng.random((20, 30, 3))
    >>> trimap = np.zeros((20, 30), np.uint8)
    >>> trimap[:, 10:20], trimap[:, 20:] = 128, 255
    >>> result = solve_closed_form(image, trimap)
    >>> result.alpha.shape, result.alpha.dtype, result.converged
    ((20, 30), dtype('float32'), True)
    """
    problem = _problem(image, trimap, prior, prior_weight, eps, radius)
    shape = problem.unknown.shape
    start = None if initial is None else _as_plane(initial, "initial", shape)
    check_solver_settings(tol, max_iter)
    if preconditioner not in PRECONDITIONERS:
        raise ValueError(f"preconditioner must be one of {PRECONDITIONERS}, got {preconditioner!r}")

    alpha = problem.fg.astype(np.float64)
    if not problem.unknown.any():
        return ClosedFormResult(alpha.astype(np.float32), np.zeros(shape, np.float32), 0, 0.0, True)
    if problem.unknown.all() and problem.weight is None:
        raise ValueError("the trimap has no known pixel, so alpha is undetermined: mark some background (0) "
                         "and foreground (255) pixels, or give a prior with prior_weight > 0")
    system, windows = _build_system(problem)
    poll_stop()
    x = np.zeros(system.pixels.size) if start is None else start.ravel()[system.pixels]
    x, iterations, residual = _solve(system, x, preconditioner, float(tol), int(max_iter))
    converged = residual <= tol
    if not converged:
        warnings.warn(f"closed-form CG stopped at a relative residual of {residual:.2e} > tol {tol:g} after "
                      f"{iterations} iterations: raise max_iter, or use preconditioner='lu'",
                      RuntimeWarning, stacklevel=2)
    alpha.ravel()[system.pixels] = np.clip(x, 0.0, 1.0)
    poll_stop()
    fit_error = _fit_error(alpha, system, windows, problem.radius)
    return ClosedFormResult(alpha.astype(np.float32), fit_error, iterations, residual, bool(converged))


def closed_form_alpha(image: np.ndarray, trimap: np.ndarray, *, initial: np.ndarray | None = None,
                      prior: np.ndarray | None = None, prior_weight: float | np.ndarray = 0.0,
                      eps: float = 1e-7, radius: int = 1, tol: float = 1e-7, max_iter: int = 1000,
                      preconditioner: Literal["lu", "jacobi"] = "lu") -> np.ndarray:
    """Closed-form alpha matting (Levin et al. 2008): :func:`solve_closed_form`'s alpha.

    Parameters are those of :func:`solve_closed_form`.

    Returns
    -------
    np.ndarray, HxW float32 in [0, 1]
        Exactly 0 and 1 on the trimap's known pixels.

    Examples
    --------
    >>> image = np.random.default_rng(0).random((20, 30, 3))
    >>> trimap = np.zeros((20, 30), np.uint8)
    >>> trimap[:, 10:20], trimap[:, 20:] = 128, 255
    >>> alpha = closed_form_alpha(image, trimap)
    >>> float(alpha[:, :10].max()), float(alpha[:, 20:].min())
    (0.0, 1.0)
    """
    return solve_closed_form(image, trimap, initial=initial, prior=prior, prior_weight=prior_weight, eps=eps,
                             radius=radius, tol=tol, max_iter=max_iter, preconditioner=preconditioner).alpha
