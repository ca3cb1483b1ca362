"""KNN matting (Chen, Li, Tang, "KNN Matting", IEEE TPAMI 2013): alpha from an image and a trimap by one
sparse linear solve over a graph of nearest neighbours in feature space, in numpy and scipy.

The model
    Every pixel ``i`` has the feature ``X(i) = (r, g, b, s x, s y)``: its colour in [0, 1] and its position,
    ``x`` and ``y`` each running from 0 to 1 across the image, weighted by ``s``. Each pixel is linked to its
    ``k`` nearest neighbours in feature space, with weight 1 (``pymatting``'s "binary" kernel; the paper's
    ``1 - ||X(i) - X(j)|| / C`` is within a few per cent of 1 on nearly every link). Two such graphs are
    merged: 20 neighbours with ``s = 2`` (local: colour and position) and 10 with ``s = 0.1`` (non-local:
    colour first), ``pymatting``'s defaults. A link found from either end counts once per end (so ``W_ij``
    is 0, 1, 2, ... and symmetric), and alpha minimises ``sum_ij W_ij (alpha_i - alpha_j)^2`` with the
    trimap's known pixels fixed:

    ``(D - W)_UU alpha_U = W_UK alpha_K``,  ``D = diag(sum_j W_ij)``

    which is what ``pymatting.estimate_alpha_knn`` solves with its known pixels held by a penalty of 100
    instead of exactly (row-normalised, ``I - D^-1 W``: the same solution on the unknown rows).
The solver
    Only the links that touch an unknown pixel enter the system. They are found by querying a KD-tree of all
    pixels (``scipy.spatial.cKDTree``) from the unknown pixels and from the known pixels within ``band``
    pixels of them; a known pixel further away whose neighbours hold an unknown pixel (a long colour link)
    is left out, which moves the mean alpha of the 14 alphamatting.com photos by about 0.001. The system is
    symmetric positive definite and well conditioned next to closed-form matting's: conjugate gradients with
    the diagonal as preconditioner (``pymatting``'s choice too), from ``initial`` when given, in single
    precision.

``benchmarks/bench_knn.py`` compares it with ``pymatting.estimate_alpha_knn`` on the 14 photos.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse
from scipy import ndimage
from scipy.spatial import cKDTree

from .closed_form import _as_image, _as_plane, _pcg, _trimap_masks, check_solver_settings, poll_stop

#: ``(neighbours, weight of the position)`` of each merged neighbour graph (``pymatting``'s defaults).
KNN_GRAPHS: tuple[tuple[int, float], ...] = ((20, 2.0), (10, 0.1))
#: Known pixels within this many pixels of the unknown region have their neighbours searched too.
DEFAULT_BAND = 10


@dataclass(frozen=True)
class KnnResult:
    """What :func:`solve_knn` returns.

    Attributes
    ----------
    alpha : np.ndarray, HxW float32 in [0, 1]
        The KNN matte; exactly 0 and 1 on the trimap's known pixels.
    iterations : int
        CG iterations (0 when nothing was unknown).
    residual : float
        ``||rhs - matrix @ alpha_U|| / ||rhs||`` of the unclipped solution.
    converged : bool
        Whether ``residual <= tol`` within ``max_iter`` iterations.
    """

    alpha: np.ndarray
    iterations: int
    residual: float
    converged: bool


def _features(image: np.ndarray, weight: float) -> np.ndarray:
    """``HxWx3`` image in [0, 1] -> ``(H W, 5)`` float32 features ``(r, g, b, weight x, weight y)``."""
    h, w = image.shape[:2]
    features = np.empty((h, w, 5), np.float32)
    features[..., :3] = image
    features[..., 3] = weight * np.linspace(0, 1, w, dtype=np.float32)[None, :]
    features[..., 4] = weight * np.linspace(0, 1, h, dtype=np.float32)[:, None]
    return features.reshape(-1, 5)


def knn_system(image: np.ndarray, trimap: np.ndarray, *, band: int = DEFAULT_BAND
               ) -> tuple[scipy.sparse.csr_array, np.ndarray, np.ndarray]:
    """The linear system of KNN matting over the unknown pixels: ``(matrix, rhs, pixels)``.

    Parameters
    ----------
    image : np.ndarray, HxWx3 float in [0, 1] (uint8 accepted)
    trimap : np.ndarray, HxW uint8 {0, 128, 255} or float {0, 0.5, 1}
    band : int >= 0
        Known pixels within this many pixels of an unknown one are searched from too (see the module).

    Returns
    -------
    matrix : scipy.sparse.csr_array, (n, n) float32, ``(D - W)_UU`` (n = the unknown pixels)
    rhs : np.ndarray, (n,) float32, ``W_UK alpha_K``
    pixels : np.ndarray, (n,) int64, the flat (raster) index of each row's pixel
    """
    image = _as_image(image)
    unknown, fg = _trimap_masks(trimap, image.shape[:2])
    if isinstance(band, bool) or not isinstance(band, int | np.integer) or band < 0:
        raise ValueError(f"band must be an integer >= 0, got {band!r}")
    near = ndimage.binary_dilation(unknown, iterations=int(band)) if band else unknown
    queries = np.flatnonzero(near)  # (q,) pixels searched from
    pixels = np.flatnonzero(unknown)  # (n,)
    n = pixels.size
    row = np.full(unknown.size, -1, np.int32)  # the row of each unknown pixel, -1 for known ones
    row[pixels] = np.arange(n, dtype=np.int32)
    query_row = row[queries]  # (q,)
    from_unknown = query_row >= 0
    fg_flat = fg.ravel()
    degree = np.zeros(n, np.float32)
    rhs = np.zeros(n, np.float32)
    matrix = scipy.sparse.csr_array((n, n), dtype=np.float32)
    for k, weight in KNN_GRAPHS:
        features = _features(image, weight)
        tree = cKDTree(features, leafsize=32, balanced_tree=False, compact_nodes=False)
        k = min(k, features.shape[0])
        # a pixel is its own nearest neighbour: that link adds 1 to both D_ii and W_ii, which cancel
        _, neighbours = tree.query(features[queries], k=k, workers=-1)  # (q, k)
        neighbour_row = row[neighbours]  # (q, k), -1 at known neighbours
        # links found from an unknown pixel: k per row of D; to unknown pixels, W; to known ones, the rhs
        degree[query_row[from_unknown]] += k
        mine = neighbour_row[from_unknown]  # (u, k)
        inner = mine >= 0
        rows = np.repeat(query_row[from_unknown], inner.sum(axis=1))
        links = scipy.sparse.csr_array((np.ones(rows.size, np.float32), (rows, mine[inner])), shape=(n, n))
        matrix = matrix + links + links.T
        rhs[query_row[from_unknown]] += (fg_flat[neighbours[from_unknown]] & ~inner).sum(axis=1)
        # the same links seen from their other end, and links found from known pixels to unknown ones
        found = neighbour_row[neighbour_row >= 0]
        degree += np.bincount(found, minlength=n)
        theirs = neighbour_row[~from_unknown]  # (q - u, k)
        reached = theirs >= 0
        rhs += np.bincount(theirs[reached], weights=np.repeat(fg_flat[queries[~from_unknown]],
                                                              reached.sum(axis=1)), minlength=n)
    matrix = (scipy.sparse.diags_array(degree) - matrix).tocsr()
    return matrix, rhs, pixels


def solve_knn(image: np.ndarray, trimap: np.ndarray, *, initial: np.ndarray | None = None,
              band: int = DEFAULT_BAND, tol: float = 1e-5, max_iter: int = 10000) -> KnnResult:
    """KNN alpha matting (Chen et al. 2013) with how the solve went; :func:`knn_alpha` returns the alpha.

    Parameters
    ----------
    image : np.ndarray, HxWx3 float in [0, 1] (uint8 accepted)
    trimap : np.ndarray, HxW uint8 {0, 128, 255} or float {0, 0.5, 1}
    initial : np.ndarray, HxW float in [0, 1], optional
        Where CG starts on the unknown pixels (closed-form's alpha: a warm start); zero when not given.
    band : int >= 0, default 10
        See the module docstring.
    tol : float > 0, default 1e-5
        CG stops when ``||rhs - A x|| <= tol ||rhs||``.
    max_iter : int >= 1, default 10000

    Returns
    -------
    KnnResult

    Raises
    ------
    ValueError
        On inputs of the wrong shape, dtype or range, or a trimap with unknown pixels but no known pixel.

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
    >>> result = solve_knn(image, trimap)
    >>> result.alpha.shape, result.alpha.dtype, result.converged
    ((20, 30), dtype('float32'), True)
    """
    image = _as_image(image)
    shape = image.shape[:2]
    unknown, fg = _trimap_masks(trimap, shape)
    start = None if initial is None else _as_plane(initial, "initial", shape)
    check_solver_settings(tol, max_iter)
    alpha = fg.astype(np.float32)
    if not unknown.any():
        return KnnResult(alpha, 0, 0.0, True)
    if unknown.all():
        raise ValueError("the trimap has no known pixel, so alpha is undetermined: mark some background (0) "
                         "and foreground (255) pixels")
    matrix, rhs, pixels = knn_system(image, trimap, band=band)
    poll_stop()
    x = np.zeros(pixels.size, np.float32) if start is None else start.ravel()[pixels].astype(np.float32)
    diagonal = matrix.diagonal()
    x, iterations, residual = _pcg(matrix, rhs, x, lambda r: r / diagonal, float(tol), int(max_iter))
    converged = residual <= tol
    if not converged:
        warnings.warn(f"KNN matting's CG stopped at a relative residual of {residual:.2e} > tol {tol:g} "
                      f"after {iterations} iterations: raise max_iter", RuntimeWarning, stacklevel=2)
    alpha.ravel()[pixels] = np.clip(x, 0.0, 1.0)
    return KnnResult(alpha, iterations, residual, bool(converged))


def knn_alpha(image: np.ndarray, trimap: np.ndarray, **options) -> np.ndarray:
    """KNN alpha matting (Chen et al. 2013): :func:`solve_knn`'s alpha, HxW float32 in [0, 1], exactly 0 and
    1 on the trimap's known pixels. ``options`` are those of :func:`solve_knn`.

    Examples
    --------
    >>> image = np.random.default_rng(0).random((20, 30, 3))
    >>> trimap = np.zeros((20, 30), np.uint8)
    >>> trimap[:, 10:20], trimap[:, 20:] = 128, 255
    >>> alpha = knn_alpha(image, trimap)
    >>> float(alpha[:, :10].max()), float(alpha[:, 20:].min())
    (0.0, 1.0)
    """
    return solve_knn(image, trimap, **options).alpha
