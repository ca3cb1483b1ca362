"""The default model that ships inside the package: present, small, loaded when no model is given."""

import numpy as np
import torch

from deepmatting import DeepMatting, predict
from deepmatting.checkpoint import default_weights


def test_default_weights_ship_and_load():
    weights = default_weights()
    assert weights is not None, "src/deepmatting/weights/default.pt is missing (make pretrained)"
    with weights as path:
        assert path.stat().st_size <= 16 * 1024 * 1024  # float32 weights, no optimizer state
        model = DeepMatting.from_checkpoint(path)
        raw = torch.load(path, map_location="cpu", weights_only=True)
    assert model.config.arch == "effnet-lite0"
    assert raw.get("recipe") == "effnet" and "optimizer" not in raw
    # the shipped weights say which photos they saw, so their held-out scores can be checked
    assert raw["trained_on"] and not set(raw["held_out"]) & {p.rsplit("/", 1)[-1] for p in raw["trained_on"]}


def test_best_quality_weights_ship_and_load():
    weights = default_weights("best")
    assert weights is not None, "src/deepmatting/weights/best.pt is missing (recipe effnet-cf)"
    with weights as path:
        model = DeepMatting.from_checkpoint(path)
        raw = torch.load(path, map_location="cpu", weights_only=True)
    assert model.config.arch == "effnet-cf" and raw.get("recipe") == "effnet-cf"
    assert not set(raw["held_out"]) & {p.rsplit("/", 1)[-1] for p in raw["trained_on"]}


def test_predict_without_a_model_uses_the_default():
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (45, 61, 3), dtype=np.uint8)
    trimap = np.zeros((45, 61), np.uint8)
    trimap[:, 30:] = 255
    trimap[:, 24:36] = 128
    alpha = predict(image, trimap)
    assert alpha.shape == (45, 61) and alpha.dtype == np.float32
    assert (alpha[trimap == 0] == 0).all() and (alpha[trimap == 255] == 1).all()
    assert 0 <= alpha.min() and alpha.max() <= 1


def test_best_quality_predicts_with_the_shipped_refiner():
    torch.set_num_threads(1)
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (40, 52, 3), dtype=np.uint8)
    trimap = np.zeros((40, 52), np.uint8)
    trimap[:, 26:] = 255
    trimap[:, 20:32] = 128
    alpha = predict(image, trimap, quality="best")
    assert alpha.shape == (40, 52) and np.isfinite(alpha).all()
    assert (alpha[trimap == 0] == 0).all() and (alpha[trimap == 255] == 1).all()
