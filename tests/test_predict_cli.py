"""``deepmatting predict``: folders with a corrupt file, masks, 16-bit output, clear errors."""

import argparse

import numpy as np
import pytest
import torch
from PIL import Image

from deepmatting import DeepMatting
from deepmatting import inference as inf
from deepmatting.commands import predict as cmd

pytestmark = pytest.mark.usefixtures("one_thread")


def _run(*argv):
    parser = argparse.ArgumentParser(prog="deepmatting predict")
    cmd.add_arguments(parser)
    return cmd.run(parser.parse_args([str(a) for a in argv]))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "model.pt"
    DeepMatting().save(path)
    return path


def _write_sample(folder_images, folder_guides, name, h=48, w=64, seed=0, mask=False):
    rng = np.random.default_rng(seed)
    folder_images.mkdir(parents=True, exist_ok=True)
    folder_guides.mkdir(parents=True, exist_ok=True)
    Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).save(folder_images / f"{name}.png")
    guide = np.zeros((h, w), np.uint8)
    guide[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = 255
    if not mask:
        guide[h // 4 - 4: h // 4 + 4] = 128
    Image.fromarray(guide).save(folder_guides / f"{name}.png")
    return guide


def test_folder_with_a_corrupt_file(tmp_path, checkpoint, capsys):
    images, trimaps, out = tmp_path / "images", tmp_path / "trimaps", tmp_path / "out"
    for i, name in enumerate(("a", "broken", "c")):
        _write_sample(images, trimaps, name, seed=i)
    data = (images / "broken.png").read_bytes()
    (images / "broken.png").write_bytes(data[: len(data) // 2])  # truncated PNG
    (images / "notes.txt").write_text("not an image")
    rc = _run("--checkpoint", checkpoint, "--image", images, "--trimap", trimaps, "--out", out, "--figure")
    captured = capsys.readouterr()
    assert rc == 1
    assert "broken.png" in captured.err and "truncated" in captured.err
    assert f"note: {images}: left out 1 entry that is not an image file: notes.txt" in captured.err  # said
    assert "notes.txt:" not in captured.err  # but not counted as a failed image
    for name in ("a", "c"):
        for suffix in ("alpha", "cutout", "figure"):
            assert (out / f"{name}_{suffix}.png").is_file()
    assert not list(out.glob("broken_*")) and str(out) in captured.out
    with Image.open(out / "a_cutout.png") as im:
        assert im.mode == "RGBA" and im.size == (64, 48)
    with Image.open(out / "a_alpha.png") as im:
        alpha = np.asarray(im)
    trimap = np.asarray(Image.open(trimaps / "a.png"))
    assert alpha.dtype == np.uint8 and (alpha[trimap == 0] == 0).all() and (alpha[trimap == 255] == 255).all()


def test_missing_trimap_is_reported_and_fails(tmp_path, checkpoint, capsys):
    images, trimaps, out = tmp_path / "images", tmp_path / "trimaps", tmp_path / "out"
    _write_sample(images, trimaps, "a")
    _write_sample(images, tmp_path / "elsewhere", "lonely")
    assert _run("--checkpoint", checkpoint, "--image", images, "--trimap", trimaps, "--out", out) == 1
    assert "lonely.png" in capsys.readouterr().err
    assert (out / "a_alpha.png").is_file()


def test_mask_and_16bit_alpha(tmp_path, checkpoint):
    images, masks, out = tmp_path / "images", tmp_path / "masks", tmp_path / "out"
    mask = _write_sample(images, masks, "m", mask=True)
    rc = _run("--checkpoint", checkpoint, "--image", images / "m.png", "--mask", masks / "m.png",
              "--out", out, "--alpha-16bit", "--mask-band", "3")
    assert rc == 0
    with Image.open(out / "m_alpha.png") as im:
        assert im.mode.startswith("I")
        alpha = np.asarray(im)
    assert alpha.max() == 65535 and alpha.min() == 0
    levels = np.unique(alpha)
    assert ((levels % 257) != 0).any()  # true 16-bit values, not 8-bit ones scaled up
    # far from the mask's edge the alpha is the mask
    expected = inf.predict(np.asarray(Image.open(images / "m.png")), mask=mask,
                           model=DeepMatting.from_checkpoint(checkpoint), mask_band=3)
    np.testing.assert_allclose(alpha / 65535, expected, atol=1 / 65535 + 1e-6)


def test_clear_errors(tmp_path, checkpoint, capsys, ship):
    images, trimaps, out = tmp_path / "images", tmp_path / "trimaps", tmp_path / "out"
    _write_sample(images, trimaps, "a")
    assert _run("--checkpoint", checkpoint, "--image", images, "--out", out) == 2
    err = capsys.readouterr().err
    assert "--trimap" in err and "--mask" in err and "rembg i -om" in err  # says where a mask comes from
    with ship({}):  # a build that ships no model
        assert _run("--image", images, "--trimap", trimaps, "--out", out) == 2
    assert "no default model ships" in capsys.readouterr().err
    missing = tmp_path / "nope"
    assert _run("--checkpoint", checkpoint, "--image", missing, "--trimap", trimaps, "--out", out) == 2
    assert "no such file" in capsys.readouterr().err
    one_file = trimaps / "a.png"
    assert _run("--checkpoint", checkpoint, "--image", images, "--trimap", one_file, "--out", out) == 2
    assert "folder" in capsys.readouterr().err

    torch.manual_seed(0)
    DeepMatting(input="mask").save(tmp_path / "mask_model.pt")
    assert _run("--checkpoint", tmp_path / "mask_model.pt", "--image", images, "--trimap", trimaps,
                "--out", out) == 2
    assert "--mask" in capsys.readouterr().err


def test_registered_in_the_cli():
    from deepmatting.cli import SUBCOMMANDS

    assert "predict" in SUBCOMMANDS


def test_outputs_background_and_derived_trimap(tmp_path, checkpoint, capsys):
    images, masks, out = tmp_path / "images", tmp_path / "masks", tmp_path / "out"
    _write_sample(images, masks, "m", mask=True)
    inputs = ("--checkpoint", checkpoint, "--image", images / "m.png", "--mask", masks / "m.png",
              "--out", out)
    rc = _run(*inputs, "--outputs", "cutout,trimap", "--background", "white", "--mask-band", "4")
    captured = capsys.readouterr()
    assert rc == 0 and f"model: light-unet (PyTorch, {checkpoint})" in captured.err
    assert sorted(p.name for p in out.iterdir()) == ["m_cutout.jpg", "m_trimap.png"]  # only what was asked
    trimap = np.asarray(Image.open(out / "m_trimap.png"))
    assert set(np.unique(trimap).tolist()) == {0, 128, 255}
    jpeg = np.asarray(Image.open(out / "m_cutout.jpg"))
    assert jpeg.shape == (48, 64, 3)
    assert (jpeg[trimap == 0].mean(axis=0) > 250).all()  # white where the alpha is 0 (up to JPEG ringing)
    assert _run(*inputs, "--outputs", "alpha,magic") == 2
    assert "choose from alpha, cutout, figure, trimap" in capsys.readouterr().err
    assert _run(*inputs, "--background", "not-a-colour") == 2
    assert "not a colour" in capsys.readouterr().err


def test_devices_are_checked_with_a_message(tmp_path, checkpoint, capsys):
    images, trimaps = tmp_path / "images", tmp_path / "trimaps"
    _write_sample(images, trimaps, "a")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    rc = _run("--checkpoint", checkpoint, "--image", images, "--trimap", trimaps, "--out", tmp_path / "o",
              "--device", "cuda:1")
    assert rc == 2 and "cuda:1" in capsys.readouterr().err


def test_an_output_folder_that_is_an_input_folder_is_refused(tmp_path, checkpoint, capsys):
    images, trimaps = tmp_path / "images", tmp_path / "trimaps"
    _write_sample(images, trimaps, "a")
    for out in (images, trimaps):
        assert _run("--checkpoint", checkpoint, "--image", images, "--trimap", trimaps, "--out", out) == 2
        assert "would be mixed with the inputs" in capsys.readouterr().err
    assert sorted(p.name for p in images.iterdir()) == ["a.png"]


def test_an_output_file_that_would_replace_an_input_is_refused(tmp_path, checkpoint, capsys):
    _write_sample(tmp_path / "images", tmp_path / "guides", "cat")
    trimap = (tmp_path / "guides" / "cat.png").rename(tmp_path / "guides" / "cat_alpha.png")  # an output name
    before = trimap.read_bytes()
    rc = _run("--checkpoint", checkpoint, "--image", tmp_path / "images" / "cat.png", "--trimap", trimap,
              "--out", tmp_path / "guides")
    assert rc == 2 and "writing cat_alpha.png would replace an input file" in capsys.readouterr().err
    assert trimap.read_bytes() == before
    rc = _run("--checkpoint", checkpoint, "--image", tmp_path / "images" / "cat.png", "--trimap", trimap,
              "--out", tmp_path / "out")
    assert rc == 0 and (tmp_path / "out" / "cat_alpha.png").is_file()


def test_outputs_are_written_atomically(tmp_path, checkpoint, monkeypatch, capsys):
    """A write that fails midway leaves no file under the final name (and the error names the file)."""
    images, trimaps, out = tmp_path / "images", tmp_path / "trimaps", tmp_path / "out"
    _write_sample(images, trimaps, "a")

    def half_written(self, fp, format=None, **params):
        fp.write(b"\x89PNG partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", half_written)
    assert _run("--checkpoint", checkpoint, "--image", images, "--trimap", trimaps, "--out", out) == 1
    assert list(out.iterdir()) == []
    err = capsys.readouterr().err
    assert "a_alpha.png" in err and "no space left" in err, err
