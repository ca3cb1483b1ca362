"""The recipe that reproduces the shipped default model, and its cross-validated evaluation
(run by ``scripts/pretrained.py``, ``make pretrained``).

Data: the real photos of a matting set in the ``CustomDataset`` layout (images/, alphas/, trimaps/,
trimaps_alt/ — e.g. ``../shared/data/alphamatting-lowres``). Each training photo's foreground colours are
estimated from its ground-truth alpha (:func:`deepmatting.foreground.estimate_foreground`) and written in
the Deep Image Matting layout (fg/, alphas/, bg/), where the backgrounds are the training photos themselves
plus procedural backgrounds; training composites every foreground onto ``composition_bgs`` of them with
the usual augmentation, mixed with as many procedural synthetic samples.

Evaluation is cross-validated: the photos are split into two folds, a model is trained on each fold and
scored on the other (never on a photo it saw), with both trimap sets, against the trimap floor and the
classical closed-form and KNN methods. The shipped model is then trained on all photos with the same
settings. No setting is chosen by looking at the scores.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from deepmatting.backends import load_backend
from deepmatting.config import ModelConfig, TrainConfig
from deepmatting.data import CustomDataset, read_alpha, read_image, synthesize
from deepmatting.evaluate import baseline_predictors, format_table, public_result, score_methods
from deepmatting.foreground import estimate_foreground
from deepmatting.inference import sample_predictor
from deepmatting.models import DeepMatting, get_architecture
from deepmatting.scoring import merge_results
from deepmatting.train import train, work_done


@dataclass
class Recipe:
    """Settings of one recipe: the model, and how each of its three models (two folds, final) is trained.

    ``steps`` is the training length of each model, in optimizer steps (the epochs follow from the
    dataset size); ``minutes``, when set, is a time budget instead. ``synthetic_share`` is the fraction
    of procedural samples in the training set.
    """

    name: str = "default"
    model: ModelConfig = field(default_factory=ModelConfig)
    steps: int | None = None
    minutes: float | None = 12.0
    crop: int = 320
    batch_size: int = 8
    lr: float = 1e-3
    encoder_lr_scale: float = 1.0
    amp: bool = False
    composition_bgs: int = 40
    synthetic_bgs: int = 40
    synthetic_share: float = 0.5
    trimap_widths: tuple[int, int] = (3, 25)
    trimap_blobs: float = 0.0
    trimap_keep: float = 0.0
    prior_pool: int = 2000
    prior_variants: int = 0
    seed: int = 0

    @property
    def layout(self) -> str:
        """``"photos"``: trains on the photos themselves with their mattes solved whole
        (:class:`deepmatting.data.PhotoPriorPool`); ``"composition"``: on composites of their foregrounds."""
        return "photos" if self.prior_variants else "composition"

    def train_config(self, data: Path, n_photos: int, prior_cache: Path | None = None) -> TrainConfig:
        composites = n_photos * self.composition_bgs
        synthetic = round(composites * self.synthetic_share / (1 - self.synthetic_share))
        if self.layout == "photos":
            synthetic = 0
        # a model that reads classical mattes trains on a pool of prior_pool samples drawn from these
        samples = self.prior_pool if get_architecture(self.model.arch).prior else composites + synthetic
        epochs = None  # until the time budget
        if self.steps is not None:
            epochs = math.ceil(self.steps / (samples // self.batch_size))
        return TrainConfig(
            model=self.model,
            data=str(data),
            epochs=epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            encoder_lr_scale=self.encoder_lr_scale,
            amp=self.amp,
            crop=self.crop,
            workers=1,
            seed=self.seed,
            max_minutes=self.minutes,
            checkpoint_every=100,
            # the validation set is synthetic: the recipe scores real photos afterwards
            val_every=epochs or 10**6,
            composition_bgs=self.composition_bgs,
            synthetic_mix=synthetic,
            synthetic_val=8,
            synthetic_size=self.crop,
            trimap_widths=self.trimap_widths,
            trimap_blobs=self.trimap_blobs,
            trimap_keep=self.trimap_keep,
            prior_pool=self.prior_pool,
            prior_variants=self.prior_variants,
            prior_cache=str(prior_cache) if prior_cache is not None else None,
        )


RECIPES = {
    "light": Recipe(name="light"),
    # EfficientNet-Lite0 from ImageNet weights, trained on real composites with wide, irregular and real
    # (hand-drawn) trimaps; bf16 autocast and channels_last (2.9x faster steps than fp32 on 2 CPU cores)
    "effnet": Recipe(
        name="effnet",
        model=ModelConfig(arch="effnet-lite0"),
        steps=2000,
        minutes=None,
        lr=5e-4,
        encoder_lr_scale=0.2,
        amp=True,
        synthetic_share=0.25,
        trimap_widths=(3, 30),
        trimap_blobs=0.4,
        trimap_keep=0.3,
    ),
    # the "best quality" mode: effnet-lite0 refining closed-form matting; it starts as closed-form (the
    # correction is zero at first) and learns where to correct it, on a pool of crops whose closed-form
    # matte is computed once
    "effnet-cf": Recipe(
        name="effnet-cf",
        model=ModelConfig(arch="effnet-cf"),
        steps=800,
        minutes=None,
        lr=3e-4,
        encoder_lr_scale=0.2,
        amp=True,
        synthetic_share=0.25,
        trimap_widths=(3, 30),
        trimap_blobs=0.4,
        trimap_keep=0.3,
        prior_pool=1200,
    ),
    # the default quality: a light U-Net fusing closed-form and KNN matting (bounded by their disagreement),
    # trained on the photos themselves: each with its own trimaps, 3 generated trimaps and 3 composites over
    # procedural backgrounds, both mattes solved once on the whole photo, then cropped afresh every epoch
    "fusion": Recipe(
        name="fusion",
        model=ModelConfig(arch="cf-knn-fusion"),
        steps=1000,
        minutes=None,
        lr=1e-3,
        amp=True,
        trimap_widths=(3, 30),
        trimap_blobs=0.4,
        prior_pool=800,
        prior_variants=3,
    ),
}
# the fast quality's candidate: the same model and training, its mattes solved at 0.05 MP in training and
# prediction (the network learns to sharpen upsampled priors); measured, not shipped (docs/model-card.md)
RECIPES["fusion-fast"] = replace(RECIPES["fusion"], name="fusion-fast",
                                 model=ModelConfig(arch="cf-knn-fusion", prior_pixels=50_000))


def folds(names: list[str]) -> tuple[list[str], list[str]]:
    """Two folds, alternating in sorted order (fixed before any result is seen)."""
    return names[0::2], names[1::2]


#: The folders of a run's fold models: ``fold_a`` trains on the second fold and scores the first,
#: ``fold_b`` the reverse.
FOLD_MODELS = ("fold_a", "fold_b")


def held_out(checkpoint: Path, fold_names: tuple[list[str], list[str]]) -> list[str]:
    """The photos the fold model ``OUT/fold_a/*.pt`` or ``OUT/fold_b/*.pt`` did not see (it scores them)."""
    fold = Path(checkpoint).parent.name
    if fold not in FOLD_MODELS:
        raise ValueError(f"{checkpoint}: expected a checkpoint inside a fold_a/ or fold_b/ folder")
    return fold_names[FOLD_MODELS.index(fold)]


def finished_steps(run: Path, cfg: TrainConfig) -> int | None:
    """The steps of the run in ``run`` when it has done all of ``cfg``'s work, else None (none yet, or more
    to train: ``train(..., resume=True)`` continues it)."""
    last = run / "last.pt"
    if not last.is_file():
        return None
    ckpt = torch.load(last, map_location="cpu", weights_only=True)
    state = ckpt.get("state") if isinstance(ckpt.get("state"), dict) else {}
    done = work_done(cfg, int(ckpt.get("epoch", 0)), float(state.get("elapsed", 0.0)))
    return int(ckpt["step"]) if done is not None else None


def recipe_summary(rec: Recipe) -> dict:
    """The recipe's settings as a report stores them (the model config as a dict)."""
    return {k: (v.__dict__ if isinstance(v, ModelConfig) else v) for k, v in rec.__dict__.items()}


def prepare_composition_folder(
    photos: Path, names: list[str], out: Path, n_synthetic_bgs: int, seed: int = 0
) -> Path:
    """Write fg/, alphas/ and bg/ for ``names`` under ``out`` (the Deep Image Matting layout)."""
    done = out / "complete"
    if done.exists() and done.read_text() == json.dumps([names, n_synthetic_bgs, seed]):
        return out  # written by an earlier, interrupted run of the recipe
    if out.exists():
        shutil.rmtree(out)
    trimap_sets = [d for d in ("trimaps", "trimaps_alt") if (photos / d).is_dir()]
    for sub in ("fg", "alphas", "bg", *trimap_sets):
        (out / sub).mkdir(parents=True)
    for name in names:
        image_path = next((photos / "images").glob(f"{name}.*"))
        image, alpha = read_image(image_path), read_alpha(next((photos / "alphas").glob(f"{name}.*")))
        fg = estimate_foreground(image, alpha)
        Image.fromarray(np.round(fg * 255).astype(np.uint8)).save(out / "fg" / f"{name}.png")
        Image.fromarray(np.round(alpha * 255).astype(np.uint8)).save(out / "alphas" / f"{name}.png")
        shutil.copy(image_path, out / "bg" / f"photo_{name}{image_path.suffix}")
        for sub in trimap_sets:  # the photo's hand-drawn trimaps, kept with probability trimap_keep
            trimap = next((photos / sub).glob(f"{name}.*"))
            shutil.copy(trimap, out / sub / f"{name}{trimap.suffix}")
    rng = np.random.default_rng([seed, 77])
    for i in range(n_synthetic_bgs):
        bg = synthesize(rng, (600, 800))["bg"]
        Image.fromarray(np.round(bg * 255).astype(np.uint8)).save(out / "bg" / f"synthetic_{i:03d}.png")
    done.write_text(json.dumps([names, n_synthetic_bgs, seed]))
    return out


def prepare_photo_folder(photos: Path, names: list[str], out: Path) -> Path:
    """A folder in the ``CustomDataset`` layout holding only ``names`` (links to the photos' files)."""
    if out.exists():
        shutil.rmtree(out)
    for sub in ("images", "alphas", "trimaps", "trimaps_alt"):
        if not (photos / sub).is_dir():
            continue
        (out / sub).mkdir(parents=True)
        for name in names:
            for path in (photos / sub).glob(f"{name}.*"):
                (out / sub / path.name).symlink_to(path.resolve())
    return out


def cross_validate(photos: Path, checkpoints: list[Path], fold_names: tuple[list[str], list[str]],
                   baselines: tuple[str, ...], *, device: str = "cpu", progress: bool = True,
                   options: dict | None = None) -> dict:
    """Score each fold model on the photos it did not see, with both trimap sets, beside the baselines.

    ``checkpoints[k]`` is the model that scores ``fold_names[k]`` (it was trained on the other fold).
    ``options`` go to ``predict``. Returns ``{trimap_set: {method: result}}`` with the folds merged.
    """
    tables = {}
    predictors = baseline_predictors(baselines, skip_missing=True)
    for trimaps in ("trimaps", "trimaps_alt"):
        if not (photos / trimaps).is_dir():
            continue
        dataset = CustomDataset(photos, trimaps=trimaps)
        per_fold = []
        for checkpoint, scored in zip(checkpoints, fold_names, strict=True):
            model = sample_predictor(load_backend(checkpoint, device=device), **(options or {}))
            indices = [dataset.names.index(n) for n in scored]
            per_fold.append(score_methods({"model": model, **predictors}, dataset, indices, progress=progress,
                                          label=f" {trimaps} {checkpoint.parent.name}"))
        merged = {m: merge_results([fold[m] for fold in per_fold]) for m in per_fold[0]}
        print(f"\ncross-validated, {trimaps}:")
        print(format_table(merged))
        tables[trimaps] = merged
    return tables


def install_weights(checkpoint: Path, dest: str | Path, recipe: str, photos: Path, trained_on: list[str],
                    held_out: list[str] = (), steps: int | None = None) -> None:
    """Write a trained model's weights (no optimizer state) to ``dest`` with their provenance: the recipe,
    the optimizer steps, the photos trained on (paths) and the photos held out (names)."""
    model = DeepMatting.pretrained(checkpoint)
    Path(dest).parent.mkdir(parents=True, exist_ok=True)
    model.save(dest, recipe=recipe, steps=steps, trained_on=[str(photos / "images" / n) for n in trained_on],
               held_out=list(held_out))


def run_recipe(
    photos: str | Path,
    out: str | Path = "runs/pretrained",
    recipe: str | Recipe = "effnet",
    *,
    steps: int | None = None,
    minutes: float | None = None,
    baselines: tuple[str, ...] = ("trimap", "pymatting-closed-form", "pymatting-knn"),
    install_to: str | Path | None = None,
    progress: bool = True,
) -> dict:
    """Train the two fold models and the final model, evaluate cross-validated, write the report.

    Returns the report dict (also written to ``OUT/report.json``). With ``install_to``, the final model
    is written there (the package's ``weights/default.pt``).
    """
    photos, out = Path(photos), Path(out)
    rec = RECIPES[recipe] if isinstance(recipe, str) else recipe
    if steps is not None or minutes is not None:  # one budget replaces the recipe's
        rec = replace(rec, steps=steps, minutes=minutes)
    names = CustomDataset(photos).names
    fold_names = folds(names)
    started = time.monotonic()
    report: dict = {
        "recipe": recipe_summary(rec),
        "photos": str(photos),
        "folds": fold_names,
        "trimap_sets": {},
        "train_seconds": {},
    }

    def train_on(train_names: list[str], tag: str) -> Path:
        if rec.layout == "photos":
            data = prepare_photo_folder(photos, train_names, out / tag / "data")
        else:
            data = prepare_composition_folder(
                photos, train_names, out / tag / "data", rec.synthetic_bgs, rec.seed
            )
        t0 = time.monotonic()
        cfg = rec.train_config(data, len(train_names), prior_cache=out / "prior_cache")
        steps = finished_steps(out / tag, cfg)  # a rerun after an interruption skips the finished folds
        if steps is None:
            steps = train(cfg, out / tag, resume=True, progress=progress)["steps"]
        report["train_seconds"][tag] = round(time.monotonic() - t0, 1)
        report.setdefault("train_steps", {})[tag] = steps
        # the last model, not the best on the synthetic validation set (which says little about photos)
        return out / tag / "last.pt"

    checkpoints = [train_on(fold_names[1], FOLD_MODELS[0]), train_on(fold_names[0], FOLD_MODELS[1])]
    tables = cross_validate(photos, checkpoints, fold_names, baselines, progress=progress)
    report["trimap_sets"] = {t: {m: public_result(r) for m, r in tab.items()} for t, tab in tables.items()}
    # the cross-validated numbers are kept even if the final model's run is cut short
    (out / "report_cv.json").write_text(json.dumps(report, indent=2))
    print(f"cross-validation report: {out / 'report_cv.json'}", flush=True)
    final = train_on(names, "final")
    if install_to is not None:
        install_weights(final, install_to, rec.name, photos, names, steps=report["train_steps"]["final"])
        report["installed"] = str(install_to)
    report["total_seconds"] = round(time.monotonic() - started, 1)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    print(f"report: {out / 'report.json'}")
    return report
