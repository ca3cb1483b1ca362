"""Hostile input to training (issue #26, the audit's T rows): out-of-range options and config values are
refused at once, naming the option or field and its range; ``--resume`` refuses another config and a
checkpoint of an unexpected structure with a message naming the file; a run that would train nothing
fails instead of writing a best.pt of random weights; ``--val`` is honoured without ``--data``. Every
refusal leaves the run folder as it was."""

import dataclasses
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import deepmatting.train as training
from deepmatting.cli import main
from deepmatting.config import ConfigError, ModelConfig, TrainConfig
from deepmatting.data import CustomDataset, DatasetError
from deepmatting.train import TrainingError, build_datasets, train

pytestmark = pytest.mark.usefixtures("one_thread")

def tiny_args(epochs: int = 1) -> list[str]:
    """The CLI options of a tiny run (one step of batch 2 an epoch), as the audit ran them but smaller."""
    return ["--crop", "32", "--batch-size", "2", "--workers", "0", "--synthetic-train", "2",
            "--device", "cpu", "--epochs", str(epochs), "--checkpoint-every", "0"]


def tiny_config(**overrides) -> TrainConfig:
    """The config ``tiny_args()`` stands for, with a smaller model and validation set."""
    base = dict(model=ModelConfig(width=0.25), epochs=1, batch_size=2, crop=32, workers=0, device="cpu",
                synthetic_train=2, synthetic_val=1, synthetic_size=32, checkpoint_every=0)
    base.update(overrides)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A run of ``tiny_config()`` (one epoch, one step): its folder, to copy and resume from."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("finished") / "run"
    with pytest.warns(RuntimeWarning, match="far too few"):
        train(tiny_config(), out, progress=False)
    return out


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    """A private copy of the finished run's folder."""
    return Path(shutil.copytree(finished_run, tmp_path / "run"))


# ---- options and config values -----------------------------------------------------------------------------
@pytest.mark.parametrize("option, value, expected", [
    ("--batch-size", "0", "must be an integer >= 1"),  # T1: was a ZeroDivisionError traceback
    ("--max-megapixels", "inf", "must be a finite number > 0"),  # T14: was an OverflowError traceback
    ("--max-megapixels", "0", "must be a finite number > 0"),
    ("--epochs", "-1", "must be an integer >= 0"),  # T6: trained 0 steps, exit 0
    ("--max-minutes", "nan", "must be a finite number > 0"),  # T11: the budget was ignored
    ("--max-minutes", "-1", "must be a finite number > 0"),  # T12: one step, then "budget reached"
    ("--synthetic-train", "0", "must be an integer >= 1"),  # T13: a best.pt of random weights, exit 0
    ("--crop", "7", "must be an integer >= 16 and <= 4096"),  # was refused only after config.json
    ("--crop", "100000", "<= 4096"),
    ("--checkpoint-every", "-1", "must be an integer >= 0"),  # checkpointed every step
    ("--lr", "nan", "must be a finite number > 0"),
    ("--lr", "-1", "must be a finite number > 0"),
    ("--workers", "-1", "must be an integer >= 0"),
    ("--val-every", "0", "must be an integer >= 1"),
    ("--seed", "-1", "must be an integer >= 0"),
    ("--batch-size", "two", "'two' is not an integer"),
])
def test_out_of_range_options_are_usage_errors_that_leave_nothing(option, value, expected, tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as info:
        main(["train", *tiny_args(), option, value, "--out", str(out)])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "Traceback" not in err
    assert f"argument {option}: " in err and expected in err
    assert not out.exists()


@pytest.mark.parametrize("overrides, expected", [
    (dict(batch_size=0), r"TrainConfig.batch_size: 0 must be an integer >= 1"),
    (dict(max_megapixels=math.inf), r"TrainConfig.max_megapixels: inf must be a finite number > 0"),
    (dict(epochs=-1), r"TrainConfig.epochs: -1 must be an integer >= 1 or None"),
    (dict(epochs=0), r"TrainConfig.epochs: 0 must be"),
    (dict(max_minutes=math.nan), r"TrainConfig.max_minutes: nan must be a finite number > 0 or None"),
    (dict(synthetic_train=0), r"TrainConfig.synthetic_train: 0 must be an integer >= 1"),
    (dict(crop=7), r"TrainConfig.crop: 7 must be an integer >= 16 and <= 4096"),
    (dict(lr="0.1"), r"TrainConfig.lr: '0.1' must be a finite number > 0"),
    (dict(batch_size=True), r"TrainConfig.batch_size: True must be an integer"),
    (dict(seed=2**40), r"TrainConfig.seed: .* <= 4294967295"),
    (dict(trimap_keep=1.5), r"TrainConfig.trimap_keep: 1.5 must be a finite number >= 0 and <= 1"),
    (dict(trimap_widths=(25, 3)), r"TrainConfig.trimap_widths: \(25, 3\) must be two integers"),
    (dict(loss_weights={"alpha": -1.0}), r"TrainConfig.loss_weights: .* finite weights >= 0"),
    (dict(loss_weights={"alpha": 0.0}), r"TrainConfig.loss_weights: .* one of them > 0"),
    (dict(loss_weights={"typo": 1.0}), r"TrainConfig.loss_weights: \{'typo': 1.0\} must map some of alpha"),
    (dict(best_metric="SAD"), r"TrainConfig.best_metric: 'SAD', expected one of sad"),  # issue #24 point 6
    (dict(val=""), r"TrainConfig.val: an empty path"),
])
def test_train_config_values_are_bounded_when_built(overrides, expected):
    with pytest.raises(ConfigError, match=expected):
        tiny_config(**overrides)


@pytest.mark.parametrize("overrides, expected", [
    (dict(width=300.0), r"ModelConfig.width: 300.0 must be a finite number > 0 and <= 4"),
    (dict(width=0.0), r"ModelConfig.width: 0.0 must be a finite number > 0"),
    (dict(width=math.nan), r"ModelConfig.width: nan must be"),
    (dict(std=(0.2, 0.0, 0.2)), r"ModelConfig.std: .* each value must be a finite number > 0"),
    (dict(mean=(0.5, math.inf, 0.5)), r"ModelConfig.mean: .* each value must be a finite number"),
    (dict(mean=(0.5, 0.5)), r"ModelConfig.mean: .* one value per RGB channel"),
    (dict(prior_pixels=10), r"ModelConfig.prior_pixels: 10 must be an integer >= 1024"),
])
def test_model_config_values_are_bounded_when_built(overrides, expected):
    with pytest.raises(ConfigError, match=expected):
        ModelConfig(**overrides)


def test_a_config_read_from_a_file_is_bounded_too():
    with pytest.raises(ConfigError, match="ModelConfig.width: 300.0"):
        TrainConfig.from_dict({"model": {"width": 300.0}})
    with pytest.raises(ConfigError, match="TrainConfig.batch_size: 0"):
        TrainConfig.from_dict({"batch_size": 0})
    edge = TrainConfig.from_dict({"model": {"width": 4}, "crop": 16, "max_minutes": 1e-3, "epochs": None})
    assert (edge.model.width, edge.crop, edge.epochs) == (4.0, 16, None)  # the bounds themselves are allowed


# ---- runs that would train nothing -------------------------------------------------------------------------
def test_a_run_with_no_training_samples_fails_and_writes_nothing(tmp_path, monkeypatch):
    """As --synthetic-train 0 did (or more processes than samples): 0 steps must not be a best.pt."""
    monkeypatch.setattr(training, "epoch_indices", lambda *args: [])
    with pytest.raises(TrainingError, match=r"no training samples to train on \(built-in synthetic data"):
        train(tiny_config(), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_resuming_a_finished_run_is_refused_until_epochs_are_raised(run_copy):
    before = {p.name: p.read_bytes() for p in run_copy.iterdir() if p.is_file()}
    with pytest.raises(TrainingError, match=r"nothing to resume: .* trained 1 epochs \(1 steps.*--epochs 1; "
                                            r"raise --epochs"):
        train(tiny_config(), run_copy, resume=True, progress=False)
    spent = r"its whole time budget of --max-minutes 1e-06; raise --max-minutes"
    with pytest.raises(TrainingError, match=spent):
        train(tiny_config(epochs=5, max_minutes=1e-6), run_copy, resume=True, progress=False)
    assert {p.name: p.read_bytes() for p in run_copy.iterdir() if p.is_file()} == before


# ---- --val -------------------------------------------------------------------------------------------------
def _photo_folder(root: Path, n: int = 2) -> Path:
    rng = np.random.default_rng(0)
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
    for i in range(n):
        Image.fromarray((rng.random((40, 40, 3)) * 255).astype(np.uint8)).save(root / "images" / f"p{i}.png")
        mask = np.zeros((40, 40), np.uint8)
        mask[10:30, 10:30] = 255
        Image.fromarray(mask).save(root / "masks" / f"p{i}.png")
    return root


def test_val_is_honoured_without_data(tmp_path):
    """T15: --val without --data validated on synthetic samples and picked best.pt by them."""
    folder = _photo_folder(tmp_path / "photos", n=3)
    _, val, note = build_datasets(tiny_config(val=str(folder)))
    assert isinstance(val, CustomDataset) and len(val) == 3 and f"validation on {folder}" in note
    with pytest.raises(DatasetError, match="nonexistent: dataset folder does not exist"):
        build_datasets(tiny_config(val=str(tmp_path / "nonexistent")))


def test_a_missing_val_folder_is_an_error_that_leaves_no_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *tiny_args(), "--val", str(tmp_path / "nonexistent"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "deepmatting train: error:" in err and "nonexistent: dataset folder does not exist" in err
    assert not out.exists()  # neither config.json nor an empty folder with its lock file
    out.mkdir()  # a folder the user made stays, without a lock file left in it
    assert main(["train", *tiny_args(), "--val", str(tmp_path / "nonexistent"), "--out", str(out)]) == 2
    assert out.is_dir() and not any(out.iterdir())


# ---- --resume with another config (D10) --------------------------------------------------------------------
def test_resume_with_other_options_is_refused_naming_each_change(run_copy):
    """T18: another --crop, --batch-size, --lr and --seed were accepted and config.json rewritten."""
    config_json = (run_copy / "config.json").read_bytes()
    last = (run_copy / "last.pt").read_bytes()
    other = tiny_config(epochs=3, crop=48, synthetic_size=48, batch_size=4, lr=0.01, seed=5)
    with pytest.raises(TrainingError) as info:
        train(other, run_copy, resume=True, progress=False)
    message = str(info.value)
    assert f"cannot resume from {run_copy / 'last.pt'}" in message
    for change in ("batch_size 2 -> 4", "lr 0.001 -> 0.01", "crop 32 -> 48", "seed 0 -> 5"):
        assert change in message
    assert "epochs" not in message.split("(only")[0]  # a longer run is not a refused change
    with pytest.raises(TrainingError, match=r"model.width 0.25 -> 0.5"):
        train(tiny_config(epochs=3, model=ModelConfig(width=0.5)), run_copy, resume=True, progress=False)
    assert (run_copy / "config.json").read_bytes() == config_json
    assert (run_copy / "last.pt").read_bytes() == last


def test_resume_may_change_the_length_and_the_machinery(run_copy, capsys):
    cfg = tiny_config(epochs=2, checkpoint_every=5, val_every=2, data=None)
    summary = train(cfg, run_copy, resume=True, progress=False)
    assert (summary["epochs"], summary["steps"]) == (2, 2)
    assert "(changed: epochs 1 -> 2, checkpoint_every 0 -> 5, val_every 1 -> 2)" in capsys.readouterr().out


def test_the_resume_help_says_what_may_change(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    unwrapped = "".join(capsys.readouterr().out.split())  # argparse wraps lines, even inside option names
    may_change = "only--epochs,--max-minutes,--workers,--device,--checkpoint-every,--val-everymaychange"
    assert may_change in unwrapped


# ---- --resume from a checkpoint of an unexpected structure (D11) -------------------------------------------
def _mutate(path: Path, change) -> None:
    ckpt = torch.load(path, weights_only=True)
    change(ckpt)
    torch.save(ckpt, path)


def _set(*keys, value):
    def change(ckpt):
        target = ckpt
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return change


def _drop(*keys):
    def change(ckpt):
        target = ckpt
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]
    return change


@pytest.mark.parametrize("change, expected", [
    (_set("state", "new_field", value=1), r"its 'state' has unknown fields \['new_field'\]"),  # T21
    (_drop("rng"), r"not a training checkpoint \(no 'rng'\)"),  # T22
    (_drop("state"), r"not a training checkpoint \(no 'state'\)"),  # T23
    (_set("state", value="a string"), r"its 'state' is a str, not a dict"),  # T24
    (_set("rng", "torch", value=torch.zeros(3, dtype=torch.uint8)),
     r"random-number generator states are damaged \(RuntimeError: .*size"),  # T25
    (_set("rng", "python", value=[1, 2]), r"random-number generator states are damaged"),
    (_drop("state", "elapsed"), r"its 'state' lacks \['elapsed'\]"),
    (_set("state", "step", value="7"), r"'state' is not valid \(TrainState.step: '7' is not of type int\)"),
    (_set("state", "step", value=-3), r"its 'state' holds impossible counts"),
    (_set("state", "best", value=[]), r"its 'state' is not valid"),
    (_set("version", value="9.0.0"), r"written by a newer deepmatting \(9.0.0; this is"),  # T26
    (_drop("version"), r"records no deepmatting version"),
    (_set("config", "new_key", value=1), r"training config is not valid \(TrainConfig: unknown keys"),
    (_set("config", "model", "new_model_field", value=1), r"training config is not valid \(ModelConfig: "
                                                           r"unknown keys \['new_model_field'\]"),  # T27
    (_set("config", "model", "width", value=300.0), r"ModelConfig.width: 300.0 must be"),
    (_set("optimizer", "param_groups", value=[]), r"optimizer state do not fit .*parameter groups"),  # T28
    (_drop("optimizer"), r"not a training checkpoint \(no 'optimizer'\)"),
])
def test_a_damaged_resume_checkpoint_is_a_training_error_naming_the_file(run_copy, change, expected):
    _mutate(run_copy / "last.pt", change)
    with pytest.raises(TrainingError, match=expected) as info:
        train(tiny_config(epochs=2), run_copy, resume=True, progress=False)
    assert str(run_copy / "last.pt") in str(info.value)


def test_a_damaged_resume_checkpoint_is_one_line_on_the_command_line(run_copy, capsys):
    _mutate(run_copy / "last.pt", _set("state", "new_field", value=1))
    config_json = (run_copy / "config.json").read_bytes()
    assert main(["train", *tiny_args(epochs=2), "--out", str(run_copy), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deepmatting train: error: cannot resume from") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert (run_copy / "config.json").read_bytes() == config_json


def test_a_folder_as_last_pt_says_it_is_a_folder(run_copy):
    """T29: read 'no such file'."""
    (run_copy / "last.pt").unlink()
    (run_copy / "last.pt").mkdir()
    with pytest.raises(TrainingError, match=r"last.pt: is a folder, not a checkpoint file"):
        train(tiny_config(epochs=2), run_copy, resume=True, progress=False)


def test_an_intact_resume_still_continues_bit_identically(run_copy, tmp_path):
    """The checks refuse only what is damaged: resuming the copy ends where a straight two-epoch run does."""
    resumed = train(tiny_config(epochs=2), run_copy, resume=True, progress=False)
    straight = train(dataclasses.replace(tiny_config(), epochs=2), tmp_path / "straight", progress=False)
    assert resumed["weights_sha256"] == straight["weights_sha256"]


def test_a_model_diverged_on_validation_is_named_in_training_words(tmp_path):
    """R7 / D20: the message read "no alpha was written" (predict's wording) and named no checkpoint."""
    from deepmatting import DeepMatting
    from deepmatting.data import SyntheticMattingDataset
    from deepmatting.distributed import DistInfo

    model = DeepMatting(width=0.25)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(math.nan)
    (tmp_path / "last.pt").write_bytes(b"a checkpoint")
    with pytest.raises(TrainingError) as info:
        val_set = SyntheticMattingDataset(1, size=32, seed=1)
        training.evaluate(model, val_set, DistInfo(), step=4, out=tmp_path)
    message = str(info.value)
    assert message.startswith("training diverged at step 4: the model's predictions on the validation set")
    assert f"intact: {tmp_path / 'last.pt'}." in message and "alpha" not in message
