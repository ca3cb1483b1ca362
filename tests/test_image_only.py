"""Image-only matting (``input="image"``): trained on images and masks, it mattes a photo by itself.

A tiny folder in the seed's layout (``images/`` + ``masks/``): bright discs on a dark textured background.
The model trains and its loss falls, predicts any size from the image alone, round-trips through a
checkpoint and ONNX, and the CLI's predict and evaluate run it without a trimap.
"""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from deepmatting import DeepMatting, predict
from deepmatting.config import ConfigError, ModelConfig, TrainConfig
from deepmatting.train import train

pytestmark = pytest.mark.usefixtures("one_thread")


def _disc_photo(rng: np.random.Generator, size: int = 56) -> tuple[np.ndarray, np.ndarray]:
    """``HxWx3`` uint8 photo of a bright disc on a dark noisy background, and its ``HxW`` uint8 mask."""
    yy, xx = np.mgrid[0:size, 0:size]
    (cy, cx), r = rng.uniform(0.3, 0.7, 2) * size, rng.uniform(0.15, 0.3) * size
    alpha = np.clip(r - np.hypot(yy - cy, xx - cx), 0, 1)
    bg = 0.15 + 0.1 * rng.random((size, size, 3))
    fg = np.array([0.9, 0.8, 0.3]) + 0.05 * rng.random((size, size, 3))
    image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    return (image * 255).round().astype(np.uint8), (alpha * 255).round().astype(np.uint8)


def _folder(root, n: int, seed: int):
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        image, mask = _disc_photo(rng)
        Image.fromarray(image).save(root / "images" / f"p{i}.png")
        Image.fromarray(mask).save(root / "masks" / f"p{i}.png")
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A light-unet trained image-only on 8 disc photos for 30 epochs: its run folder and summary."""
    root = tmp_path_factory.mktemp("image_only")
    data, val = _folder(root / "train", 8, seed=0), _folder(root / "val", 2, seed=1)
    cfg = TrainConfig(model=ModelConfig(width=0.5, input="image"), data=str(data), val=str(val), epochs=30,
                      batch_size=4, lr=5e-3, crop=48, workers=0, seed=0, device="cpu", checkpoint_every=0,
                      val_every=10)
    summary = train(cfg, root / "run", progress=False)
    return root, summary


def test_an_image_only_model_trains_and_its_loss_falls(trained):
    root, summary = trained
    records = [json.loads(line) for line in (root / "run" / "metrics.jsonl").read_text().splitlines()]
    assert summary["steps"] == 60
    assert records[-1]["train_loss"] < 0.8 * records[0]["train_loss"], records
    model = DeepMatting.from_checkpoint(root / "run" / "best.pt")
    assert model.config.input == "image" and model.in_channels == 3


def test_it_predicts_any_size_from_the_image_alone_and_round_trips(trained, tmp_path):
    root, _ = trained
    model = DeepMatting.from_checkpoint(root / "run" / "best.pt")
    image = np.random.default_rng(3).random((37, 53, 3)).astype(np.float32)
    alpha = predict(image, model=model)
    assert alpha.shape == (37, 53) and alpha.dtype == np.float32 and 0 <= alpha.min() <= alpha.max() <= 1
    with pytest.warns(UserWarning, match="reads the image alone"):
        with_trimap = predict(image, np.full((37, 53), 255, np.uint8), model=model)
    np.testing.assert_array_equal(with_trimap, alpha)  # the trimap is ignored, not pasted in
    model.save(tmp_path / "again.pt")
    np.testing.assert_array_equal(predict(image, model=DeepMatting.from_checkpoint(tmp_path / "again.pt")),
                                  alpha)
    with torch.no_grad():
        raw = model.eval()(torch.from_numpy(image.transpose(2, 0, 1)[None].copy()))
    assert raw.shape == (1, 1, 37, 53)


def test_the_onnx_graph_reads_the_image_alone(trained, tmp_path):
    pytest.importorskip("onnxruntime")
    from deepmatting.backends import OnnxBackend
    from deepmatting.export import export_onnx

    root, _ = trained
    model = DeepMatting.from_checkpoint(root / "run" / "best.pt")
    backend = OnnxBackend(export_onnx(model, tmp_path / "image_only.onnx"))
    assert backend.input == "image" and backend.input_names == ("image",)
    image = np.random.default_rng(4).random((45, 61, 3)).astype(np.float32)
    np.testing.assert_allclose(predict(image, backend=backend), predict(image, model=model), atol=1e-4)


def test_it_separates_the_disc_better_than_a_constant(trained):
    """Sixty steps on eight photos: the bright disc is found without a guide (whole-image MAD well under
    the best constant's)."""
    root, _ = trained
    model = DeepMatting.from_checkpoint(root / "run" / "best.pt")
    image, mask = _disc_photo(np.random.default_rng(7))
    gt = mask / 255.0
    mad = np.abs(predict(image, model=model) - gt).mean()
    assert mad < 0.7 * np.abs(np.median(gt) - gt).mean()


@pytest.fixture
def cli(capsys):
    """``deepmatting ARGS`` in this process: ``(exit code, stdout, stderr)``."""
    from deepmatting.cli import main

    def run(*args):
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err
    return run


def test_cli_predict_and_evaluate_without_a_trimap(trained, tmp_path, cli):
    root, _ = trained
    ckpt = str(root / "run" / "best.pt")
    code, _, err = cli("predict", "--checkpoint", ckpt, "--image", str(root / "val" / "images"), "--out",
                       str(tmp_path / "out"), "--figure", "--device", "cpu")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        f"p{i}_{kind}.png" for i in range(2) for kind in ("alpha", "cutout", "figure")]
    code, _, err = cli("predict", "--checkpoint", ckpt, "--image", str(root / "val" / "images" / "p0.png"),
                       "--mask", str(root / "val" / "masks" / "p0.png"), "--out", str(tmp_path / "o2"))
    assert code == 0 and "--mask is ignored" in err
    report = tmp_path / "eval.json"
    code, out, err = cli("evaluate", "--checkpoint", ckpt, "--data", str(root / "val"), "--json", str(report),
                         "--device", "cpu")
    assert code == 0, err
    assert "MAD" in out and "reads the image alone" in out
    result = json.loads(report.read_text())
    assert result["trimaps"] == "generated" and 0 <= result["mean"]["mad"] <= 1
    assert [sorted(r) for r in result["images"]][0] == sorted(
        ["name", "sad", "mse", "grad", "conn", "mad", "mse_whole", "seconds"])


def test_a_guide_folder_given_to_an_image_only_model_skips_no_image(trained, tmp_path, cli):
    """The guides are ignored, so an image without one is matted too (not skipped for its missing guide)."""
    root, _ = trained
    (tmp_path / "masks").mkdir()
    Image.open(root / "val" / "masks" / "p0.png").save(tmp_path / "masks" / "p0.png")  # none for p1
    code, _, err = cli("predict", "--checkpoint", str(root / "run" / "best.pt"), "--image",
                       str(root / "val" / "images"), "--mask", str(tmp_path / "masks"), "--out",
                       str(tmp_path / "out"), "--outputs", "alpha", "--device", "cpu")
    assert code == 0, err
    assert "--mask is ignored" in err and "skipped" not in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p0_alpha.png", "p1_alpha.png"]


def test_a_trimap_model_without_a_guide_names_both_flags(tmp_path, cli):
    image = tmp_path / "photo.png"
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(image)
    code, _, err = cli("predict", "--image", str(image), "--out", str(tmp_path / "out"))
    assert code == 2 and "Traceback" not in err
    assert "--trimap" in err and "--mask" in err and "--input image" in err
    assert not (tmp_path / "out").exists()


def test_models_with_a_classical_prior_cannot_be_image_only():
    for arch in ("effnet-cf", "cf-knn-fusion"):
        with pytest.raises(ConfigError, match="needs a trimap"):
            DeepMatting(arch=arch, input="image")
    with pytest.raises(ConfigError, match="expected one of trimap, mask, image"):
        ModelConfig(input="photo")


def test_the_page_api_predicts_from_the_image_alone(trained):
    import base64
    import io

    from deepmatting.inference import load_backend
    from deepmatting.serve.app import MattingApp

    root, _ = trained
    app = MattingApp(load_backend(root / "run" / "best.pt", device="cpu"), examples=0)
    assert app.info()["input"] == "image"
    image, mask = _disc_photo(np.random.default_rng(9))

    def png(a):
        buffer = io.BytesIO()
        Image.fromarray(a).save(buffer, "PNG")
        return base64.b64encode(buffer.getvalue()).decode()

    answer = app.predict({"image": png(image)})
    assert answer["guide"] == "none" and answer["alpha"].startswith("data:image/png") and "note" not in answer
    noted = app.predict({"image": png(image), "mask": png(mask)})
    assert "ignored" in noted["note"] and noted["alpha"] == answer["alpha"]
