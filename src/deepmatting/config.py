"""Typed run configuration: one dataclass per component, saved inside every checkpoint.

``ModelConfig`` rebuilds a model from a checkpoint alone; ``TrainConfig`` describes a training run and is
written to ``RUN_DIR/config.json`` and into ``last.pt`` / ``best.pt``. ``from_dict`` rejects unknown keys and
values of the wrong type, so a typo in a config file is an error, not a silent default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration has an unknown key or a value of the wrong type."""


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
        if self.prior_pixels is not None and (isinstance(self.prior_pixels, bool)
                                              or not isinstance(self.prior_pixels, int)
                                              or self.prior_pixels < 1024):
            raise ConfigError(f"ModelConfig.prior_pixels: {self.prior_pixels!r} must be an integer >= 1024")
        if self.input not in MODEL_INPUTS:
            raise ConfigError(f"ModelConfig.input: {self.input!r}, expected one of {', '.join(MODEL_INPUTS)}")
        if self.width <= 0:
            raise ConfigError(f"ModelConfig.width: {self.width} must be positive")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is not None:
                if len(value) != 3:
                    raise ConfigError(f"ModelConfig.{name}: {value!r} needs one value per RGB channel")
                setattr(self, name, tuple(value))


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
        for name in ("batch_size", "val_every", "crop"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"TrainConfig.{name}: {value!r} must be an integer >= 1")
        if self.best_metric not in ("sad", "mse", "grad", "conn"):
            raise ConfigError(f"TrainConfig.best_metric: {self.best_metric!r}, expected one of sad, mse, "
                              "grad, conn")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        data = dict(data)
        model = from_dict(ModelConfig, data.pop("model", {}))
        cfg = from_dict(cls, data)
        cfg.model = model
        return cfg
