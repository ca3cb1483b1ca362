"""Closed-form matting: the vectorised system against a dense window-by-window Laplacian, the solver against
a direct solve of it and against pymatting, warm starts, the prior, the fit error, and input checks."""

import numpy as np
import pytest
import scipy.sparse.linalg

from deepmatting.closed_form import closed_form_alpha, closed_form_system, solve_closed_form


def _composite(h=24, w=30, seed=0):
    """A soft disc of a smooth foreground over a smooth background, a trimap with a band around its edge."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    fg = np.stack([0.2 + 0.6 * xx, 0.8 - 0.5 * yy, 0.5 + 0.3 * np.sin(5 * xx)], -1)
    bg = np.stack([0.9 - 0.7 * yy, 0.1 + 0.5 * xx, 0.3 + 0.2 * np.cos(7 * yy)], -1)
    r = np.hypot(yy - 0.4, xx - 0.5)
    alpha = np.clip((0.3 - r) / 0.1, 0, 1)
    image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg + rng.normal(0, 0.01, (h, w, 3))
    trimap = np.full((h, w), 128, np.uint8)
    trimap[r > 0.33] = 0
    trimap[r < 0.17] = 255
    return np.clip(image, 0, 1), trimap


def _naive_laplacian(image, eps, radius):
    """The matting Laplacian of the whole image, dense, summed window by window from its definition."""
    h, w, _ = image.shape
    size = 2 * radius + 1
    n = size * size
    laplacian = np.zeros((h * w, h * w))
    for y in range(radius, h - radius):
        for x in range(radius, w - radius):
            ys, xs = np.mgrid[y - radius:y + radius + 1, x - radius:x + radius + 1]
            index = (ys * w + xs).ravel()
            colours = image[ys, xs].reshape(n, 3)
            centred = colours - colours.mean(axis=0)
            inverse = np.linalg.inv(centred.T @ centred / n + eps / n * np.eye(3))
            laplacian[np.ix_(index, index)] += np.eye(n) - (1 + centred @ inverse @ centred.T) / n
    return laplacian


def _direct_alpha(image, trimap, eps=1e-7, radius=1, prior=None, weight=0.0):
    """Alpha from a direct sparse solve of the naive Laplacian's unknown block."""
    laplacian = _naive_laplacian(image, eps, radius)
    unknown, fg = (trimap == 128).ravel(), (trimap == 255).ravel()
    known = ~unknown
    a = laplacian[np.ix_(unknown, unknown)] + weight * np.eye(unknown.sum())
    b = -laplacian[np.ix_(unknown, known)] @ fg[known].astype(float)
    if prior is not None:
        b += weight * prior.ravel()[unknown]
    alpha = fg.astype(float)
    alpha[unknown] = scipy.sparse.linalg.spsolve(scipy.sparse.csc_array(a), b)
    return np.clip(alpha, 0, 1).reshape(trimap.shape)


@pytest.mark.parametrize("radius", [1, 2])
def test_system_matches_a_dense_window_by_window_laplacian(radius):
    rng = np.random.default_rng(1)
    image = rng.random((9, 11, 3))
    trimap = rng.choice(np.array([0, 128, 255], np.uint8), size=(9, 11), p=[0.3, 0.4, 0.3])
    prior = rng.random((9, 11))
    system = closed_form_system(image, trimap, prior=prior, prior_weight=0.3, eps=1e-4, radius=radius)
    laplacian = _naive_laplacian(image, 1e-4, radius)
    rows = system.pixels
    assert sorted(rows.tolist()) == np.flatnonzero(trimap == 128).tolist()
    known = np.flatnonzero(trimap != 128)
    expected = laplacian[np.ix_(rows, rows)] + 0.3 * np.eye(rows.size)
    rhs = -laplacian[np.ix_(rows, known)] @ (trimap.ravel()[known] == 255) + 0.3 * prior.ravel()[rows]
    np.testing.assert_allclose(system.matrix.toarray(), expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(system.rhs, rhs, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("preconditioner", ["lu", "jacobi"])
def test_alpha_matches_a_direct_solve(preconditioner):
    image, trimap = _composite()
    result = solve_closed_form(image, trimap, preconditioner=preconditioner, max_iter=5000)
    assert result.converged and result.residual <= 1e-7
    np.testing.assert_allclose(result.alpha, _direct_alpha(image, trimap), atol=1e-5)


def test_prior_matches_a_direct_solve_and_pulls_alpha_to_it():
    image, trimap = _composite()
    prior = np.full(trimap.shape, 0.25)
    alpha = closed_form_alpha(image, trimap, prior=prior, prior_weight=0.05)
    np.testing.assert_allclose(alpha, _direct_alpha(image, trimap, prior=prior, weight=0.05), atol=1e-5)
    strong = closed_form_alpha(image, trimap, prior=prior, prior_weight=1e6)
    np.testing.assert_allclose(strong[trimap == 128], 0.25, atol=1e-4)
    # a per-pixel weight: strong on the left half only
    weight = np.zeros(trimap.shape)
    weight[:, :15] = 1e6
    half = closed_form_alpha(image, trimap, prior=prior, prior_weight=weight)
    np.testing.assert_allclose(half[:, :15][trimap[:, :15] == 128], 0.25, atol=1e-4)
    assert np.abs(half[:, 15:] - 0.25)[trimap[:, 15:] == 128].max() > 0.3
    np.testing.assert_array_equal(closed_form_alpha(image, trimap, prior=prior, prior_weight=0.0),
                                  closed_form_alpha(image, trimap))


def test_known_pixels_exact_and_output_contract():
    image, trimap = _composite()
    alpha = closed_form_alpha(image.astype(np.float32), trimap)
    assert alpha.shape == trimap.shape and alpha.dtype == np.float32
    assert (alpha[trimap == 0] == 0).all() and (alpha[trimap == 255] == 1).all()
    assert alpha.min() >= 0 and alpha.max() <= 1
    assert 0.05 < alpha[trimap == 128].mean() < 0.95
    # the same trimap as floats {0, 0.5, 1}, the same image as uint8
    as_float = np.select([trimap == 0, trimap == 128], [0.0, 0.5], 1.0)
    np.testing.assert_array_equal(closed_form_alpha(image, as_float), closed_form_alpha(image, trimap))
    image8 = np.round(image * 255).astype(np.uint8)
    np.testing.assert_allclose(closed_form_alpha(image8, trimap), closed_form_alpha(image8 / 255.0, trimap),
                               atol=1e-6)


def test_warm_start_reduces_iterations():
    image, trimap = _composite()
    cold = solve_closed_form(image, trimap, preconditioner="jacobi", max_iter=5000)
    noise = np.random.default_rng(2).normal(0, 1e-3, trimap.shape)
    initial = np.clip(cold.alpha + noise, 0, 1)
    warm = solve_closed_form(image, trimap, preconditioner="jacobi", max_iter=5000, initial=initial)
    assert warm.converged and warm.iterations < 0.8 * cold.iterations
    np.testing.assert_allclose(warm.alpha, cold.alpha, atol=1e-5)
    lu_cold = solve_closed_form(image, trimap)
    lu_warm = solve_closed_form(image, trimap, initial=lu_cold.alpha)
    assert 1 <= lu_cold.iterations <= 3 and lu_warm.iterations <= lu_cold.iterations


def test_double_precision_fallback(monkeypatch):
    """When CG with the single-precision LU does not converge, the double-precision LU takes over."""
    import deepmatting.closed_form as closed_form

    image, trimap = _composite()
    monkeypatch.setattr(closed_form, "_LU32_ITERATIONS", 0)
    result = solve_closed_form(image, trimap)
    assert result.converged and result.iterations == 1
    np.testing.assert_allclose(result.alpha, _direct_alpha(image, trimap), atol=1e-5)


def test_fit_error_matches_window_by_window_least_squares():
    image, trimap = _composite(12, 14)
    eps, h, w = 1e-3, 12, 14
    result = solve_closed_form(image, trimap, eps=eps)
    alpha = result.alpha.astype(np.float64)
    total, count = np.zeros((h, w)), np.zeros((h, w))
    for y in range(1, h - 1):
        for x in range(1, w - 1):
            a = alpha[y - 1:y + 2, x - 1:x + 2].ravel()
            colours = image[y - 1:y + 2, x - 1:x + 2].reshape(9, 3)
            # min over (c, d) of sum (a_i - c . I_i - d)^2 + eps |c|^2, as one least-squares problem
            design = np.vstack([np.hstack([colours, np.ones((9, 1))]), np.hstack([np.sqrt(eps) * np.eye(3),
                                                                                 np.zeros((3, 1))])])
            target = np.concatenate([a, np.zeros(3)])
            coef = np.linalg.lstsq(design, target, rcond=None)[0]
            total[y - 1:y + 2, x - 1:x + 2] += np.sum((design @ coef - target) ** 2) / 9
            count[y - 1:y + 2, x - 1:x + 2] += 1
    expected = np.where(trimap == 128, np.sqrt(total / np.maximum(count, 1)), 0)
    np.testing.assert_allclose(result.fit_error, expected, atol=2e-5)
    assert result.fit_error.dtype == np.float32


def test_matches_pymatting_on_a_synthetic_composite():
    """Budget: pymatting stops CG at a relative residual of 1e-7 (ichol preconditioner), as we do."""
    pymatting = pytest.importorskip("pymatting")
    image, trimap = _composite(40, 50, seed=3)
    ours = closed_form_alpha(image, trimap)
    theirs = pymatting.estimate_alpha_cf(image, np.select([trimap == 0, trimap == 128], [0.0, 0.5], 1.0))
    assert np.abs(ours - theirs).max() <= 1e-4


def test_no_unknown_pixel_returns_the_trimap_and_all_unknown_needs_a_prior():
    image, trimap = _composite()
    known = np.where(trimap == 128, 255, trimap).astype(np.uint8)
    result = solve_closed_form(image, known)
    np.testing.assert_array_equal(result.alpha, known / 255.0)
    assert result.iterations == 0 and result.converged and not result.fit_error.any()
    everything = np.full(trimap.shape, 128, np.uint8)
    with pytest.raises(ValueError, match="no known pixel"):
        closed_form_alpha(image, everything)
    prior = np.linspace(0, 1, trimap.size).reshape(trimap.shape)
    alpha = closed_form_alpha(image, everything, prior=prior, prior_weight=1e-3)
    assert np.isfinite(alpha).all()


def test_unconverged_solve_warns():
    image, trimap = _composite()
    with pytest.warns(RuntimeWarning, match="max_iter"):
        result = solve_closed_form(image, trimap, preconditioner="jacobi", max_iter=2)
    assert not result.converged and result.iterations == 2


@pytest.mark.parametrize("change, message", [
    (dict(image=np.zeros((24, 30))), "HxWx3"),
    (dict(image=np.full((24, 30, 3), 2.0)), r"\[0, 1\]"),
    (dict(image=np.full((24, 30, 3), np.nan)), "NaN"),
    (dict(image=np.zeros((24, 30, 3), np.int64)), "dtype"),
    (dict(trimap=np.zeros((24, 31), np.uint8)), "matching the image"),
    (dict(trimap=np.full((24, 30), 100, np.uint8)), r"\{0, 128, 255\}; found \[100\]"),
    (dict(trimap=np.full((24, 30), 0.3)), r"\{0, 0.5, 1\}"),
    (dict(trimap=np.zeros((24, 30), bool)), "dtype bool"),
    (dict(initial=np.full((24, 30), 1.5)), "initial must lie"),
    (dict(initial=np.zeros((3, 3))), "initial must be HxW"),
    (dict(prior_weight=-1.0, prior=np.zeros((24, 30))), "prior_weight must be"),
    (dict(prior_weight=1.0), "needs a prior"),
    (dict(prior_weight=np.full((24, 30), -1.0), prior=np.zeros((24, 30))), "prior_weight must be >= 0"),
    (dict(eps=0.0), "eps"),
    (dict(radius=0), "radius"),
    (dict(radius=1.5), "radius"),
    (dict(tol=0), "tol"),
    (dict(max_iter=0), "max_iter"),
    (dict(preconditioner="ichol"), "preconditioner must be one of"),
])
def test_bad_inputs_raise_clear_errors(change, message):
    image, trimap = _composite()
    kwargs = {"image": image, "trimap": trimap, **change}
    with pytest.raises(ValueError, match=message):
        solve_closed_form(**kwargs)


def test_image_smaller_than_a_window_raises():
    with pytest.raises(ValueError, match="smaller than one 5x5 window"):
        closed_form_alpha(np.zeros((4, 10, 3)), np.full((4, 10), 128, np.uint8), radius=2)


def test_a_solve_inside_interruptible_stops_at_the_check():
    """The server's time limit reaches into the solvers: a check that raises stops closed-form and KNN."""
    from deepmatting.closed_form import interruptible
    from deepmatting.knn_matting import knn_alpha

    rng = np.random.default_rng(0)
    image = rng.random((40, 40, 3)).astype(np.float32)
    trimap = np.full((40, 40), 128, np.uint8)
    trimap[:, :4], trimap[:, -4:] = 0, 255
    calls = []

    def stop():
        calls.append(1)
        raise TimeoutError("stopped")

    for solve in (closed_form_alpha, knn_alpha):
        with interruptible(stop), pytest.raises(TimeoutError, match="stopped"):
            solve(image, trimap)
        assert np.isfinite(solve(image, trimap)).all()  # outside the block: no check, a normal solve
    assert len(calls) == 2
