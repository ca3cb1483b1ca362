"""The default model that ships inside the package: present, small, loaded when no model is given."""

import numpy as np
import pytest
import torch

from deepmatting import DeepMatting, predict
from deepmatting.checkpoint import default_weights


def test_fast_weights_ship_and_load():
    weights = default_weights("fast")
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


def _noise_with_a_band(h: int, w: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A uint8 HxWx3 noise image and a trimap: background left, foreground right, unknown between."""
    image = np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)
    trimap = np.zeros((h, w), np.uint8)
    trimap[:, w // 2:] = 255
    trimap[:, w // 2 - 6: w // 2 + 6] = 128
    return image, trimap


def test_fusion_weights_ship_with_their_provenance_and_are_the_default():
    from deepmatting.checkpoint import DEFAULT_QUALITY

    assert DEFAULT_QUALITY == "fusion"
    weights = default_weights("fusion")
    assert weights is not None, "src/deepmatting/weights/fusion.pt is missing (make pretrained INSTALL=1)"
    with weights as path:
        model = DeepMatting.from_checkpoint(path)
        raw = torch.load(path, map_location="cpu", weights_only=True)
    assert model.config.arch == "cf-knn-fusion" and raw["recipe"] == "fusion" and raw["steps"] == 1000
    assert len(raw["trained_on"]) == 14 and raw["held_out"] == []  # the final model: all 14 photos


@pytest.mark.parametrize("quality", ["fast", None, "best", "fusion"])
def test_the_shipped_models_predict_without_a_model_given(quality):
    torch.set_num_threads(1)
    image, trimap = _noise_with_a_band(45, 61, seed=0)
    alpha = predict(image, trimap) if quality is None else predict(image, trimap, quality=quality)
    assert alpha.shape == (45, 61) and alpha.dtype == np.float32 and np.isfinite(alpha).all()
    assert (alpha[trimap == 0] == 0).all() and (alpha[trimap == 255] == 1).all()
    assert 0 <= alpha.min() and alpha.max() <= 1
