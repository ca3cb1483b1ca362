"""Evaluation: JSON shape and values on cases with a known answer."""

import json

import numpy as np
import pytest
from PIL import Image

from deepmatting import DeepMatting
from deepmatting.checkpoint import DEFAULT_QUALITY
from deepmatting.evaluate import baseline_predictor, evaluate, format_table
from deepmatting.scoring import score_dataset


def _sample(seed, h=24, w=30):
    rng = np.random.default_rng(seed)
    alpha = np.zeros((h, w), np.float32)
    alpha[:, w // 2 :] = 1.0
    alpha[:, w // 2 - 3 : w // 2 + 3] = rng.random((h, 6)).astype(np.float32)
    trimap = np.zeros((h, w), np.uint8)
    trimap[:, w // 2 :] = 255
    trimap[:, w // 2 - 5 : w // 2 + 5] = 128
    image = rng.random((h, w, 3)).astype(np.float32)
    return {"image": image, "alpha": alpha, "trimap": trimap, "name": f"s{seed}"}


def test_ground_truth_predictor_scores_zero():
    data = [_sample(0), _sample(1)]
    result = score_dataset(lambda s: s["alpha"], data, progress=False)
    assert result["accumulator"].count == 2 and [r["name"] for r in result["images"]] == ["s0", "s1"]
    for k in ("sad", "mse", "grad", "conn"):
        assert result["mean"][k] == 0.0


def test_trimap_baseline_value_by_hand():
    sample = _sample(0)
    result = score_dataset(baseline_predictor("trimap"), [sample], progress=False)
    unknown = sample["trimap"] == 128
    expected_sad = np.abs(0.5 - sample["alpha"][unknown]).sum() / 1000
    assert result["mean"]["sad"] == pytest.approx(expected_sad, rel=1e-5)
    assert "s0" in format_table({"model": result, "trimap": result})


def test_unknown_baseline_is_an_error():
    with pytest.raises(ValueError, match="closed-form"):
        baseline_predictor("magic")


def _write_folder(root, samples, trimaps=True):
    for sub in ("images", "masks") + (("trimaps",) if trimaps else ()):
        (root / sub).mkdir(parents=True)
    for s in samples:
        Image.fromarray((s["image"] * 255).astype(np.uint8)).save(root / "images" / f"{s['name']}.png")
        Image.fromarray((s["alpha"] * 255).round().astype(np.uint8)).save(root / "masks" / f"{s['name']}.png")
        if trimaps:
            Image.fromarray(s["trimap"]).save(root / "trimaps" / f"{s['name']}.png")


@pytest.mark.parametrize("trimaps", [True, False])
def test_evaluate_folder_json_shape(tmp_path, trimaps):
    _write_folder(tmp_path / "d", [_sample(0), _sample(1), _sample(2)], trimaps=trimaps)
    DeepMatting(width=0.5).save(tmp_path / "m.pt")
    lines = []
    report = evaluate(
        tmp_path / "d",
        tmp_path / "m.pt",
        device="cpu",
        baseline="trimap",
        json_path=tmp_path / "e.json",
        progress=False,
        printer=lines.append,
    )
    on_disk = json.loads((tmp_path / "e.json").read_text())
    assert on_disk == json.loads(json.dumps(report))
    assert on_disk["trimaps"] == ("given" if trimaps else "generated")
    assert set(on_disk["mean"]) == {"sad", "mse", "grad", "conn"}
    assert [r["name"] for r in on_disk["images"]] == ["s0", "s1", "s2"]
    assert all(set(r) >= {"name", "sad", "mse", "grad", "conn"} for r in on_disk["images"])
    assert on_disk["baseline"]["name"] == "trimap"
    assert any("trimaps " + on_disk["trimaps"] in line for line in lines)


@pytest.mark.parametrize("name", ["closed-form", "knn"])
def test_classical_baselines_use_the_package_solvers_without_pymatting(name, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pymatting", None)  # as if the extra were not installed
    rng = np.random.default_rng(0)
    alpha = np.zeros((24, 32), np.float32)
    alpha[:, 16:] = 1.0
    alpha[:, 14:18] = np.linspace(0, 1, 4)
    fg, bg = np.array([0.9, 0.2, 0.1]), np.array([0.1, 0.3, 0.8])
    image = (alpha[..., None] * fg + (1 - alpha[..., None]) * bg + rng.normal(0, 0.005, (24, 32, 3)))
    trimap = np.zeros((24, 32), np.uint8)
    trimap[:, 16:] = 255
    trimap[:, 12:20] = 128
    sample = {"image": np.clip(image, 0, 1).astype(np.float32), "trimap": trimap, "alpha": alpha}
    solved = score_dataset(baseline_predictor(name), [sample], progress=False)["mean"]["sad"]
    floor = score_dataset(baseline_predictor("trimap"), [sample], progress=False)["mean"]["sad"]
    assert solved < 0.3 * floor
    with pytest.raises(ImportError, match="pymatting"):
        baseline_predictor(f"pymatting-{name}")


def test_evaluate_says_which_images_the_model_was_trained_on(tmp_path, ship):
    _write_folder(tmp_path / "d", [_sample(0), _sample(1)])
    DeepMatting(width=0.5).save(tmp_path / "m.pt", trained_on=["/photos/images/s1.png", "/photos/x.png"])
    lines = []
    with ship({DEFAULT_QUALITY: tmp_path / "m.pt"}):
        report = evaluate(tmp_path / "d", device="cpu", progress=False, printer=lines.append)
    assert report["seen_in_training"] == ["s1"]
    assert any("1 of these 2 images were in the model's training set (s1)" in line for line in lines)
    DeepMatting(width=0.5).save(tmp_path / "mine.pt")  # a checkpoint that records nothing: no note
    lines.clear()
    assert evaluate(tmp_path / "d", tmp_path / "mine.pt", device="cpu", progress=False,
                    printer=lines.append)["seen_in_training"] == []
    assert not any("training set" in line for line in lines)
