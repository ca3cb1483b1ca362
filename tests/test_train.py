"""Training: a short run learns, checkpoints are written and reload, resume continues where it stopped,
a non-finite loss stops cleanly, and two gloo processes under torchrun end with identical weights."""

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import deepmatting.train as training
from deepmatting import DeepMatting
from deepmatting.config import ModelConfig, TrainConfig
from deepmatting.train import TrainingError, batch_metrics, lr_factor, train

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_config(**overrides) -> TrainConfig:
    base = dict(
        model=ModelConfig(width=0.5),
        epochs=2,
        batch_size=4,
        lr=3e-3,
        crop=48,
        workers=0,
        seed=0,
        device="cpu",
        synthetic_train=16,
        synthetic_val=2,
        synthetic_size=48,
        checkpoint_every=0,
    )
    base.update(overrides)
    return TrainConfig(**base)


def test_batch_metrics_by_hand():
    pred = torch.tensor([[0.0, 0.5], [1.0, 0.2]]).view(1, 1, 2, 2)
    gt = torch.tensor([[1.0, 0.0], [1.0, 0.6]]).view(1, 1, 2, 2)
    trimap = torch.tensor([[0.0, 0.5], [1.0, 0.5]]).view(1, 1, 2, 2)
    sad, mse = batch_metrics(pred, gt, trimap)
    assert sad == pytest.approx((0.5 + 0.4) / 1000)
    assert mse == pytest.approx((0.25 + 0.16) / 2)


def test_lr_schedule_warms_up_and_decays():
    assert lr_factor(0.0, 0) < 0.02
    assert lr_factor(0.0, 1000) == pytest.approx(1.0)
    assert lr_factor(0.5, 1000) == pytest.approx(0.525)
    assert lr_factor(1.0, 1000) == pytest.approx(0.05)


def test_short_run_reduces_loss_and_writes_everything(tmp_path):
    cfg = tiny_config(epochs=6, synthetic_train=32)
    summary = train(cfg, tmp_path, progress=False)
    assert summary["epochs"] == 6 and summary["steps"] == 6 * 8
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert records[-1]["train_loss"] < 0.9 * records[0]["train_loss"], records
    assert min(r["val_sad"] for r in records[1:]) < records[0]["val_sad"], records
    assert all(math.isfinite(r[f"val_{k}"]) for r in records for k in ("sad", "mse", "grad", "conn"))
    for name in ("best.pt", "last.pt", "config.json", "curves.png"):
        assert (tmp_path / name).exists(), name
    assert json.loads((tmp_path / "config.json").read_text())["batch_size"] == 4
    last = torch.load(tmp_path / "last.pt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 6 and last["step"] == 48 and "optimizer" in last and "rng" in last
    best = torch.load(tmp_path / "best.pt", map_location="cpu", weights_only=True)
    assert best["best"]["value"] == min(r["val_sad"] for r in records)
    model = DeepMatting.from_checkpoint(tmp_path / "best.pt")
    assert model.config == DeepMatting(config=cfg.model).config  # the architecture's defaults filled in
    assert model.config.mean is not None


def test_resume_after_interruption_continues_at_the_right_step(tmp_path, monkeypatch):
    cfg = tiny_config(epochs=3, checkpoint_every=2)  # 4 steps per epoch
    original = training.set_learning_rate  # called once at the start of every step
    calls = {"n": 0}

    def crash_at_step_7(*args):
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt("simulated kill")
        return original(*args)

    monkeypatch.setattr(training, "set_learning_rate", crash_at_step_7)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path, progress=False)
    ckpt = torch.load(tmp_path / "last.pt", map_location="cpu", weights_only=True)
    state = ckpt["state"]
    assert (ckpt["epoch"], state["batch_in_epoch"], ckpt["step"]) == (1, 2, 6)  # lost only step 7's work
    monkeypatch.setattr(training, "set_learning_rate", original)
    resumed = train(cfg, tmp_path, resume=True, progress=False)
    assert resumed["steps"] == 12 and resumed["epochs"] == 3
    # the interrupted-and-resumed run ends exactly where an uninterrupted one does
    straight = train(cfg, tmp_path / "straight", progress=False)
    assert straight["weights_sha256"] == resumed["weights_sha256"]


def test_time_budget_stops_cleanly_with_best_and_last(tmp_path):
    cfg = tiny_config(epochs=1000, max_minutes=0.001)
    summary = train(cfg, tmp_path, progress=False)
    assert summary["stopped_on_budget"] and summary["steps"] >= 1
    assert (tmp_path / "best.pt").exists() and (tmp_path / "last.pt").exists()


def test_non_finite_loss_stops_with_a_clear_message(tmp_path, monkeypatch):
    train(tiny_config(epochs=1, synthetic_train=8), tmp_path, progress=False)
    before = (tmp_path / "last.pt").read_bytes()
    monkeypatch.setattr(
        "deepmatting.train.MattingLoss.forward",
        lambda self, pred, batch: {"total": pred.sum() * float("nan")},
    )
    with pytest.raises(TrainingError, match=r"diverged at step 3 .*the loss is nan.*last good checkpoints"):
        train(tiny_config(epochs=2, synthetic_train=8), tmp_path, resume=True, progress=False)
    assert (tmp_path / "last.pt").read_bytes() == before


def test_divergence_is_named_and_never_saved(tmp_path):
    # a huge learning rate: weights blow up; the run must stop with "diverged", never write bad weights
    with pytest.raises(TrainingError, match="diverged"):
        train(tiny_config(epochs=3, lr=1e6, checkpoint_every=1), tmp_path, progress=False)
    for name in ("last.pt", "best.pt"):
        if (tmp_path / name).exists():
            ckpt = torch.load(tmp_path / name, map_location="cpu", weights_only=True)
            assert all(torch.isfinite(t).all() for t in ckpt["model"].values() if t.is_floating_point())


def test_divergence_before_any_checkpoint_says_none_exists(tmp_path, monkeypatch):
    monkeypatch.setattr(
        "deepmatting.train.MattingLoss.forward",
        lambda self, pred, batch: {"total": pred.sum() * float("inf")},
    )
    with pytest.raises(TrainingError, match="No checkpoint was written yet") as info:
        train(tiny_config(epochs=1), tmp_path, progress=False)
    assert "intact" not in str(info.value) and not (tmp_path / "last.pt").exists()


def test_full_disk_is_reported_and_the_old_checkpoint_stays(tmp_path, monkeypatch):
    train(tiny_config(epochs=1, synthetic_train=8), tmp_path, progress=False)
    before = (tmp_path / "last.pt").read_bytes()

    def no_space(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("deepmatting.checkpoint.torch.save", no_space)
    with pytest.raises(TrainingError, match=r"no space left on .*previous .* intact"):
        train(tiny_config(epochs=2, synthetic_train=8), tmp_path, resume=True, progress=False)
    assert (tmp_path / "last.pt").read_bytes() == before
    assert not list(tmp_path.glob(".*.tmp"))


def test_resume_removes_temporaries_of_killed_writes(tmp_path):
    train(tiny_config(epochs=1, synthetic_train=8), tmp_path, progress=False)
    stale = [tmp_path / ".last.pt.abc123.tmp", tmp_path / ".best.pt.xyz.tmp"]
    for p in stale:
        p.write_bytes(b"half a checkpoint")
    other = tmp_path / ".unrelated.tmp"
    other.write_bytes(b"not ours")
    train(tiny_config(epochs=2, synthetic_train=8), tmp_path, resume=True, progress=False)
    assert not any(p.exists() for p in stale) and other.exists()


def test_resume_refuses_another_architecture(tmp_path):
    train(tiny_config(epochs=1, synthetic_train=8), tmp_path, progress=False)
    with pytest.raises(TrainingError, match="cannot resume"):
        train(tiny_config(epochs=2, model=ModelConfig(width=1.0)), tmp_path, resume=True, progress=False)


DDP_SCRIPT = """
import json, os, sys
from deepmatting.config import ModelConfig, TrainConfig
from deepmatting.train import train
out = sys.argv[1]
cfg = TrainConfig(model=ModelConfig(width=0.5), epochs=1, batch_size=2, crop=48, workers=0, device="cpu",
                  synthetic_train=12, synthetic_val=2, synthetic_size=48, checkpoint_every=2)
summary = train(cfg, out, progress=False)
with open(os.path.join(sys.argv[2], f"rank{os.environ['RANK']}.json"), "w") as f:
    json.dump(summary, f)
"""


@pytest.mark.slow
def test_ddp_two_gloo_processes_identical_weights(tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT)
    run_dir, report_dir = tmp_path / "run", tmp_path / "reports"
    report_dir.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(script),
        str(run_dir),
        str(report_dir),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    reports = [json.loads((report_dir / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert reports[0]["steps"] == reports[1]["steps"] == 3  # 12 samples / (2 ranks x batch 2)
    assert reports[0]["weights_sha256"] == reports[1]["weights_sha256"]
    written = sorted(p.name for p in Path(run_dir).iterdir() if p.suffix == ".pt")
    assert written == ["best.pt", "last.pt"]
    assert not list(Path(run_dir).glob(".*.tmp"))


def test_composition_layout_mixed_with_synthetic(tmp_path):
    import numpy as np
    from PIL import Image

    from deepmatting.data import CompositionDataset, MixedDataset
    from deepmatting.train import build_datasets

    root = tmp_path / "dim"
    for sub in ("fg", "alphas", "bg"):
        (root / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(2):
        alpha = np.zeros((40, 50), np.uint8)
        alpha[10:30, 10:40] = 255
        alpha[8:10, 10:40] = 128
        Image.fromarray(alpha).save(root / "alphas" / f"f{i}.png")
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(root / "fg" / f"f{i}.png")
        Image.fromarray(rng.integers(0, 255, (60, 70, 3), dtype=np.uint8)).save(root / "bg" / f"b{i}.png")
    cfg = tiny_config(data=str(root), composition_bgs=3, synthetic_mix=5, crop=32)
    train_set, val_set, note = build_datasets(cfg)
    assert isinstance(train_set, MixedDataset) and len(train_set) == 2 * 3 + 5
    assert isinstance(train_set.parts[0], CompositionDataset)
    assert "synthetic" in note and len(val_set) == cfg.synthetic_val
    shapes = {train_set[i]["image"].shape for i in (0, 5, 6, 10)}
    assert shapes == {(32, 32, 3)}
    train_set.set_epoch(3)
    assert all(getattr(p, "epoch", 3) == 3 for p in train_set.parts)
    with pytest.raises(IndexError):
        train_set[len(train_set)]


def test_a_refining_model_trains_on_a_cached_pool_of_priors(tmp_path):
    from deepmatting.data import PriorPool

    cfg = tiny_config(model=ModelConfig(arch="effnet-cf", pretrained_encoder=False), epochs=1,
                      synthetic_train=4, prior_pool=4, batch_size=2, crop=64, synthetic_size=64)
    summary = train(cfg, tmp_path, progress=False)
    assert summary["steps"] == 2
    pool = sorted((tmp_path / "prior_pool").glob("closed-form_0_*.npz"))
    assert len(pool) == 4
    train_set, _, note = training.build_datasets(cfg, tmp_path)  # the second time: read from the cache
    assert isinstance(train_set, PriorPool) and "closed-form" in note
    sample = train_set[0]
    assert sample["prior"].shape == sample["alpha"].shape == (64, 64)
    known = sample["trimap"] != 128
    assert np.array_equal(sample["prior"][known], sample["trimap"][known] / 255)  # exact where known


def test_a_short_run_reaches_its_learning_rate():
    # 57 steps under a time budget: the warm-up is 5% of the run, not 100 steps
    assert lr_factor(0.06, 3) > 0.9
    assert lr_factor(0.02, 3) == pytest.approx(0.4, abs=0.01)


def test_config_values_are_checked_when_built():
    from deepmatting.config import ConfigError, TrainConfig

    with pytest.raises(ConfigError, match="best_metric"):
        TrainConfig(best_metric="SAD")
    with pytest.raises(ConfigError, match="val_every"):
        TrainConfig(val_every=0)


def test_fine_tuning_starts_from_a_checkpoint_with_its_architecture(tmp_path, one_thread):
    from deepmatting.config import ModelConfig, TrainConfig

    torch.manual_seed(1)
    start = DeepMatting(width=0.25)
    start.save(tmp_path / "start.pt")
    cfg = TrainConfig(model=ModelConfig(arch="dim-vgg16"), init=str(tmp_path / "start.pt"), epochs=1,
                      batch_size=2, crop=64, workers=0, synthetic_train=2, synthetic_val=1, synthetic_size=64,
                      checkpoint_every=0)
    with pytest.warns(RuntimeWarning, match="far too few"):
        train(cfg, tmp_path / "run", progress=False)
    tuned = DeepMatting.from_checkpoint(tmp_path / "run" / "last.pt")
    assert tuned.config.arch == "light-unet" and tuned.config.width == 0.25  # from the checkpoint
    pairs = [(p, start.state_dict()[n]) for n, p in tuned.state_dict().items() if p.dtype.is_floating_point]
    moved = sum(float((a - b).abs().sum()) for a, b in pairs)
    fresh = DeepMatting(width=0.25).state_dict()  # where a run without --init would have started
    apart = sum(float((fresh[n] - start.state_dict()[n]).abs().sum()) for n, p in tuned.state_dict().items()
                if p.dtype.is_floating_point)
    assert 0 < moved < 0.2 * apart  # trained, from the checkpoint's weights
    with pytest.raises(TrainingError, match="cannot fine-tune"):
        train(dataclasses.replace(cfg, init=str(tmp_path / "missing.pt")), tmp_path / "run2", progress=False)


def test_a_second_run_into_a_folder_is_refused_unless_resumed_or_overwritten(tmp_path):
    cfg = tiny_config(epochs=1, synthetic_train=4, batch_size=4)
    train(cfg, tmp_path, progress=False)
    first = (tmp_path / "last.pt").read_bytes()
    with pytest.raises(TrainingError, match="already holds a training run .*--resume.*--overwrite"):
        train(cfg, tmp_path, progress=False)
    assert (tmp_path / "last.pt").read_bytes() == first
    lines = (tmp_path / "metrics.jsonl").read_text().count("\n")
    train(cfg, tmp_path, progress=False, overwrite=True)
    assert (tmp_path / "metrics.jsonl").read_text().count("\n") == lines  # replaced, not appended to
