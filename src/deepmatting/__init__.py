"""deepmatting: deep image matting in pure PyTorch.

The public API: ``DeepMatting`` (models; ``DeepMatting.pretrained()`` is the shipped model),
``AlphaLoss``/``MattingLoss`` (losses), the benchmark-exact metrics, the datasets (``deepmatting.data``),
``predict`` and ``cutout`` for inference, and ``load_backend`` to load a model once for many images.

Names are imported on first use, so ``import deepmatting`` (and ``deepmatting --help``) stays fast.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_EXPORTS = {
    "AlphaLoss": "losses",
    "CompositionLoss": "losses",
    "LaplacianLoss": "losses",
    "MattingLoss": "losses",
    "DeepMatting": "models",
    "build_model": "models",
    "list_architectures": "models",
    "connectivity_error": "metrics",
    "evaluate_all": "metrics",
    "gradient_error": "metrics",
    "mse_score": "metrics",
    "sad_score": "metrics",
    "cutout": "foreground",
    "estimate_foreground": "foreground",
    "predict": "inference",
    "load_backend": "backends",
}
_SUBMODULES = ("metrics", "data", "models")

__all__ = sorted([*_EXPORTS, *_SUBMODULES, "__version__"])


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'deepmatting' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return __all__
