"""The side-by-side figure and the checkerboard."""

import numpy as np
import pytest
from PIL import Image

from deepmatting.visualize import checkerboard, side_by_side


def _sample(h=60, w=80, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.random((h, w, 3), dtype=np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    alpha = np.clip((min(h, w) / 3 - np.hypot(yy - h / 2, xx - w / 2)) / 5, 0, 1).astype(np.float32)
    trimap = np.full((h, w), 128, np.uint8)
    trimap[alpha == 0] = 0
    trimap[alpha == 1] = 255
    return image, alpha, trimap


def test_checkerboard():
    board = checkerboard(5, 7, square=2)
    assert board.shape == (5, 7, 3) and board.dtype == np.float32
    assert board[0, 0, 0] == board[1, 1, 0] != board[0, 2, 0] == board[2, 0, 0]
    assert (board[..., 0] == board[..., 2]).all()
    with pytest.raises(ValueError):
        checkerboard(4, 4, square=0)


def test_three_panels_without_ground_truth(tmp_path):
    image, alpha, trimap = _sample()
    path = tmp_path / "fig.png"
    fig = side_by_side(image, alpha, path, trimap=trimap)
    assert [ax.get_title() for ax in fig.axes] == ["Image", "Predicted alpha", "Masked image"]
    legend = fig.axes[0].get_legend()  # the yellow outline explains itself
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == ["edge of the trimap's unknown region"]
    assert side_by_side(image, alpha).axes[0].get_legend() is None  # no trimap, no outline, no legend
    with Image.open(path) as im:
        w, h = im.size
    assert w >= 2 * h and w <= 2000


def test_five_panels_with_ground_truth(tmp_path):
    image, alpha, trimap = _sample()
    path = tmp_path / "fig.png"
    fig = side_by_side(image, alpha, path, gt=np.clip(alpha + 0.1, 0, 1), trimap=trimap, background="white")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["Image", "Predicted alpha", "Masked image", "Ground truth", "Error |pred - gt|"]
    assert fig.axes[4].child_axes, "the error panel has a colour bar"
    with Image.open(path) as im:
        assert im.size[0] >= 4 * im.size[1]


def test_tall_and_large_images_keep_a_wide_small_figure(tmp_path):
    image, alpha, _ = _sample(1700, 500)
    path = tmp_path / "tall.png"
    side_by_side(image, alpha, path)
    with Image.open(path) as im:
        w, h = im.size
    assert w >= 2 * h and w * h < 2e6


def test_bad_inputs():
    image, alpha, _ = _sample()
    with pytest.raises(ValueError, match="same size"):
        side_by_side(image, alpha[:-1])
    with pytest.raises(ValueError, match="background"):
        side_by_side(image, alpha, background="plaid")


def test_panel_grid_draws_rows_of_titled_panels(tmp_path):
    from deepmatting.visualize import panel_grid

    gray, rgb = np.linspace(0, 1, 8 * 12).reshape(8, 12), np.zeros((8, 12, 3))
    path = tmp_path / "grid.png"
    fig = panel_grid([[(gray, "a"), (rgb, "b")], [(gray, "c")]], path)
    assert [ax.get_title() for ax in fig.axes] == ["a", "b", "c", ""]  # a short row leaves an empty panel
    assert fig.axes[0].images[0].get_cmap().name == "gray" and fig.axes[1].images[0].get_array().ndim == 3
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
