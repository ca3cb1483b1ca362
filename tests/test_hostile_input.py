"""Hostile input outside the server: bomb-like files, damaged checkpoints and ONNX files, broken weights,
output folders that cannot be made, file names that are not UTF-8. Each case once ended in a traceback or
in silently wrong output."""

import json
import os
import struct
import sys
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from deepmatting import DeepMatting, predict
from deepmatting.backends import TorchBackend
from deepmatting.checkpoint import CheckpointError
from deepmatting.cli import main
from deepmatting.data import DatasetError, read_image

pytestmark = pytest.mark.usefixtures("one_thread")


def _png_claiming(path, w, h, rows):
    """A valid PNG header and end chunk for a w x h RGB image, with pixel data for ``rows`` rows only."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = (b"\x00" + b"\x00" * (3 * w)) * rows
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def test_png_without_its_pixel_data_is_a_truncated_file(tmp_path):
    path = _png_claiming(tmp_path / "liar.png", 3000, 3000, rows=1)
    assert path.stat().st_size < 200
    with pytest.raises(DatasetError, match=r"liar\.png: truncated"):
        read_image(path)
    fine = _png_claiming(tmp_path / "fine.png", 40, 30, rows=30)
    assert read_image(fine).shape == (30, 40, 3)


def test_huge_images_are_refused_before_decoding(tmp_path):
    path = _png_claiming(tmp_path / "big.png", 9000, 9000, rows=1)
    with pytest.raises(DatasetError, match=r"big\.png: 9000x9000 is 81 MP, more than the limit of 50 MP"):
        read_image(path)
    with pytest.raises(DatasetError, match="more than the limit of 1 MP"):
        read_image(_png_claiming(tmp_path / "two.png", 2000, 1000, rows=1000), max_pixels=1_000_000)


def test_training_refuses_a_huge_dataset_image(tmp_path):
    from deepmatting.config import ModelConfig, TrainConfig
    from deepmatting.train import train

    root = tmp_path / "data"
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
    _png_claiming(root / "images" / "a.png", 9000, 9000, rows=1)
    _png_claiming(root / "masks" / "a.png", 9000, 9000, rows=1)
    cfg = TrainConfig(model=ModelConfig(width=0.5), data=str(root), epochs=1, batch_size=1, crop=32,
                      workers=0, device="cpu")
    with pytest.raises(DatasetError, match="more than the limit"):
        train(cfg, tmp_path / "run", progress=False)


@pytest.mark.parametrize("content", [
    {"model": [1, 2, 3], "config": {}},
    {"model": {"w": 1.0}, "config": {}},
    {"model": {}, "config": [1]},
    {"model": {}, "config": {"arch": 5}},
])
def test_malformed_checkpoints_are_checkpoint_errors(tmp_path, content, capsys):
    path = tmp_path / "bad.pt"
    torch.save(content, path)
    with pytest.raises(CheckpointError, match=r"bad\.pt"):
        DeepMatting.from_checkpoint(path)
    image = tmp_path / "i.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    Image.fromarray(np.full((8, 8), 128, np.uint8)).save(tmp_path / "t.png")
    for argv in (["predict", "--checkpoint", str(path), "--image", str(image), "--trimap",
                  str(tmp_path / "t.png"), "--out", str(tmp_path / "o")],
                 ["export", "--checkpoint", str(path), "--out", str(tmp_path / "m.onnx")]):
        assert main(argv) == 2
        assert "bad.pt" in capsys.readouterr().err


def _inputs(h=40, w=48):
    image = np.random.default_rng(0).random((h, w, 3), dtype=np.float32)
    trimap = np.full((h, w), 128, np.uint8)
    trimap[:8], trimap[-8:] = 0, 255
    return image, trimap


def test_non_finite_weights_never_become_an_alpha(tmp_path, capsys):
    model = DeepMatting(width=0.5)
    with torch.no_grad():
        next(model.decoder.parameters()).fill_(float("nan"))
    path = tmp_path / "nan.pt"
    model.save(path)
    image, trimap = _inputs()
    with pytest.raises(CheckpointError, match=r"nan\.pt.*non-finite"):
        predict(image, trimap, model=path)
    Image.fromarray((image * 255).astype(np.uint8)).save(tmp_path / "i.png")
    Image.fromarray(trimap).save(tmp_path / "t.png")
    rc = main(["predict", "--checkpoint", str(path), "--image", str(tmp_path / "i.png"), "--trimap",
               str(tmp_path / "t.png"), "--out", str(tmp_path / "out")])
    assert rc != 0 and "non-finite" in capsys.readouterr().err
    assert not (tmp_path / "out" / "i_alpha.png").exists()


def test_a_backend_of_the_wrong_shape_is_named():
    class Identity:  # what an ONNX graph with copied metadata but an Identity body returns
        pad_multiple, input = 32, "trimap"

        def __call__(self, image, trimap):
            return image

    image, trimap = _inputs()
    with pytest.raises(CheckpointError, match=r"Identity: returned an alpha of shape \(1, 3, 40, 48\)"):
        predict(image, trimap, backend=Identity())


@pytest.mark.parametrize("where", ["file", "proc"])
def test_an_output_folder_that_cannot_be_made_is_a_clear_error(tmp_path, capsys, where):
    model = tmp_path / "m.pt"
    DeepMatting(width=0.5).save(model)
    image, trimap = _inputs()
    Image.fromarray((image * 255).astype(np.uint8)).save(tmp_path / "i.png")
    Image.fromarray(trimap).save(tmp_path / "t.png")
    out = tmp_path / "a_file"
    out.write_text("taken")
    if where == "proc":
        out = "/proc/deepmatting-cannot-write-here"
    rc = main(["predict", "--checkpoint", str(model), "--image", str(tmp_path / "i.png"), "--trimap",
               str(tmp_path / "t.png"), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "--out" in err and "Traceback" not in err


@pytest.mark.skipif(sys.platform != "linux", reason="file names of raw bytes need a POSIX file system")
def test_non_utf8_file_names_give_strict_json(tmp_path):
    from deepmatting.evaluate import evaluate

    root = tmp_path / "d"
    for sub in ("images", "masks", "trimaps"):
        (root / sub).mkdir(parents=True)
    image, trimap = _inputs()
    name = os.fsdecode(b"caf\xe9.png")  # Latin-1 bytes: not UTF-8
    Image.fromarray((image * 255).astype(np.uint8)).save(root / "images" / name)
    Image.fromarray((trimap > 128).astype(np.uint8) * 255).save(root / "masks" / name)
    Image.fromarray(trimap).save(root / "trimaps" / name)
    model = tmp_path / "m.pt"
    DeepMatting(width=0.5).save(model)
    evaluate(root, model, device="cpu", json_path=tmp_path / "e.json", progress=False, printer=lambda s: None)
    text = (tmp_path / "e.json").read_bytes().decode("utf-8")  # strict: no lone surrogates
    assert json.loads(text)["images"][0]["name"] == "caf\ufffd"
    assert "\\udce9" not in text


def test_untrained_model_warns_and_loaded_ones_do_not(tmp_path, recwarn):
    TorchBackend(DeepMatting(width=0.5), device="cpu")
    assert any("neither trained nor loaded" in str(w.message) for w in recwarn.list)
    recwarn.clear()
    DeepMatting(width=0.5).save(tmp_path / "m.pt")
    TorchBackend(DeepMatting.from_checkpoint(tmp_path / "m.pt"), device="cpu")
    assert not any("neither trained" in str(w.message) for w in recwarn.list)


def test_a_config_asking_for_a_huge_model_is_refused_before_it_is_built(tmp_path):
    """``"width": 300`` in a normal file would need ~21 GB: it is out of ModelConfig's range, and a width in
    range that does not fit the weights is found by comparing shapes on the meta device first."""
    DeepMatting().save(tmp_path / "small.pt")
    ckpt = torch.load(tmp_path / "small.pt", weights_only=True)
    ckpt["config"]["width"] = 300.0
    torch.save(ckpt, tmp_path / "huge.pt")
    out_of_range = r"huge.pt: does not match its config .*width: 300.0 must be .*<= 4"
    with pytest.raises(CheckpointError, match=out_of_range):
        DeepMatting.from_checkpoint(tmp_path / "huge.pt")
    ckpt["config"]["width"] = 4.0
    torch.save(ckpt, tmp_path / "wide.pt")
    expected = r"wide.pt: does not match its config .*\(16, 6, 3, 3\) in the file"
    with pytest.raises(CheckpointError, match=expected):
        DeepMatting.from_checkpoint(tmp_path / "wide.pt")
