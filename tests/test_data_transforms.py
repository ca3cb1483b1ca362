"""Trimap generation and the joint transforms on sample dicts."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from scipy import ndimage

from deepmatting.data import (
    ColorJitter,
    Compose,
    Composite,
    PadToMultiple,
    RandomCropAroundUnknown,
    RandomFlip,
    RandomScale,
    RandomTrimap,
    composite,
    crop,
    erode_disk,
    eval_transforms,
    make_trimap,
    resize_array,
    train_transforms,
    trimap_from_mask,
)
from deepmatting.data.transforms import color_matrix

TRIMAP_VALUES = {0, 128, 255}


def make_sample(h: int = 48, w: int = 64, seed: int = 0, with_fg: bool = True) -> dict:
    """A small consistent composite: a soft disc of foreground over a random background."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:h, :w]
    r = np.hypot(y - h * 0.5, x - w * 0.4)
    alpha = np.clip((min(h, w) * 0.3 - r) / 3 + 0.5, 0, 1).astype(np.float32)
    fg = rng.random((h, w, 3), dtype=np.float32)
    bg = rng.random((h, w, 3), dtype=np.float32)
    sample = {"image": composite(alpha, fg, bg), "alpha": alpha, "trimap": make_trimap(alpha, 3), "name": "s"}
    if with_fg:
        sample.update(fg=fg, bg=bg)
    return sample


# ------------------------------------------------------------------------------------------------ trimaps

def test_erode_disk_matches_distance_transform():
    rng = np.random.default_rng(0)
    for trial in range(60):
        h, w = rng.integers(1, 30, 2)
        mask = rng.random((h, w)) > rng.uniform(0, 0.4)
        radius = float(rng.uniform(0, 7)) if trial % 2 else int(rng.integers(0, 7))
        expected = ndimage.distance_transform_edt(mask) > radius if (~mask).any() else mask
        np.testing.assert_array_equal(erode_disk(mask, radius), expected)


def test_make_trimap_known_values():
    alpha = np.zeros((3, 9), np.float32)
    alpha[:, 5:] = 1
    alpha[:, 4] = 0.5
    row = [0, 0, 128, 128, 128, 128, 128, 255, 255]  # fractional column 4, plus 2 px either side
    np.testing.assert_array_equal(make_trimap(alpha, 2), np.tile(row, (3, 1)))
    # width 0: only the fractional pixels are unknown
    np.testing.assert_array_equal(make_trimap(alpha, 0)[0], [0, 0, 0, 0, 128, 255, 255, 255, 255])


def test_make_trimap_uses_a_disk_and_ignores_the_border():
    alpha = np.zeros((11, 11), np.float32)
    alpha[5, 5] = 1  # a single foreground pixel: everything within distance 3 of it is unknown
    trimap = make_trimap(alpha, 3)
    y, x = np.mgrid[:11, :11]
    d = np.hypot(y - 5, x - 5)
    assert (trimap[(d <= 3) & (d > 0)] == 128).all() and (trimap[d > 3] == 0).all()
    assert trimap[5, 5] == 128  # the fg pixel itself borders background
    assert set(np.unique(make_trimap(np.ones((5, 5), np.float32), 3))) == {255}  # no boundary: all known


def test_make_trimap_invariants_on_random_alpha():
    rng = np.random.default_rng(1)
    alpha = np.clip(ndimage.gaussian_filter(rng.random((40, 40)), 3) * 6 - 2.5, 0, 1).astype(np.float32)
    trimap = make_trimap(alpha, 4)
    assert set(np.unique(trimap)) <= TRIMAP_VALUES
    assert (trimap[(alpha > 0) & (alpha < 1)] == 128).all()
    assert (alpha[trimap == 255] == 1).all() and (alpha[trimap == 0] == 0).all()


def test_make_trimap_deterministic_and_random_widths():
    alpha = make_sample()["alpha"]
    assert np.array_equal(make_trimap(alpha, 5), make_trimap(alpha, 5))
    a = make_trimap(alpha, width_range=(1, 20), rng=np.random.default_rng(7))
    b = make_trimap(alpha, width_range=(1, 20), rng=np.random.default_rng(7))
    assert np.array_equal(a, b)
    unknown = {int((make_trimap(alpha, width_range=(1, 20), rng=np.random.default_rng(s)) == 128).sum())
               for s in range(8)}
    assert len(unknown) > 2
    with pytest.raises(ValueError, match="rng"):
        make_trimap(alpha, width_range=(1, 5))


def test_trimap_from_mask():
    mask = np.zeros((1, 8), np.float32)
    mask[:, 4:] = 0.9
    expected = [0, 0, 128, 128, 128, 128, 255, 255]
    np.testing.assert_array_equal(trimap_from_mask(mask, 2)[0], expected)
    np.testing.assert_array_equal(trimap_from_mask((mask * 255).astype(np.uint8), 2)[0], expected)
    np.testing.assert_array_equal(trimap_from_mask(mask > 0.5, 2)[0], expected)


# --------------------------------------------------------------------------------------------- transforms

def test_resize_array_nearest_and_bilinear():
    trimap = np.random.default_rng(0).choice(np.array([0, 128, 255], np.uint8), (37, 23))
    for size in [(50, 60), (10, 7), (37, 23)]:
        out = resize_array(trimap, size, nearest=True)
        assert out.shape == size and set(np.unique(out)) <= TRIMAP_VALUES
    img = np.random.default_rng(1).random((40, 30, 3), dtype=np.float32)
    for size in [(80, 45), (13, 9), (7, 5)]:
        out = resize_array(img, size)
        assert out.shape == (*size, 3) and out.dtype == np.float32 and out.flags.c_contiguous
        assert out.min() >= img.min() - 1e-6 and out.max() <= img.max() + 1e-6


def test_train_transforms_shapes_and_values():
    sample = make_sample(100, 120)
    t = train_transforms(32)
    for seed in range(5):
        out = t(sample, np.random.default_rng(seed))
        assert out["image"].shape == (32, 32, 3) and out["fg"].shape == (32, 32, 3)
        assert out["alpha"].shape == (32, 32) and out["trimap"].shape == (32, 32)
        assert out["image"].dtype == np.float32 and out["trimap"].dtype == np.uint8
        assert set(np.unique(out["trimap"])) <= TRIMAP_VALUES
        assert 0 <= out["alpha"].min() and out["alpha"].max() <= 1
        np.testing.assert_allclose(out["image"], composite(out["alpha"], out["fg"], out["bg"]), atol=1e-5)
    assert "RandomCropAroundUnknown" in repr(t)


def test_transforms_do_not_mutate_their_input():
    sample = make_sample()
    before = copy.deepcopy(sample)
    pipeline = Compose([RandomScale((0.5, 1.5)), train_transforms(24), PadToMultiple(32), Composite()])
    pipeline(sample, np.random.default_rng(0))
    assert sample.keys() == before.keys()
    for k, v in before.items():
        assert np.array_equal(sample[k], v)


def test_crop_resize_keeps_trimap_values():
    sample = make_sample(90, 90)
    out = RandomCropAroundUnknown(sizes=(77,), out_size=32)(sample, np.random.default_rng(0))
    assert set(np.unique(out["trimap"])) <= TRIMAP_VALUES and out["trimap"].shape == (32, 32)
    out = RandomScale((1.37, 1.37))(sample, np.random.default_rng(0))
    assert out["image"].shape == (123, 123, 3) and set(np.unique(out["trimap"])) <= TRIMAP_VALUES


def test_crop_contains_unknown_pixels():
    h, w = 200, 300
    alpha = np.zeros((h, w), np.float32)
    alpha[150:, 250:] = 1  # a small foreground in the bottom-right corner
    trimap = make_trimap(alpha, 2)
    sample = {"image": np.zeros((h, w, 3), np.float32), "alpha": alpha, "trimap": trimap, "name": "c"}
    t = RandomCropAroundUnknown(sizes=(40, 60), out_size=40)
    for seed in range(20):
        out = t(sample, np.random.default_rng(seed))
        assert (out["trimap"] == 128).any()
        assert out["image"].shape == (40, 40, 3)


def test_crop_skips_sizes_larger_than_the_image():
    sample = make_sample(60, 80)
    sample["image"] = np.arange(60 * 80 * 3, dtype=np.float32).reshape(60, 80, 3)  # unique values
    for seed in range(10):
        out = RandomCropAroundUnknown(sizes=(40, 400), out_size=40)(sample, np.random.default_rng(seed))
        top, left = np.argwhere(sample["image"][..., 0] == out["image"][0, 0, 0])[0]
        np.testing.assert_array_equal(out["image"], sample["image"][top:top + 40, left:left + 40])


def test_crop_pads_small_images():
    sample = make_sample(20, 30)
    out = RandomCropAroundUnknown(sizes=(64,), out_size=64)(sample, np.random.default_rng(0))
    assert out["image"].shape == (64, 64, 3) and out["trimap"].shape == (64, 64)
    assert set(np.unique(out["trimap"])) <= TRIMAP_VALUES
    np.testing.assert_allclose(out["image"], composite(out["alpha"], out["fg"], out["bg"]), atol=1e-5)
    # a window partly outside the image is reflect-padded
    out = crop(sample, -3, -2, 10, 10)
    np.testing.assert_array_equal(out["alpha"][3:, 2:], sample["alpha"][:7, :8])
    np.testing.assert_array_equal(out["alpha"][2, 2:], sample["alpha"][1, :8])


def test_flip_applies_jointly():
    h, w = 10, 12
    sample = {"image": np.zeros((h, w, 3), np.float32), "alpha": np.zeros((h, w), np.float32),
              "trimap": np.zeros((h, w), np.uint8), "fg": np.zeros((h, w, 3), np.float32),
              "bg": np.zeros((h, w, 3), np.float32), "name": "f"}
    sample["image"][2, 3] = (1, 0, 0)
    sample["alpha"][2, 3] = 0.5
    sample["trimap"][2, 3] = 128
    sample["fg"][2, 3] = (0, 1, 0)
    sample["bg"][2, 3] = (0, 0, 1)
    out = RandomFlip(p=1.0)(sample, np.random.default_rng(0))
    j = w - 1 - 3
    assert tuple(out["image"][2, j]) == (1, 0, 0) and out["alpha"][2, j] == 0.5 and out["trimap"][2, j] == 128
    assert tuple(out["fg"][2, j]) == (0, 1, 0) and tuple(out["bg"][2, j]) == (0, 0, 1)
    assert out["alpha"][2, 3] == 0 and out["trimap"][2, 3] == 0
    assert RandomFlip(p=0.0)(sample, np.random.default_rng(0))["alpha"][2, 3] == 0.5


def test_color_jitter_keeps_alpha_trimap_and_composite():
    sample = make_sample()
    out = ColorJitter(0.4, 0.4, 0.4, 0.1, p=1.0)(sample, np.random.default_rng(3))
    assert out["alpha"] is sample["alpha"] and out["trimap"] is sample["trimap"]
    assert np.array_equal(out["bg"], sample["bg"])
    assert not np.allclose(out["fg"], sample["fg"])
    np.testing.assert_allclose(out["image"], composite(out["alpha"], out["fg"], out["bg"]), atol=1e-5)
    assert 0 <= out["fg"].min() and out["fg"].max() <= 1
    # without fg/bg the image itself is jittered
    plain = make_sample(with_fg=False)
    out = ColorJitter(0.4, 0.4, 0.4, 0.1, p=1.0)(plain, np.random.default_rng(3))
    assert not np.allclose(out["image"], plain["image"]) and np.array_equal(out["alpha"], plain["alpha"])


def test_color_matrix_identity_and_gray_axis():
    m, offset = color_matrix(1.0, 1.0, 1.0, 0.0, mean_gray=0.4)
    np.testing.assert_allclose(m, np.eye(3), atol=1e-6)
    np.testing.assert_allclose(offset, 0, atol=1e-7)
    m, offset = color_matrix(1.0, 1.0, 0.5, 0.25, mean_gray=0.4)  # saturation and hue leave gray alone
    np.testing.assert_allclose(m @ np.full(3, 0.3) + offset, 0.3, atol=1e-5)


def test_random_trimap_regenerates_from_alpha():
    sample = make_sample()
    out = RandomTrimap((7, 7))(sample, np.random.default_rng(0))
    np.testing.assert_array_equal(out["trimap"], make_trimap(sample["alpha"], 7))


def test_composite_transform():
    sample = make_sample()
    sample["image"] = np.zeros_like(sample["image"])
    out = Composite()(sample, np.random.default_rng(0))
    expected = sample["alpha"][..., None] * sample["fg"] + (1 - sample["alpha"][..., None]) * sample["bg"]
    np.testing.assert_allclose(out["image"], expected, atol=1e-6)
    with pytest.raises(KeyError, match="fg"):
        Composite()(make_sample(with_fg=False))


def test_pad_to_multiple():
    sample = make_sample(50, 70)
    out = eval_transforms()(sample, np.random.default_rng(0))
    assert out["image"].shape == (64, 96, 3) and out["trimap"].shape == (64, 96)
    assert out["pad"] == (50, 70)
    np.testing.assert_array_equal(out["image"][:50, :70], sample["image"])
    assert (out["alpha"][50:] == 0).all() and (out["trimap"][:, 70:] == 0).all()
    np.testing.assert_array_equal(out["image"][50, :70], sample["image"][48, :])  # reflected
    already = PadToMultiple(10)(make_sample(40, 50))
    assert already["pad"] == (40, 50) and already["image"].shape == (40, 50, 3)
