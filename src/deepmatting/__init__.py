"""deepmatting: deep image matting in pure PyTorch.

The public API: ``DeepMatting`` (models), ``AlphaLoss``/``MattingLoss`` (losses), the benchmark-exact
metrics, the datasets (``deepmatting.data``), and ``predict`` for inference.
"""

__version__ = "0.1.0"

from . import metrics  # noqa: E402
from .foreground import cutout, estimate_foreground  # noqa: E402
from .inference import predict  # noqa: E402
from .losses import AlphaLoss, CompositionLoss, LaplacianLoss, MattingLoss  # noqa: E402
from .metrics import connectivity_error, evaluate_all, gradient_error, mse_score, sad_score  # noqa: E402
from .models import DeepMatting, build_model, list_architectures  # noqa: E402

__all__ = [
    "AlphaLoss",
    "CompositionLoss",
    "DeepMatting",
    "LaplacianLoss",
    "MattingLoss",
    "__version__",
    "build_model",
    "connectivity_error",
    "cutout",
    "estimate_foreground",
    "evaluate_all",
    "gradient_error",
    "list_architectures",
    "metrics",
    "mse_score",
    "predict",
    "sad_score",
]
