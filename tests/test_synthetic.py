"""The procedural dataset: deterministic, well-formed, and with real matting content."""

from __future__ import annotations

import numpy as np
import pytest

from deepmatting.data import SyntheticMattingDataset, erode_disk, synthesize, train_transforms

SIZE = 96


@pytest.fixture(scope="module")
def samples() -> list[dict]:
    ds = SyntheticMattingDataset(8, size=SIZE, seed=0)
    return [ds[i] for i in range(len(ds))]


def test_deterministic_per_seed_and_index(samples):
    again = SyntheticMattingDataset(8, size=SIZE, seed=0)[3]
    for k in ("image", "alpha", "trimap", "fg", "bg"):
        assert np.array_equal(samples[3][k], again[k])
    other = SyntheticMattingDataset(8, size=SIZE, seed=1)[3]
    assert not np.array_equal(samples[3]["alpha"], other["alpha"])
    assert not np.array_equal(samples[3]["image"], samples[4]["image"])


def test_dtypes_shapes_and_ranges(samples):
    for s in samples:
        for k in ("image", "fg", "bg"):
            assert s[k].shape == (SIZE, SIZE, 3) and s[k].dtype == np.float32
            assert 0 <= s[k].min() and s[k].max() <= 1
        assert s["alpha"].shape == (SIZE, SIZE) and s["alpha"].dtype == np.float32
        assert 0 <= s["alpha"].min() and s["alpha"].max() <= 1
        assert s["trimap"].dtype == np.uint8 and set(np.unique(s["trimap"])) <= {0, 128, 255}
        assert s["name"].startswith("synthetic_0_")


def test_image_is_the_composite(samples):
    for s in samples:
        a = s["alpha"][..., None]  # the matting equation, written out here rather than through composite()
        np.testing.assert_allclose(s["image"], a * s["fg"] + (1 - a) * s["bg"], atol=1e-6)


def test_matting_content(samples):
    fractional = [((s["alpha"] > 0) & (s["alpha"] < 1)).mean() for s in samples]
    assert min(fractional) > 0.005 and np.mean(fractional) > 0.03  # soft edges, strands, transparency
    for s in samples:
        assert (s["alpha"] == 1).any() and (s["alpha"] == 0).any()
        unknown = s["trimap"] == 128
        assert 0 < unknown.mean() < 0.95
        assert unknown[(s["alpha"] > 0) & (s["alpha"] < 1)].all()
        assert (s["alpha"][s["trimap"] == 255] == 1).all() and (s["alpha"][s["trimap"] == 0] == 0).all()


def test_thin_structures_exist():
    # Hair / fur / lace: fractional pixels that a 2 px opening removes (thin), over a few samples.
    thin = 0.0
    for i in range(6):
        a = synthesize(np.random.default_rng(i), SIZE)["alpha"]
        partial = (a > 0.05) & (a < 0.95)
        opened = ~erode_disk(~erode_disk(partial, 1.5), 1.5)  # morphological opening
        thin = max(thin, (partial & ~opened).mean())
    assert thin > 0.01


def test_rectangular_size_and_transform():
    ds = SyntheticMattingDataset(3, size=(40, 72), seed=2, transform=train_transforms(32))
    s = ds[1]
    assert s["image"].shape == (32, 32, 3) and s["trimap"].shape == (32, 32)
    base = SyntheticMattingDataset(3, size=(40, 72), seed=2)[1]
    assert base["image"].shape == (40, 72, 3)
    ds.set_epoch(1)
    assert len(ds) == 3 and not np.array_equal(ds[1]["image"], s["image"])
    with pytest.raises(IndexError):
        ds[3]
