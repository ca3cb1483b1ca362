"""Writing checkpoints atomically and loading them safely (one helper for every caller)."""

from __future__ import annotations

import contextlib
import importlib.resources
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import torch

from .atomic import WriteError
from .atomic import atomic_write as _atomic_write

#: The shipped models by quality, and where their weights live inside the package (shipped only by some
#: builds): "fast" (effnet-lite0 alone), "best" (effnet-cf: refines closed-form matting) and "fusion"
#: (cf-knn-fusion: fuses closed-form and KNN matting).
SHIPPED_WEIGHTS = {"fast": "weights/default.pt", "best": "weights/best.pt", "fusion": "weights/fusion.pt"}
QUALITIES = tuple(SHIPPED_WEIGHTS)
#: The quality that runs when none is named.
DEFAULT_QUALITY = "fusion"
#: What each quality is, in a phrase for help texts.
QUALITY_SUMMARIES = {
    "fast": "a network alone (effnet-lite0): the quickest, the roughest mattes",
    "best": "a network refining closed-form matting",
    "fusion": "closed-form and KNN matting fused by a network: the best mattes, the default",
}


def qualities_help() -> str:
    """One line naming every shipped quality and what it is, for ``--quality`` help texts."""
    return "; ".join(f"{name}: {QUALITY_SUMMARIES[name]}" for name in QUALITIES)

NO_DEFAULT_MODEL = (
    "no model given and no default model ships with this version of deepmatting: pass a checkpoint "
    "(train one with `deepmatting train` or run `make demo`)"
)


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable, unsafe or not a deepmatting checkpoint."""


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """:func:`deepmatting.atomic.atomic_write`, its failure a :class:`CheckpointError`."""
    try:
        return _atomic_write(path, write)
    except WriteError as e:
        raise CheckpointError(str(e)) from e.__cause__


def atomic_save(obj: dict, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda f: torch.save(obj, f))


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint dict with ``torch.load(..., weights_only=True)`` (no code runs on load).

    Raises
    ------
    CheckpointError
        When the file is missing, cannot be unpickled safely, or is not a dict with ``model``/``config``.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path}: is a folder, not a checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: no such file")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means the same thing to the user
        raise CheckpointError(f"checkpoint {path}: cannot be loaded safely ({type(e).__name__}: {e})") from e
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise CheckpointError(f"checkpoint {path}: not a deepmatting checkpoint (needs 'model' and 'config')")
    weights, config = ckpt["model"], ckpt["config"]
    if not isinstance(weights, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()
    ):
        raise CheckpointError(f"checkpoint {path}: 'model' is not a state dict (names -> tensors); the file "
                              "is damaged or was not written by deepmatting")
    if not isinstance(config, dict):
        raise CheckpointError(f"checkpoint {path}: 'config' is a {type(config).__name__}, not a dict; the "
                              "file is damaged or was not written by deepmatting")
    return ckpt


def training_photos(path: str | os.PathLike | None = None, quality: str | None = None) -> list[str]:
    """The names (file stems) of the photos a checkpoint's weights were trained on, as its ``trained_on``
    list records them (the shipped weights carry one); ``[]`` when it records none. ``path`` None: the
    shipped weights of ``quality`` (the default quality when None)."""
    if path is None:
        shipped = default_weights(quality or DEFAULT_QUALITY)
        if shipped is None:
            return []
        with shipped as file:
            return training_photos(file)
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - an unreadable file is reported by the loader that runs it
        return []
    seen = raw.get("trained_on", []) if isinstance(raw, dict) else []
    return [Path(str(p)).stem for p in seen] if isinstance(seen, list) else []


def default_weights(quality: str = DEFAULT_QUALITY) -> contextlib.AbstractContextManager[Path] | None:
    """A context manager giving the path of the packaged weights of ``quality``, or None when none ship."""
    if quality not in SHIPPED_WEIGHTS:
        raise ValueError(f"quality {quality!r}: choose {' or '.join(QUALITIES)}")
    resource = importlib.resources.files("deepmatting").joinpath(SHIPPED_WEIGHTS[quality])
    if not resource.is_file():
        return None
    return importlib.resources.as_file(resource)
