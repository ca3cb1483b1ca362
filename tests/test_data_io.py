"""Readers: every file flavour a user may hand us, and the errors for the ones we cannot use."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from deepmatting.data import DatasetError, image_size, read_alpha, read_image, read_trimap


def ramp16(h: int = 8, w: int = 16) -> np.ndarray:
    """uint16 values 1 level apart in places: 8-bit precision could not tell them apart."""
    return (np.arange(h * w, dtype=np.uint16).reshape(h, w) * 97 + 30000).astype(np.uint16)


def test_rgb_png_values(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (6, 9, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert out.shape == (6, 9, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, arr / 255, atol=1e-6)


def test_exif_rotated_jpeg(tmp_path):
    # Stored 20 high x 40 wide, red block at the stored top-left; orientation 6 = rotate 90 degrees
    # clockwise to display, so the block must end up at the displayed top-right of a 40 x 20 image.
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[...] = (0, 0, 255)
    arr[:8, :8] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(arr).save(tmp_path / "rot.jpg", quality=95, exif=exif.tobytes())
    out = read_image(tmp_path / "rot.jpg")
    assert out.shape == (40, 20, 3)
    assert image_size(tmp_path / "rot.jpg") == (40, 20)  # header only, orientation applied
    assert out[3, 16, 0] > 0.8 and out[3, 16, 2] < 0.2  # red, top-right
    assert out[3, 3, 0] < 0.2 and out[36, 3, 2] > 0.8  # blue elsewhere


def test_grayscale_image_becomes_rgb(tmp_path):
    arr = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    Image.fromarray(arr, "L").save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    assert out.shape == (8, 8, 3)
    for c in range(3):
        np.testing.assert_allclose(out[..., c], arr / 255, atol=1e-6)


def test_rgba_image_drops_alpha_without_premultiplying(tmp_path):
    arr = np.zeros((4, 5, 4), np.uint8)
    arr[..., :3] = (200, 100, 50)
    arr[..., 3] = 0  # fully transparent: the colour must still be read as stored
    Image.fromarray(arr, "RGBA").save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert out.shape == (4, 5, 3)
    np.testing.assert_allclose(out[0, 0], np.array([200, 100, 50]) / 255, atol=1e-6)


def test_palette_image(tmp_path):
    im = Image.new("P", (6, 4))
    im.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    im.putpixel((2, 1), 1)
    im.save(tmp_path / "p.png")
    out = read_image(tmp_path / "p.png")
    np.testing.assert_allclose(out[0, 0], [1, 0, 0])
    np.testing.assert_allclose(out[1, 2], [0, 1, 0])


def test_16bit_png_image_keeps_precision(tmp_path):
    arr = ramp16()
    Image.fromarray(arr).save(tmp_path / "i16.png")
    assert Image.open(tmp_path / "i16.png").mode.startswith("I")
    out = read_image(tmp_path / "i16.png")
    assert out.shape == (8, 16, 3)
    np.testing.assert_allclose(out[..., 1], arr / 65535, atol=1e-6)
    assert len(np.unique(out[..., 0])) == arr.size  # 8-bit would merge neighbouring values


def test_16bit_mask_keeps_precision(tmp_path):
    arr = ramp16()
    Image.fromarray(arr).save(tmp_path / "m16.png")
    out = read_alpha(tmp_path / "m16.png")
    assert out.shape == (8, 16) and out.dtype == np.float32
    np.testing.assert_allclose(out, arr / 65535, atol=1e-6)


def test_float_tiff_mask(tmp_path):
    arr = np.linspace(0, 1, 30, dtype=np.float32).reshape(5, 6)
    Image.fromarray(arr, "F").save(tmp_path / "m.tif")
    np.testing.assert_allclose(read_alpha(tmp_path / "m.tif"), arr, atol=1e-6)


def test_gray_mask_and_rgb_equal_mask(tmp_path):
    arr = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    Image.fromarray(arr, "L").save(tmp_path / "l.png")
    Image.fromarray(np.repeat(arr[..., None], 3, 2)).save(tmp_path / "rgb.png")
    np.testing.assert_allclose(read_alpha(tmp_path / "l.png"), arr / 255, atol=1e-6)
    np.testing.assert_allclose(read_alpha(tmp_path / "rgb.png"), arr / 255, atol=1e-6)


def test_rgb_mask_saved_as_jpeg_is_gray(tmp_path):
    arr = np.tile(np.linspace(0, 255, 32).astype(np.uint8), (16, 1))
    Image.fromarray(np.repeat(arr[..., None], 3, 2)).save(tmp_path / "m.jpg", quality=90)
    out = read_alpha(tmp_path / "m.jpg")
    assert out.shape == (16, 32)
    assert np.abs(out - arr / 255).max() < 0.05


def test_rgba_mask_uses_alpha_channel(tmp_path):
    arr = np.zeros((4, 6, 4), np.uint8)
    arr[..., :3] = (255, 0, 0)  # colour channels are irrelevant
    arr[..., 3] = np.arange(24, dtype=np.uint8).reshape(4, 6) * 10
    Image.fromarray(arr, "RGBA").save(tmp_path / "cutout.png")
    np.testing.assert_allclose(read_alpha(tmp_path / "cutout.png"), arr[..., 3] / 255, atol=1e-6)


def test_rgba_mask_with_opaque_alpha_uses_gray_channels(tmp_path):
    arr = np.full((4, 6, 4), 255, np.uint8)
    arr[..., :3] = (np.arange(24, dtype=np.uint8).reshape(4, 6) * 10)[..., None]
    Image.fromarray(arr, "RGBA").save(tmp_path / "m.png")
    np.testing.assert_allclose(read_alpha(tmp_path / "m.png"), arr[..., 0] / 255, atol=1e-6)


def test_colour_mask_is_not_a_matte(tmp_path):
    arr = np.zeros((8, 8, 3), np.uint8)
    arr[..., 0] = 255
    arr[..., 1] = np.arange(8, dtype=np.uint8) * 30
    Image.fromarray(arr).save(tmp_path / "colour_mask.png")
    with pytest.raises(DatasetError, match="not a matte") as e:
        read_alpha(tmp_path / "colour_mask.png")
    assert "colour_mask.png" in str(e.value) and "grayscale" in str(e.value)


@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_truncated_file_names_the_file(tmp_path, ext):
    arr = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    path = tmp_path / f"broken.{ext}"
    Image.fromarray(arr).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="broken") as e:
        read_image(path)
    assert "truncated" in str(e.value)
    with pytest.raises(DatasetError, match="broken"):
        read_alpha(path)


def test_missing_and_non_image_files(tmp_path):
    with pytest.raises(DatasetError, match="nope.png"):
        read_image(tmp_path / "nope.png")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(DatasetError, match="text.png"):
        read_image(tmp_path / "text.png")
    with pytest.raises(DatasetError, match="text.png"):
        image_size(tmp_path / "text.png")


def test_trimap_values_and_tolerance(tmp_path):
    arr = np.array([[0, 128, 255, 1, 2], [127, 130, 253, 254, 126]], np.uint8)
    Image.fromarray(arr, "L").save(tmp_path / "t.png")
    out = read_trimap(tmp_path / "t.png")
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[0, 128, 255, 0, 0], [128, 128, 255, 255, 128]])


def test_trimap_bad_values_are_listed(tmp_path):
    arr = np.zeros((4, 4), np.uint8)
    arr[0, 0], arr[1, 1], arr[2, 2] = 64, 200, 128
    Image.fromarray(arr, "L").save(tmp_path / "bad_trimap.png")
    with pytest.raises(DatasetError) as e:
        read_trimap(tmp_path / "bad_trimap.png")
    msg = str(e.value)
    assert "bad_trimap.png" in msg and "64" in msg and "200" in msg and "2 pixels" in msg


def test_trimap_from_rgb_and_16bit(tmp_path):
    arr = np.array([[0, 128, 255]], np.uint8)
    Image.fromarray(np.repeat(arr[..., None], 3, 2)).save(tmp_path / "rgb.png")
    Image.fromarray(arr.astype(np.uint16) * 257).save(tmp_path / "t16.png")
    np.testing.assert_array_equal(read_trimap(tmp_path / "rgb.png"), arr)
    np.testing.assert_array_equal(read_trimap(tmp_path / "t16.png"), arr)


def test_trimaps_from_other_tools_are_snapped(tmp_path):
    from deepmatting.data import as_trimap

    levels = np.array([[0.0, 128 / 255, 1.0]], np.float64)  # pymatting's load_image: 0.50196 for unknown
    assert as_trimap(levels).tolist() == [[0, 128, 255]]
    noisy = np.array([[0, 1, 2, 126, 130, 253, 255]], np.uint8)  # within 2 levels: silent
    assert as_trimap(noisy).tolist() == [[0, 0, 0, 128, 128, 255, 255]]
    jpeg = np.array([[9, 140, 119, 240, 0, 128]], np.uint8)  # JPEG ringing: snapped, with a count
    with pytest.warns(UserWarning, match="4 pixels were not exactly 0, 128 or 255"):
        assert as_trimap(jpeg).tolist() == [[0, 128, 128, 255, 0, 128]]
    Image.fromarray(np.tile(jpeg, (3, 1))).save(tmp_path / "t.png")
    with pytest.warns(UserWarning, match=r"t\.png: 12 pixels"):
        read_trimap(tmp_path / "t.png")
    with pytest.raises(DatasetError, match="far from background"):
        as_trimap(np.array([[64, 0]], np.uint8))  # a soft mask is not a trimap
