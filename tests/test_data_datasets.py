"""Folder datasets: layout checks with messages that name the files, trimaps, reproducibility."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deepmatting.data import (
    CompositionDataset,
    CustomDataset,
    DatasetError,
    SyntheticMattingDataset,
    composite,
    cover_crop,
    make_trimap,
    train_transforms,
)
from deepmatting.tensors import collate

H, W = 24, 32


def disc_alpha(h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    """uint8 matte: a soft disc at a seed-dependent place."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:h, :w]
    cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
    a = np.clip((min(h, w) * 0.3 - np.hypot(y - cy, x - cx)) / 2 + 0.5, 0, 1)
    return (a * 255).round().astype(np.uint8)


def write_rgb(path: Path, h: int = H, w: int = W, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)


def write_gray(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, "L").save(path)


def make_custom(root: Path, names=("a", "b", "c"), masks: str = "masks", trimaps: bool = False) -> Path:
    for i, n in enumerate(names):
        write_rgb(root / "images" / f"{n}.jpg", seed=i)
        alpha = disc_alpha(seed=i)
        write_gray(root / masks / f"{n}.png", alpha)
        if trimaps:
            write_gray(root / "trimaps" / f"{n}.png", np.full((H, W), 128, np.uint8))
    return root


def error_of(fn) -> str:
    with pytest.raises(DatasetError) as e:
        fn()
    return str(e.value)


# ------------------------------------------------------------------------------------------ CustomDataset

def test_custom_dataset_reads_samples(tmp_path):
    ds = CustomDataset(make_custom(tmp_path / "d"), trimap_width=3)
    assert len(ds) == 3
    s = ds[1]
    assert s["name"] == "b" and s["image"].shape == (H, W, 3) and s["image"].dtype == np.float32
    assert s["alpha"].shape == (H, W) and s["trimap"].dtype == np.uint8
    np.testing.assert_array_equal(s["trimap"], make_trimap(disc_alpha(seed=1) / np.float32(255), 3))
    assert ds.validate(full=True) == 3
    assert "trimaps=generated" in repr(ds)


def test_alphas_folder_accepted(tmp_path):
    ds = CustomDataset(make_custom(tmp_path / "d", masks="alphas"))
    assert len(ds) == 3 and ds.masks_dir.name == "alphas"


def test_trimaps_used_when_present(tmp_path):
    ds = CustomDataset(make_custom(tmp_path / "d", trimaps=True))
    assert (ds[0]["trimap"] == 128).all()  # the file's trimap, not one made from the alpha
    assert "trimaps=files" in repr(ds)


def test_random_trimap_width_is_reproducible(tmp_path):
    ds = CustomDataset(make_custom(tmp_path / "d"), trimap_width_range=(1, 8), seed=3)
    first = [ds[0]["trimap"] for _ in range(2)]
    assert np.array_equal(*first)
    counts = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        counts.add(int((ds[0]["trimap"] == 128).sum()))
    assert len(counts) > 1


def test_missing_root_and_folders(tmp_path):
    assert str(tmp_path / "nowhere") in error_of(lambda: CustomDataset(tmp_path / "nowhere"))
    root = tmp_path / "d"
    (root / "masks").mkdir(parents=True)
    msg = error_of(lambda: CustomDataset(root))
    assert str(root) in msg and "images/" in msg
    root2 = tmp_path / "e"
    (root2 / "images").mkdir(parents=True)
    msg = error_of(lambda: CustomDataset(root2))
    assert str(root2) in msg and "masks/" in msg


def test_empty_folders(tmp_path):
    root = tmp_path / "d"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    msg = error_of(lambda: CustomDataset(root))
    assert str(root) in msg and "images/ has no image files" in msg
    write_rgb(root / "images" / "a.png")
    msg = error_of(lambda: CustomDataset(root))
    assert str(root) in msg and "masks/ has no image files" in msg


def test_missing_mask_and_orphan_mask_are_listed(tmp_path):
    root = make_custom(tmp_path / "d")
    write_rgb(root / "images" / "lonely_image.png")
    write_gray(root / "masks" / "orphan_mask.png", disc_alpha())
    msg = error_of(lambda: CustomDataset(root))
    assert "lonely_image.png" in msg and "orphan_mask.png" in msg and "2 problem(s)" in msg


def test_size_mismatch_names_both_files(tmp_path):
    root = make_custom(tmp_path / "d", trimaps=True)
    write_gray(root / "masks" / "b.png", disc_alpha(H + 2, W))
    write_gray(root / "trimaps" / "c.png", np.zeros((H, W + 1), np.uint8))
    msg = error_of(lambda: CustomDataset(root))
    assert "masks/b.png" in msg and "images/b.jpg" in msg and f"{W}x{H + 2}" in msg
    assert "trimaps/c.png" in msg and "images/c.jpg" in msg and "2 problem(s)" in msg


def test_validate_rechecks_headers(tmp_path):
    root = make_custom(tmp_path / "d")
    ds = CustomDataset(root)
    assert ds.validate() == 3
    write_gray(root / "masks" / "a.png", disc_alpha(H, W + 3))  # changed after construction
    assert "masks/a.png" in error_of(ds.validate)


def test_exif_rotation_is_taken_into_account(tmp_path):
    root = tmp_path / "d"
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated by 90 degrees: W x H on disk, H x W displayed
    (root / "images").mkdir(parents=True)
    Image.new("RGB", (H, W), (10, 20, 30)).save(root / "images" / "r.jpg", exif=exif.tobytes())
    write_gray(root / "masks" / "r.png", disc_alpha())
    ds = CustomDataset(root)
    assert ds[0]["image"].shape == (H, W, 3)


def test_truncated_image_raises_on_read_naming_the_file(tmp_path):
    root = make_custom(tmp_path / "d")
    (root / "images" / "b.jpg").unlink()
    path = root / "images" / "b.png"
    write_rgb(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])  # header intact, pixel data cut
    ds = CustomDataset(root)  # construction reads headers only: it cannot see this
    msg = error_of(lambda: ds[1])
    assert "images/b.png" in msg and "truncated" in msg
    ds[0]  # other samples still load
    path.write_bytes(data[:20])  # now the header itself is cut: construction names the file
    assert "images/b.png" in error_of(lambda: CustomDataset(root))


def test_bad_trimap_values_and_colour_mask(tmp_path):
    root = make_custom(tmp_path / "d", trimaps=True)
    bad = np.full((H, W), 128, np.uint8)
    bad[0, 0] = 77
    write_gray(root / "trimaps" / "a.png", bad)
    colour = np.zeros((H, W, 3), np.uint8)
    colour[..., 1] = 255
    Image.fromarray(colour).save(root / "masks" / "c.png")
    ds = CustomDataset(root)
    msg = error_of(lambda: ds[0])
    assert "trimaps/a.png" in msg and "77" in msg
    assert "masks/c.png" in error_of(lambda: ds[2]) and "not a matte" in error_of(lambda: ds[2])
    full = error_of(lambda: ds.validate(full=True))  # every problem, in one error
    assert "trimaps/a.png" in full and "masks/c.png" in full and "2 problem(s)" in full


def test_non_image_files_are_warned_and_ignored(tmp_path):
    root = make_custom(tmp_path / "d")
    (root / "images" / "notes.txt").write_text("hello")
    (root / "masks" / ".DS_Store").write_bytes(b"\0\0")
    (root / "images" / "sub").mkdir()
    with pytest.warns(UserWarning) as record:
        ds = CustomDataset(root)
    messages = " ".join(str(r.message) for r in record)
    assert "notes.txt" in messages and ".DS_Store" in messages
    assert len(ds) == 3


def test_no_warning_for_clean_folder(tmp_path):
    root = make_custom(tmp_path / "d")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CustomDataset(root)


def test_same_name_twice_is_an_error(tmp_path):
    root = make_custom(tmp_path / "d")
    write_rgb(root / "images" / "a.png")
    msg = error_of(lambda: CustomDataset(root))
    assert "a.jpg" in msg and "a.png" in msg


# -------------------------------------------------------------------------------------- CompositionDataset

def make_composition(root: Path, n_fg: int = 2, n_bg: int = 3) -> tuple[Path, Path, Path]:
    for i in range(n_fg):
        write_rgb(root / "fg" / f"fg{i}.png", seed=i)
        write_gray(root / "alpha" / f"fg{i}.png", disc_alpha(seed=i))
    for j in range(n_bg):
        write_rgb(root / "bg" / f"bg{j}.jpg", h=H // 2 + 5 * j, w=W // 2 + 7 * j, seed=10 + j)
    return root / "fg", root / "alpha", root / "bg"


def test_composition_dataset(tmp_path):
    ds = CompositionDataset(*make_composition(tmp_path), n_bg=3, seed=1)
    assert len(ds) == 6
    for i in range(len(ds)):
        s = ds[i]
        assert s["image"].shape == s["fg"].shape == s["bg"].shape == (H, W, 3)
        expected = s["alpha"][..., None] * s["fg"] + (1 - s["alpha"][..., None]) * s["bg"]
        np.testing.assert_allclose(s["image"], expected, atol=1e-5)
        assert s["name"].startswith(f"fg{i // 3}+bg")
    assert len({ds.background_index(i) for i in range(3)}) == 3  # one foreground, three backgrounds
    assert [ds.background_index(i) for i in range(6)] == [ds.background_index(i) for i in range(6)]


def test_cover_crop_scales_backgrounds_to_just_cover():
    ramp = np.tile(np.linspace(0, 1, 2 * W, dtype=np.float32)[None, :, None], (3 * H, 1, 3))  # (3H, 2W)
    out = cover_crop(ramp, (H, W), np.random.default_rng(0))  # scaled by 1/2: the full width remains
    assert out.shape == (H, W, 3)
    assert out[0, 0, 0] < 0.05 and out[0, -1, 0] > 0.95
    small = cover_crop(ramp[:5, :4], (H, W), np.random.default_rng(0))  # enlarged to cover
    assert small.shape == (H, W, 3)


def test_composition_dataset_checks_pairs(tmp_path):
    fg_dir, alpha_dir, bg_dir = make_composition(tmp_path)
    write_rgb(fg_dir / "extra.png")
    assert "extra.png" in error_of(lambda: CompositionDataset(fg_dir, alpha_dir, bg_dir))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert str(empty) in error_of(lambda: CompositionDataset(fg_dir, alpha_dir, empty))


def test_composition_with_transforms_stays_consistent(tmp_path):
    ds = CompositionDataset(*make_composition(tmp_path), n_bg=2, transform=train_transforms(16))
    s = ds[3]
    assert s["image"].shape == (16, 16, 3)
    np.testing.assert_allclose(s["image"], composite(s["alpha"], s["fg"], s["bg"]), atol=1e-5)


# ---------------------------------------------------------------------------------------- reproducibility

def test_same_seed_same_sample_any_order(tmp_path):
    root = make_custom(tmp_path / "d")
    a = CustomDataset(root, transform=train_transforms(16), seed=5)
    b = CustomDataset(root, transform=train_transforms(16), seed=5)
    forward = [a[i]["image"] for i in range(3)]
    backward = [b[i]["image"] for i in reversed(range(3))][::-1]
    for x, y in zip(forward, backward, strict=True):
        assert np.array_equal(x, y)
    c = CustomDataset(root, transform=train_transforms(16), seed=6)
    assert not all(np.array_equal(x, c[i]["image"]) for i, x in enumerate(forward))
    a.set_epoch(1)
    assert not all(np.array_equal(x, a[i]["image"]) for i, x in enumerate(forward))


def _batches(ds, workers: int) -> list[dict]:
    loader = torch.utils.data.DataLoader(ds, batch_size=2, shuffle=False, num_workers=workers,
                                         collate_fn=collate)
    return list(loader)


def test_dataloader_workers_give_identical_batches(tmp_path):
    custom = CustomDataset(make_custom(tmp_path / "d"), transform=train_transforms(16), seed=2)
    comp = CompositionDataset(*make_composition(tmp_path / "c"), n_bg=2, transform=train_transforms(16))
    synth = SyntheticMattingDataset(4, size=40, seed=1, transform=train_transforms(16))
    datasets = torch.utils.data.ConcatDataset([custom, comp, synth])
    serial, parallel = _batches(datasets, 0), _batches(datasets, 2)
    assert len(serial) == len(parallel) == 6
    for x, y in zip(serial, parallel, strict=True):
        assert x["name"] == y["name"]
        for key in ("image", "alpha", "trimap"):
            assert torch.equal(x[key], y[key])
        assert x["image"].shape[1:] == (3, 16, 16) and x["trimap"].shape[1:] == (1, 16, 16)
