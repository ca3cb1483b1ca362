"""KNN matting: the system against a dense graph built by brute force from the definition, the solver
against a direct solve, the band's approximation, warm starts and input checks."""

import numpy as np
import pytest
from test_closed_form import _composite

from deepmatting.knn_matting import KNN_GRAPHS, knn_alpha, knn_system, solve_knn


def _dense_knn_system(image, trimap):
    """``(D - W)_UU`` and ``W_UK alpha_K`` from a brute-force neighbour search over every pixel."""
    h, w, _ = image.shape
    n = h * w
    weights = np.zeros((n, n))
    for k, s in KNN_GRAPHS:
        xs, ys = np.meshgrid(np.linspace(0, 1, w), np.linspace(0, 1, h))
        features = np.concatenate([image.reshape(n, 3), s * xs.reshape(n, 1), s * ys.reshape(n, 1)], 1)
        distance = ((features[:, None] - features[None]) ** 2).sum(-1)
        nearest = np.argsort(distance, axis=1, kind="stable")[:, :k]
        for i in range(n):
            for j in nearest[i]:
                weights[i, j] += 1
                weights[j, i] += 1
    np.fill_diagonal(weights, 0)  # self links cancel in D - W
    laplacian = np.diag(weights.sum(1)) - weights
    unknown = (trimap == 128).ravel()
    fg = (trimap == 255).ravel().astype(float)
    return laplacian[np.ix_(unknown, unknown)], weights[np.ix_(unknown, ~unknown)] @ fg[~unknown]


def test_system_matches_a_dense_brute_force_graph():
    image, trimap = _composite(12, 14, seed=1)
    matrix, rhs, pixels = knn_system(image, trimap, band=100)  # every known pixel is searched from
    dense, dense_rhs = _dense_knn_system(image, trimap)
    np.testing.assert_array_equal(pixels, np.flatnonzero(trimap == 128))
    np.testing.assert_allclose(matrix.toarray(), dense, atol=1e-5)
    np.testing.assert_allclose(rhs, dense_rhs, atol=1e-5)
    np.testing.assert_allclose(matrix.toarray(), matrix.toarray().T)  # symmetric


def test_solution_is_the_direct_solve_and_known_pixels_are_exact():
    image, trimap = _composite()
    matrix, rhs, pixels = knn_system(image, trimap)
    direct = np.clip(np.linalg.solve(matrix.toarray().astype(np.float64), rhs), 0, 1)
    result = solve_knn(image, trimap, tol=1e-8)
    assert result.converged and result.alpha.dtype == np.float32
    np.testing.assert_allclose(result.alpha.ravel()[pixels], direct, atol=1e-4)
    assert (result.alpha[trimap == 0] == 0).all() and (result.alpha[trimap == 255] == 1).all()


def test_it_recovers_a_soft_edge():
    image, trimap = _composite(40, 48, seed=2)
    h, w = trimap.shape
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    truth = np.clip((0.3 - np.hypot(yy - 0.4, xx - 0.5)) / 0.1, 0, 1)
    unknown = trimap == 128
    alpha = knn_alpha(image, trimap)
    assert np.abs(alpha - truth)[unknown].mean() < 0.5 * np.abs(0.5 - truth)[unknown].mean()


def test_a_narrow_band_changes_the_matte_little_and_a_warm_start_converges_faster():
    image, trimap = _composite(40, 48, seed=3)
    exact = knn_alpha(image, trimap, band=100)
    banded = knn_alpha(image, trimap, band=2)
    assert np.abs(exact - banded)[trimap == 128].mean() < 0.01
    cold = solve_knn(image, trimap)
    warm = solve_knn(image, trimap, initial=cold.alpha)
    assert warm.iterations < cold.iterations
    np.testing.assert_allclose(warm.alpha, cold.alpha, atol=1e-3)


def test_input_checks_name_the_problem():
    image, trimap = _composite(12, 14)
    with pytest.raises(ValueError, match="HxWx3"):
        knn_alpha(image[..., 0], trimap)
    with pytest.raises(ValueError, match="trimap must be HxW"):
        knn_alpha(image, trimap[:5])
    with pytest.raises(ValueError, match="no known pixel"):
        knn_alpha(image, np.full_like(trimap, 128))
    with pytest.raises(ValueError, match="band"):
        knn_alpha(image, trimap, band=-1)
    assert (knn_alpha(image, np.zeros_like(trimap)) == 0).all()  # nothing unknown: nothing to solve
