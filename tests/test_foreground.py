"""Multi-level foreground estimation (against a naive loop of the whole-frame scheme, tiled against whole
frame, on a composite with a known foreground), settled pixels, memory, and RGBA cutouts."""

import tracemalloc

import numpy as np
import pytest
from scipy import ndimage

from deepmatting import foreground
from deepmatting.foreground import cutout, estimate_foreground


def _composite(h=120, w=160):
    """A smooth known foreground and background mixed by a soft disc of alpha."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    fg = np.stack([0.2 + 0.6 * xx, 0.8 - 0.6 * yy, 0.5 + 0.3 * np.sin(3 * xx)], -1).astype(np.float32)
    bg = np.stack([0.9 - 0.7 * yy, 0.1 + 0.5 * xx, 0.3 + 0.2 * np.cos(5 * yy)], -1).astype(np.float32)
    r = np.hypot(xx - 0.5, yy - 0.35)
    alpha = np.clip((0.3 - r) / 0.12, 0, 1).astype(np.float32)
    image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    return image, alpha, fg, bg


def _naive(image, alpha, eps, omega, n_small, n_big, small):
    """The same multi-level Jacobi scheme written pixel by pixel (the vectorised code must match it)."""
    h0, w0 = alpha.shape
    n_levels = max(1, int(np.ceil(np.log2(max(h0, w0)))))
    F = np.zeros((1, 1, 3))
    B = np.zeros((1, 1, 3))
    for level in range(n_levels + 1):
        h, w = max(1, round(h0 ** (level / n_levels))), max(1, round(w0 ** (level / n_levels)))

        def near(y, x, hs, ws, h=h, w=w):
            return min(int((y + 0.5) * hs / h), hs - 1), min(int((x + 0.5) * ws / w), ws - 1)

        img = np.array([[image[near(y, x, h0, w0)] for x in range(w)] for y in range(h)])
        a = np.array([[alpha[near(y, x, h0, w0)] for x in range(w)] for y in range(h)])
        F = np.array([[F[near(y, x, *F.shape[:2])] for x in range(w)] for y in range(h)])
        B = np.array([[B[near(y, x, *B.shape[:2])] for x in range(w)] for y in range(h)])
        for _ in range(n_small if h <= small and w <= small else n_big):
            F_new, B_new = F.copy(), B.copy()
            for y in range(h):
                for x in range(w):
                    a0 = a[y, x]
                    m00, m11, m01 = a0 * a0, (1 - a0) ** 2, a0 * (1 - a0)
                    bf, bb = a0 * img[y, x], (1 - a0) * img[y, x]
                    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                        y2, x2 = min(max(y + dy, 0), h - 1), min(max(x + dx, 0), w - 1)
                        d = eps + omega * abs(a0 - a[y2, x2])
                        m00, m11 = m00 + d, m11 + d
                        bf, bb = bf + d * F[y2, x2], bb + d * B[y2, x2]
                    inv = np.linalg.inv([[m00, m01], [m01, m11]])
                    F_new[y, x] = np.clip(inv[0, 0] * bf + inv[0, 1] * bb, 0, 1)
                    B_new[y, x] = np.clip(inv[1, 0] * bf + inv[1, 1] * bb, 0, 1)
            F, B = F_new, B_new
    return F, B


def test_matches_a_naive_loop_on_a_tiny_image():
    rng = np.random.default_rng(0)
    image = rng.random((7, 10, 3), dtype=np.float32)
    alpha = rng.random((7, 10), dtype=np.float32)
    kw = dict(regularization=5e-3, gradient_weight=0.1, n_small_iterations=3, n_big_iterations=2,
              small_size=4)
    fg, bg = estimate_foreground(image, alpha, return_background=True, **kw)
    ref_fg, ref_bg = _naive(image, alpha, 5e-3, 0.1, 3, 2, 4)
    np.testing.assert_allclose(fg, ref_fg, atol=1e-4)
    np.testing.assert_allclose(bg, ref_bg, atol=1e-4)


def test_recovers_a_known_smooth_foreground():
    image, alpha, fg_true, bg_true = _composite()
    fg, bg = estimate_foreground(image, alpha, return_background=True)
    assert fg.shape == image.shape and fg.dtype == np.float32 and 0 <= fg.min() and fg.max() <= 1
    semi = (alpha > 0.05) & (alpha < 0.95)
    err = np.abs(fg - fg_true)[semi].mean()
    naive = np.abs(image - fg_true)[semi].mean()  # using the image itself as the foreground
    assert err < 0.3 * naive, (err, naive)
    assert np.abs(bg - bg_true)[semi].mean() < 0.3 * np.abs(image - bg_true)[semi].mean()
    # the composite of the estimate reproduces the image
    recomposed = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    assert np.abs(recomposed - image).mean() < 0.01


def test_cutout_rgba():
    image, alpha, fg_true, _ = _composite(40, 50)
    rgba = cutout(image, alpha)
    assert rgba.shape == (40, 50, 4) and rgba.dtype == np.uint8
    np.testing.assert_array_equal(rgba[..., 3], np.round(alpha * 255).astype(np.uint8))
    # with fg given, its colours are used as they are; uint8 images are accepted
    given = cutout((image * 255).astype(np.uint8), alpha, fg=fg_true)
    np.testing.assert_array_equal(given[..., :3], np.round(fg_true * 255).astype(np.uint8))
    with pytest.raises(ValueError, match="matching the image"):
        cutout(image, alpha[:-1])


def _textured(h, w, seed=0, noise=0.03):
    """``_composite`` with some texture, exact 0 outside and exact 1 inside a soft disc."""
    image, alpha, fg, bg = _composite(h, w)
    rng = np.random.default_rng(seed)
    fg = np.clip(fg + rng.normal(0, noise, fg.shape), 0, 1).astype(np.float32)
    bg = np.clip(bg + rng.normal(0, noise, bg.shape), 0, 1).astype(np.float32)
    image = (alpha[..., None] * fg + (1 - alpha[..., None]) * bg).astype(np.float32)
    return image, alpha


def _settled(alpha, margin):
    size = 2 * margin + 1
    hidden = ndimage.maximum_filter(alpha, size, mode="nearest") == 0
    opaque = ndimage.minimum_filter(alpha, size, mode="nearest") == 1
    return hidden, opaque


@pytest.fixture
def small_tiles(monkeypatch):
    """Tiles of 8 pixels, whole-frame levels up to 64 pixels, a settled margin of 2: tiny inputs get tiled."""
    monkeypatch.setattr(foreground, "_TILE", 8)
    monkeypatch.setattr(foreground, "_FULL_FRAME_PIXELS", 64)
    monkeypatch.setattr(foreground, "SETTLED_MARGIN", 2)


def test_tiled_matches_the_old_whole_frame_method_within_1_255_where_alpha_is_positive(small_tiles):
    """Exact off the settled pixels; on them the known answer, which the old method only approaches: it
    smooths the image's own texture by about ``regularization`` times its Laplacian (up to 2.4/255 on the
    alphamatting.com photos), so the image here is smooth."""
    yy, xx = np.mgrid[0:20, 0:28] / 28
    image = np.stack([0.3 + 0.5 * xx, 0.7 - 0.4 * yy, 0.4 + 0.2 * np.sin(4 * xx)], -1).astype(np.float32)
    alpha = np.clip((0.3 - np.hypot(xx - 0.5, yy - 0.36)) / 0.1, 0, 1).astype(np.float32)
    kw = dict(regularization=5e-3, gradient_weight=0.1, n_small_iterations=3, n_big_iterations=2,
              small_size=8)
    solver = foreground._MultiLevel(image, alpha, **kw)
    assert solver.split < len(solver.sizes) - 2  # two levels and more are solved tile by tile
    hidden, opaque = _settled(alpha, 2)
    assert hidden.any() and opaque.any() and (~hidden & ~opaque).any()
    fg, bg = estimate_foreground(image, alpha, return_background=True, **kw)
    old_fg, old_bg = _naive(image, alpha, 5e-3, 0.1, 3, 2, 8)  # the old method, solved on the whole frame
    unsettled = ~hidden & ~opaque
    np.testing.assert_allclose(fg[unsettled], old_fg[unsettled], atol=1e-4)  # float32 against float64
    np.testing.assert_allclose(bg[unsettled], old_bg[unsettled], atol=1e-4)
    assert np.abs(fg - old_fg)[alpha > 0].max() <= 1 / 255
    assert np.abs(bg - old_bg)[alpha < 1].max() <= 1 / 255
    # settled: the known answer
    np.testing.assert_array_equal(fg[opaque], image[opaque])
    np.testing.assert_array_equal(bg[hidden], image[hidden])
    assert not fg[hidden].any() and not bg[opaque].any()


@pytest.mark.parametrize(("tile", "full_frame"), [(16, 100), (50, 2000), (13, 1)])
def test_tiles_give_exactly_the_whole_frame_result(monkeypatch, tile, full_frame):
    image, alpha = _textured(90, 130)
    whole = estimate_foreground(image, alpha, return_background=True)  # 11700 pixels: all on the whole frame
    solver = foreground._MultiLevel(image, alpha, **foreground._DEFAULT_SETTINGS)
    assert solver.split == len(solver.sizes) - 1
    monkeypatch.setattr(foreground, "_TILE", tile)
    monkeypatch.setattr(foreground, "_FULL_FRAME_PIXELS", full_frame)
    tiled = estimate_foreground(image, alpha, return_background=True)
    for a, b in zip(whole, tiled, strict=True):
        np.testing.assert_array_equal(a, b)


def test_cutout_tile_by_tile_equals_the_estimate():
    image, alpha = _textured(150, 270)
    rgba = cutout(image, alpha)
    np.testing.assert_array_equal(rgba, cutout(image, alpha, fg=estimate_foreground(image, alpha)))
    hidden, _ = _settled(alpha, foreground.SETTLED_MARGIN)
    assert not rgba[hidden].any()  # nothing of the old background is left where alpha is 0


def test_alpha_outside_0_1_is_clipped_and_not_modified():
    image, alpha = _textured(30, 40)
    wild = alpha * 1.4 - 0.2
    before = wild.copy()
    clipped = estimate_foreground(image, np.clip(wild, 0, 1))
    np.testing.assert_array_equal(estimate_foreground(image, wild), clipped)
    np.testing.assert_array_equal(wild, before)


def test_memory_follows_the_tiles_not_the_photo():
    h, w = 1500, 2000  # 3 MP: the old whole-frame solve held about 0.5 GB of float32 temporaries
    yy, xx = np.ogrid[:h, :w]
    alpha = np.clip((500 - np.hypot(yy - h / 2, xx - w / 2)) / 30 + 0.5, 0, 1).astype(np.float32)
    image = np.random.default_rng(0).random((h, w, 3), dtype=np.float32)
    for fg in (None, image):  # estimated tile by tile, or given
        tracemalloc.start()
        try:
            rgba = cutout(image, alpha, fg)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        extra = peak - rgba.nbytes
        assert extra < 32 * 2**20, f"{extra / 2**20:.0f} MB beyond the {rgba.nbytes / 2**20:.0f} MB output"


@pytest.mark.parametrize(("h", "w"), [(3, 700), (700, 2), (1, 300)])
def test_a_thin_strip_is_solved_in_long_tiles_exactly_as_on_the_whole_frame(monkeypatch, h, w):
    """A strip thinner than a tile gets tiles of about a tile's area (not 3x16 ones: a 2x2,000,000 upload
    took the server's worker for over 10 minutes), and the answer is still the whole frame's."""
    image, alpha = _textured(h, w)
    whole = estimate_foreground(image, alpha, return_background=True)
    monkeypatch.setattr(foreground, "_TILE", 16)
    monkeypatch.setattr(foreground, "_FULL_FRAME_PIXELS", 16)
    th, tw = foreground._tile_shape(h, w)
    assert th * tw >= 16 * 16 - 16 and min(th, tw) == min(h, w)
    n_tiles = sum(1 for _ in foreground._tiles(image, alpha, **foreground._DEFAULT_SETTINGS))
    assert n_tiles == -(-max(h, w) // max(th, tw))
    tiled = estimate_foreground(image, alpha, return_background=True)
    for a, b in zip(whole, tiled, strict=True):
        np.testing.assert_array_equal(a, b)
