"""The demo end to end with a seconds-long budget, and the closed-form baseline on a tiny image."""

import json

import numpy as np
import pytest
from PIL import Image

from deepmatting.demo import run_demo

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.slow
def test_tiny_demo_writes_everything(tmp_path):
    out = tmp_path / "demo"
    result = run_demo(out, max_minutes=0.02, train_samples=8, heldout=2, size=64, crop=48, batch_size=2,
                      workers=0, figures=1, classical=(), progress=False)
    for name in ("best.pt", "last.pt", "metrics.json", "curves.png", "config.json", "metrics.jsonl"):
        assert (out / name).exists(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"model", "trimap"}
    for method in metrics.values():
        assert {"sad", "mse", "grad", "conn"} <= set(method)
        assert all(np.isfinite(method[k]) for k in ("sad", "mse", "grad", "conn"))
    assert len(list((out / "heldout" / "images").iterdir())) == 2
    figure = Image.open(result["paths"]["figures"][0])
    assert figure.width >= 4 * figure.height  # five panels side by side (with the ground truth)
    assert result["train"]["steps"] >= 1


@pytest.mark.slow
def test_closed_form_baseline_on_a_tiny_composite():
    pytest.importorskip("pymatting")
    from deepmatting.evaluate import baseline_predictor
    from deepmatting.scoring import score_dataset

    h, w = 24, 32
    alpha = np.zeros((h, w), np.float32)
    alpha[:, 16:] = 1.0
    alpha[:, 14:18] = np.linspace(0.2, 0.8, 4, dtype=np.float32)
    fg, bg = np.array([0.9, 0.2, 0.1], np.float32), np.array([0.1, 0.3, 0.9], np.float32)
    image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    trimap = np.zeros((h, w), np.uint8)
    trimap[:, 18:] = 255
    trimap[:, 12:20] = 128
    sample = {"image": image, "alpha": alpha, "trimap": trimap, "name": "two-colour"}
    closed = score_dataset(baseline_predictor("closed-form"), [sample], progress=False)
    floor = score_dataset(baseline_predictor("trimap"), [sample], progress=False)
    # two flat colours: the local linear model is exact, closed-form recovers the alpha almost perfectly
    assert closed["mean"]["sad"] < 0.1 * floor["mean"]["sad"]
