"""Training losses: named, weighted terms returning a dict for logging. Nothing mutates its inputs.

All tensors are ``Bx1xHxW`` (alpha, trimap) or ``Bx3xHxW`` (image, fg, bg), float. The trimap uses the model's
convention (0 background, 0.5 unknown, 1 foreground); ``unknown_mask`` turns it into the region where the
matting losses apply, as in Deep Image Matting.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def unknown_mask(trimap: torch.Tensor) -> torch.Tensor:
    """``Bx1xHxW`` float trimap -> ``Bx1xHxW`` float mask, 1 where the trimap is unknown (0.25 < t < 0.75)."""
    return ((trimap > 0.25) & (trimap < 0.75)).to(trimap.dtype)


def _masked_mean(error: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Sum of ``error * weight`` over the weight's total (per channel), 0 when the weight is all zero."""
    weight = weight.expand_as(error)
    return (error * weight).sum() / weight.sum().clamp_min(1.0)


class AlphaLoss(nn.Module):
    """Mean absolute difference between predicted and true alpha.

    Parameters
    ----------
    region : ``"unknown"`` (only unknown-trimap pixels, the DIM convention), ``"all"`` (every pixel), or
        ``"weighted"`` (every pixel, unknown pixels counting ``unknown_weight`` times as much).
    unknown_weight : float, the weight of unknown pixels for ``region="weighted"``.

    A batch without unknown pixels gives 0 for ``"unknown"`` (never NaN).

    Examples
    --------
    >>> loss = AlphaLoss(region="all")
    >>> float(loss(torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2)))
    1.0
    """

    def __init__(self, region: str = "unknown", unknown_weight: float = 4.0):
        super().__init__()
        if region not in ("unknown", "all", "weighted"):
            raise ValueError(f"AlphaLoss region must be 'unknown', 'all' or 'weighted', got {region!r}")
        self.region, self.unknown_weight = region, unknown_weight

    def weight(self, trimap: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
        if self.region == "all" or trimap is None:
            return torch.ones_like(like)
        mask = unknown_mask(trimap)
        return mask if self.region == "unknown" else 1.0 + (self.unknown_weight - 1.0) * mask

    def forward(
        self, pred: torch.Tensor, alpha: torch.Tensor, trimap: torch.Tensor | None = None
    ) -> torch.Tensor:
        return _masked_mean((pred - alpha).abs(), self.weight(trimap, pred))


class CompositionLoss(nn.Module):
    """L1 between the image and ``alpha_pred * fg + (1 - alpha_pred) * bg`` on the unknown region."""

    def forward(self, pred, image, fg, bg, trimap=None) -> torch.Tensor:
        composite = pred * fg + (1 - pred) * bg  # (B, 3, H, W)
        weight = unknown_mask(trimap) if trimap is not None else torch.ones_like(pred)
        return _masked_mean((composite - image).abs(), weight)


def _gauss_kernel(channels: int, device, dtype) -> torch.Tensor:
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=device, dtype=dtype)
    k = torch.outer(k, k) / 256.0
    return k.expand(channels, 1, 5, 5).contiguous()


def laplacian_pyramid(x: torch.Tensor, levels: int = 5) -> list[torch.Tensor]:
    """Laplacian pyramid of ``BxCxHxW`` ``x`` (finest first, the last entry the coarse residual)."""
    kernel = _gauss_kernel(x.shape[1], x.device, x.dtype)
    pyramid, current = [], x
    for _ in range(levels - 1):
        if min(current.shape[-2:]) < 4:
            break
        blurred = F.conv2d(F.pad(current, (2, 2, 2, 2), mode="replicate"), kernel, groups=x.shape[1])
        down = blurred[..., ::2, ::2]
        up = F.interpolate(down, size=current.shape[-2:], mode="bilinear", align_corners=False)
        pyramid.append(current - up)
        current = down
    pyramid.append(current)
    return pyramid


class LaplacianLoss(nn.Module):
    """Laplacian-pyramid L1 (Hou & Liu 2019): errors at every scale, weighted 2^level.

    Outside the unknown region the prediction is replaced by the ground truth first, so only the unknown
    region (and its influence on the coarse levels) is penalised, matching how inference copies known pixels.
    """

    def __init__(self, levels: int = 5):
        super().__init__()
        self.levels = levels

    def forward(
        self, pred: torch.Tensor, alpha: torch.Tensor, trimap: torch.Tensor | None = None
    ) -> torch.Tensor:
        if trimap is not None:
            mask = unknown_mask(trimap)
            pred = pred * mask + alpha * (1 - mask)
        total = pred.new_zeros(())
        for level, (p, a) in enumerate(
            zip(laplacian_pyramid(pred, self.levels), laplacian_pyramid(alpha, self.levels), strict=True)
        ):
            total = total + (2**level) * (p - a).abs().mean()
        return total


class MattingLoss(nn.Module):
    """The weighted training loss: ``alpha`` (L1 on the unknown region), ``composition``, ``laplacian``.

    ``forward`` returns a dict with each term's unweighted value and ``"total"``; the composition term
    is skipped when the batch has no ``fg``/``bg``.
    """

    def __init__(self, weights: dict[str, float] | None = None):
        super().__init__()
        self.weights = dict(weights or {"alpha": 1.0, "composition": 0.5, "laplacian": 0.5})
        unknown = set(self.weights) - {"alpha", "composition", "laplacian"}
        if unknown:
            raise ValueError(f"MattingLoss: unknown terms {sorted(unknown)} (alpha, composition, laplacian)")
        self.alpha_loss, self.composition_loss, self.laplacian_loss = (
            AlphaLoss(),
            CompositionLoss(),
            LaplacianLoss(),
        )

    def forward(self, pred: torch.Tensor, batch: dict) -> dict[str, torch.Tensor]:
        alpha, trimap = batch["alpha"], batch.get("trimap")
        terms = {}
        if self.weights.get("alpha", 0):
            terms["alpha"] = self.alpha_loss(pred, alpha, trimap)
        if self.weights.get("composition", 0) and "fg" in batch and "bg" in batch:
            terms["composition"] = self.composition_loss(
                pred, batch["image"], batch["fg"], batch["bg"], trimap
            )
        if self.weights.get("laplacian", 0):
            terms["laplacian"] = self.laplacian_loss(pred, alpha, trimap)
        terms["total"] = sum(self.weights[k] * v for k, v in terms.items())
        return terms
