"""Typed run configuration: one dataclass per component, saved inside every checkpoint.

``ModelConfig`` rebuilds a model from a checkpoint alone; ``TrainConfig`` describes a training run and is
written to ``RUN_DIR/config.json`` and into ``last.pt`` / ``best.pt``. ``from_dict`` rejects unknown keys and
values of the wrong type, so a typo in a config file is an error, not a silent default. Both dataclasses
check their values' ranges when built (:data:`MODEL_BOUNDS`, :data:`TRAIN_BOUNDS`), so a config asking for
a 300x-wide model or a batch of 0 is an error at once, whether it comes from the command line, Python or a
checkpoint, not a traceback an epoch into a run.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration has an unknown key, a value of the wrong type or a value out of its range."""


@dataclass(frozen=True)
class Bound:
    """The allowed values of one numeric config field: ``kind`` (int or float; an int is a float too, a
    bool is neither), finite, within ``[low, high]`` (``(low, high]`` when ``low_open``); ``optional``:
    None is allowed as well. The CLI builds its option types from the same bounds."""

    kind: type
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    optional: bool = False

    def allows(self, value: Any) -> bool:
        if value is None:
            return self.optional
        kinds = (int,) if self.kind is int else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value):
            return False
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        return not too_low and (self.high is None or value <= self.high)

    def describe(self) -> str:
        """The range in words: ``an integer >= 16 and <= 4096``, ``a finite number > 0 or None``."""
        def num(x: float) -> str:
            return str(int(x)) if float(x).is_integer() else f"{x:g}"

        lo = "" if self.low is None else (f"> {num(self.low)}" if self.low_open else f">= {num(self.low)}")
        hi = "" if self.high is None else f"<= {num(self.high)}"
        what = "an integer" if self.kind is int else "a finite number"
        return " ".join([what, " and ".join(x for x in (lo, hi) if x)]).strip() + (" or None" if self.optional
                                                                                 else "")

    def check(self, owner: str, name: str, value: Any) -> None:
        if not self.allows(value):
            raise ConfigError(f"{owner}.{name}: {value!r} must be {self.describe()}")


def check_bounds(config: Any, bounds: dict[str, Bound]) -> None:
    """Every field of ``config`` named in ``bounds`` within its range, else a ``ConfigError`` naming it."""
    for name, bound in bounds.items():
        bound.check(type(config).__name__, name, getattr(config, name))


#: Smallest and largest side of a training crop or a synthetic sample (the generator's minimum is 16).
MIN_CROP, MAX_CROP = 16, 4096
#: Loss terms a training run may weight (see :class:`deepmatting.losses.MattingLoss`).
LOSS_TERMS = ("alpha", "composition", "laplacian")
#: The validation metrics that may pick ``best.pt``.
BEST_METRICS = ("sad", "mse", "grad", "conn")

#: The :class:`TrainConfig` fields a resumed run may change: they set how long the run goes and where and
#: how fast it runs, not what it learns from or how (any other change is refused on resume).
RESUMABLE_FIELDS = ("epochs", "max_minutes", "workers", "device", "checkpoint_every", "val_every")

#: The ranges of :class:`ModelConfig`'s numeric fields.
MODEL_BOUNDS = {
    "width": Bound(float, 0, 4, low_open=True),  # channel multiplier: 4 is already ~16x the parameters
    "prior_pixels": Bound(int, 1024, 100_000_000, optional=True),
}


def _check_type(cls_name: str, name: str, value: Any, annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            try:
                return _check_type(cls_name, name, value, arg)
            except ConfigError:
                continue
        raise ConfigError(f"{cls_name}.{name}: {value!r} is not of type {annotation}")
    if annotation is type(None):
        if value is None:
            return None
        raise ConfigError(f"{cls_name}.{name}: {value!r} is not None")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{cls_name}.{name}: {value!r} is not a sequence")
        item = args[0] if args else Any
        items = [_check_type(cls_name, name, v, item) for v in value]
        return tuple(items) if origin is tuple else items
    if annotation is Any:
        return value
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation in (int, float) and isinstance(value, bool):
        raise ConfigError(f"{cls_name}.{name}: {value!r} is a bool, expected {annotation.__name__}")
    if isinstance(annotation, type) and not isinstance(value, annotation):
        raise ConfigError(f"{cls_name}.{name}: {value!r} is not of type {annotation.__name__}")
    return value


def from_dict(cls: type[T], data: dict) -> T:
    """Build the dataclass ``cls`` from ``data``, rejecting unknown keys and wrong types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{cls.__name__}: expected a dict, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown keys {unknown} (known: {sorted(known)})")
    values = {k: _check_type(cls.__name__, k, v, hints[k]) for k, v in data.items()}
    return cls(**values)


#: What a model reads beside the image: a trimap, a coarse mask, or nothing (``"image"``: the image alone).
MODEL_INPUTS = ("trimap", "mask", "image")


@dataclass
class ModelConfig:
    """Everything needed to rebuild a ``DeepMatting`` model.

    Attributes
    ----------
    arch : registered architecture name (see ``deepmatting.list_architectures()``).
    input : ``"trimap"`` (0 bg, 0.5 unknown, 1 fg), ``"mask"`` (a coarse mask in [0,1]) or ``"image"`` (the
        image alone: the model finds the subject itself, as MODNet or rembg's models do).
    refine : DIM's refinement stage (``dim-vgg16`` only).
    width : channel multiplier of the light architectures.
    mean, std : RGB normalisation applied inside the model (preprocessing travels with the weights);
        None takes the architecture's (the statistics its pretrained encoder was trained with).
    pretrained_encoder : start the encoder from ImageNet weights when training starts (architectures that
        have them; None = whenever the architecture has them). Checkpoints carry every weight, so loading
        one never reads the ImageNet weights.
    prior_pixels : for models that read classical mattes: images over this many pixels get them solved at
        this size and upsampled (None: ``deepmatting.data.prior_pool.PRIOR_MAX_PIXELS``, 1 MP). Smaller is
        faster: the solvers' time grows with the unknown pixels.
    """

    arch: str = "light-unet"
    input: str = "trimap"
    refine: bool = False
    width: float = 1.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    pretrained_encoder: bool | None = None
    prior_pixels: int | None = None

    def __post_init__(self) -> None:
        check_bounds(self, MODEL_BOUNDS)
        if self.input not in MODEL_INPUTS:
            raise ConfigError(f"ModelConfig.input: {self.input!r}, expected one of {', '.join(MODEL_INPUTS)}")
        for name, low, low_open in (("mean", None, False), ("std", 0, True)):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, (list, tuple)) or len(value) != 3:
                raise ConfigError(f"ModelConfig.{name}: {value!r} needs one value per RGB channel")
            bound = Bound(float, low, low_open=low_open)
            for channel in value:
                if not bound.allows(channel):
                    raise ConfigError(f"ModelConfig.{name}: {value!r}: each value must be {bound.describe()}")
            setattr(self, name, tuple(float(v) for v in value))


@dataclass
class TrainConfig:
    """One training run: data, optimisation, schedule and bookkeeping.

    ``data`` None means the built-in synthetic dataset; a folder in the ``CustomDataset`` layout (images/,
    masks/ or alphas/, trimaps/?) or in the Deep Image Matting layout (fg/, alphas/, bg/: composited on the
    fly, ``composition_bgs`` backgrounds per foreground). ``synthetic_mix`` adds that many procedural samples
    to a folder's training set. Step counts are derived from the dataset length
    and the batch size at run time, never stored as magic numbers here.

    Models that refine a classical matte train on a pool of ``prior_pool`` augmented samples whose matte is
    computed once and cached in the run folder (:class:`deepmatting.data.PriorPool`). With
    ``prior_variants`` > 0 and a photo folder (``CustomDataset`` layout) they train instead on the whole
    photos, each expanded into its own trimaps plus ``prior_variants`` generated trimaps and as many
    composites over new backgrounds, with the mattes solved once per variant
    (:class:`deepmatting.data.PhotoPriorPool`), ``prior_pool`` crops per epoch. ``prior_cache`` is where
    the solved samples are kept (default ``RUN/prior_pool``; runs may share one).
    ``init`` fine-tunes: the run starts from that checkpoint's weights, or a shipped quality's (``"fast"``,
    ``"best"``, ...), and takes its architecture and model config from it (``model`` is ignored).
    Dataset images over ``max_megapixels`` are refused by name (a file claiming a huge size fails fast).
    ``epochs`` None trains until the time budget ``max_minutes``. ``encoder_lr_scale`` multiplies the
    learning rate of the encoder (below 1 keeps pretrained features).
    Training trimaps are built after the crop: a band of a width drawn from ``trimap_widths``, with
    probability ``trimap_blobs`` widened by irregular blobs, or with probability ``trimap_keep`` the trimap
    from the data's own ``trimaps*/`` folders (see :class:`deepmatting.data.RandomTrimap`).
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    data: str | None = None
    val: str | None = None
    epochs: int | None = 1500
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.0
    crop: int = 320
    workers: int = 2
    seed: int = 0
    amp: bool = False
    device: str = "auto"
    max_minutes: float | None = None
    checkpoint_every: int = 200
    val_every: int = 1
    best_metric: str = "sad"
    synthetic_train: int = 2000
    synthetic_mix: int = 0
    composition_bgs: int = 4
    synthetic_val: int = 16
    synthetic_size: int = 320
    max_megapixels: float = 50.0
    prior_pool: int = 2000
    prior_variants: int = 0
    init: str | None = None
    prior_cache: str | None = None
    encoder_lr_scale: float = 1.0
    trimap_widths: tuple[int, ...] = (3, 25)
    trimap_blobs: float = 0.25
    trimap_keep: float = 0.5
    loss_weights: dict = field(default_factory=lambda: {"alpha": 1.0, "composition": 0.5, "laplacian": 0.5})

    def __post_init__(self) -> None:
        # checked when the config is built, not an epoch into the run
        if not isinstance(self.model, ModelConfig):
            raise ConfigError(f"TrainConfig.model: {self.model!r} is not a ModelConfig")
        check_bounds(self, TRAIN_BOUNDS)
        if self.best_metric not in BEST_METRICS:
            raise ConfigError(f"TrainConfig.best_metric: {self.best_metric!r}, expected one of "
                              f"{', '.join(BEST_METRICS)}")
        widths = self.trimap_widths
        if (not isinstance(widths, (list, tuple)) or len(widths) != 2
                or not all(Bound(int, 0).allows(w) for w in widths) or widths[0] > widths[1]):
            raise ConfigError(f"TrainConfig.trimap_widths: {widths!r} must be two integers 0 <= low <= high")
        self.trimap_widths = tuple(widths)
        weights = self.loss_weights
        if (not isinstance(weights, dict) or not weights or set(weights) - set(LOSS_TERMS)
                or not all(Bound(float, 0).allows(w) for w in weights.values()) or not any(weights.values())):
            raise ConfigError(f"TrainConfig.loss_weights: {weights!r} must map some of "
                              f"{', '.join(LOSS_TERMS)} to finite weights >= 0, one of them > 0")
        for name in ("data", "val", "init", "prior_cache"):
            if getattr(self, name) == "":
                raise ConfigError(f"TrainConfig.{name}: an empty path (use None for none)")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        data = dict(data)
        model = from_dict(ModelConfig, data.pop("model", {}))
        cfg = from_dict(cls, data)
        cfg.model = model
        return cfg


#: The ranges of :class:`TrainConfig`'s numeric fields (``epochs`` None: until ``max_minutes``).
TRAIN_BOUNDS = {
    "epochs": Bound(int, 1, optional=True),
    "batch_size": Bound(int, 1),
    "lr": Bound(float, 0, low_open=True),
    "weight_decay": Bound(float, 0),
    "crop": Bound(int, MIN_CROP, MAX_CROP),
    "workers": Bound(int, 0),
    "seed": Bound(int, 0, 2**32 - 1),
    "max_minutes": Bound(float, 0, low_open=True, optional=True),
    "checkpoint_every": Bound(int, 0),  # 0: only after every epoch
    "val_every": Bound(int, 1),
    "synthetic_train": Bound(int, 1),
    "synthetic_mix": Bound(int, 0),
    "composition_bgs": Bound(int, 1),
    "synthetic_val": Bound(int, 1),
    "synthetic_size": Bound(int, MIN_CROP, MAX_CROP),
    "max_megapixels": Bound(float, 0, low_open=True),
    "prior_pool": Bound(int, 1),
    "prior_variants": Bound(int, 0),
    "encoder_lr_scale": Bound(float, 0),
    "trimap_blobs": Bound(float, 0, 1),
    "trimap_keep": Bound(float, 0, 1),
}
